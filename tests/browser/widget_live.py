"""The live stack of the web widget's browser tests (tests/browser/test_widget.py).

The product runs as in production: uvicorn (ASGI, websockets) and a Celery worker (queues
`default,llm`, threads pool) against pytest-django's test database, in process groups of their
own; a FakeOpenAI answers the model calls at a visible pace, so that an answer is seen while it
streams. Two companies (A and B) are committed for the module, each with an assistant profile
pointing at the fake and a widget key whose allowed origin is its own shop.

The shops are pages of a small stdlib HTTP server. Chromium resolves every `*.test` name to
127.0.0.1 (`--host-resolver-rules`), so the shops live at `http://shop-a.test:<port>` and
`http://shop-b.test:<port>`: origins that are neither `localhost` nor `127.0.0.1`, which the
product allows by design in development (DEBUG=true). The widget's origin check is really
exercised; `http://evil.test:<port>` is an origin no key allows. The product itself is reached
as `http://localhost:<port>` (ROOT_DOMAIN) and `http://<slug>.localhost:<port>` (the company's
host, for /embed), which Chromium resolves itself.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from tests.fakes.openai_server import FakeOpenAI
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

# Added to tests/browser/conftest.py's CHROMIUM_ARGS: the shops' names.
HOST_RESOLVER_RULES = "--host-resolver-rules=MAP *.test 127.0.0.1"
UVICORN_ARGS = (
    "-m uvicorn chapi.asgi:application --host 127.0.0.1 --lifespan off --ws-max-size 65536"
)
WORKER_ARGS = (
    "-m celery -A chapi worker -Q default,llm --pool threads --concurrency 4 --loglevel INFO"
)
# The fake streams one word every 1/TOKENS_PER_SECOND s: a reply of 20 words takes ~0.7 s.
TOKENS_PER_SECOND = 30
FILLER_TEXT = (
    "te cuento los detalles del plan con calma para que puedas comparar las opciones "
    "disponibles y elegir la que mejor se ajusta a lo que necesitas hoy"
)
FILLER = FILLER_TEXT.split()


def reply_for(text: str, words: int = 12) -> str:
    """The fake model's answer to the visitor message `text` (deterministic)."""
    filler = " ".join(FILLER[i % len(FILLER)] for i in range(words))
    return f"Respuesta a «{text}»: {filler}."


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a chat completion request."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content or "")
    return ""


@dataclass(frozen=True)
class WidgetCompany:
    label: str
    slug: str
    pk: int
    schema_name: str
    name: str
    bot_name: str
    welcome: str
    provider_key: str  # the company's own model key: how the fake tells A's calls from B's
    key: str  # its widget key (pk_…)
    origin: str  # the key's allowed origin: the company's shop


# -- the shops: host pages on another origin -------------------------------------------------


@dataclass(frozen=True)
class HostPage:
    """What a shop page embeds for one widget key."""

    key: str
    slug: str
    snippet: str  # the product's own snippet (apps.widget.services.widget_snippet)


PAGE = """<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<h1>{title}</h1>
<p>Una tienda cualquiera que usa el asistente de CHAPI.</p>
{body}
</body>
</html>
"""


