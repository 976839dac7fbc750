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

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import environ
import pytest
from django.conf import settings
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
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

T = TypeVar("T")


def committed(django_db_blocker: Any, work: Callable[[], T]) -> T:
    """Run `work` (ORM code) on committed data: in a fresh thread, so on a fresh connection
    outside the test's transaction, and away from the event loop Playwright's sync API keeps
    set on the test's thread (where Django would raise SynchronousOnlyOperation)."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()  # this thread's only: the test database must drop cleanly

    with django_db_blocker.unblock(), ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for `settings_dict` that chapi.settings reads back to the same database.

    HOST may be a unix socket directory: it then goes percent-encoded in the path, the form
    chapi.embedded uses, which django-environ reads back as HOST.
    """
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    name = quote(settings_dict["NAME"], safe="")
    if host.startswith("/"):
        url = f"postgres://{auth}{port}/{quote(host, safe='')}/{name}"
    else:
        url = f"postgres://{auth}{host}{port}/{name}"
    parsed = environ.Env.db_url_config(url)
    for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD"):
        if str(parsed.get(key) or "") != str(settings_dict.get(key) or ""):
            raise RuntimeError(f"{url!r} reads back as {key}={parsed.get(key)!r}")
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    server = Server(port=port, log_path=log_path)
    try:
        _wait_until_healthy(process, server)
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"uvicorn exited with code {process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{server.port}/healthz", timeout=1
            ) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /healthz in time:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers. Its database
    connections must be gone before pytest-django drops the test database."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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
