"""REST API v1 end to end: a live uvicorn server and Celery worker (see `live` in conftest.py)
answering over HTTP, the assistant of each company on the FakeOpenAI through the real SDK.

The servers see committed data only: the two companies of the module (`live.a`, `live.b`)
are made and deleted by the `live` fixture; tests read and write them through `committed`.
Every answer is checked for secrets by the `api` client.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import jwt
import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import tenant_context

from apps.api.models import ApiKey
from apps.api.services import api_token_issue
from apps.assistants.pricing import usage_cost
from apps.audit.services import SYSTEM
from apps.conversations.models import Contact, Conversation, Message
from apps.tenants.models import Company
from apps.tenants.services import company_reactivate, company_suspend
from tests.api.conftest import (
    LIVE_SETTINGS,
    PLATFORM_ORIGIN,
    ROOT,
    Api,
    LiveCompany,
    LiveStack,
    chat_requests,
)
from tests.browser.conftest import committed
from tests.fakes.openai_server import FakeOpenAI, prompt_token_count, split_pieces

# django_db only gets the test database created (see tests/browser/conftest.py).
pytestmark = pytest.mark.django_db

MODEL = "gpt-4o-mini"
ANSWER_KEYS = {
    "response", "session_id", "conversation_id", "message_id", "mode", "fallback", "usage",
}  # fmt: skip
USAGE_KEYS = {"input_tokens", "output_tokens", "cost", "model", "provider"}
CONVERSATION_KEYS = {
    "id", "channel", "session_id", "mode", "context", "language", "created_at", "updated_at",
    "last_message_at",
}  # fmt: skip
MESSAGE_KEYS = {
    "id", "role", "text", "status", "created_at", "completed_at", "model", "input_tokens",
    "output_tokens", "cost", "ttft_ms", "latency_ms", "fallback",
}  # fmt: skip
MISSING = "Send 'Authorization: Bearer <API key>'."
SUSPENDED = "This company's account is suspended. Contact support to reactivate it."
REPLY_TIMEOUT = float(LIVE_SETTINGS["CHAT_REPLY_TIMEOUT"])

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _public_schema_and_clean_cache() -> Iterator[None]:
    """Overrides the suite's fixture of that name, which flushes the Redis db: that would drop
    the live worker's broker queues and bindings."""
    yield
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _server_logs(live: LiveStack) -> Iterator[None]:
    """Print what the servers logged during the test (pytest shows it when the test fails)."""
    offsets = {process.name: len(process.log()) for process in (live.uvicorn, live.worker)}
    yield
    for process in (live.uvicorn, live.worker):
        print(f"--- {process.name} log ---\n{process.log()[offsets[process.name] :]}")


@pytest.fixture
def db_access(django_db_blocker: Any) -> Callable[[Callable[[], T]], T]:
    """Run ORM code on committed data (a fresh connection), as the servers see it."""

    def run(work: Callable[[], T]) -> T:
        return committed(django_db_blocker, work)

    return run


def in_company(
    db_access: Callable[[Callable[[], T]], T], company: LiveCompany, work: Callable[[], T]
) -> T:
    def run() -> T:
        with tenant_context(Company.objects.get(pk=company.pk)):
            return work()

    return db_access(run)


def new_session() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def ask(text: str = "Hola, ¿qué planes tienen?", session: str | None = None, **extra: Any) -> Any:
    return {"message": text, "session_id": session or new_session(), **extra}


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return {"error": body}