class HostPages:
    """The shops: a stdlib HTTP server on 127.0.0.1 (its own thread), reached by any `*.test`
    name. Pages (`key` is a widget key registered with `add`):

    - `/?key=…`: the snippet;
    - `/csp?key=…`: the snippet under a strict Content-Security-Policy, nonces on the inline
      scripts (docs/widget.md, "Content-Security-Policy on the host page");
    - `/frame?key=…`: an iframe of the company's `/embed?token=…`;
    - `/blank`: nothing (a page of that origin to run scripts in).
    """

    def __init__(self, product_port: int) -> None:
        self.product_port = product_port
        self.pages: dict[str, HostPage] = {}
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pages.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="host-pages", daemon=True
        )

    def start(self) -> HostPages:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def origin(self, name: str) -> str:
        """`http://<name>.test:<port>`, e.g. origin("shop-a")."""
        return f"http://{name}.test:{self.port}"

    def url(self, name: str, path: str = "/", key: str | None = None) -> str:
        return self.origin(name) + path + (f"?key={quote(key)}" if key else "")

    def add(self, page: HostPage) -> None:
        self.pages[page.key] = page

    @property
    def product(self) -> str:
        return f"http://localhost:{self.product_port}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        key = (parse_qs(url.query).get("key") or [""])[0]
        page = self.pages.get(key)
        headers: dict[str, str] = {}
        if url.path == "/favicon.ico":
            self._send(request, 204, "", {})
            return
        if url.path == "/blank":
            body = PAGE.format(title="Otra tienda", body="")
        elif page is None:
            self._send(request, 404, "no such page", {"Content-Type": "text/plain"})
            return
        elif url.path == "/":
            body = PAGE.format(title="Tienda de prueba", body=page.snippet)
        elif url.path == "/csp":
            nonce = secrets.token_urlsafe(16)
            # The snippet's two inline scripts carry the nonce; the loader comes from the
            # product's host, which script-src allows.
            snippet = page.snippet.replace("<script>", f'<script nonce="{nonce}">')
            body = PAGE.format(title="Tienda con CSP estricta", body=snippet)
            product, socket = self.product, self.product.replace("http://", "ws://", 1)
            headers["Content-Security-Policy"] = (
                f"default-src 'none'; script-src {product} 'nonce-{nonce}'; "
                f"connect-src {product} {socket}; img-src {product}; style-src 'none'"
            )
        elif url.path == "/frame":
            src = f"http://{page.slug}.localhost:{self.product_port}/embed?token={page.key}"
            body = PAGE.format(
                title="Tienda con iframe",
                body=f'<iframe src="{html.escape(src)}" title="Chat" width="400" '
                'height="600"></iframe>',
            )
        else:
            self._send(request, 404, "no such page", {"Content-Type": "text/plain"})
            return
        self._send(request, 200, body, {"Content-Type": "text/html; charset=utf-8", **headers})

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: str, headers: dict[str, str]
    ) -> None:
        data = body.encode()
        request.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            request.send_header(name, value)
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(data)


# -- the stack --------------------------------------------------------------------------------


@dataclass
class WidgetStack:
    port: int
    env: dict[str, str] = field(repr=False)
    logs: Path
    uvicorn: LiveProcess
    worker: LiveProcess
    fake: FakeOpenAI
    pages: HostPages
    a: WidgetCompany
    b: WidgetCompany
    django_db_blocker: Any = field(repr=False)

    @property
    def public_url(self) -> str:
        """The product's public host (ROOT_DOMAIN=localhost), where the widget's files live."""
        return f"http://localhost:{self.port}"

    @property
    def script_url(self) -> str:
        return f"{self.public_url}/static/chapi-widget.js"

    def socket_url(self, key: str) -> str:
        return f"ws://localhost:{self.port}/ws/widget/?key={key}"

    def config_url(self, key: str) -> str:
        return f"{self.public_url}/widget/config?key={key}"

    # uvicorn can be stopped and started again on the same port (the worker keeps running).

    def stop_uvicorn(self) -> list[str]:
        return uvicorn_stop(self.uvicorn)

    def start_uvicorn(self) -> None:
        self.uvicorn = _uvicorn_spawn(self.port, self.env, self.logs)
        wait_http(self.uvicorn, self.port)

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {process.name} log (tail) {process.log_path} ---\n{process.log_tail(40)}"
            for process in (self.uvicorn, self.worker)
        )

    # Committed data (the servers only see that).

    def key_create(self, company: WidgetCompany, origins: list[str]) -> str:
        """A new widget key of `company` for `origins`, with its shop pages."""

        def work() -> HostPage:
            from apps.tenants.models import Company
            from apps.widget.services import widget_key_create

            widget_key = widget_key_create(
                company=Company.objects.get(pk=company.pk), name="Otra web", origins=origins
            )
            return _host_page(widget_key, self.script_url, self.socket_url(widget_key.key))

        page = committed(self.django_db_blocker, work)
        self.pages.add(page)
        return page.key

    def key_revoke(self, key: str) -> None:
        """Revoke `key` through the service, in a committed transaction (its open connections
        are closed once it commits)."""

        def work() -> None:
            from apps.audit.services import SYSTEM
            from apps.widget.models import WidgetKey
            from apps.widget.services import widget_key_revoke

            widget_key_revoke(widget_key=WidgetKey.objects.get(key=key), actor=SYSTEM)

        committed(self.django_db_blocker, work)

    def conversation(self, company: WidgetCompany, session_id: str) -> StoredConversation | None:
        """The stored web conversation of the visitor `session_id` of `company`, if any."""

        def work() -> StoredConversation | None:
            from apps.conversations.models import Channel, Conversation, Message
            from apps.tenants.models import Company

            with tenant_context(Company.objects.get(pk=company.pk)):
                conversation = Conversation.objects.filter(
                    channel=Channel.WEB, session_id=session_id
                ).first()
                if conversation is None:
                    return None
                rows = Message.objects.filter(conversation=conversation).order_by("id")
                return StoredConversation(
                    pk=conversation.pk,
                    context=dict(conversation.context),
                    mode=conversation.mode,
                    messages=[
                        StoredMessage(m.pk, m.role, m.text, m.status, m.completed_at) for m in rows
                    ],
                )

        return committed(self.django_db_blocker, work)

    def chat_requests(self, company: WidgetCompany) -> list[dict[str, Any]]:
        """The bodies of the chat completions the fake received with `company`'s model key."""
        return [
            r.json
            for r in self.fake.requests
            if r.path == "/v1/chat/completions" and r.api_key == company.provider_key
        ]


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    text: str
    status: str
    completed_at: datetime | None


