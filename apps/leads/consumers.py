"""The sales inbox's websocket (`/ws/dashboard/` on a company host): live updates for open
dashboard pages.

django-tenants' middleware does not run for websockets, so the consumer does what it does
for HTTP: the company comes from the Host header (its Domain row), and the signed-in user
from the session cookie read inside that company's schema (sessions and users live there).
A browser page of another site could open a websocket with the user's cookies: the Origin
must be this very host.

Frames from the browser: {"type": "ping"}, {"type": "subscribe", "conversation_id": N},
{"type": "unsubscribe", "conversation_id": N}. To the browser: every company inbox event
(`inbox.event` {kind, lead_id?, conversation_id?}: ids only, the page fetches what the member
may see) and, for subscribed conversations, `conversation.message`, `conversation.mode`,
`reply.delta`, `reply.completed`, `reply.reset`; plus `subscribed`, `error`, `pong`.
"""

from __future__ import annotations

import json
import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Membership
from apps.conversations.realtime import conversation_group
from apps.leads.realtime import inbox_group
from apps.leads.selectors import conversation_can_see
from apps.tenants.models import Company, Domain

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_PROTOCOL = 4400
MAX_SUBSCRIPTIONS = 10
MAX_FRAME_BYTES = 4096

# Conversation events forwarded as they come (the rest of a group's traffic is ignored).
_CONVERSATION_EVENTS = {
    "conversation.message",
    "conversation.mode",
    "reply.delta",
    "reply.completed",
    "reply.reset",
}


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def company_for_host(host: str) -> Company | None:
    """The company a Host header routes to (as the HTTP middleware finds it), not the public
    site's."""
    hostname, _port = split_domain_port(host)
    if not hostname:
        return None
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        domain = Domain.objects.select_related("tenant").filter(domain=hostname.lower()).first()
    if domain is None or domain.tenant.is_public:
        return None
    return domain.tenant  # type: ignore[return-value]


def origin_matches(origin: str, host: str) -> bool:
    """The page that opened the socket is on this host (same host and port)."""
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in {"http", "https"} and parts.netloc.lower() == host.lower()


def member_for_session(company: Company, session_key: str) -> Membership | None:
    """The active member signed in with this session in `company`'s schema, if any."""
    if not session_key:
        return None
    engine = import_module(settings.SESSION_ENGINE)
    with tenant_context(company):
        session = engine.SessionStore(session_key)
        # auth.get_user checks the backend and the password hash the session was made with,
        # so a session from before a password change (or a logout) is refused.
        user = auth.get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]
        if not user.is_authenticated or not user.is_active:
            return None
        return Membership.objects.select_related("user").filter(user=user).first()


class InboxConsumer(AsyncWebsocketConsumer):
    company: Company
    member: Membership
    subscriptions: set[int]

    async def connect(self) -> None:
        # Accept first: a refused handshake reaches the browser without its close code.
        await self.accept()
        self.subscriptions = set()
        host = _header(self.scope, b"host")
        origin = _header(self.scope, b"origin")
        cookies = parse_cookie(_header(self.scope, b"cookie"))
        session_key = cookies.get(settings.SESSION_COOKIE_NAME, "")
        code, company, member = await database_sync_to_async(self._authorize)(
            host, origin, session_key
        )
        if code:
            await self.close(code=code)
            return
        assert company is not None and member is not None
        self.company, self.member = company, member
        group = inbox_group(company.schema_name)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        await self._send({"type": "ready", "role": member.role})

    def _authorize(
        self, host: str, origin: str, session_key: str
    ) -> tuple[int, Company | None, Membership | None]:
        if not origin_matches(origin, host):
            return CLOSE_FORBIDDEN, None, None
        company = company_for_host(host)
        if company is None:
            return CLOSE_UNAUTHENTICATED, None, None
        if company.is_suspended:
            return CLOSE_FORBIDDEN, None, None
        member = member_for_session(company, session_key)
        if member is None:
            return CLOSE_UNAUTHENTICATED, None, None
        return 0, company, member

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, ensure_ascii=False, default=str))

    # --- frames from the browser -------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "member"):
            return  # refused: closing
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self.close(code=CLOSE_PROTOCOL)
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.close(code=CLOSE_PROTOCOL)
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind in {"subscribe", "unsubscribe"}:
            conversation_id = frame.get("conversation_id")
            if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
                await self._send({"type": "error", "code": "invalid_conversation"})
            elif kind == "subscribe":
                await self._subscribe(conversation_id)
            else:
                await self._unsubscribe(conversation_id)
        else:
            await self._send({"type": "error", "code": "unknown_frame"})

    async def _subscribe(self, conversation_id: int) -> None:
        if conversation_id in self.subscriptions:
            await self._send({"type": "subscribed", "conversation_id": conversation_id})
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self._send({"type": "error", "code": "too_many_subscriptions"})
            return
        allowed = await database_sync_to_async(self._can_see)(conversation_id)
        if not allowed:
            await self._send(
                {"type": "error", "code": "forbidden", "conversation_id": conversation_id}
            )
            return
        group = conversation_group(self.company.schema_name, conversation_id)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        self.subscriptions.add(conversation_id)
        await self._send({"type": "subscribed", "conversation_id": conversation_id})

    def _can_see(self, conversation_id: int) -> bool:
        with tenant_context(self.company):
            # The role may have changed since the socket opened.
            member = Membership.objects.filter(pk=self.member.pk).first()
            if member is None:
                return False
            self.member.role = member.role
            return conversation_can_see(member=self.member, conversation_id=conversation_id)

    async def _unsubscribe(self, conversation_id: int) -> None:
        if conversation_id not in self.subscriptions:
            return
        group = conversation_group(self.company.schema_name, conversation_id)
        await self.channel_layer.group_discard(group, self.channel_name)
        self.groups.remove(group)
        self.subscriptions.discard(conversation_id)

    # --- events from the channel layer -------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type", "")
        if kind.startswith("websocket."):
            await super().dispatch(message)
        elif kind == "inbox.event" or kind in _CONVERSATION_EVENTS:
            await self._send(message)
        # Anything else a joined group carries is not for dashboards.
