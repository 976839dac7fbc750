"""`Authorization: Bearer <API key or dashboard JWT>` → the company it belongs to."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apps.api.errors import ApiError
from apps.api.services import ApiPrincipal, api_key_authenticate, api_token_authenticate

_MESSAGES = {
    "invalid_api_key": "The API key is not valid.",
    "revoked_api_key": "The API key was revoked.",
    "invalid_token": "The token is not valid.",
    "expired_token": "The token has expired.",
}


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, str] | None:
        header = get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                "missing_credentials",
                "Send 'Authorization: Bearer <API key>'.",
                http_status=401,
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        if token.count(".") == 2:
            principal, reason = api_token_authenticate(token)
        else:
            api_key, reason = api_key_authenticate(token)
            principal = (
                ApiPrincipal(
                    company=api_key.company, scopes=frozenset(api_key.scopes), api_key=api_key
                )
                if api_key
                else None
            )
        if principal is None:
            raise ApiError(
                reason,
                _MESSAGES.get(reason, "Not authenticated."),
                http_status=401,
                headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
            )
        if principal.company.is_suspended:
            raise ApiError(
                "company_suspended",
                "This company's account is suspended. Contact support to reactivate it.",
                http_status=403,
            )
        return principal, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "apps.api.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`chapi_…`) or a dashboard user's JWT (read scope).",
        }


def require_scope(request: Request, scope: str) -> ApiPrincipal:
    principal = request.user
    if not isinstance(principal, ApiPrincipal):
        raise ApiError(
            "missing_credentials",
            "Send 'Authorization: Bearer <API key>'.",
            http_status=401,
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if scope not in principal.scopes:
        raise ApiError("forbidden_scope", f"This key lacks the '{scope}' scope.", http_status=403)
    return principal