@dataclass(frozen=True)
class StoredConversation:
    pk: int
    context: dict[str, Any]
    mode: str
    messages: list[StoredMessage]


# A known problem (not the widget's): after two or more widget websockets of one uvicorn have
# closed, the channel-layer receive task of one of their consumers sometimes outlives its
# cancellation (it stays "cancelling", looping on BZPOPMIN; channels_redis 4.3 with redis-py 8.1,
# asyncio and uvloop alike), so uvicorn's graceful shutdown waits for it forever ("Waiting for
# background tasks to complete.") and has to be killed. Reproduced without a browser; see the
# report of the widget's browser tests. Only that hang is tolerated, as a warning.
GRACEFUL_SHUTDOWN_HANG = "Waiting for background tasks to complete."
UVICORN_STOP_TIMEOUT = 5.0


class UvicornShutdownHang(UserWarning):
    """uvicorn had to be killed: a websocket consumer's task did not end (see above)."""


def uvicorn_stop(process: LiveProcess) -> list[str]:
    """Stop uvicorn (SIGTERM, then SIGKILL); return the problems, less the known hang, which
    becomes a warning."""
    problems = stop_process(process, timeout=UVICORN_STOP_TIMEOUT)
    hung = f"{process.name} ignored SIGTERM for {UVICORN_STOP_TIMEOUT}s: killed"
    if hung in problems and GRACEFUL_SHUTDOWN_HANG in process.log_tail(3):
        problems.remove(hung)
        warnings.warn(
            f"uvicorn was killed: its graceful shutdown waited for a websocket consumer that "
            f"never ended ({process.log_path})",
            UvicornShutdownHang,
            stacklevel=2,
        )
    return problems


def _uvicorn_spawn(port: int, env: dict[str, str], logs: Path) -> LiveProcess:
    return spawn(
        "uvicorn",
        [sys.executable, *UVICORN_ARGS.split(), "--port", str(port)],
        env,
        logs / "uvicorn.log",
    )


def _host_page(widget_key: Any, script_url: str, socket_url: str) -> HostPage:
    from apps.widget.services import widget_config, widget_snippet

    config = widget_config(widget_key, socket_url)
    return HostPage(
        key=widget_key.key,
        slug=widget_key.company.slug,
        snippet=widget_snippet(script_url=script_url, widget_key=widget_key, config=config),
    )


