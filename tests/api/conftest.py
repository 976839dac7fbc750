"""Fixtures of the reply pipeline and REST API v1 tests.

- `fake`: a local OpenAI-compatible server (`FakeOpenAI`, one per session), reset around each
  test. Companies point their assistant at it with `api_base_url` + their own `api_key`.
- `live` (module): the product as it runs in production, a uvicorn server and a Celery worker
  (queues `default,llm`, threads pool) in their own process groups, against pytest-django's
  test database. They only see committed data, so the module creates two companies of its own
  (unique slugs), their API keys and assistant profiles (pointing at `fake`), and deletes them,
  schemas included, at the end; both processes are stopped first, and none may be left over.
- `api`: an HTTP client of `live` that checks every answer for secrets (the companies' model
  keys, their ciphertexts, the API keys' hashes).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from apps.api.models import ApiKey
from apps.api.services import api_key_create, api_key_revoke
from apps.assistants.services import assistant_profile_get
from apps.audit.services import SYSTEM
from apps.leads.models import LeadSettings
from apps.tenants.models import Company, Domain
from apps.tenants.services import company_create
from tests.fakes.openai_server import FakeOpenAI
from tests.live import ROOT as ROOT  # re-exported: the API tests import it from here
from tests.live import (
    LiveProcess,
    committed,
    database_url,
    free_port,
    redis_flush,
    spawn,
    stop_process,
    wait_http,
    wait_worker,
)


def provider_key(label: str) -> str:
    """A company's own model-provider key: "sk-test-" and 40 characters."""
    return "sk-test-" + hashlib.sha256(label.encode()).hexdigest()[:40]


# -- the fake model provider ------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def fake_clean(server: FakeOpenAI) -> None:
    server.reset()
    server.latency_ms = 0
    server.tokens_per_second = None


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_clean(fake_server)
    yield fake_server
    fake_clean(fake_server)


def chat_requests(fake: FakeOpenAI) -> list[Any]:
    """The chat completion requests the fake received, oldest first."""
    return [r for r in fake.requests if r.path == "/v1/chat/completions" and not _reads_lead(r)]


def moderation_requests(fake: FakeOpenAI) -> list[Any]:
    return [r for r in fake.requests if r.path == "/v1/moderations"]


# -- the live stack ---------------------------------------------------------------------------

PLATFORM_ORIGIN = "https://partner.example.net"
# The servers' settings (environment). Short timeouts keep the failure tests quick; the
# per-session limit is low so that it can be reached with real requests.
LIVE_SETTINGS = {
    "CHAT_REPLY_TIMEOUT": "4",
    "LLM_READ_TIMEOUT": "0.5",
    "LLM_CONNECT_TIMEOUT": "2",
    "LLM_BACKOFF_BASE_SECONDS": "0.05",
    "API_RATE_LIMIT_PER_KEY": "600",
    "API_RATE_LIMIT_PER_SESSION": "5",
    "API_RATE_LIMIT_PER_IP": "300",
    "CORS_ORIGINS": PLATFORM_ORIGIN,
    # The model's lead reading right after each reply, as in the in-process tests: a reading
    # deferred past its test would reach the fake model during a later test.
    "LEAD_MODEL_READING_DELAY_SECONDS": "0",
}
UVICORN_ARGS = "-m uvicorn chapi.asgi:application --host 127.0.0.1 --lifespan off"
WORKER_ARGS = (
    "-m celery -A chapi worker -Q default,llm --pool threads --concurrency 4 --loglevel INFO"
)
# Key name -> scopes. "revoked" is revoked right after it is made.
KEY_SCOPES = {
    "chat_read": ["chat", "read"],
    "read": ["read"],
    "chat": ["chat"],
    "revoked": ["chat", "read"],
}


@dataclass(frozen=True)
class LiveCompany:
    slug: str
    pk: int
    schema_name: str
    provider_key: str  # the company's own OpenAI key: must never come back
    provider_key_ciphertext: str  # how it is stored (encrypted): must never come back either
    origin: str  # one of its allowed_origins (CORS)
    owner_id: int
    keys: dict[str, str]  # name -> full API key (shown once at creation)
    key_prefixes: dict[str, str]
    key_hashes: tuple[str, ...]


@dataclass
class LiveStack:
    port: int
    uvicorn: LiveProcess
    worker: LiveProcess
    a: LiveCompany
    b: LiveCompany
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The public host (ROOT_DOMAIN), where /v1/ lives."""
        return f"localhost:{self.port}"

    @property
    def secrets(self) -> list[str]:
        """What must never appear in an answer or a log line: the companies' model keys (and
        their ciphertexts), their API keys and the keys' stored hashes."""
        return [
            secret
            for company in (self.a, self.b)
            for secret in (
                company.provider_key,
                company.provider_key_ciphertext,
                *company.keys.values(),
                *company.key_hashes,
            )
        ]