def stored_messages(
    db_access: Callable[[Callable[[], Any]], Any], company: LiveCompany, session: str
) -> list[tuple[str, str, str]]:
    """(role, status, text) of the messages of `session`'s conversation, oldest first."""
    return in_company(
        db_access,
        company,
        lambda: list(
            Message.objects.filter(conversation__session_id=session)
            .order_by("id")
            .values_list("role", "status", "text")
        ),
    )


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@contextlib.contextmanager
def rate_counter_full(name: str, limit: int) -> Iterator[None]:
    """Fill the fixed-window counter `name` (this minute's and the next) up to `limit`."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    now = int(time.time())
    start = now - now % 60
    keys = [f"chapi:rl:{name}:{start}", f"chapi:rl:{name}:{start + 60}"]
    try:
        for key in keys:
            client.set(key, limit, ex=180)
        yield
    finally:
        client.delete(*keys)
        client.close()


def cors_cache_clear() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for key in client.scan_iter("*cors:company-origins*"):
            client.delete(key)
    finally:
        client.close()


# -- chatting ---------------------------------------------------------------------------------


def test_chat_answers_with_the_assistant_reply_as_json(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    fake.queue_reply("Tenemos el plan básico y el plan pro.")
    payload = ask(context={"page": "/precios", "utm": "ads"})

    response = api.chat(live.a.keys["chat_read"], payload)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ANSWER_KEYS
    [request] = chat_requests(fake)
    assert request.api_key == live.a.provider_key
    assert request.json["messages"][-1] == {"role": "user", "content": payload["message"]}
    assert body["response"] == "Tenemos el plan básico y el plan pro."
    assert body["session_id"] == payload["session_id"]
    assert (body["mode"], body["fallback"]) == ("bot", False)
    usage = body["usage"]
    assert set(usage) == USAGE_KEYS
    assert usage["input_tokens"] == prompt_token_count(request.json["messages"])
    assert usage["output_tokens"] == len(split_pieces("Tenemos el plan básico y el plan pro."))
    assert (usage["model"], usage["provider"]) == (MODEL, "openai")
    expected_cost = usage_cost(MODEL, usage["input_tokens"], usage["output_tokens"])
    assert abs(Decimal(usage["cost"]) - expected_cost) <= Decimal("0.000001")
    stored = in_company(
        db_access,
        live.a,
        lambda: list(
            Message.objects.filter(conversation_id=body["conversation_id"])
            .order_by("id")
            .values_list("id", "role", "status", "text", "conversation__context")
        ),
    )
    assert [row[1:4] for row in stored] == [
        ("visitor", "received", payload["message"]),
        ("assistant", "completed", "Tenemos el plan básico y el plan pro."),
    ]
    assert stored[1][0] == body["message_id"]
    assert stored[0][4] == {"page": "/precios", "utm": "ads"}


def test_the_usage_in_the_answer_is_the_usage_stored(api: Api, live: LiveStack) -> None:
    payload = ask("Quiero saber el precio del plan pro para mi empresa de diez personas")

    body = api.chat(live.a.keys["chat_read"], payload).json()

    detail = api.get(f"/v1/conversations/{body['conversation_id']}", key=live.a.keys["read"])
    [stored] = [m for m in detail.json()["messages"] if m["id"] == body["message_id"]]
    assert body["usage"]["input_tokens"] == stored["input_tokens"]
    assert body["usage"]["output_tokens"] == stored["output_tokens"]
    assert body["usage"]["cost"] == stored["cost"]


def test_the_same_session_id_continues_the_conversation(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    session = new_session()
    fake.queue_reply("El plan pro cuesta 20 dólares.")
    fake.queue_reply("Sí, con soporte incluido.")

    first = api.chat(live.a.keys["chat"], ask("¿Cuánto cuesta el plan pro?", session)).json()
    second = api.chat(live.a.keys["chat"], ask("¿Incluye soporte?", session)).json()

    assert second["conversation_id"] == first["conversation_id"]
    assert second["message_id"] != first["message_id"]
    assert second["response"] == "Sí, con soporte incluido."
    assert chat_requests(fake)[-1].json["messages"][1:] == [
        {"role": "user", "content": "¿Cuánto cuesta el plan pro?"},
        {"role": "assistant", "content": "El plan pro cuesta 20 dólares."},
        {"role": "user", "content": "¿Incluye soporte?"},
    ]


def test_stream_true_answers_with_delta_events_then_a_done_event(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    fake.tokens_per_second = 50
    text = "Nuestro plan pro incluye usuarios ilimitados, soporte y reportes mensuales."
    fake.queue_reply(text)
    payload = ask()

    answer = api.chat_stream(live.a.keys["chat"], payload)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    kinds = [event.event for event in answer.events]
    assert kinds[-1] == "done"
    assert set(kinds[:-1]) == {"delta"}
    assert len(kinds) >= 3
    done = answer.events[-1].data
    assert set(done) == ANSWER_KEYS
    assert all(event.data["message_id"] == done["message_id"] for event in answer.events[:-1])
    assert "".join(event.data["text"] for event in answer.events[:-1]) == text
    assert done["response"] == text
    assert done["session_id"] == payload["session_id"]
    assert isinstance(done["conversation_id"], int)
    assert (done["mode"], done["fallback"]) == ("bot", False)
    assert done["usage"]["output_tokens"] == len(split_pieces(text))
    assert done["usage"]["provider"] == "openai"


def test_a_stream_cut_midway_is_reset_and_answered_again(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    fake.queue_fault("cut", after_chunks=3)
    payload = ask("Necesito una cotización para veinte licencias del plan pro")

    answer = api.chat_stream(live.a.keys["chat"], payload)

    kinds = [event.event for event in answer.events]
    assert "reset" in kinds
    after_reset = answer.events[len(kinds) - kinds[::-1].index("reset") :]
    done = answer.events[-1].data
    assert done["response"] == f"Echo: {payload['message']}"
    assert "".join(e.data["text"] for e in after_reset if e.event == "delta") == done["response"]
    assert len(chat_requests(fake)) == 2


@pytest.mark.parametrize(
    ("kind", "options"),
    [("500", {}), ("hang", {}), ("malformed", {}), ("429_rate_limit", {"retry_after": 0.1})],
)
def test_a_passing_provider_fault_is_retried_by_the_worker(
    api: Api, live: LiveStack, fake: FakeOpenAI, kind: str, options: dict[str, Any]
) -> None:
    fake.queue_fault(kind, **options)  # type: ignore[arg-type]
    payload = ask()

    response = api.chat(live.a.keys["chat"], payload)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["response"], body["fallback"]) == (f"Echo: {payload['message']}", False)
    assert len(chat_requests(fake)) == 2


@pytest.mark.parametrize("kind", ["401", "429_quota", "400"])
def test_a_provider_refusing_the_request_gets_the_offline_answer(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any, kind: str
) -> None:
    fake.queue_fault(kind, times=3)  # type: ignore[arg-type]
    payload = ask()

    response = api.chat(live.a.keys["chat"], payload)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fallback"] is True
    assert body["response"]
    assert (body["usage"]["provider"], body["usage"]["model"]) == ("offline", "offline")
    assert len(chat_requests(fake)) == 1
    [_, reply] = stored_messages(db_access, live.a, payload["session_id"])
    assert reply == ("assistant", "completed", body["response"])


# -- idempotency ----------------------------------------------------------------------------


def test_an_idempotency_key_is_answered_once(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    payload = ask()
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}

    first = api.chat(live.a.keys["chat"], payload, headers=key)
    again = api.chat(live.a.keys["chat"], payload, headers=key)
    streamed = api.chat_stream(live.a.keys["chat"], payload, headers=key)

    assert (first.status_code, again.status_code, streamed.status_code) == (200, 200, 200)
    assert len(chat_requests(fake)) == 1
    assert stored_messages(db_access, live.a, payload["session_id"]) == [
        ("visitor", "received", payload["message"]),
        ("assistant", "completed", f"Echo: {payload['message']}"),
    ]
    assert [event.event for event in streamed.events] == ["done"]
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json() == first.json()
    assert streamed.events[0].data == first.json()


def test_the_same_idempotency_key_of_another_company_is_its_own(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}

    a = api.chat(live.a.keys["chat"], ask("Hola desde A"), headers=key).json()
    b = api.chat(live.b.keys["chat"], ask("Hola desde B"), headers=key).json()

    assert (a["response"], b["response"]) == ("Echo: Hola desde A", "Echo: Hola desde B")
    assert [r.api_key for r in chat_requests(fake)] == [live.a.provider_key, live.b.provider_key]


def test_a_retry_while_the_first_request_is_still_answering_gets_the_same_answer(
    live: LiveStack, fake: FakeOpenAI
) -> None:
    fake.latency_ms = 400  # under the servers' read timeout
    payload = ask()
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}

    def send(delay: float) -> tuple[int, Any, float]:
        time.sleep(delay)
        client = Api(live)
        try:
            started = time.monotonic()
            response = client.chat(live.a.keys["chat"], payload, headers=key)
            return response.status_code, response.json(), time.monotonic() - started
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, retry = pool.map(send, [0, 0.2])

    assert first[0] == 200, first
    assert len(chat_requests(fake)) == 1
    assert retry[0] == 200, retry
    assert retry[1]["message_id"] == first[1]["message_id"]
    assert retry[2] < REPLY_TIMEOUT


# -- authentication and scopes ------------------------------------------------------------------


def token_for_a(live: LiveStack, *, secret: str, scopes: list[str], age: int, ttl: int) -> str:
    """A dashboard JWT for company a's owner, issued `age` seconds ago, valid for `ttl`."""
    issued = int(time.time()) - age
    claims = {
        "aud": "chapi:api",
        "sub": str(live.a.owner_id),
        "schema": live.a.schema_name,
        "role": "owner",
        "scopes": scopes,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def expired_token(live: LiveStack) -> str:
    return token_for_a(live, secret=settings.JWT_SECRET, scopes=["read"], age=7200, ttl=3600)


def forged_token(live: LiveStack) -> str:
    forged = "not-the-platform-secret-but-long-enough-32"
    return token_for_a(live, secret=forged, scopes=["read", "chat"], age=0, ttl=600)


BAD_CREDENTIALS: list[Any] = [
    pytest.param(lambda live: None, "missing_credentials", MISSING, id="no-header"),
    pytest.param(lambda live: "Basic dXNlcjpwYXNz", "missing_credentials", MISSING, id="basic"),
    pytest.param(lambda live: "Bearer", "missing_credentials", MISSING, id="bearer-alone"),
    pytest.param(
        lambda live: "Bearer chapi_0000deadbeef_nosuchsecret",
        "invalid_api_key",
        "The API key is not valid.",
        id="unknown-key",
    ),
    pytest.param(
        lambda live: f"Bearer chapi_{live.a.key_prefixes['chat_read']}_wrong-secret",
        "invalid_api_key",
        "The API key is not valid.",
        id="wrong-secret",
    ),
    pytest.param(
        lambda live: f"Bearer {live.a.keys['chat_read']}x",
        "invalid_api_key",
        "The API key is not valid.",
        id="key-with-extra-char",
    ),
    pytest.param(
        lambda live: f"Bearer {live.a.keys['revoked']}",
        "revoked_api_key",
        "The API key was revoked.",
        id="revoked-key",
    ),
    pytest.param(
        lambda live: "Bearer chapi_", "invalid_api_key", "The API key is not valid.", id="chapi_"
    ),
    pytest.param(
        lambda live: "Bearer a.b.c", "invalid_token", "The token is not valid.", id="garbage-jwt"
    ),
    pytest.param(
        lambda live: f"Bearer {forged_token(live)}",
        "invalid_token",
        "The token is not valid.",
        id="forged-jwt",
    ),
    pytest.param(
        lambda live: f"Bearer {expired_token(live)}",
        "expired_token",
        "The token has expired.",
        id="expired-jwt",
    ),
]


@pytest.mark.parametrize(("authorization", "code", "message"), BAD_CREDENTIALS)
@pytest.mark.parametrize("endpoint", ["chat", "list", "detail"])
def test_missing_invalid_or_revoked_credentials_answer_401(
    api: Api,
    live: LiveStack,
    fake: FakeOpenAI,
    db_access: Any,
    authorization: Callable[[LiveStack], str | None],
    code: str,
    message: str,
    endpoint: str,
) -> None:
    header = authorization(live)
    headers = {"Authorization": header} if header else {}
    payload = ask()

    if endpoint == "chat":
        response = api.chat(None, payload, headers=headers)
    else:
        path = "/v1/conversations" if endpoint == "list" else "/v1/conversations/1"
        response = api.get(path, headers=headers)

    assert response.status_code == 401, response.text
    assert response.json() == error(code, message)
    assert response.headers["www-authenticate"].startswith('Bearer realm="api"')
    assert fake.requests == []
    assert stored_messages(db_access, live.a, payload["session_id"]) == []


def test_a_key_without_the_chat_scope_cannot_chat(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    payload = ask()

    response = api.chat(live.a.keys["read"], payload)

    assert response.status_code == 403
    assert response.json() == error("forbidden_scope", "This key lacks the 'chat' scope.")
    assert fake.requests == []
    assert stored_messages(db_access, live.a, payload["session_id"]) == []


@pytest.mark.parametrize("path", ["/v1/conversations", "/v1/conversations/1"])
def test_a_key_without_the_read_scope_cannot_read(api: Api, live: LiveStack, path: str) -> None:
    response = api.get(path, key=live.a.keys["chat"])

    assert response.status_code == 403
    assert response.json() == error("forbidden_scope", "This key lacks the 'read' scope.")


def test_a_dashboard_token_reads_its_company_but_cannot_chat(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    own = api.chat(live.a.keys["chat"], ask("Hola de A")).json()
    other = api.chat(live.b.keys["chat"], ask("Hola de B")).json()
    company = Company.objects.get(pk=live.a.pk)
    token = api_token_issue(company=company, user_id=live.a.owner_id, role="owner")
    fake.reset()

    listed = api.get("/v1/conversations", key=token, params={"page_size": 100})
    detail = api.get(f"/v1/conversations/{own['conversation_id']}", key=token)
    chat = api.chat(token, ask())

    assert listed.status_code == 200
    sessions = {item["session_id"] for item in listed.json()["results"]}
    assert own["session_id"] in sessions
    assert other["session_id"] not in sessions
    assert detail.status_code == 200
    assert [m["text"] for m in detail.json()["messages"]] == ["Hola de A", "Echo: Hola de A"]
    assert chat.status_code == 403
    assert chat.json() == error("forbidden_scope", "This key lacks the 'chat' scope.")
    assert fake.requests == []


def test_a_suspended_company_key_answers_403(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    def suspend() -> None:
        company_suspend(company=Company.objects.get(pk=live.b.pk), actor=SYSTEM, reason="test")

    def reactivate() -> None:
        company_reactivate(company=Company.objects.get(pk=live.b.pk), actor=SYSTEM)

    payload = ask()
    token = api_token_issue(
        company=Company.objects.get(pk=live.b.pk), user_id=live.b.owner_id, role="owner"
    )
    db_access(suspend)
    try:
        chat = api.chat(live.b.keys["chat_read"], payload)
        listed = api.get("/v1/conversations", key=live.b.keys["chat_read"])
        by_token = api.get("/v1/conversations", key=token)
    finally:
        db_access(reactivate)
        cors_cache_clear()

    for response in (chat, listed, by_token):
        assert response.status_code == 403
        assert response.json() == error("company_suspended", SUSPENDED)
    assert fake.requests == []
    assert stored_messages(db_access, live.b, payload["session_id"]) == []
    assert api.chat(live.b.keys["chat_read"], payload).status_code == 200


# -- request validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "The request body is not valid JSON."),
        (b"hola", "The request body is not valid JSON."),
        (b'{"message": "hola", "session_id": "s-1",}', "The request body is not valid JSON."),
        (b"\xff\xfe{}", "The request body is not valid JSON."),
        (b"", "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'["hola", "s-1"]', "The request body must be a JSON object."),
        (b'"hola"', "The request body must be a JSON object."),
    ],
)
def test_a_body_that_is_not_a_json_object_answers_400(
    api: Api, live: LiveStack, fake: FakeOpenAI, content: bytes, message: str
) -> None:
    response = api.chat(live.a.keys["chat"], content=content)

    assert response.status_code == 400, response.text
    assert response.json() == error("invalid_json", message)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message": None}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": {"text": "hola"}}, "message"),
        ({"message": ["hola"]}, "message"),
        ({"message": True}, "message"),
        ({"session_id": None}, "session_id"),
        ({"session_id": "con espacios"}, "session_id"),
        ({"session_id": "x" * 129}, "session_id"),
        ({"session_id": ["s-1"]}, "session_id"),
        ({"stream": "maybe"}, "stream"),
        ({"context": "page=/precios"}, "context"),
        ({"context": ["page"]}, "context"),
        ({"context": {"page": {"path": "/precios"}}}, "context"),
        ({"context": {f"k{i}": i for i in range(31)}}, "context"),
        ({"context": {"note": "x" * 1001}}, "context"),
    ],
)
def test_a_field_of_the_wrong_type_or_shape_answers_400_naming_it(
    api: Api,
    live: LiveStack,
    fake: FakeOpenAI,
    db_access: Any,
    changes: dict[str, Any],
    field: str,
) -> None:
    payload = {**ask(), **changes}
    payload = {name: value for name, value in payload.items() if value is not None}
    session = payload.get("session_id")

    response = api.chat(live.a.keys["chat"], payload)

    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_request", field)
    assert body["error"]["message"].startswith(f"{field}: ")
    assert fake.requests == []
    if isinstance(session, str):
        assert stored_messages(db_access, live.a, session) == []


