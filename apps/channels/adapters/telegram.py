"""Telegram bots through the Bot API (https://core.telegram.org/bots/api), over httpx2.

Webhooks carry `X-Telegram-Bot-Api-Secret-Token`, the random secret set with `setWebhook`.
Answers go out with `parse_mode=HTML`: the assistant's light Markdown (bold, links) becomes
the few tags Telegram allows and everything else is escaped. Group chats are declined politely
(the assistant is a one-to-one sales conversation): see docs/channels/telegram.md.
"""

from __future__ import annotations

import hmac
import html
import json
import re
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
    utf16_length,
)
from apps.channels.models import ChannelConnection

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")


def telegram_html(text: str) -> str:
    """The assistant's text for parse_mode=HTML: <, > and & escaped, **bold** and
    [text](https://…) links as <b> and <a>."""
    escaped = html.escape(text, quote=False)
    escaped = _LINK.sub(
        lambda m: (
            f'<a href="{html.escape(html.unescape(m.group(2)), quote=True)}">{m.group(1)}</a>'
        ),
        escaped,
    )
    return _BOLD.sub(r"<b>\1</b>", escaped)


class TelegramAdapter:
    kind = "telegram"
    limit = 4096  # UTF-16 code units, as Telegram counts them
    measure = staticmethod(utf16_length)

    def _url(self, token: str, method: str) -> str:
        return f"{settings.TELEGRAM_API_BASE_URL.rstrip('/')}/bot{token}/{method}"

    def _call(
        self, token: str, method: str, payload: dict[str, Any], timeout: float | None = None
    ) -> Any:
        """POST a Bot API method; the `result`, or SendError saying whether to retry."""
        try:
            response = httpx2.post(
                self._url(token, method),
                json=payload,
                timeout=timeout or settings.CHANNEL_HTTP_TIMEOUT,
            )
        except httpx2.HTTPError as exc:
            raise SendError(f"Telegram unreachable: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return body.get("result")
        description = str(body.get("description") or f"HTTP {response.status_code}")
        code = body.get("error_code") or response.status_code
        if code == 429:
            retry_after = (body.get("parameters") or {}).get("retry_after")
            raise SendError(description, retry_after=float(retry_after or 1), code="429")
        if code >= 500:
            raise SendError(description, code=str(code))
        lowered = description.lower()
        unreachable = code == 403 or "chat not found" in lowered or "user is deactivated" in lowered
        raise SendError(description, permanent=True, unreachable=unreachable, code=str(code))

    # -- inbound --------------------------------------------------------------------------

    def verify(self, request: HttpRequest, connection: ChannelConnection) -> bool:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        return bool(connection.secret_token) and hmac.compare_digest(
            given.encode(), connection.secret_token.encode()
        )

    def parse(self, request: HttpRequest, connection: ChannelConnection) -> list[Parsed]:
        update = json.loads(request.body)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise ValueError("not a Telegram update")
        provider_id = str(update["update_id"])
        message = update.get("message")
        if not isinstance(message, dict):
            kind = next((key for key in update if key != "update_id"), "unknown")
            return [Ignored(provider_id, f"update.{kind}", f"{kind} updates are not handled")]
        chat = message.get("chat") or {}
        sender = message.get("from") or {}
        chat_id = str(chat.get("id", ""))
        if chat.get("type") != "private":
            username = connection.bot_username
            notice = (
                f"¡Hola! Solo converso por mensaje privado: escríbeme a @{username}."
                if username
                else "¡Hola! Solo converso por mensaje privado."
            )
            return [
                Ignored(provider_id, "message.group", "group chats are declined", chat_id, notice)
            ]
        name = " ".join(
            part for part in (sender.get("first_name"), sender.get("last_name")) if part
        )
        common: dict[str, Any] = {
            "chat_id": chat_id,
            "sender_id": str(sender.get("id", chat_id)),
            "name": name,
        }
        language = str(sender.get("language_code") or "")[:2]
        context = {"language": language} if language else {}
        caption = str(message.get("caption") or "")
        if isinstance(message.get("text"), str):
            text = message["text"]
            if text.startswith("/start"):
                payload = text[len("/start") :].strip()
                if payload:
                    context["start_payload"] = payload[:200]
                return [
                    Inbound(
                        provider_id,
                        "message.start",
                        text=text,
                        command="start",
                        context=context,
                        **common,
                    )
                ]
            return [Inbound(provider_id, "message.text", text=text, context=context, **common)]
        if message.get("photo"):
            largest = max(message["photo"], key=lambda size: size.get("file_size") or 0)
            attachment = {"type": "photo", "file_id": largest.get("file_id")}
            return [
                Inbound(
                    provider_id,
                    "message.photo",
                    text=caption or "[Foto]",
                    attachments=[attachment],
                    context=context,
                    **common,
                )
            ]
        for media in ("document", "voice", "audio", "video", "video_note", "sticker"):
            item = message.get(media)
            if isinstance(item, dict):
                attachment = {
                    "type": media,
                    "file_id": item.get("file_id"),
                    "mime_type": item.get("mime_type", ""),
                    "file_name": item.get("file_name", ""),
                }
                label = {"document": "[Documento]", "voice": "[Nota de voz]"}.get(
                    media, f"[{media}]"
                )
                return [
                    Inbound(
                        provider_id,
                        f"message.{media}",
                        text=caption or label,
                        attachments=[attachment],
                        context=context,
                        **common,
                    )
                ]
        location = message.get("location")
        if isinstance(location, dict):
            lat, lon = location.get("latitude"), location.get("longitude")
            return [
                Inbound(
                    provider_id,
                    "message.location",
                    text=f"[Ubicación: {lat}, {lon}]",
                    attachments=[{"type": "location", "latitude": lat, "longitude": lon}],
                    context=context,
                    **common,
                )
            ]
        contact = message.get("contact")
        if isinstance(contact, dict):
            phone = str(contact.get("phone_number") or "")
            if phone and not phone.startswith("+"):
                phone = "+" + phone
            shared_name = " ".join(
                p for p in (contact.get("first_name"), contact.get("last_name")) if p
            )
            own = contact.get("user_id") == sender.get("id")
            return [
                Inbound(
                    provider_id,
                    "message.contact",
                    text=f"[Contacto: {shared_name} {phone}]",
                    attachments=[{"type": "contact", "phone": phone, "name": shared_name}],
                    phone=phone if own or not contact.get("user_id") else "",
                    context=context,
                    **common,
                )
            ]
        return [Ignored(provider_id, "message.other", "this kind of message is not handled")]

    # -- outbound -------------------------------------------------------------------------

    def send(self, connection: ChannelConnection, chat_id: str, text: str) -> str:
        payload = {"chat_id": chat_id, "text": telegram_html(text), "parse_mode": "HTML"}
        try:
            result = self._call(connection.bot_token, "sendMessage", payload)
        except SendError as exc:
            if "can't parse entities" not in str(exc):
                raise
            # Never lose an answer to formatting: send it as plain text.
            result = self._call(
                connection.bot_token, "sendMessage", {"chat_id": chat_id, "text": text}
            )
        return str((result or {}).get("message_id", ""))

    def typing(self, connection: ChannelConnection, chat_id: str) -> None:
        # Best effort, and never worth delaying the answer for.
        payload = {"chat_id": chat_id, "action": "typing"}
        self._call(connection.bot_token, "sendChatAction", payload, timeout=2.0)

    def setup(self, connection: ChannelConnection, webhook_url: str) -> None:
        try:
            me = self._call(connection.bot_token, "getMe", {})
            connection.bot_username = str((me or {}).get("username") or "")
            self._call(
                connection.bot_token,
                "setWebhook",
                {
                    "url": webhook_url,
                    "secret_token": connection.secret_token,
                    "allowed_updates": ALLOWED_UPDATES,
                },
            )
        except SendError as exc:
            if exc.code == "401" or exc.code == "404":
                raise SetupError(
                    "Telegram refused the bot token: check it with @BotFather."
                ) from exc
            raise SetupError(f"Telegram answered: {exc}") from exc

    def teardown(self, connection: ChannelConnection) -> None:
        self._call(connection.bot_token, "deleteWebhook", {})