def _company_make(label: str, fake_url: str) -> LiveCompany:
    slug = f"api-{uuid.uuid4().hex[:8]}-{label}"
    company = company_create(
        name=f"API {label.upper()} Test",
        slug=slug,
        owner_email=f"owner@{slug}.example.com",
        owner_name=f"Owner {label.upper()}",
    ).company
    origin = f"https://shop-{label}.{slug}.example.com"
    company.allowed_origins = [origin]
    company.save(update_fields=["allowed_origins"])
    secret = provider_key(slug)
    with tenant_context(company):
        profile = assistant_profile_get()
        profile.api_base_url = fake_url
        profile.api_key = secret
        profile.save()
        # The model's reading of leads (an extra request after some replies) is tested in
        # tests/leads; here it would race with the faults queued for the replies.
        LeadSettings.objects.update_or_create(pk=1, defaults={"model_reading": False})
        with connection.cursor() as cursor:
            cursor.execute("SELECT api_key FROM assistants_assistantprofile WHERE id = %s", [1])
            ciphertext = cursor.fetchone()[0]
        from apps.accounts.models import User

        owner_id = User.objects.get(email=f"owner@{slug}.example.com").pk
    assert secret not in ciphertext
    issued = {
        name: api_key_create(company=company, name=f"{label} {name}", scopes=scopes)
        for name, scopes in KEY_SCOPES.items()
    }
    api_key_revoke(api_key=issued["revoked"].api_key, actor=SYSTEM)
    return LiveCompany(
        slug=slug,
        pk=company.pk,
        schema_name=company.schema_name,
        provider_key=secret,
        provider_key_ciphertext=ciphertext,
        origin=origin,
        owner_id=owner_id,
        keys={name: item.key for name, item in issued.items()},
        key_prefixes={name: item.api_key.prefix for name, item in issued.items()},
        key_hashes=tuple(
            ApiKey.objects.filter(company=company).values_list("secret_hash", flat=True)
        ),
    )


def _company_delete(slug: str) -> list[str]:
    """Delete the company `slug`, its hosts, keys and schema; return the schemas left."""
    left = []
    for company in Company.objects.filter(slug=slug):
        Domain.objects.filter(tenant=company).delete()
        company.delete(force_drop=True)
        if schema_exists(company.schema_name):
            left.append(company.schema_name)
    return left


@pytest.fixture(scope="module")
def live(
    django_db_setup: None,
    django_db_blocker: Any,
    fake_server: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    """uvicorn + a Celery worker against the test database, with two companies of their own."""
    logs = tmp_path_factory.mktemp("api-live")
    redis_flush()
    a = committed(django_db_blocker, lambda: _company_make("a", fake_server.base_url))
    slugs = [a.slug]
    processes: list[LiveProcess] = []
    try:
        b = committed(django_db_blocker, lambda: _company_make("b", fake_server.base_url))
        slugs.append(b.slug)
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chapi.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "true",
            "ROOT_DOMAIN": "localhost",
            "OPENAI_API_KEY": "",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PYTHONUNBUFFERED": "1",
            **LIVE_SETTINGS,
        }
        uvicorn = spawn(
            "uvicorn",
            [sys.executable, *UVICORN_ARGS.split(), "--port", str(port)],
            env,
            logs / "uvicorn.log",
        )
        processes.append(uvicorn)
        worker = spawn("worker", [sys.executable, *WORKER_ARGS.split()], env, logs / "worker.log")
        processes.append(worker)
        wait_http(uvicorn, port)
        wait_worker(worker)
        yield LiveStack(port=port, uvicorn=uvicorn, worker=worker, a=a, b=b, env=env)
    finally:
        problems = [problem for process in processes for problem in stop_process(process)]
        left = [
            schema
            for slug in slugs
            for schema in committed(django_db_blocker, lambda slug=slug: _company_delete(slug))
        ]
        redis_flush()
        assert not problems, problems
        assert left == [], f"schemas left behind: {left}"


# -- an HTTP client of the live stack ---------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: dict[str, Any]


def sse_parse(text: str) -> list[SseEvent]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
        events.append(SseEvent(name, json.loads("\n".join(data))))
    return events


@dataclass
class StreamedAnswer:
    status_code: int
    headers: httpx2.Headers
    text: str
    events: list[SseEvent]


class Api:
    """Talks to `live` over HTTP as an API client would (Host: the public host). Every answer
    is checked: no secret of either company in its headers or body."""

    def __init__(self, live: LiveStack) -> None:
        self.live = live
        self.client = httpx2.Client(
            base_url=live.url, headers={"Host": live.host}, timeout=httpx2.Timeout(30.0)
        )

    def close(self) -> None:
        self.client.close()

    def check(self, text: str, headers: Any) -> None:
        rendered = f"{dict(headers)!r}\n{text}"
        for secret in self.live.secrets:
            assert secret not in rendered, "a secret came back in an API answer"

    @staticmethod
    def _headers(key: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {key}"} if key else {}
        merged.update(headers or {})
        return merged

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx2.Response:
        response = self.client.request(method, path, headers=self._headers(key, headers), **options)
        self.check(response.text, response.headers)
        return response

    def get(self, path: str, *, key: str | None = None, **options: Any) -> httpx2.Response:
        return self.request("GET", path, key=key, **options)

    def chat(
        self,
        key: str | None,
        payload: Any = None,
        *,
        content: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx2.Response:
        body = content if content is not None else json.dumps(payload)
        return self.request(
            "POST",
            "/v1/chat",
            key=key,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def chat_stream(
        self, key: str, payload: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> StreamedAnswer:
        with self.client.stream(
            "POST",
            "/v1/chat",
            content=json.dumps({**payload, "stream": True}),
            headers=self._headers(key, {"Content-Type": "application/json", **(headers or {})}),
        ) as response:
            text = "".join(response.iter_text())
        self.check(text, response.headers)
        events = (
            sse_parse(text)
            if response.headers.get("content-type", "").startswith("text/event-stream")
            else []
        )
        return StreamedAnswer(response.status_code, response.headers, text, events)


@pytest.fixture(scope="module")
def api(live: LiveStack) -> Iterator[Api]:
    client = Api(live)
    yield client
    client.close()


def _reads_lead(request: Any) -> bool:
    """The model's structured reading of a lead (apps.leads.extract_model), not a reply."""
    return bool((request.json or {}).get("response_format"))
