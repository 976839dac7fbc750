"""The sales inbox's websocket (`/ws/dashboard/`, apps.leads.consumers), driven in-process.

Like the widget's consumer tests: each test is a sync pytest-django test running an async
scenario with `async_to_sync`; the consumer's database work comes back to this thread, so it
sees the test's transaction. `transaction.on_commit` runs at once (inside the test's
transaction it would never fire), so services publish through the real channel layer (Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import channels.consumer
import channels.db
import channels.generic.websocket
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, Role, User
from apps.conversations.models import Contact, Conversation
from apps.leads.handoff import agent_message_send
from apps.leads.models import Lead
from apps.leads.services import lead_stage_set
from apps.tenants.models import Company
from chapi.asgi import application
from tests.conftest import host, logged_in, member, owner

pytestmark = pytest.mark.django_db

WAIT = 5.0
QUIET = 0.3
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _in_the_tests_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    monkeypatch.setattr(channels.db, "close_old_connections", lambda **kwargs: None)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", _nothing)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", _nothing)


async def _nothing() -> None:
    return None


_sockets: list[WebsocketCommunicator] = []


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario`, then end the sockets it left open while this thread still serves the
    consumers' database calls."""

    async def in_loop() -> T:
        try:
            return await scenario()
        finally:
            while _sockets:
                comm = _sockets.pop()
                if not comm.future.done():
                    comm.future.cancel()
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(comm.future, WAIT)

    return async_to_sync(in_loop)()


def session_of(company: Company, user: User) -> str:
    client = logged_in(company, user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def socket(
    company: Company, *, session: str = "", origin: str | None = None, host_header: str = ""
) -> WebsocketCommunicator:
    hostname = host_header or host(company)
    headers = [(b"host", hostname.encode())]
    origin = f"http://{hostname}" if origin is None else origin
    if origin:
        headers.append((b"origin", origin.encode()))
    if session:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
    _sockets.append(comm)
    return comm


async def close_code(comm: WebsocketCommunicator) -> int:
    accepted, _subprotocol = await comm.connect(timeout=WAIT)
    assert accepted
    output = await comm.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close", output
    return int(output["code"])


async def ready(comm: WebsocketCommunicator) -> dict[str, Any]:
    accepted, _subprotocol = await comm.connect(timeout=WAIT)
    assert accepted
    frame = await comm.receive_json_from(timeout=WAIT)
    assert frame["type"] == "ready", frame
    return frame


def make_conversation(company: Company, *, mode: str, agent: User | None = None) -> Conversation:
    with tenant_context(company):
        count = Conversation.objects.count()
        contact = Contact.objects.create(channel="web", external_id=f"ws-{count}")
        return Conversation.objects.create(
            contact=contact, channel="web", session_id=f"ws-session-{count}", mode=mode,
            agent=agent,
        )  # fmt: skip


def test_a_socket_without_a_session_is_closed_with_4401(alpha: Company) -> None:
    async def scenario() -> int:
        return await close_code(socket(alpha))

    assert run(scenario) == 4401


def test_a_forged_or_stale_session_is_closed_with_4401(alpha: Company) -> None:
    async def scenario() -> int:
        return await close_code(socket(alpha, session="not-a-real-session-key"))

    assert run(scenario) == 4401


def test_another_companys_session_is_refused(alpha: Company, beta: Company) -> None:
    alpha_session = session_of(alpha, owner(alpha))

    async def scenario() -> int:
        # Alpha's cookie sent to beta's host: the session does not exist in beta's schema.
        return await close_code(socket(beta, session=alpha_session))

    assert run(scenario) == 4401


def test_a_page_of_another_origin_is_refused_with_4403(alpha: Company) -> None:
    session = session_of(alpha, owner(alpha))

    async def scenario() -> list[int]:
        return [
            await close_code(socket(alpha, session=session, origin="https://evil.example")),
            await close_code(socket(alpha, session=session, origin="")),
        ]

    assert run(scenario) == [4403, 4403]


def test_a_user_who_is_no_longer_a_member_is_refused(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    session = session_of(alpha, agent)
    with tenant_context(alpha):
        Membership.objects.filter(user=agent).delete()

    async def scenario() -> int:
        return await close_code(socket(alpha, session=session))

    assert run(scenario) == 4401


def test_a_member_hears_a_lead_change_and_nothing_from_another_company(
    alpha: Company, beta: Company
) -> None:
    viewer = member(alpha, Role.VIEWER)
    session = session_of(alpha, viewer)
    with tenant_context(alpha):
        lead = Lead.objects.create(name="Ana")
    with tenant_context(beta):
        beta_lead = Lead.objects.create(name="Beta")

    def change(company: Company, target: Lead) -> None:
        with tenant_context(company):
            lead_stage_set(lead=target, stage="won", actor=None)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], bool]:
        comm = socket(alpha, session=session)
        hello = await ready(comm)
        await sync_to_async(change)(beta, beta_lead)
        quiet = await comm.receive_nothing(timeout=QUIET)
        await sync_to_async(change)(alpha, lead)
        event = await comm.receive_json_from(timeout=WAIT)
        return hello, event, quiet

    hello, event, quiet = run(scenario)

    assert hello == {"type": "ready", "role": "viewer"}
    assert quiet is True
    assert event == {"type": "inbox.event", "kind": "lead.changed", "lead_id": lead.pk}