COMPANIES = {
    # label: (company name, bot name, welcome message)
    "a": ("Seguros Andes", "Sofía", "¡Hola! Soy Sofía, de Seguros Andes. ¿En qué te ayudo?"),
    "b": ("Bicicletas Bruno", "Bruno", "¡Hola! Soy Bruno. ¿Buscas una bicicleta?"),
}


def _company_make(label: str, fake_url: str, pages: HostPages, script_url: str) -> WidgetCompany:
    from apps.assistants.services import assistant_profile_get
    from apps.tenants.services import company_create
    from apps.widget.services import widget_key_create

    name, bot_name, welcome = COMPANIES[label]
    slug = f"widget-{uuid.uuid4().hex[:8]}-{label}"
    company = company_create(
        name=name,
        slug=slug,
        owner_email=f"owner@{slug}.example.com",
        owner_name=f"Owner {label.upper()}",
    ).company
    provider_key = f"sk-test-widget-{label}-{uuid.uuid4().hex}"
    with tenant_context(company):
        profile = assistant_profile_get()
        profile.api_base_url = fake_url
        profile.api_key = provider_key
        profile.bot_name = bot_name
        profile.welcome_message = welcome
        profile.languages = ["es", "en"]
        profile.save()
    origin = pages.origin(f"shop-{label}")
    widget_key = widget_key_create(company=company, name="Tienda", origins=[origin])
    socket_url = f"ws://localhost:{pages.product_port}/ws/widget/?key={widget_key.key}"
    pages.add(_host_page(widget_key, script_url, socket_url))
    return WidgetCompany(
        label=label,
        slug=slug,
        pk=company.pk,
        schema_name=company.schema_name,
        name=name,
        bot_name=bot_name,
        welcome=welcome,
        provider_key=provider_key,
        key=widget_key.key,
        origin=origin,
    )


def _company_delete(slug: str) -> list[str]:
    """Delete the company `slug`, its hosts, widget keys and schema; return the schemas left."""
    from apps.tenants.models import Company, Domain

    left = []
    for company in Company.objects.filter(slug=slug):
        Domain.objects.filter(tenant=company).delete()
        company.delete(force_drop=True)
        if schema_exists(company.schema_name):
            left.append(company.schema_name)
    return left


@contextlib.contextmanager
def widget_stack_run(django_db_blocker: Any, logs: Path) -> Iterator[WidgetStack]:
    """Start the stack (see the module docstring); on the way out stop every process, delete
    the companies (schemas included), flush Redis, and fail if anything was left behind."""
    if not str(connection.settings_dict["NAME"]).startswith("test_"):
        raise RuntimeError("no test database: the widget's browser tests must be django_db")
    redis_flush()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "chapi.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        "ROOT_DOMAIN": "localhost",
        "OPENAI_API_KEY": "",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
        # Lead readings right after each reply, never deferred into a later test.
        "LEAD_MODEL_READING_DELAY_SECONDS": "0",
    }
    fake = FakeOpenAI(tokens_per_second=TOKENS_PER_SECOND).start()
    pages = HostPages(port).start()
    slugs: list[str] = []
    processes: list[LiveProcess] = []
    stack: WidgetStack | None = None
    try:
        script_url = f"http://localhost:{port}/static/chapi-widget.js"
        companies = []
        for label in ("a", "b"):
            company = committed(
                django_db_blocker,
                lambda label=label: _company_make(label, fake.base_url, pages, script_url),
            )
            slugs.append(company.slug)
            companies.append(company)
        uvicorn = _uvicorn_spawn(port, env, logs)
        processes.append(uvicorn)
        worker = spawn("worker", [sys.executable, *WORKER_ARGS.split()], env, logs / "worker.log")
        processes.append(worker)
        wait_http(uvicorn, port)
        wait_worker(worker)
        stack = WidgetStack(
            port=port,
            env=env,
            logs=logs,
            uvicorn=uvicorn,
            worker=worker,
            fake=fake,
            pages=pages,
            a=companies[0],
            b=companies[1],
            django_db_blocker=django_db_blocker,
        )
        yield stack
    finally:
        if stack is not None:  # the test may have restarted uvicorn
            processes = [stack.uvicorn, stack.worker]
        problems = [
            problem
            for process in processes
            for problem in (
                uvicorn_stop(process) if process.name == "uvicorn" else stop_process(process)
            )
        ]
        pages.stop()
        fake.stop()
        left = [
            schema
            for slug in slugs
            for schema in committed(django_db_blocker, lambda slug=slug: _company_delete(slug))
        ]
        redis_flush()
        assert not problems, problems
        assert left == [], f"schemas left behind: {left}"


