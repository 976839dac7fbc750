"""WhatsApp through Meta's Cloud API (Graph API), over httpx2.

Meta verifies the webhook with a GET handshake (`hub.mode=subscribe`, `hub.verify_token`,
`hub.challenge`) and signs every POST with `X-Hub-Signature-256: sha256=<HMAC of the raw body
with the app secret>`. One POST can carry several messages and statuses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx2
from django.conf import settings
from django.http import HttpRequest

from apps.channels.adapters.base import (
    Ignored,
    Inbound,
    Parsed,
    SendError,
    SetupError,
    StatusUpdate,
)
from apps.channels.models import ChannelConnection

# Graph error codes: the contact cannot be reached / a retry cannot help / slow down.
UNREACHABLE = {131026, 131021, 131051}
PERMANENT = {100, 190, 131008, 131009, 131047, 132000, 132001, 132012} | UNREACHABLE
RATE_LIMITED = {4, 80007, 130429, 131048, 131056}


def signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class MetaAdapter:
    kind = "whatsapp_meta"
    limit = 4096

    def _url(self, path: str) -> str:
        base = settings.WHATSAPP_CLOUD_API_BASE_URL.rstrip("/")
        return f"{base}/{settings.WHATSAPP_CLOUD_API_VERSION}/{path}"

    def _request(self, connection: ChannelConnection, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx2.request(
                method,
                self._url(path),
                headers={"Authorization": f"Bearer {connection.access_token}"},
                timeout=settings.CHANNEL_HTTP_TIMEOUT,
                **kwargs,
            )
        except httpx2.HTTPError as exc:
            raise SendError(f"Meta unreachable: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code < 300:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        code = int((error or {}).get("code") or 0)
        message = f"Meta error {code or response.status_code}: {(error or {}).get('message', '')}"
        if response.status_code == 429 or code in RATE_LIMITED:
            raise SendError(message, retry_after=2.0, code=str(code))
        if code in PERMANENT or response.status_code in {400, 401, 403, 404}:
            raise SendError(
                message, permanent=True, unreachable=code in UNREACHABLE, code=str(code)
            )
        raise SendError(message, code=str(code or response.status_code))

    # -- inbound --------------------------------------------------------------------------

    def verify(self, request: HttpRequest, connection: ChannelConnection) -> bool:
        given = request.headers.get("X-Hub-Signature-256", "")
        if not given or not connection.app_secret:
            return False
        return hmac.compare_digest(given, signature(request.body, connection.app_secret))

    def handshake(self, request: HttpRequest, connection: ChannelConnection) -> str | None:
        """The challenge to echo if the GET verification request is genuine."""
        mode = request.GET.get("hub.mode")
        token = request.GET.get("hub.verify_token", "")
        if mode != "subscribe" or not connection.verify_token:
            return None
        if not hmac.compare_digest(token.encode(), connection.verify_token.encode()):
            return None
        return request.GET.get("hub.challenge", "")

    def parse(self, request: HttpRequest, connection: ChannelConnection) -> list[Parsed]:
        payload = json.loads(request.body)
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise ValueError("not a WhatsApp Business Account notification")
        parsed: list[Parsed] = []
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                number = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if number and number != connection.phone_number_id:
                    # One Meta app posts every number's traffic to one callback URL: only
                    # this channel's number is handled here (another channel has the rest).
                    parsed.append(
                        Ignored(
                            f"number:{number}:{entry.get('id', '')}:{len(parsed)}",
                            "change.other_number",
                            "for another phone number",
                        )
                    )
                    continue
                names = {
                    str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                    for c in value.get("contacts") or []
                }
                for message in value.get("messages") or []:
                    parsed.append(self._message(message, names))
                for status in value.get("statuses") or []:
                    errors = status.get("errors") or []
                    error = (
                        f"Meta error {errors[0].get('code')}: {errors[0].get('title', '')}"
                        if errors
                        else ""
                    )
                    parsed.append(
                        StatusUpdate(
                            provider_id=f"status:{status.get('id')}:{status.get('status')}",
                            provider_message_id=str(status.get("id") or ""),
                            status=str(status.get("status") or ""),
                            error=error,
                        )
                    )
        return parsed

    def _message(self, message: dict[str, Any], names: dict[str, str]) -> Parsed:
        message_id = str(message.get("id") or "")
        sender = str(message.get("from") or "")
        if not message_id or not sender:
            raise ValueError("a message without id or sender")
        kind = str(message.get("type") or "unknown")
        phone = "+" + sender.lstrip("+")
        common: dict[str, Any] = {
            "provider_id": message_id,
            "chat_id": sender,
            "sender_id": sender,
            "name": names.get(sender, ""),
            "phone": phone,
        }
        if kind == "text":
            text = str((message.get("text") or {}).get("body") or "")
            return Inbound(kind="message.text", text=text, **common)
        if kind in {"image", "document", "audio", "video", "sticker"}:
            media = message.get(kind) or {}
            label = {"image": "[Foto]", "document": "[Documento]", "audio": "[Nota de voz]"}
            attachment = {
                "type": kind,
                "media_id": media.get("id"),
                "mime_type": media.get("mime_type", ""),
                "file_name": media.get("filename", ""),
            }
            text = str(media.get("caption") or label.get(kind, f"[{kind}]"))
            return Inbound(kind=f"message.{kind}", text=text, attachments=[attachment], **common)
        if kind == "location":
            location = message.get("location") or {}
            lat, lon = location.get("latitude"), location.get("longitude")
            return Inbound(
                kind="message.location",
                text=f"[Ubicación: {lat}, {lon}]",
                attachments=[{"type": "location", "latitude": lat, "longitude": lon}],
                **common,
            )
        if kind == "contacts":
            shared = (message.get("contacts") or [{}])[0]
            phones = shared.get("phones") or [{}]
            shared_phone = str(phones[0].get("phone") or "")
            shared_name = str((shared.get("name") or {}).get("formatted_name") or "")
            return Inbound(
                kind="message.contacts",
                text=f"[Contacto: {shared_name} {shared_phone}]",
                attachments=[{"type": "contact", "phone": shared_phone, "name": shared_name}],
                **common,
            )
        if kind in {"interactive", "button"}:
            body = message.get(kind) or {}
            reply = body.get("button_reply") or body.get("list_reply") or body
            text = str(reply.get("title") or reply.get("text") or "")
            if text:
                return Inbound(kind=f"message.{kind}", text=text, **common)
        return Ignored(message_id, f"message.{kind}", "this kind of message is not handled")

    # -- outbound -------------------------------------------------------------------------

    def send(self, connection: ChannelConnection, chat_id: str, text: str) -> str:
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": chat_id,
            "type": "text",
            "text": {"body": text, "preview_url": False},
        }
        return self._sent_id(
            self._request(connection, "POST", f"{connection.phone_number_id}/messages", json=body)
        )

    def send_template(
        self,
        connection: ChannelConnection,
        chat_id: str,
        template: dict[str, Any],
        variables: dict[str, str],
    ) -> str:
        components = []
        if variables:
            components.append(
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": v} for v in variables.values()],
                }
            )
        body = {
            "messaging_product": "whatsapp",
            "to": chat_id,
            "type": "template",
            "template": {
                "name": template["name"],
                "language": {"code": template.get("language", "es")},
                "components": components,
            },
        }
        return self._sent_id(
            self._request(connection, "POST", f"{connection.phone_number_id}/messages", json=body)
        )

    @staticmethod
    def _sent_id(body: Any) -> str:
        messages = body.get("messages") if isinstance(body, dict) else None
        return str(messages[0].get("id")) if messages else ""

    def typing(self, connection: ChannelConnection, chat_id: str) -> None:
        """No typing indicator without a message id to mark as read; nothing to do."""

    def setup(self, connection: ChannelConnection, webhook_url: str) -> None:
        try:
            info = self._request(
                connection,
                "GET",
                connection.phone_number_id,
                params={"fields": "display_phone_number,verified_name"},
            )
        except SendError as exc:
            raise SetupError(
                "Meta refused the phone number id and access token."
                if exc.code in {"190", "100"}
                else f"Meta answered: {exc}"
            ) from exc
        connection.display_phone_number = str(info.get("display_phone_number") or "")

    def teardown(self, connection: ChannelConnection) -> None:
        """Nothing to undo at Meta: the callback URL is removed in the Meta app's settings."""