def test_an_agent_may_not_follow_another_agents_conversation(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    other = member(alpha, Role.AGENT)
    session = session_of(alpha, agent)
    theirs = make_conversation(alpha, mode="human", agent=other)
    waiting = make_conversation(alpha, mode="pending_human")

    def reply(conversation: Conversation, who: User, text: str) -> None:
        with tenant_context(alpha):
            agent_message_send(conversation=conversation, agent=who, text=text)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        comm = socket(alpha, session=session)
        await ready(comm)
        await comm.send_json_to({"type": "subscribe", "conversation_id": theirs.pk})
        refused = await comm.receive_json_from(timeout=WAIT)
        await comm.send_json_to({"type": "subscribe", "conversation_id": waiting.pk})
        subscribed = await comm.receive_json_from(timeout=WAIT)
        await sync_to_async(reply)(theirs, other, "not for you")
        await sync_to_async(reply)(waiting, agent, "Hola")
        frames = []
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                frames.append(await comm.receive_json_from(timeout=QUIET * 3))
        return refused, subscribed, frames

    refused, subscribed, frames = run(scenario)

    assert refused == {"type": "error", "code": "forbidden", "conversation_id": theirs.pk}
    assert subscribed == {"type": "subscribed", "conversation_id": waiting.pk}
    conversation_frames = [f for f in frames if f["type"] != "inbox.event"]
    assert all(f.get("conversation_id") == waiting.pk for f in conversation_frames)
    texts = [
        f["message"]["text"] for f in conversation_frames if f["type"] == "conversation.message"
    ]
    assert texts[-1] == "Hola"
    assert "not for you" not in texts
    modes = [f["mode"] for f in conversation_frames if f["type"] == "conversation.mode"]
    assert modes == ["human"]
    # The company's events carry ids only: the other agent's conversation shows up as an id.
    kinds = {(f["kind"], f.get("conversation_id")) for f in frames if f["type"] == "inbox.event"}
    assert ("message.created", waiting.pk) in kinds


def test_a_manager_may_follow_any_conversation(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    session = session_of(alpha, owner(alpha))
    theirs = make_conversation(alpha, mode="human", agent=agent)

    async def scenario() -> dict[str, Any]:
        comm = socket(alpha, session=session)
        await ready(comm)
        await comm.send_json_to({"type": "subscribe", "conversation_id": theirs.pk})
        return await comm.receive_json_from(timeout=WAIT)

    assert run(scenario) == {"type": "subscribed", "conversation_id": theirs.pk}


def test_malformed_frames_end_the_socket(alpha: Company) -> None:
    session = session_of(alpha, owner(alpha))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        comm = socket(alpha, session=session)
        await ready(comm)
        await comm.send_json_to({"type": "subscribe", "conversation_id": "1"})
        invalid = await comm.receive_json_from(timeout=WAIT)
        await comm.send_json_to({"type": "ping"})
        pong = await comm.receive_json_from(timeout=WAIT)
        await comm.send_to(text_data="{not json")
        output = await comm.receive_output(timeout=WAIT)
        return invalid, pong, int(output["code"])

    invalid, pong, code = run(scenario)

    assert invalid == {"type": "error", "code": "invalid_conversation"}
    assert pong == {"type": "pong"}
    assert code == 4400