# -- the widget, as a test sees it -------------------------------------------------------------

ONLINE = {"es": "En línea", "en": "Online"}
OFFLINE = {"es": "Sin conexión — reintentando…", "en": "Offline — reconnecting…"}

# Every message bubble of the widget of the page (or frame): role, state, id, rendered text.
MESSAGES_JS = """() => {
  const host = document.querySelector('[data-chapi-widget]');
  if (!host || !host.shadowRoot) return null;
  return [...host.shadowRoot.querySelectorAll('[data-chapi="message"]')].map((m) => ({
    role: m.dataset.role, state: m.dataset.state,
    id: m.dataset.id ? Number(m.dataset.id) : null, text: m.innerText.trim() }));
}"""

# Records every change of the assistant bubbles and of the typing indicator (a MutationObserver
# on the shadow root: no change is missed between two polls), on the host element.
TRACE_JS = """() => {
  const host = document.querySelector('[data-chapi-widget]');
  const root = host.shadowRoot;
  const log = root.querySelector('[data-chapi="messages"]');
  const typing = root.querySelector('[data-chapi="typing"]');
  const trace = [];
  let last = '';
  const snap = () => {
    const row = JSON.stringify({
      typing: !typing.hidden,
      replies: [...log.querySelectorAll('[data-chapi="message"][data-role="assistant"]')].map(
        (m) => [m.dataset.id ? Number(m.dataset.id) : null, m.dataset.state, m.innerText.trim()]),
    });
    if (row !== last) { trace.push(JSON.parse(row)); last = row; }
  };
  new MutationObserver(snap).observe(root, {
    subtree: true, childList: true, characterData: true, attributes: true });
  snap();
  host.chapiTrace = trace;
}"""


class Widget:
    """The widget drawn in a page or a frame (Playwright `Page` or `Frame`): its test hooks are
    the `[data-chapi=…]` elements of its open shadow root, which CSS locators pierce."""

    def __init__(self, target: Any, language: str = "es") -> None:
        self.target = target
        self.language = language

    def hook(self, name: str) -> Any:
        return self.target.locator(f'[data-chapi="{name}"]')

    def messages(self) -> list[dict[str, Any]]:
        return self.target.evaluate(MESSAGES_JS) or []

    def conversation(self) -> list[tuple[str, str]]:
        """(role, text) of every message bubble but the welcome, in the order shown."""
        return [(m["role"], m["text"]) for m in self.messages() if m["role"] != "welcome"]

    def open(self) -> None:
        from playwright.sync_api import expect

        self.hook("launcher").click()
        expect(self.hook("panel")).to_be_visible()
        self.wait_online()

    def wait_online(self, timeout: float = 10_000) -> None:
        from playwright.sync_api import expect

        expect(self.hook("status")).to_have_text(ONLINE[self.language], timeout=timeout)

    def send(self, text: str) -> None:
        from playwright.sync_api import expect

        self.hook("input").fill(text)
        self.hook("input").press("Enter")
        expect(self.hook("input")).to_have_value("")

    def wait_replies(self, count: int, timeout: float = 15_000) -> list[dict[str, Any]]:
        """Until `count` assistant replies are done and no visitor message is unconfirmed."""
        self.target.wait_for_function(
            """(count) => {
              const root = document.querySelector('[data-chapi-widget]').shadowRoot;
              const q = (s) => root.querySelectorAll(`[data-chapi="message"]${s}`).length;
              return q('[data-role="assistant"][data-state="done"]') >= count
                && q('[data-role="visitor"]:not([data-state="sent"])') === 0;
            }""",
            arg=count,
            timeout=timeout,
        )
        return self.messages()

    def trace_start(self) -> None:
        self.target.evaluate(TRACE_JS)

    def trace(self) -> list[dict[str, Any]]:
        return self.target.evaluate(
            "() => document.querySelector('[data-chapi-widget]').chapiTrace"
        )

    def session_id(self, key: str) -> str:
        return self.target.evaluate("(k) => localStorage.getItem(`chapi:${k}:session`)", key)


