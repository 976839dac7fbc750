"""Widget keys (create, revoke, resolve, origin check) and the widget's public settings."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override
from django_tenants.utils import tenant_context

from apps.assistants.services import assistant_profile_get
from apps.audit.services import Actor, audit_record
from apps.channels.models import WidgetSettings
from apps.tenants.models import Company
from apps.tenants.selectors import company_is_serving
from apps.widget.models import WidgetKey

logger = logging.getLogger(__name__)

KEY_PREFIX = "pk_"
_DEV_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def key_group(widget_key_id: int) -> str:
    """The channel-layer group of every live connection using a key (closed on revoke)."""
    return f"widgetkey.{widget_key_id}"


def widget_key_create(
    *, company: Company, name: str, origins: list[str], actor: Actor | None = None
) -> WidgetKey:
    with transaction.atomic():
        widget_key = WidgetKey.objects.create(
            company=company,
            key=KEY_PREFIX + secrets.token_urlsafe(18),
            name=name.strip()[:100] or "Website",
            allowed_origins=list(dict.fromkeys(origins)),
            created_by=actor.email if actor else "",
        )
        if actor is not None:
            with tenant_context(company):
                audit_record(
                    actor=actor,
                    action="widget_key.create",
                    instance=widget_key,
                    changes={"allowed_origins": [None, widget_key.allowed_origins]},
                )
    return widget_key


def widget_key_update(*, widget_key: WidgetKey, origins: list[str], actor: Actor) -> WidgetKey:
    old = list(widget_key.allowed_origins)
    widget_key.allowed_origins = list(dict.fromkeys(origins))
    with transaction.atomic():
        widget_key.save(update_fields=["allowed_origins"])
        with tenant_context(widget_key.company):
            audit_record(
                actor=actor,
                action="widget_key.update",
                instance=widget_key,
                changes={"allowed_origins": [old, widget_key.allowed_origins]},
            )
    return widget_key


def widget_key_revoke(*, widget_key: WidgetKey, actor: Actor) -> None:
    """Revoke a key: new connections are refused and open ones are closed."""
    if widget_key.revoked_at is not None:
        return
    with transaction.atomic():
        widget_key.revoked_at = timezone.now()
        widget_key.save(update_fields=["revoked_at"])
        with tenant_context(widget_key.company):
            audit_record(actor=actor, action="widget_key.revoke", instance=widget_key)

    def close_connections() -> None:
        layer = get_channel_layer()
        try:
            async_to_sync(layer.group_send)(key_group(widget_key.pk), {"type": "widget.revoked"})
        except Exception:  # best effort: a reconnection is refused anyway
            logger.warning("could not close the connections of widget key %s", widget_key.pk)

    transaction.on_commit(close_connections)


@dataclass(frozen=True)
class Resolved:
    widget_key: WidgetKey | None
    error: str = ""  # a stable error code when widget_key is None


def widget_key_resolve(key: str) -> Resolved:
    """The active key `key` with its company, or why not."""
    if not key.startswith(KEY_PREFIX) or len(key) > 40:
        return Resolved(None, "unknown_widget_key")
    widget_key = WidgetKey.objects.select_related("company").filter(key=key).first()
    if widget_key is None:
        return Resolved(None, "unknown_widget_key")
    if widget_key.revoked_at is not None:
        return Resolved(None, "revoked_widget_key")
    if not company_is_serving(widget_key.company):
        return Resolved(None, "company_suspended")
    return Resolved(widget_key)


def _company_hosts(company: Company) -> set[str]:
    return {host.lower() for host in company.domains.values_list("domain", flat=True)}


def origin_allowed(widget_key: WidgetKey, origin: str | None) -> bool:
    """Whether a page of `origin` may use the key: the key's allowed origins, the company's own
    hosts (dashboard preview, /embed), and localhost in development."""
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    if origin in widget_key.allowed_origins:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    if settings.DEBUG and parts.hostname in _DEV_HOSTS:
        return True
    return parts.hostname in _company_hosts(widget_key.company)


def widget_settings_get() -> WidgetSettings:
    """The current company's widget settings (created with defaults on first use)."""
    return WidgetSettings.objects.get_or_create(pk=1)[0]


def widget_config(widget_key: WidgetKey, socket_url: str) -> dict[str, Any]:
    """The key's public settings for the widget (docs/widget.md, "Settings"). Secrets never
    appear here: only what a visitor's browser may see."""
    company = widget_key.company
    with tenant_context(company):
        profile = assistant_profile_get()
        options = widget_settings_get()
        is_open = options.is_open()
    language = profile.languages[0] if profile.languages else company.language
    with override(language):
        offline = options.offline_message or _(
            "We're outside business hours. The assistant can help you now, and our team will "
            "reply as soon as we're back."
        )
    return {
        "key": widget_key.key,
        "botName": profile.bot_name,
        "companyName": profile.company_display_name or company.name,
        "welcomeMessage": profile.welcome_message,
        "languages": list(profile.languages or [company.language]),
        "language": language,
        "theme": {
            "primaryColor": options.primary_color,
            "position": options.position,
            "launcherText": options.launcher_text,
            "avatarUrl": options.avatar_url,
            "mode": options.theme,
        },
        "prechat": {
            "name": options.prechat_name,
            "email": options.prechat_email,
            "phone": options.prechat_phone,
        },
        "hours": {
            "enabled": options.hours_enabled,
            "open": is_open,
            "offlineMessage": "" if is_open else offline,
            "timeZone": options.time_zone,
        },
        "socketUrl": socket_url,
    }


def widget_snippet(*, script_url: str, widget_key: WidgetKey, config: dict[str, Any]) -> str:
    """The HTML to paste into a website (docs/widget.md, "Embedding")."""
    options = {
        "widgetKey": widget_key.key,
        "botName": config["botName"],
        "companyName": config["companyName"],
        "welcomeMessage": config["welcomeMessage"],
    }
    body = ", ".join(
        f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in options.items()
    ).replace("<", "\\u003c")  # no "</script>" nor "<!--" inside the script (as json_script)
    return (
        '<div id="chapi-assistant"></div>\n'
        "<script>window.ChapiAssistant=window.ChapiAssistant||function(o)"
        "{(ChapiAssistant.q=ChapiAssistant.q||[]).push(o)}</script>\n"
        f'<script src="{script_url}" async></script>\n'
        f"<script>new ChapiAssistant({{ {body} }});</script>"
    )
