"""CORS for the API: the origins in CORS_ORIGINS, plus each company's own allowed origins."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django_tenants.utils import schema_context

from apps.tenants.models import Company

_CACHE_KEY = "cors:company-origins"


def company_origins() -> frozenset[str]:
    origins = cache.get(_CACHE_KEY)
    if origins is None:
        with schema_context("public"):
            origins = frozenset(
                origin.rstrip("/").lower()
                for allowed in Company.objects.filter(suspended_at=None).values_list(
                    "allowed_origins", flat=True
                )
                for origin in (allowed or [])
                if isinstance(origin, str)
            )
        cache.set(_CACHE_KEY, origins, timeout=60)
    return origins


def cors_allow_company_origin(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    origin = (request.headers.get("Origin") or "").rstrip("/").lower()
    return bool(origin) and request.path.startswith("/v1/") and origin in company_origins()
