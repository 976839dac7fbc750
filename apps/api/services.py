"""API keys: create, authenticate, revoke, rotate; JWTs for dashboard users."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.api.models import ApiKey, Scope
from apps.audit.services import Actor, audit_record
from apps.tenants.models import Company

KEY_PREFIX = "chapi_"
_JWT_AUDIENCE = "chapi:api"
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # shown once


@dataclass(frozen=True)
class ApiPrincipal:
    """Who calls the API: a company's API key, or a dashboard user with a JWT."""

    company: Company
    scopes: frozenset[str]
    api_key: ApiKey | None = None
    user_id: int | None = None
    kind: str = "key"
    is_authenticated: bool = field(default=True, init=False)

    @property
    def rate_limit_id(self) -> str:
        return (
            f"key:{self.api_key.prefix}"
            if self.api_key
            else f"user:{self.company.pk}:{self.user_id}"
        )


def api_key_create(
    *, company: Company, name: str, scopes: list[str], actor: Actor | None = None
) -> IssuedKey:
    """Create a key for `company` and return it in full (only its hash is stored)."""
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise ValueError(f"Unknown or missing scopes: {sorted(unknown) or 'none given'}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            company=company,
            name=name.strip()[:100] or "API key",
            prefix=prefix,
            secret_hash=_hash(secret),
            scopes=sorted(set(scopes)),
            created_by=actor.email if actor else "",
        )
        if actor is not None:
            with tenant_context(company):
                audit_record(
                    actor=actor,
                    action="api_key.create",
                    instance=api_key,
                    changes={"scopes": [None, api_key.scopes]},
                )
    return IssuedKey(api_key=api_key, key=f"{KEY_PREFIX}{prefix}_{secret}")


def api_key_authenticate(raw: str) -> tuple[ApiKey | None, str]:
    """The active key for `raw`, or None and why ("invalid_api_key" / "revoked_api_key")."""
    if not raw.startswith(KEY_PREFIX):
        return None, "invalid_api_key"
    prefix, _, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not prefix or not secret:
        return None, "invalid_api_key"
    api_key = ApiKey.objects.select_related("company").filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _hash(secret)):
        return None, "invalid_api_key"
    if api_key.revoked_at is not None:
        return None, "revoked_api_key"
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key, ""


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    now = timezone.now()
    # Conditional update: two concurrent revokes audit once.
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(revoked_at=now):
        api_key.revoked_at = now
        with tenant_context(api_key.company):
            audit_record(actor=actor, action="api_key.revoke", instance=api_key)
    else:
        api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_rotate(*, api_key: ApiKey, actor: Actor) -> IssuedKey:
    """Replace a key by a new one with the same name and scopes; the old one stops working.
    A revoked key cannot be rotated (ValueError): create a new key instead."""
    if api_key.revoked_at is not None:
        raise ValueError("A revoked key cannot be rotated.")
    with transaction.atomic():
        issued = api_key_create(
            company=api_key.company, name=api_key.name, scopes=api_key.scopes, actor=actor
        )
        api_key_revoke(api_key=api_key, actor=actor)
    return issued


def api_token_issue(*, company: Company, user_id: int, role: str) -> str:
    """A short-lived JWT for a dashboard user to call the read endpoints."""
    now = int(time.time())
    return jwt.encode(
        {
            "aud": _JWT_AUDIENCE,
            "sub": str(user_id),
            "schema": company.schema_name,
            "role": role,
            "scopes": [Scope.READ],
            "iat": now,
            "exp": now + settings.API_JWT_TTL_SECONDS,
        },
        settings.JWT_SECRET,
        algorithm="HS256",
    )


def api_token_authenticate(token: str) -> tuple[ApiPrincipal | None, str]:
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=["HS256"],
            audience=_JWT_AUDIENCE,
            options={"require": ["exp", "sub", "schema"]},
        )
    except jwt.ExpiredSignatureError:
        return None, "expired_token"
    except jwt.PyJWTError:
        return None, "invalid_token"
    company = Company.objects.filter(schema_name=claims["schema"]).first()
    if company is None:
        return None, "invalid_token"
    from apps.accounts.models import Membership

    with tenant_context(company):
        if not Membership.objects.filter(user_id=int(claims["sub"]), user__is_active=True).exists():
            return None, "invalid_token"
    return (
        ApiPrincipal(
            company=company,
            scopes=frozenset(claims.get("scopes", [])),
            user_id=int(claims["sub"]),
            kind="jwt",
        ),
        "",
    )
