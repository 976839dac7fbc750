"""One-time login tokens that carry a user from the public host to their company's host.

Sessions are per host (each company's users and sessions live in its own schema), so after
signup on the public site the new owner is sent to `<slug>.ROOT_DOMAIN/auth/handoff?token=…`
with a short-lived JWT signed with JWT_SECRET. Each token works once (its id is burnt in the
cache) and only on the host of the company it names.
"""

from __future__ import annotations

import secrets
import time

import jwt
from django.conf import settings
from django.core.cache import cache

_AUDIENCE = "chapi:signup-handoff"


def handoff_token_issue(*, schema_name: str, user_id: int) -> str:
    now = int(time.time())
    claims = {
        "aud": _AUDIENCE,
        "sub": str(user_id),
        "schema": schema_name,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + settings.SIGNUP_HANDOFF_TTL_SECONDS,
    }
    return jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")


def handoff_token_redeem(*, token: str, schema_name: str) -> int | None:
    """The user id the token logs in, or None if it is invalid, expired, for another company
    or already used."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=["HS256"],
            audience=_AUDIENCE,
            options={"require": ["exp", "jti", "sub", "schema"]},
        )
    except jwt.PyJWTError:
        return None
    if claims["schema"] != schema_name:
        return None
    # cache.add is atomic: only the first redemption of a token id succeeds.
    if not cache.add(f"handoff:{claims['jti']}", 1, timeout=settings.SIGNUP_HANDOFF_TTL_SECONDS):
        return None
    return int(claims["sub"])
