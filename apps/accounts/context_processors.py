from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def membership(request: HttpRequest) -> dict[str, Any]:
    """The company and the signed-in user's membership, for the dashboard shell."""
    company = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    member = None
    if company is not None and not company.is_public and user is not None and user.is_authenticated:
        member = getattr(user, "membership", None)
    return {"company": company, "membership": member}
