"""The widget's websocket (docs/widget.md, "Protocol"): one per browser tab, on the public host,
routed to the company by widget key. Visitor messages go through the same reply pipeline as
every channel; the reply's deltas come back from the worker through the channel layer."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import override
from django_tenants.utils import tenant_context

from apps.conversations.models import Channel, Conversation, Message
from apps.conversations.realtime import conversation_group
from apps.conversations.services import (
    contact_details_update,
    conversation_messages_visible,
    message_public,
    message_receive,
    reply_in_progress,
    reply_schedule,
)
from apps.leads.handoff import conversation_handoff_request
from apps.tenants.models import Company
from apps.widget.services import (
    key_group,
    origin_allowed,
    widget_key_resolve,
    widget_settings_get,
)
from chapi import ratelimit

logger = logging.getLogger(__name__)

_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTEXT_KEYS = 20
_CONTEXT_VALUE_CHARS = 500
_PHONE_RE = re.compile(r"^\+?[0-9 ().-]{6,25}$")

# Close codes: the widget does not reconnect after a 44xx.
CLOSE_KEY = 4401
CLOSE_ORIGIN = 4403
CLOSE_PROTOCOL = 4400
CLOSE_RATE = 4429
CLOSE_TOO_BIG = 1009

_ERROR_MESSAGES = {
    "unknown_widget_key": "This chat is not available.",
    "revoked_widget_key": "This chat is not available.",
    "company_suspended": "This chat is not available.",
    "origin_not_allowed": "This chat is not available on this website.",
}


class ProtocolError(Exception):
    pass


def session_group(schema_name: str, session_id: str) -> str:
    """The channel-layer group of every tab of one visitor (joined at hello, before the
    visitor has a conversation: a tab opened before the first message still sees it)."""
    digest = hashlib.sha256(f"{schema_name}:{session_id}".encode()).hexdigest()[:32]
    return f"widget.session.{digest}"


def _clean_text(value: str) -> str:
    """Text PostgreSQL can store: no NUL, and a lone UTF-16 surrogate (which JSON's \\u escapes
    can carry) becomes "?" instead of failing the write."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _clean_context(raw: Any) -> dict[str, Any]:
    """What the page tells about itself (page, title, referrer, language, the snippet's own
    keys), bounded: at most 20 string/number/boolean values of at most 500 characters."""
    if not isinstance(raw, dict):
        return {}
    context: dict[str, Any] = {}
    for key, value in list(raw.items())[:_CONTEXT_KEYS]:
        if not isinstance(key, str) or len(key) > 64:
            continue
        if isinstance(value, str):
            context[key] = _clean_text(value)[:_CONTEXT_VALUE_CHARS]
        elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            context[key] = value  # not NaN nor ±Infinity, which no JSON column stores
    return context