def streamed_texts(trace: list[dict[str, Any]], reply_id: int) -> list[str]:
    """The texts the reply `reply_id` showed while streaming, in order."""
    return [
        text
        for row in trace
        for (id_, state, text) in row["replies"]
        if id_ == reply_id and state == "streaming"
    ]


# -- the console of every page -----------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleEntry:
    kind: str  # "error", "warning" (console methods) or "pageerror" (an uncaught exception)
    text: str
    url: str  # where it comes from: the script, or the resource that failed to load
    page: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.text} ({self.url or '-'}; page {self.page})"


@dataclass
class Console:
    """Errors and warnings of every page of a test (every frame, console and uncaught
    exceptions). A test that makes a request fail on purpose allows the browser's own line
    about it, precisely (`allow`); anything else fails the test."""

    entries: list[ConsoleEntry] = field(default_factory=list)
    allowed: list[tuple[str, re.Pattern[str], str]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self._add("pageerror", str(error), "", page.url))

    def _console(self, page: Any, message: Any) -> None:
        if message.type in ("error", "warning", "assert"):
            location = message.location or {}
            self._add(message.type, message.text, location.get("url", ""), page.url)

    def _add(self, kind: str, text: str, url: str, page_url: str) -> None:
        self.entries.append(ConsoleEntry(kind, text, url, page_url))

    def allow(self, kind: str, text: str, url: str = "") -> None:
        """Allow entries of `kind` whose text matches the regex `text` in full (and whose
        source starts with `url`, when given)."""
        self.allowed.append((kind, re.compile(text), url))

    def matching(self, kind: str, text: str) -> list[ConsoleEntry]:
        pattern = re.compile(text)
        return [e for e in self.entries if e.kind == kind and pattern.fullmatch(e.text)]

    def unexpected(self) -> list[ConsoleEntry]:
        return [
            entry
            for entry in self.entries
            if not any(
                entry.kind == kind and pattern.fullmatch(entry.text) and entry.url.startswith(url)
                for kind, pattern, url in self.allowed
            )
        ]


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate()` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@contextlib.contextmanager
def chromium_open(executable: str) -> Iterator[Any]:
    """One headless Chromium for a test module (its tests open their own contexts), able to
    reach the shops' `*.test` names; skips the module when Playwright cannot run it.

    While Playwright's sync API is open it keeps an event loop set on this thread, so Django
    takes every ORM call here for one made from async code, pytest-django's own included
    (entering and rolling back each test's transaction). The tests do no ORM work on this
    thread (see `committed`): the check is switched off while the browser is open."""
    import pytest

    from tests.browser.conftest import CHROMIUM_ARGS

    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        try:
            browser = playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=[*CHROMIUM_ARGS, HOST_RESOLVER_RULES],
            )
        except PlaywrightError as exc:
            first_line = exc.message.strip().splitlines()[0] if exc.message.strip() else exc
            pytest.skip(f"Playwright cannot launch {executable}: {first_line}")
        try:
            yield browser
        finally:
            # The connection pytest-django used on this thread while the browser was open is
            # not the one it closes at the end (Django keeps one per event-loop context):
            # close it now, or the test database cannot be dropped.
            from django.db import connections

            connections.close_all()
            browser.close()