def test_a_body_over_32_kb_answers_413(api: Api, live: LiveStack, fake: FakeOpenAI) -> None:
    payload = ask(context={"note": ""})
    base = len(json.dumps(payload).encode())
    payload["context"]["note"] = "x" * (32 * 1024 + 1 - base)
    content = json.dumps(payload).encode()
    assert len(content) == 32 * 1024 + 1

    response = api.chat(live.a.keys["chat"], content=content)
    garbage = api.chat(live.a.keys["chat"], content=b"\x00" * (40 * 1024))

    for answer in (response, garbage):
        assert answer.status_code == 413, answer.text
        assert answer.json() == error("payload_too_large", "The body is larger than 32 KB.")
    assert fake.requests == []


def test_a_body_of_exactly_32_kb_is_answered(api: Api, live: LiveStack) -> None:
    context = {f"k{i:02d}": "x" * 1000 for i in range(29)}
    payload = ask("a" * settings.CHAT_MAX_MESSAGE_CHARS, context=context)
    context["k28"] = "x" * (1000 - (len(json.dumps(payload).encode()) - 32 * 1024))
    content = json.dumps(payload).encode()
    assert len(content) == 32 * 1024

    response = api.chat(live.a.keys["chat"], content=content)

    assert response.status_code == 200, response.text


