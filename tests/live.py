"""Process helpers shared by the live stacks of the test suite (tests/api, tests/browser): the
product's real processes (uvicorn, a Celery worker) run as subprocesses against pytest-django's
test database, each in its own process group, and the tests read and clean up committed data.

Nothing here is a fixture: the conftests build their stacks from these pieces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import environ
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

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


@dataclass
class LiveProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def spawn(name: str, args: list[str], env: dict[str, str], log_path: Path) -> LiveProcess:
    """Start `args` in ROOT, in a process group of its own, output appended to `log_path`."""
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    return LiveProcess(name=name, popen=popen, log_path=log_path)


def wait_http(process: LiveProcess, port: int, timeout: float = START_TIMEOUT) -> None:
    """Until the server on 127.0.0.1:`port` answers /healthz with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer /healthz in time:\n{process.log_tail()}")


def wait_worker(process: LiveProcess, timeout: float = START_TIMEOUT) -> None:
    """Until the Celery worker logs that it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.log_tail()}"
            )
        if " ready." in process.log():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} was not ready in time:\n{process.log_tail()}")


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(process: LiveProcess, timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM the process group (SIGCONT first: a test may have paused it), SIGKILL what
    lingers; return what went wrong (a process left in the group, a forced kill). Its database
    connections must be gone before pytest-django drops the test database."""
    problems = []
    pgid = process.popen.pid
    for signum in (signal.SIGCONT, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)
    try:
        process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        problems.append(f"{process.name} ignored SIGTERM for {timeout}s: killed")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.popen.wait()
    deadline = time.monotonic() + 5
    while process_group_alive(pgid):
        if time.monotonic() > deadline:
            problems.append(f"processes of {process.name} left in group {pgid}: killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return problems


def redis_flush() -> None:
    """Empty the test Redis db (broker queues, channel layer, rate-limit counters, cache)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
