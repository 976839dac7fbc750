"""The widget's settings endpoint (any host) and the /embed iframe page (company hosts)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from apps.widget.models import WidgetKey
from apps.widget.services import origin_allowed, widget_config, widget_key_resolve
from chapi.hosts import url_on_host

_STATUS = {
    "unknown_widget_key": 404,
    "revoked_widget_key": 403,
    "company_suspended": 403,
    "origin_not_allowed": 403,
}
_MESSAGES = {
    "unknown_widget_key": "There is no widget key like this.",
    "revoked_widget_key": "This widget key was revoked.",
    "company_suspended": "This company's assistant is not available.",
    "origin_not_allowed": "This widget key may not be used on this website.",
}


def socket_url(request: HttpRequest, widget_key: WidgetKey) -> str:
    """The widget's websocket on the public host, as the visitor reaches the product."""
    url = url_on_host(request, settings.ROOT_DOMAIN, f"/ws/widget/?key={widget_key.key}")
    return "ws" + url.removeprefix("http")


def _error(code: str, origin: str | None) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": code, "message": _MESSAGES[code]}}, status=_STATUS[code]
    )
    if origin:
        # Let the page read why (the widget logs it once); the settings stay private.
        response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def config(request: HttpRequest) -> HttpResponse:
    """GET /widget/config?key=pk_…: the key's public settings (docs/widget.md)."""
    origin = request.headers.get("Origin")
    resolved = widget_key_resolve(request.GET.get("key", ""))
    if resolved.widget_key is None:
        return _error(resolved.error, origin)
    widget_key = resolved.widget_key
    # Browsers send Origin on cross-origin requests; a same-origin page (/embed) sends none.
    if origin and not origin_allowed(widget_key, origin):
        return _error("origin_not_allowed", origin)
    response = JsonResponse(
        widget_config(widget_key, socket_url(request, widget_key)),
        json_dumps_params={"ensure_ascii": False},
    )
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_GET
@xframe_options_exempt
def embed(request: HttpRequest) -> HttpResponse:
    """GET /embed?token=pk_… on a company host: the chat, full-frame, for an iframe. Only the
    key's allowed origins and the company's own hosts may frame it."""
    resolved = widget_key_resolve(request.GET.get("token", ""))
    widget_key = resolved.widget_key
    if widget_key is None or widget_key.company_id != request.tenant.pk:  # type: ignore[attr-defined]
        raise Http404("unknown widget key")
    response = render(
        request,
        "widget/embed.html",
        {
            "script_url": static("chapi-widget.js"),
            "options": {"widgetKey": widget_key.key, "mode": "inline", "open": True},
        },
    )
    ancestors = ["'self'", *widget_key.allowed_origins]
    if settings.DEBUG:
        ancestors += ["http://localhost:*", "http://127.0.0.1:*"]
    response["Content-Security-Policy"] = "frame-ancestors " + " ".join(ancestors)
    return response