def test_a_message_over_the_configured_length_answers_400(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    too_long = ask("ñ" * (limit + 1))

    response = api.chat(live.a.keys["chat"], too_long)
    at_limit = api.chat(live.a.keys["chat"], ask("ñ" * limit))

    assert response.status_code == 400
    assert response.json() == error(
        "message_too_long", f"message: At most {limit} characters.", "message"
    )
    assert stored_messages(db_access, live.a, too_long["session_id"]) == []
    assert at_limit.status_code == 200, at_limit.text
    assert len(chat_requests(fake)) == 1


NASTY_BODIES: list[Any] = [
    pytest.param(b"[" * 16000 + b"]" * 16000, id="deeply-nested-json"),
    pytest.param(b'{"message": "hola", "session_id": "%s", "context": {"n": NaN}}', id="nan"),
    pytest.param(b'{"message": "hola", "session_id": "%s", "context": {"n": 1e999}}', id="inf"),
    pytest.param(
        b'{"message": "hola", "session_id": "%s", "context": {"n": 1' + b"0" * 5000 + b"}}",
        id="5000-digit-integer",
    ),
    pytest.param(b'{"message": "ho\\u0000la", "session_id": "%s"}', id="nul-in-message"),
    pytest.param(
        b'{"message": "hola", "session_id": "%s", "context": {"n": "a\\u0000b"}}',
        id="nul-in-context",
    ),
    pytest.param(b'{"message": "\\ud800", "session_id": "%s"}', id="lone-surrogate"),
    pytest.param(b'{"message": "hola", "session_id": "%s", "stream": null}', id="null-stream"),
]


@pytest.mark.parametrize("content", NASTY_BODIES)
def test_no_request_body_produces_a_server_error(api: Api, live: LiveStack, content: bytes) -> None:
    body = content.replace(b"%s", new_session().encode()) if b"%s" in content else content

    response = api.chat(live.a.keys["chat"], content=body)

    assert response.status_code < 500, response.text
    assert set(response.json()) <= {"error", *ANSWER_KEYS}


def test_a_very_long_idempotency_key_does_not_produce_a_server_error(
    api: Api, live: LiveStack
) -> None:
    response = api.chat(live.a.keys["chat"], ask(), headers={"Idempotency-Key": "k" * 300})

    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize(
    "query",
    [
        {"updated_since": "2026-13-45T00:00:00"},
        {"updated_since": "ayer"},
        {"cursor": "not-a-cursor"},
        {"page_size": "lots"},
        {"page_size": "-5"},
        {"channel": "carrier-pigeon"},
        {"mode": "\u0000"},
    ],
)
def test_no_list_query_produces_a_server_error(
    api: Api, live: LiveStack, query: dict[str, str]
) -> None:
    response = api.get("/v1/conversations", key=live.a.keys["read"], params=query)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}


