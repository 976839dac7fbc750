"""CORS for the API: the origins in CORS_ORIGINS, plus each company's own allowed origins."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections
from django.http import HttpRequest
from django_tenants.utils import schema_context

from apps.tenants.models import Company

_TTL_SECONDS = 60.0
_lock = threading.Lock()
_cache: tuple[float, frozenset[str]] = (0.0, frozenset())
# corsheaders may ask from inside the event loop, where the ORM may not run: load in a thread.
_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cors-origins")


def _load() -> frozenset[str]:
    try:
        with schema_context("public"):
            return frozenset(
                origin.rstrip("/").lower()
                for allowed in Company.objects.filter(suspended_at=None).values_list(
                    "allowed_origins", flat=True
                )
                for origin in (allowed or [])
                if isinstance(origin, str)
            )
    finally:
        close_old_connections()


def company_origins() -> frozenset[str]:
    """Every active company's allowed origins, kept in memory for a minute per process."""
    global _cache
    loaded_at, origins = _cache
    if time.monotonic() - loaded_at < _TTL_SECONDS:
        return origins
    with _lock:
        loaded_at, origins = _cache
        if time.monotonic() - loaded_at >= _TTL_SECONDS:
            origins = _loader.submit(_load).result(timeout=5)
            _cache = (time.monotonic(), origins)
    return origins


def company_origins_forget() -> None:
    """Drop the in-memory copy (after a company's origins change, and in tests)."""
    global _cache
    _cache = (0.0, frozenset())


def cors_allow_company_origin(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    origin = (request.headers.get("Origin") or "").rstrip("/").lower()
    return bool(origin) and request.path.startswith("/v1/") and origin in company_origins()
