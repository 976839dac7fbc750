"""Inbound webhooks of the messaging channels, on the public host, routed to the company by
the channel's public webhook id. Each request is verified (secret token or signature) before
anything is stored, answered at once (the work is queued), and never a 500 for what the sender
controls: unknown ids 404, bad signatures 403, malformed bodies 400, oversized bodies 413."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_tenants.utils import tenant_context

from apps.channels.adapters import adapter_for
from apps.channels.adapters.meta import MetaAdapter
from apps.channels.models import ChannelConnection
from apps.channels.services import inbound_handle
from apps.tenants.selectors import company_is_serving
from apps.webhooks.models import WebhookRoute

logger = logging.getLogger(__name__)

_KINDS = {"telegram": "telegram", "twilio": "whatsapp_twilio", "meta": "whatsapp_meta"}


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _ok(kind: str) -> HttpResponse:
    if kind == "whatsapp_twilio":
        # An empty TwiML answer: Twilio sends nothing back by itself.
        return HttpResponse("<Response/>", content_type="text/xml")
    return JsonResponse({"ok": True})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbound(request: HttpRequest, provider: str, webhook_id: str) -> HttpResponse:
    kind = _KINDS.get(provider)
    if kind is None:
        return _error("not_found", "Unknown webhook.", 404)
    # The declared length first: reading a body over DATA_UPLOAD_MAX_MEMORY_SIZE raises
    # RequestDataTooBig, which Django answers with a 400.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    limit = settings.CHANNEL_MAX_BODY_BYTES
    if declared > limit or len(request.body) > limit:
        return _error("payload_too_large", "The request body is too large.", 413)
    route = (
        WebhookRoute.objects.select_related("company")
        .filter(webhook_id=webhook_id, kind=kind)
        .first()
    )
    if route is None:
        return _error("not_found", "Unknown webhook.", 404)
    if not company_is_serving(route.company):
        return _error("company_suspended", "This company is suspended.", 403)
    with tenant_context(route.company):
        channel = ChannelConnection.objects.filter(
            webhook_id=webhook_id, status=ChannelConnection.Status.ACTIVE
        ).first()
        if channel is None:
            return _error("not_found", "Unknown webhook.", 404)
        adapter = adapter_for(kind)
        if request.method == "GET":
            # Only Meta verifies a callback URL with a GET handshake.
            challenge = (
                adapter.handshake(request, channel) if isinstance(adapter, MetaAdapter) else None
            )
            if challenge is None:
                return _error("forbidden", "Verification failed.", 403)
            return HttpResponse(challenge, content_type="text/plain")
        if not adapter.verify(request, channel):
            logger.warning("webhook %s: signature or secret refused", channel.pk)
            return _error("forbidden", "Signature or secret token refused.", 403)
        try:
            items = adapter.parse(request, channel)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("webhook %s: malformed body (%s)", channel.pk, type(exc).__name__)
            return _error("invalid_body", "The request body is not what this webhook expects.", 400)
        inbound_handle(channel=channel, items=items)
    return _ok(kind)