def test_an_invalid_updated_since_answers_400_naming_it(api: Api, live: LiveStack) -> None:
    response = api.get(
        "/v1/conversations", key=live.a.keys["read"], params={"updated_since": "ayer"}
    )

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", "updated_since: use an ISO 8601 date-time.", "updated_since"
    )


def test_other_methods_and_huge_ids_are_client_errors(api: Api, live: LiveStack) -> None:
    method = api.get("/v1/chat", key=live.a.keys["chat_read"])
    huge = api.get("/v1/conversations/99999999999999999999999", key=live.a.keys["read"])

    assert method.status_code == 405
    assert method.json()["error"]["code"] == "method_not_allowed"
    assert huge.status_code == 404
    assert huge.json() == error("not_found", "Not found.")


# -- rate limits --------------------------------------------------------------------------------


def assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == error("rate_limited", "Too many requests: slow down.")
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_a_session_over_its_limit_answers_429_with_retry_after(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    limit = int(LIVE_SETTINGS["API_RATE_LIMIT_PER_SESSION"])
    if 60 - time.time() % 60 < 5:  # all requests in one fixed window
        time.sleep(60 - time.time() % 60 + 0.1)
    session = new_session()

    answers = [api.chat(live.a.keys["chat"], ask(f"mensaje {n}", session)) for n in range(limit)]
    over = api.chat(live.a.keys["chat"], ask("uno más", session))
    other_session = api.chat(live.a.keys["chat"], ask("otra sesión"))

    assert [a.status_code for a in answers] == [200] * limit
    assert_rate_limited(over)
    assert other_session.status_code == 200
    stored = stored_messages(db_access, live.a, session)
    assert [text for role, _, text in stored if role == "visitor"] == [
        f"mensaje {n}" for n in range(limit)
    ]
    assert len(chat_requests(fake)) == limit + 1


def test_a_key_over_its_limit_answers_429_and_other_keys_go_on(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    payload = ask()
    prefix = live.a.key_prefixes["chat"]
    with rate_counter_full(f"key:{prefix}", int(LIVE_SETTINGS["API_RATE_LIMIT_PER_KEY"])):
        limited = api.chat(live.a.keys["chat"], payload)
        other_key = api.chat(live.a.keys["chat_read"], ask())

    assert_rate_limited(limited)
    assert other_key.status_code == 200
    assert stored_messages(db_access, live.a, payload["session_id"]) == []
    assert len(chat_requests(fake)) == 1


def test_a_client_ip_over_its_limit_answers_429_for_every_key(
    api: Api, live: LiveStack, fake: FakeOpenAI
) -> None:
    with rate_counter_full("ip:127.0.0.1", int(LIVE_SETTINGS["API_RATE_LIMIT_PER_IP"])):
        answers = [api.chat(live.a.keys["chat"], ask()), api.chat(live.b.keys["chat"], ask())]

    for answer in answers:
        assert_rate_limited(answer)
    assert fake.requests == []


def test_a_key_over_its_limit_is_limited_on_the_read_endpoints_too(
    api: Api, live: LiveStack
) -> None:
    prefix = live.a.key_prefixes["read"]
    with rate_counter_full(f"key:{prefix}", int(LIVE_SETTINGS["API_RATE_LIMIT_PER_KEY"])):
        response = api.get("/v1/conversations", key=live.a.keys["read"])

    assert_rate_limited(response)


# -- reading conversations ----------------------------------------------------------------------


def test_conversations_are_listed_newest_first_page_by_page_with_filters(
    api: Api, live: LiveStack, db_access: Any
) -> None:
    since = datetime.now(UTC).isoformat()
    sessions = [new_session() for _ in range(3)]
    ids = [
        api.chat(live.b.keys["chat"], ask(f"Hola {n}", session, context={"n": str(n)})).json()[
            "conversation_id"
        ]
        for n, session in enumerate(sessions)
    ]
    in_company(
        db_access,
        live.b,
        lambda: Conversation.objects.filter(pk=ids[1]).update(mode=Conversation.Mode.HUMAN),
    )
    read = live.b.keys["read"]
    query = {"updated_since": since, "page_size": 2}

    first = api.get("/v1/conversations", key=read, params=query)
    second = api.get(first.json()["next"], key=read)

    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"next", "previous", "results"}
    assert [item["id"] for item in page["results"]] == [ids[2], ids[1]]
    assert page["previous"] is None
    assert set(page["results"][0]) == CONVERSATION_KEYS
    assert page["results"][0]["session_id"] == sessions[2]
    assert page["results"][0]["channel"] == "api"
    assert page["results"][0]["context"] == {"n": "2"}
    assert [item["id"] for item in second.json()["results"]] == [ids[0]]
    assert second.json()["next"] is None

    def listed(**params: str) -> list[int]:
        response = api.get("/v1/conversations", key=read, params={"updated_since": since, **params})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["results"]]

    assert listed(mode="human") == [ids[1]]
    assert listed(mode="bot") == [ids[2], ids[0]]
    assert listed(channel="api") == [ids[2], ids[1], ids[0]]
    assert listed(channel="web") == []
    assert listed(session_id=sessions[0]) == [ids[0]]
    future = datetime(2100, 1, 1, tzinfo=UTC).isoformat()
    assert listed(updated_since=future) == []
    # The other company's key sees none of them.
    others = api.get("/v1/conversations", key=live.a.keys["read"], params={"updated_since": since})
    assert others.json()["results"] == []