class WidgetConsumer(AsyncWebsocketConsumer):
    company: Company
    widget_key_id: int
    session_id: str = ""
    language: str = "es"
    conversation_id: int | None = None
    conversation_group: str = ""
    context: dict[str, Any]

    # --- connection ------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept first: a refused handshake reaches the browser without a reason, and the
        # widget must know not to retry.
        await self.accept()
        self.context = {}
        self.ip = (self.scope.get("client") or ["unknown"])[0]
        wait = await ratelimit.ahit(
            [(f"widget:conn-ip:{self.ip}", settings.WIDGET_CONNECTIONS_PER_IP)]
        )
        if wait is not None:
            await self._refuse("rate_limited", CLOSE_RATE, retry_after=wait)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        key = (query.get("key") or [""])[0]
        origin = _header(self.scope, b"origin")
        error, company, key_id = await database_sync_to_async(self._authorize)(key, origin)
        if error:
            await self._refuse(error, CLOSE_ORIGIN if error == "origin_not_allowed" else CLOSE_KEY)
            return
        assert company is not None and key_id is not None
        self.company, self.widget_key_id = company, key_id
        await self.channel_layer.group_add(key_group(key_id), self.channel_name)
        self.groups.append(key_group(key_id))

    def _authorize(self, key: str, origin: str | None) -> tuple[str, Company | None, int | None]:
        resolved = widget_key_resolve(key)
        if resolved.widget_key is None:
            return resolved.error, None, None
        if not origin_allowed(resolved.widget_key, origin):
            logger.info("widget key %s refused for origin %r", key, origin)
            return "origin_not_allowed", None, None
        return "", resolved.widget_key.company, resolved.widget_key.pk

    async def _refuse(self, code: str, close_code: int, **extra: Any) -> None:
        message = _ERROR_MESSAGES.get(code, "Too many connections: try again later.")
        await self._send({"type": "error", "code": code, "message": message, **extra})
        await self.close(code=close_code)

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, ensure_ascii=False))

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        await self._send({"type": "error", "code": code, "message": message, **extra})

    # --- frames from the browser -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "company"):
            return  # refused: closing
        raw = text_data if text_data is not None else None
        if raw is None or len(raw.encode()) > settings.WIDGET_MAX_FRAME_BYTES:
            if raw is None:
                await self._refuse_protocol("Send JSON text frames.")
            else:
                await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):
            await self._refuse_protocol("The frame is not valid JSON.")
            return
        try:
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                raise ProtocolError("Every frame is a JSON object with a type.")
            await self._dispatch(frame)
        except ProtocolError as exc:
            await self._refuse_protocol(str(exc))

    async def _refuse_protocol(self, message: str) -> None:
        await self._error("protocol_error", message)
        await self.close(code=CLOSE_PROTOCOL)

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await self._send({"type": "pong"})
            return
        if kind == "hello":
            await self._hello(frame)
            return
        if not self.session_id:
            raise ProtocolError("Send hello first.")
        if kind == "message":
            await self._message(frame)
        elif kind == "prechat":
            await self._prechat(frame)
        elif kind == "handoff":
            await self._handoff()
        else:
            raise ProtocolError(f"Unknown frame type {kind[:40]!r}.")

    async def _hello(self, frame: dict[str, Any]) -> None:
        session_id = frame.get("session_id")
        if not isinstance(session_id, str) or not _SESSION_RE.match(session_id):
            raise ProtocolError("session_id must be 8-128 letters, digits, - or _.")
        if self.session_id and session_id != self.session_id:
            raise ProtocolError("One session per connection.")
        after = frame.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ProtocolError("after must be a message id (0 for none).")
        self.session_id = session_id
        group = session_group(self.company.schema_name, session_id)
        if group not in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        self.context = _clean_context(frame.get("context"))
        language = str(self.context.get("language", ""))[:2].lower()
        if language in {"es", "en"}:
            self.language = language
        conversation, messages, generating = await database_sync_to_async(self._history)(after)
        if conversation is not None and self.conversation_id != conversation.pk:
            # Join, then read again: a reply completed between the first read and the join
            # would otherwise reach this tab neither way.
            await self._join(conversation.pk)
            conversation, messages, generating = await database_sync_to_async(self._history)(after)
        ready = {
            "type": "ready",
            "conversation_id": conversation.pk if conversation else None,
            "mode": conversation.mode if conversation else Conversation.Mode.BOT,
            "messages": messages,
            "generating": generating,
        }
        welcome = await database_sync_to_async(self._welcome)(conversation)
        if welcome is not None:
            ready["welcome"] = welcome  # this visitor's variant of a running A/B test
        await self._send(ready)

    def _history(self, after: int) -> tuple[Conversation | None, list[dict[str, Any]], bool]:
        with tenant_context(self.company):
            conversation = Conversation.objects.filter(
                channel=Channel.WEB, session_id=self.session_id
            ).first()
            if conversation is None:
                return None, [], False
            messages = conversation_messages_visible(conversation, after=after)
            return (
                conversation,
                [message_public(m) for m in messages],
                reply_in_progress(conversation),
            )

    def _welcome(self, conversation: Conversation | None) -> str | None:
        from apps.experiments.services import variant_text

        with tenant_context(self.company):
            return variant_text(target="welcome", channel=Channel.WEB,
                                session_id=self.session_id, conversation=conversation)  # fmt: skip

    async def _join(self, conversation_id: int) -> None:
        if self.conversation_id == conversation_id:
            return
        self.conversation_id = conversation_id
        self.conversation_group = conversation_group(self.company.schema_name, conversation_id)
        await self.channel_layer.group_add(self.conversation_group, self.channel_name)
        self.groups.append(self.conversation_group)

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        if not isinstance(client_id, str) or not _CLIENT_ID_RE.match(client_id):
            raise ProtocolError("client_id must be 1-64 letters, digits, - or _.")
        text = frame.get("text")
        if not isinstance(text, str) or not _clean_text(text).strip():
            await self._error(
                "invalid_message", "The message must be non-empty text.", client_id=client_id
            )
            return
        text = _clean_text(text).strip()
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
            await self._error(
                "message_too_long",
                f"Messages can have at most {settings.CHAT_MAX_MESSAGE_CHARS} characters.",
                client_id=client_id,
                max_chars=settings.CHAT_MAX_MESSAGE_CHARS,
            )
            return
        wait = await ratelimit.ahit(
            [
                (f"widget:session:{self.company.schema_name}:{self.session_id}",
                 settings.WIDGET_RATE_LIMIT_PER_SESSION),
                (f"widget:ip:{self.ip}", settings.WIDGET_RATE_LIMIT_PER_IP),
            ]
        )  # fmt: skip
        if wait is not None:
            await self._error(
                "rate_limited",
                "Too many messages: wait a moment.",
                client_id=client_id,
                retry_after=wait,
            )
            return
        stored = await database_sync_to_async(self._store)(text, client_id)
        conversation_id, mode, echo, created, reply = stored
        await self._join(conversation_id)
        if not created:
            # Sent again after a reconnection: the first one was stored (and is answered).
            await self._send({"type": "message", "message": echo})
            if reply is not None:
                await self._send({"type": "message", "message": reply})
            return
        # Every tab of this visitor (this one included) shows the stored message; a tab that
        # has not joined the conversation yet (it was new) joins it on the way.
        await self._to_visitor(
            {"type": "widget.message", "message": echo, "conversation_id": conversation_id}
        )
        if mode not in Conversation.BOT_ANSWERS:
            return  # a person has the conversation: no bot reply
        # Joined the conversation's group before the reply can start: no delta is missed.
        scheduled = await database_sync_to_async(self._schedule)(echo["id"])
        if not scheduled:
            await self._error(
                "unavailable",
                "Your message was saved; the assistant will answer shortly.",
                client_id=client_id,
            )

    def _store(
        self, text: str, client_id: str
    ) -> tuple[int, str, dict[str, Any], bool, dict[str, Any] | None]:
        with tenant_context(self.company):
            received = message_receive(
                channel=Channel.WEB,
                session_id=self.session_id,
                text=text,
                external_id=f"{self.session_id}:{client_id}",
                context=self.context or None,
                generate=False,
                caller_replies=True,
            )
            reply = None
            if not received.created:
                stored = (
                    Message.objects.filter(reply_to=received.message)
                    .exclude(status=Message.Status.GENERATING)
                    .first()
                )
                if stored is not None and stored.status != Message.Status.DISCARDED:
                    reply = message_public(stored)
            return (
                received.conversation.pk,
                received.conversation.mode,
                message_public(received.message),
                received.created,
                reply,
            )

    def _schedule(self, message_id: int) -> bool:
        """Send the reply task (outside a transaction it goes at once); whether the broker
        took it. The task checks the conversation's mode again before answering."""
        with tenant_context(self.company):
            state: dict[str, bool] = {}
            reply_schedule(message_id=message_id, state=state)
            return bool(state.get("ok"))

    async def _prechat(self, frame: dict[str, Any]) -> None:
        values: dict[str, str] = {}
        for field in ("name", "email", "phone"):
            value = frame.get(field) or ""
            if not isinstance(value, str):
                raise ProtocolError(f"{field} must be text.")
            values[field] = _clean_text(value).strip()
        error = await database_sync_to_async(self._prechat_store)(values)
        if error:
            field, message = error
            await self._error("invalid_field", message, field=field)
        else:
            await self._send({"type": "prechat.ok"})

    def _prechat_store(self, values: dict[str, str]) -> tuple[str, str] | None:
        with tenant_context(self.company), override(self.language):
            options = widget_settings_get()
            rules = {
                "name": options.prechat_name,
                "email": options.prechat_email,
                "phone": options.prechat_phone,
            }
            for field, rule in rules.items():
                value = values[field]
                if rule == "off":
                    values[field] = ""
                elif rule == "required" and not value:
                    return field, _("This field is required.")
            if len(values["name"]) > 200:
                return "name", _("The name is too long.")
            if len(values["email"]) > 254:  # the column's size (validate_email allows 320)
                return "email", _("Enter a valid email address.")
            if values["email"]:
                try:
                    validate_email(values["email"])
                except ValidationError:
                    return "email", _("Enter a valid email address.")
            if values["phone"] and not _PHONE_RE.match(values["phone"]):
                return "phone", _("Enter a valid phone number.")
            contact_details_update(channel=Channel.WEB, external_id=self.session_id, **values)
            return None

    async def _handoff(self) -> None:
        result = await database_sync_to_async(self._handoff_store)()
        if result is None:
            return
        mode, shown, conversation_id = result
        await self._join(conversation_id)
        await self._to_visitor(
            {"type": "widget.mode", "mode": mode, "conversation_id": conversation_id}
        )
        for message in shown:
            await self._to_visitor(
                {"type": "widget.message", "message": message, "conversation_id": conversation_id}
            )

    async def _to_visitor(self, event: dict[str, Any]) -> None:
        """Send an event to every tab of this visitor."""
        await self.channel_layer.group_send(
            session_group(self.company.schema_name, self.session_id), event
        )

    def _handoff_store(self) -> tuple[str, list[dict[str, Any]], int] | None:
        """The new mode, the messages to show (the visitor's request when it starts the
        conversation, the notice) and the conversation's id."""
        shown: list[dict[str, Any]] = []
        with tenant_context(self.company), override(self.language):
            conversation = Conversation.objects.filter(
                channel=Channel.WEB, session_id=self.session_id
            ).first()
            if conversation is None:
                # Asking for a person before writing anything still starts a conversation.
                received = message_receive(
                    channel=Channel.WEB,
                    session_id=self.session_id,
                    text=_("I'd like to talk to a person."),
                    context=self.context or None,
                    generate=False,
                )
                conversation = received.conversation
                shown.append(message_public(received.message))
            result = conversation_handoff_request(
                conversation=conversation, reason="visitor_asked", publish=False
            )
            if result.notice is not None:
                shown.append(message_public(result.notice))
            return result.conversation.mode, shown, result.conversation.pk

    # --- events from the channel layer -----------------------------------------------------

    async def reply_delta(self, event: dict[str, Any]) -> None:
        await self._send(
            {
                "type": "delta",
                "message_id": event["message_id"],
                "offset": event.get("offset", 0),
                "text": event["text"],
            }
        )

    async def reply_reset(self, event: dict[str, Any]) -> None:
        await self._send({"type": "reset", "message_id": event["message_id"]})

    async def reply_completed(self, event: dict[str, Any]) -> None:
        if not event.get("message_id"):
            return
        await self._send(
            {
                "type": "message",
                "message": {
                    "id": event["message_id"],
                    "role": Message.Role.ASSISTANT,
                    "text": event.get("text") or "",
                    "created_at": event.get("created_at"),
                    "client_id": None,
                    "author": None,
                },
            }
        )

    async def reply_discarded(self, event: dict[str, Any]) -> None:
        """Never sent to groups (only to a waiting API request); ignore if it ever is."""

    async def widget_message(self, event: dict[str, Any]) -> None:
        if event.get("conversation_id"):
            await self._join(event["conversation_id"])
        await self._send({"type": "message", "message": event["message"]})

    async def widget_mode(self, event: dict[str, Any]) -> None:
        if event.get("conversation_id"):
            await self._join(event["conversation_id"])
        await self._send({"type": "mode", "mode": event["mode"]})

    async def conversation_message(self, event: dict[str, Any]) -> None:
        """A message for the visitor outside a reply: an agent's, a handoff notice."""
        await self._send({"type": "message", "message": event["message"]})

    async def conversation_mode(self, event: dict[str, Any]) -> None:
        await self._send({"type": "mode", "mode": event["mode"]})

    async def widget_revoked(self, event: dict[str, Any]) -> None:
        await self._refuse("revoked_widget_key", CLOSE_KEY)
