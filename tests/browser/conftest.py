"""Browser tests: the real ASGI app under uvicorn, driven by headless Chromium.

The server runs in a subprocess against pytest-django's test database, so it only sees
committed data, and what it commits outlives the test's transaction: browser tests read and
clean up through `committed`, never through the test's own connection. They still carry the
`django_db` marker: pytest-django only creates the test database when a collected test asks
for it (`pytest tests/browser` alone would otherwise run against the configured database).

Chromium is the Debian package (CI installs it with apt); Playwright drives it through
`executable_path`. With no Chromium, or one Playwright cannot launch, the tests are skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.live import committed as committed  # re-exported: the browser tests import it here
from tests.live import database_url, free_port, spawn, stop_process, wait_http

CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
# No sandbox (CI runs as root), no GPU, and nothing that calls home from an offline machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT = 20.0
SERVER_STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Server:
    port: int
    log_path: Path

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.port}"

    def company_url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.localhost:{self.port}{path}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = next((p for p in CHROMIUM_PATHS if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.skip(
            f"no Chromium found (looked for {', '.join(CHROMIUM_PATHS)}); "
            "install it with `apt-get install -y chromium`"
        )
    return path


@pytest.fixture(scope="module")
def chapi_server(
    chromium_executable: str, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The product as it runs in production (uvicorn, ASGI), on a free port of 127.0.0.1,
    against the test database. Company hosts are `<slug>.localhost:<port>`.

    Depends on `chromium_executable` so that, with no Chromium, the test is skipped before a
    server is started for nothing."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("chapi-server") / "uvicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chapi.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        "ROOT_DOMAIN": "localhost",
        # No worker runs here: tasks run in the request, as in the rest of the suite.
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "PYTHONUNBUFFERED": "1",
    }
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "chapi.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
    ]
    process = spawn("uvicorn", args, env, log_path)
    server = Server(port=port, log_path=log_path)
    try:
        wait_http(process, port, timeout=SERVER_START_TIMEOUT)
        yield server
    finally:
        # Its database connections must be gone before pytest-django drops the test database.
        stop_process(process, timeout=SERVER_STOP_TIMEOUT)


@pytest.fixture
def server(chapi_server: Server) -> Iterator[Server]:
    """`chapi_server`, whose log is printed when the test fails (pytest shows captured
    output of failing tests only)."""
    yield chapi_server
    print(f"--- uvicorn log (tail) {chapi_server.log_path} ---\n{chapi_server.log_tail()}")


@pytest.fixture
def page(chromium_executable: str) -> Iterator[Any]:
    """A page of a fresh headless Chromium, with a Spanish-speaking browser (Accept-Language).

    Function-scoped on purpose: while Playwright's sync API is open it keeps an event loop set
    on this thread, and Django then refuses ORM calls here, including pytest-django's own
    (entering and rolling back the test transaction). Set up after them, torn down before."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
            )
        except PlaywrightError as exc:
            first_line = exc.message.strip().splitlines()[0] if exc.message.strip() else exc
            pytest.skip(f"Playwright cannot launch {chromium_executable}: {first_line}")
        try:
            context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800})
            context.set_default_timeout(10_000)
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium(chromium_executable: str) -> Iterator[Any]:
    """One headless Chromium for a test module (tests/browser/widget_live.py, chromium_open)."""
    from tests.browser.widget_live import chromium_open

    with chromium_open(chromium_executable) as browser:
        yield browser


@pytest.fixture(scope="module")
def live_stack(
    request: pytest.FixtureRequest,
    chromium: Any,
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """The product running live for a test module (uvicorn, a Celery worker, a fake model and
    two companies: tests/browser/widget_live.py, widget_stack_run)."""
    from tests.browser.widget_live import widget_stack_run

    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with widget_stack_run(django_db_blocker, tmp_path_factory.mktemp(f"{name}-live")) as stack:
        yield stack


@pytest.fixture
def stack(live_stack: Any) -> Iterator[Any]:
    """The module's live stack with the fake model reset: it answers
    `reply_for(<the visitor's message>)` (tests/browser/widget_live.py). The servers' logs are
    printed when the test fails."""
    from tests.browser.widget_live import last_user_text, reply_for

    fake = live_stack.fake
    fake.reset()
    fake.latency_ms = 0
    fake.responder = lambda body: reply_for(last_user_text(body))
    yield live_stack
    fake.reset()
    print(live_stack.log_tails())


@pytest.fixture
def console() -> Any:
    from tests.browser.widget_live import Console

    return Console()


@pytest.fixture
def new_context(chromium: Any, console: Any) -> Iterator[Callable[..., Any]]:
    """`new_context(**options)`: a fresh browser context (Spanish by default) whose pages'
    consoles are watched. At the end the contexts are closed and the console must be clean."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("locale", "es-ES")
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        context.on("page", console.attach)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    unexpected = console.unexpected()
    assert not unexpected, "the pages' console:\n" + "\n".join(map(str, unexpected))