def test_a_conversation_is_read_with_its_messages(api: Api, live: LiveStack) -> None:
    fake_answer = api.chat(live.a.keys["chat"], ask("¿Tienen envío a domicilio?")).json()

    response = api.get(
        f"/v1/conversations/{fake_answer['conversation_id']}", key=live.a.keys["read"]
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {*CONVERSATION_KEYS, "messages"}
    assert body["id"] == fake_answer["conversation_id"]
    assert body["session_id"] == fake_answer["session_id"]
    visitor, reply = body["messages"]
    assert set(visitor) == MESSAGE_KEYS
    assert (visitor["role"], visitor["status"], visitor["text"]) == (
        "visitor",
        "received",
        "¿Tienen envío a domicilio?",
    )
    assert (reply["id"], reply["role"], reply["status"], reply["text"]) == (
        fake_answer["message_id"],
        "assistant",
        "completed",
        fake_answer["response"],
    )
    assert (reply["model"], reply["fallback"]) == (MODEL, False)
    assert reply["latency_ms"] is not None


def test_another_company_conversation_answers_404(
    api: Api, live: LiveStack, db_access: Any
) -> None:
    a_max = in_company(
        db_access, live.a, lambda: max(Conversation.objects.values_list("id", flat=True), default=0)
    )

    def make() -> int:
        contact = Contact.objects.create(channel="api", external_id=new_session())
        return Conversation.objects.create(
            id=a_max + 1000, contact=contact, channel="api", session_id=contact.external_id
        ).pk

    b_only = in_company(db_access, live.b, make)
    token = api_token_issue(
        company=Company.objects.get(pk=live.a.pk), user_id=live.a.owner_id, role="owner"
    )

    by_key = api.get(f"/v1/conversations/{b_only}", key=live.a.keys["read"])
    by_token = api.get(f"/v1/conversations/{b_only}", key=token)
    by_owner = api.get(f"/v1/conversations/{b_only}", key=live.b.keys["read"])

    for response in (by_key, by_token):
        assert response.status_code == 404
        assert response.json() == error("not_found", "Not found.")
    assert by_owner.status_code == 200


def test_two_companies_keys_never_cross(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    session = new_session()  # the same session id in both companies

    a = api.chat(live.a.keys["chat_read"], ask("Soy cliente de A", session)).json()
    b = api.chat(live.b.keys["chat_read"], ask("Soy cliente de B", session)).json()
    a_again = api.chat(live.a.keys["chat_read"], ask("¿Me recuerdas?", session)).json()

    requests = chat_requests(fake)
    assert [r.api_key for r in requests] == [
        live.a.provider_key,
        live.b.provider_key,
        live.a.provider_key,
    ]
    assert requests[1].json["messages"][1:] == [{"role": "user", "content": "Soy cliente de B"}]
    assert [m["content"] for m in requests[2].json["messages"][1:]] == [
        "Soy cliente de A",
        "Echo: Soy cliente de A",
        "¿Me recuerdas?",
    ]
    assert a_again["conversation_id"] == a["conversation_id"]
    assert stored_messages(db_access, live.b, session) == [
        ("visitor", "received", "Soy cliente de B"),
        ("assistant", "completed", "Echo: Soy cliente de B"),
    ]
    for key, own, other in ((live.a.keys["read"], a, b), (live.b.keys["read"], b, a)):
        listed = api.get("/v1/conversations", key=key, params={"session_id": session}).json()
        assert [item["id"] for item in listed["results"]] == [own["conversation_id"]]
        detail = api.get(f"/v1/conversations/{own['conversation_id']}", key=key).json()
        assert other["response"] not in [m["text"] for m in detail["messages"]]


# -- takeover and an unavailable assistant -----------------------------------------------------


def test_a_person_taking_over_while_the_reply_is_generated_gets_no_bot_answer(
    api: Api, live: LiveStack, fake: FakeOpenAI, db_access: Any
) -> None:
    payload = ask("¿Tienen planes para empresas?")

    def take_over(body: dict[str, Any]) -> str:
        in_company(
            db_access,
            live.a,
            lambda: Conversation.objects.filter(session_id=payload["session_id"]).update(
                mode=Conversation.Mode.HUMAN
            ),
        )
        return "Te paso con una persona."

    fake.responder = take_over
    started = time.monotonic()

    response = api.chat(live.a.keys["chat"], payload)

    elapsed = time.monotonic() - started
    stored = stored_messages(db_access, live.a, payload["session_id"])
    assert stored == [
        ("visitor", "received", payload["message"]),
        ("assistant", "discarded", "Te paso con una persona."),
    ]
    detail = api.get(
        f"/v1/conversations?session_id={payload['session_id']}", key=live.a.keys["read"]
    )
    [conversation] = detail.json()["results"]
    messages = api.get(f"/v1/conversations/{conversation['id']}", key=live.a.keys["read"])
    assert [m["text"] for m in messages.json()["messages"]] == [payload["message"]]
    # The waiting client is told at once that a person holds the conversation.
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "human"
    assert response.json()["response"] is None
    assert elapsed < REPLY_TIMEOUT


def test_no_answer_in_time_answers_503_and_the_answer_comes_later(
    live: LiveStack, fake: FakeOpenAI, api: Api
) -> None:
    sync_payload, stream_payload = ask("¿Hay alguien?"), ask("¿Hola?")

    def sync_chat() -> Any:
        client = Api(live)
        try:
            return client.chat(live.a.keys["chat"], sync_payload)
        finally:
            client.close()

    def stream_chat() -> Any:
        client = Api(live)
        try:
            return client.chat_stream(live.a.keys["chat"], stream_payload)
        finally:
            client.close()

    os.killpg(live.worker.popen.pid, signal.SIGSTOP)  # the worker takes no task for a while
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            sync_future, stream_future = pool.submit(sync_chat), pool.submit(stream_chat)
            sync_answer, stream_answer = sync_future.result(), stream_future.result()
    finally:
        os.killpg(live.worker.popen.pid, signal.SIGCONT)

    assert sync_answer.status_code == 503
    assert sync_answer.json() == error(
        "assistant_unavailable",
        "The assistant did not answer in time. The message is saved; its answer will appear "
        "in the conversation.",
    )
    assert sync_answer.headers["retry-after"] == "5"
    assert stream_answer.status_code == 200
    assert [e.event for e in stream_answer.events] == ["error"]
    assert stream_answer.events[0].data == error(
        "assistant_unavailable", "The assistant did not answer in time."
    )

    def answered(payload: dict[str, Any]) -> bool:
        listed = api.get(
            "/v1/conversations",
            key=live.a.keys["read"],
            params={"session_id": payload["session_id"]},
        ).json()["results"]
        if not listed:
            return False
        detail = api.get(f"/v1/conversations/{listed[0]['id']}", key=live.a.keys["read"])
        return [m["status"] for m in detail.json()["messages"]] == ["received", "completed"]

    wait_until(lambda: answered(sync_payload) and answered(stream_payload))


# -- schema, docs, CORS, the command ----------------------------------------------------------


def test_the_openapi_schema_is_valid_and_describes_every_endpoint(api: Api) -> None:
    yaml_answer = api.get("/v1/schema")
    response = api.get("/v1/schema", params={"format": "json"})

    assert yaml_answer.status_code == 200
    assert yaml_answer.headers["content-type"].startswith("application/vnd.oai.openapi")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "CHAPI API"
    paths = schema["paths"]
    assert set(paths) == {
        "/v1/chat",
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/leads",
        "/v1/leads/{id}",
        "/v1/analytics",
    }
    expected = {
        ("/v1/chat", "post"): {"200", "400", "401", "403", "413", "429", "503"},
        ("/v1/conversations", "get"): {"200", "400", "401", "403"},
        ("/v1/conversations/{id}", "get"): {"200", "401", "403", "404"},
    }
    for (path, method), codes in expected.items():
        assert set(paths[path]) == {method}, path
        operation = paths[path][method]
        assert codes <= set(operation["responses"]), (path, sorted(operation["responses"]))
        assert operation["security"] == [{"bearer": []}]
        for code in codes - {"200"}:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, code)
    chat = paths["/v1/chat"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatRequest"
    }
    assert "Idempotency-Key" in [p["name"] for p in chat["parameters"]]
    list_parameters = {p["name"] for p in paths["/v1/conversations"]["get"]["parameters"]}
    assert {"channel", "mode", "session_id", "updated_since", "cursor", "page_size"} <= (
        list_parameters
    )
    components = schema["components"]
    assert components["securitySchemes"]["bearer"]["type"] == "http"
    assert components["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(components["schemas"]["ChatRequest"]["required"]) == {"message", "session_id"}
    assert set(components["schemas"]["ChatResponse"]["properties"]) == ANSWER_KEYS
    assert set(components["schemas"]["Error"]["properties"]) == {"error"}
    # Last, so the checks above run wherever the validator is not installed yet.
    validator = pytest.importorskip("openapi_spec_validator", minversion="0.9.0")
    validator.validate(schema)


def test_the_docs_page_renders_from_local_assets_only(api: Api) -> None:
    response = api.get("/v1/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "swagger-ui" in html.lower()
    assert "/v1/schema" in html
    for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs", "googleapis"):
        assert cdn not in html
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assets = [url for url in urls if url.endswith((".js", ".css", ".png"))]
    assert any("swagger-ui-bundle" in url for url in assets)
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), url
    for url in assets:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (lambda live: PLATFORM_ORIGIN, True),
        (lambda live: live.a.origin, True),
        (lambda live: live.b.origin, True),
        (lambda live: "https://evil.example.org", False),
        (lambda live: live.a.origin.replace("https://", "http://"), False),
    ],
    ids=["platform", "company-a", "company-b", "unknown", "other-scheme"],
)
def test_cors_allows_configured_and_company_origins_only(
    api: Api, live: LiveStack, origin: Callable[[LiveStack], str], allowed: bool
) -> None:
    value = origin(live)

    response = api.get("/v1/conversations", key=live.a.keys["read"], headers={"Origin": value})
    preflight = api.request(
        "OPTIONS",
        "/v1/chat",
        headers={
            "Origin": value,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    outside = api.get("/", headers={"Origin": value})

    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") == (value if allowed else None)
    assert preflight.headers.get("access-control-allow-origin") == (value if allowed else None)
    if allowed:
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed_headers = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers
        assert "content-type" in allowed_headers
    assert "access-control-allow-origin" not in outside.headers


def test_a_browser_may_send_an_idempotency_key_from_an_allowed_origin(
    api: Api, live: LiveStack
) -> None:
    preflight = api.request(
        "OPTIONS",
        "/v1/chat",
        headers={
            "Origin": live.a.origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )

    assert preflight.headers.get("access-control-allow-origin") == live.a.origin
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()


def test_create_api_key_prints_one_json_object_with_a_working_key(
    api: Api, live: LiveStack, db_access: Any
) -> None:
    command = ["manage.py", "create_api_key", "--company", live.a.slug, "--name", "CLI key"]
    result = subprocess.run(
        [sys.executable, *command, "--scopes", "chat,read"],
        cwd=ROOT,
        env=live.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert set(printed) == {"id", "company", "name", "scopes", "key"}
    assert (printed["company"], printed["name"], printed["scopes"]) == (
        live.a.slug,
        "CLI key",
        ["chat", "read"],
    )
    key = printed["key"]
    assert re.fullmatch(r"chapi_[0-9a-f]{12}_[A-Za-z0-9_\-]{40,}", key)
    row = db_access(lambda: ApiKey.objects.get(pk=printed["id"]))
    prefix, secret = key[len("chapi_") :].split("_", 1)
    assert (row.company_id, row.prefix) == (live.a.pk, prefix)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key not in result.stderr
    assert api.get("/v1/conversations", key=key).status_code == 200
    assert api.chat(key, ask()).status_code == 200


def test_create_api_key_defaults_to_chat_and_read_and_refuses_bad_input(
    live: LiveStack,
) -> None:
    out = io.StringIO()
    call_command("create_api_key", "--company", live.a.slug, "--name", "default", stdout=out)
    assert json.loads(out.getvalue())["scopes"] == ["chat", "read"]

    with pytest.raises(CommandError, match="no company with slug 'nobody-here'"):
        call_command("create_api_key", "--company", "nobody-here", "--name", "x")
    with pytest.raises(CommandError, match="Unknown or missing scopes"):
        call_command(
            "create_api_key", "--company", live.a.slug, "--name", "x", "--scopes", "chat,admin"
        )


# -- last: what the servers logged ------------------------------------------------------------


def test_no_secret_reaches_the_server_logs(live: LiveStack) -> None:
    for process in (live.uvicorn, live.worker):
        log = process.log()
        assert log.strip(), process.name
        for secret in live.secrets:
            assert secret not in log, f"a secret in the {process.name} log"
