"""Routing each request to its company, and the company's language."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header
from django_tenants.middleware.main import TenantMainMiddleware

logger = logging.getLogger(__name__)


class CompanyMiddleware(TenantMainMiddleware):
    """django-tenants' routing by host, with a plain 404 page for unknown hosts and a clear
    "suspended" answer for suspended companies."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            response = super().process_request(request)
        except (OperationalError, InterfaceError) as exc:
            # The company lookup is the first query of a request: with the database down or
            # out of connections, answer "try again shortly" in the caller's language.
            logger.warning("database unavailable while routing %s: %s", request.path, exc)
            return unavailable_response(request)
        if response is not None:
            return response
        company = request.tenant  # type: ignore[attr-defined]
        if company.is_suspended:
            return suspended_response(request)
        return None

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:
        return HttpResponseNotFound(
            render_to_string("errors/unknown_host.html", {"hostname": hostname})
        )


def _wants_json(request: HttpRequest) -> bool:
    """An API call, or a caller that asked for JSON."""
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/v1/") or "application/json" in accept


def suspended_response(request: HttpRequest) -> HttpResponse:
    message = "This company's account is suspended. Contact support to reactivate it."
    if _wants_json(request):
        return JsonResponse(
            {"error": {"code": "company_suspended", "message": message}}, status=403
        )
    return HttpResponse(render_to_string("errors/suspended.html"), status=403)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    from apps.api.errors import UNAVAILABLE_MESSAGE, UNAVAILABLE_RETRY_AFTER, error_body

    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            error_body("service_unavailable", UNAVAILABLE_MESSAGE), status=503
        )
    else:
        response = HttpResponse(render_to_string("errors/unavailable.html"), status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return response


class CompanyLocaleMiddleware(LocaleMiddleware):
    """Language: the user's choice (cookie), else the browser's, else the company's default."""

    def process_request(self, request: HttpRequest) -> None:
        from django.conf import settings

        supported = {code for code, _name in settings.LANGUAGES}
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in supported:
            language = None
            for accepted, _q in parse_accept_lang_header(
                request.headers.get("Accept-Language", "")
            ):
                base = accepted.split("-")[0].lower()
                if base in supported:
                    language = base
                    break
        if language is None:
            company = getattr(request, "tenant", None)
            language = getattr(company, "language", None) or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
