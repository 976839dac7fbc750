"""Benchmark: what `POST /v1/chat` adds on top of the model it calls.

Starts, in one run, the fake OpenAI-compatible upstream (`tests.fakes.openai_server`, a fixed
first-byte latency, 50 ms by default), the web server (uvicorn), and the Celery workers (queues
`default,llm`, threads pool; as many processes as `dev.py run` starts, `--workers`), then for
each concurrency level (default 1, 10, 50):

* direct: N non-streaming chat completions sent straight to the fake upstream, with the same
          messages CHAPI sends it (system prompt + the visitor's message);
* chapi:  N `POST /v1/chat` (non-streaming JSON), each with its own `session_id`, so no
          conversation history grows; the answer comes back from the worker over the channel
          layer to the waiting request.

and prints requests per second and latency p50 / p95 / p99 of each, and the latency CHAPI adds
(CHAPI's percentile minus the direct one). Then:

* one conversation of N/2 turns at concurrency 1 (a shared `session_id`: history grows);
* where a CHAPI request's time goes: the CPU time each process used per request (the servers,
  the client, PostgreSQL and Redis when they listen on local TCP ports, the rest of the
  machine), PostgreSQL's own counters for the scratch database (connections, transactions,
  time running statements), and the timestamps the pipeline stores on the visitor message
  and its reply (client send -> visitor message created -> reply row created by the worker
  -> reply completed -> client received);
* database queries per chat request, counted in-process (`CaptureQueriesContext`) for
  `message_receive` + `reply_generate` and for the whole `POST /v1/chat` (test client, task
  run eagerly), with 1, 10, 50 and 200 earlier messages in the conversation: the counts must
  not grow with history.

It never touches your data: it creates a scratch database (`chapi_bench_chat`) on the server of
DATABASE_URL, migrates it (`manage.py setup_platform --no-demo`), creates one company and an API
key with the `chat` scope, points the company's assistant profile at the fake upstream, and
drops the database at the end. Without DATABASE_URL / REDIS_URL it starts (and afterwards
releases) the embedded PostgreSQL / Redis. Every process it starts runs in its own process
group and is stopped at the end, also on Ctrl-C or failure. The API rate limits are raised for
the run (API_RATE_LIMIT_PER_KEY/_PER_IP/_PER_SESSION in the servers' environment).

Run inside the project's virtualenv, from the repository root:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chapi_docs \\
    REDIS_URL=redis://127.0.0.1:6379/9 DEBUG=true .venv/bin/python bench/chat_api.py
    .venv/bin/python bench/chat_api.py                  # embedded PostgreSQL and Redis

Options: --requests N (per measurement, default 200), --concurrency 1,10,50, --latency-ms 50,
--history 1,10,50,200, --database NAME, --keep-database, --workers K (default: as many as
`dev.py run` starts), --worker-concurrency T (threads per process; 64 in all by default),
--worker-conn-max-age SECONDS, --show-sql (list every counted query), --logs DIR (keep the
servers' logs there; by default they go to a temporary directory removed at the end). The
servers inherit the environment, so settings such as DATABASE_CONN_MAX_AGE can be varied
from the command line. The Redis database of REDIS_URL must not be served
by another Celery worker (it would take the benchmark's tasks): the run refuses to start if one
answers a ping there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from company_create import (  # noqa: E402 - the sibling benchmark's scratch-database helpers
    admin_connect,
    database_drop,
    database_recreate,
    with_database,
    worker_arguments_add,
    worker_arguments_resolve,
    worker_command,
)

UPSTREAM_KEY = "sk-test-bench-" + "0123456789abcdef" * 2  # 32 characters after the prefix
HUGE_LIMIT = "1000000000"  # requests per minute: rate limits out of the way
MESSAGE = "Hola, ¿cuánto cuesta el plan mensual y qué incluye?"
STOP_GRACE = 10.0
STATS_FLUSH = 1.5  # seconds: PostgreSQL backends report their statistics at most once a second


class Stop(Exception):
    """SIGTERM / SIGHUP arrived: unwind through every `finally`."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="POST /v1/chat against direct calls to a fake upstream with fixed latency."
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument(
        "--concurrency", default="1,10,50", help="comma-separated concurrency levels"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="fake upstream latency")
    parser.add_argument(
        "--history", default="1,10,50,200", help="earlier messages for the query counts"
    )
    parser.add_argument(
        "--database", default="chapi_bench_chat", help="scratch database to create (and drop)"
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the scratch database"
    )
    worker_arguments_add(parser)
    parser.add_argument(
        "--worker-conn-max-age",
        type=int,
        default=None,
        help="DATABASE_CONN_MAX_AGE for the Celery worker only (default: as in the environment)",
    )
    parser.add_argument("--logs", type=Path, default=None, help="keep the servers' logs here")
    parser.add_argument(
        "--show-sql", action="store_true", help="list the queries of every counted request"
    )
    args = parser.parse_args(argv)
    worker_arguments_resolve(parser, args)
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
        args.histories = [int(x) for x in args.history.split(",") if x.strip()]
    except ValueError:
        parser.error("--concurrency and --history take comma-separated integers")
    if not args.histories or min(args.histories) < 0:
        parser.error("--history needs at least one number of earlier messages (0 or more)")
    if args.requests < 1 or not args.levels or min(args.levels) < 1:
        parser.error("--requests and every concurrency level must be at least 1")
    if not args.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return args


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


# --------------------------------------------------------------------------- processes


def _parent_death_signal() -> None:
    """In the child before exec (Linux): SIGTERM when the benchmark dies, even by -9."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Service:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_parent_death_signal,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children (uvicorn/celery have none)."""
        import psutil

        try:
            proc = psutil.Process(self.proc.pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += sum(child.cpu_times()[:2])
            return total
        except psutil.Error:
            return 0.0

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)


def stop_services(services: list[Service]) -> None:
    """SIGTERM each group, wait up to STOP_GRACE s, then SIGKILL whatever is left."""
    for service in services:
        if service.alive():
            service.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while any(s.alive() for s in services) and time.monotonic() < deadline:
        time.sleep(0.1)
    for service in services:
        if service.alive():
            print(f"{service.name} did not stop in {STOP_GRACE:.0f} s: killing it")
        service.signal_group(signal.SIGKILL)  # also whatever it left in its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.proc.wait(timeout=5)
        service._log.close()


def server_cpu(url: str) -> Callable[[], float] | None:
    """CPU seconds so far of the local server listening on `url`'s TCP port (PostgreSQL,
    Redis), counting its exited children (PostgreSQL's per-connection backends) and its live
    ones. None if the server is not a local TCP one we can see."""
    import psutil

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        return None
    try:
        pid = next(
            c.pid
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == parts.port and c.pid
        )
        proc = psutil.Process(pid)
    except (StopIteration, psutil.Error):
        return None

    def cpu() -> float:
        try:
            times = proc.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += sum(child.cpu_times()[:2])
            return total
        except psutil.Error:
            return 0.0

    return cpu


def database_counters(server_url: str, name: str) -> Callable[[], dict[str, float]]:
    """Cumulative pg_stat_database counters of the scratch database only (other databases on
    the server do not count): sessions, transactions, milliseconds spent running statements."""

    def counters() -> dict[str, float]:
        with admin_connect(server_url) as conn:
            row = conn.execute(
                "SELECT sessions, xact_commit + xact_rollback, active_time "
                "FROM pg_stat_database WHERE datname = %s",
                [name],
            ).fetchone()
        return dict(
            zip(("sessions", "transactions", "active_ms"), map(float, row or ()), strict=False)
        )

    return counters


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], services: list[Service], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services:
            if not service.alive():
                raise RuntimeError(
                    f"{service.name} exited (code {service.proc.returncode}) while waiting "
                    f"for {what}:\n{service.tail()}"
                )
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def healthz(port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310 - local
            return bool(response.status == 200)
    except OSError:
        return False


# --------------------------------------------------------------------------- load generation


@dataclass
class Sample:
    latency: float
    ok: bool
    sent_at: float = 0.0  # time.time(), for matching the pipeline's stored timestamps
    received_at: float = 0.0
    session_id: str = ""
    fallback: bool = False


@dataclass
class Run:
    name: str
    concurrency: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    warmup_errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, this run
    db: dict[str, float] = field(default_factory=dict)  # pg_stat_database deltas, this run

    @property
    def ok(self) -> list[float]:
        return [s.latency for s in self.samples if s.ok]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.wall if self.wall else 0.0

    def pct(self, fraction: float) -> float:
        return percentile(self.ok, fraction) if self.ok else float("nan")


Request = Callable[[Any, int], Awaitable[Sample]]


async def drive(session: Any, request: Request, n: int, concurrency: int, run: Run) -> None:
    """`n` requests, `concurrency` at a time (each worker sends its next one as soon as its
    previous one is answered)."""
    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < n:
            run.samples.append(await request(session, i))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall = time.perf_counter() - started


class Client:
    """The two kinds of request, sent with aiohttp (the same client for both)."""

    def __init__(self, *, upstream: str, web_port: int, key: str, payload: dict[str, Any]):
        self.upstream = upstream.rstrip("/")
        self.chat_url = f"http://127.0.0.1:{web_port}/v1/chat"
        self.key = key
        self.payload = payload  # the upstream's request body, as CHAPI composes it
        self.prefix = ""
        self.errors: list[str] = []

    async def direct(self, session: Any, i: int) -> Sample:
        began = time.perf_counter()
        try:
            async with session.post(
                f"{self.upstream}/chat/completions",
                json=self.payload,
                headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
            ) as response:
                body = await response.read()
                ok = response.status == 200 and b'"choices"' in body
                if not ok:
                    self.errors.append(f"direct HTTP {response.status}: {body[:300]!r}")
        except Exception as exc:
            ok = False
            self.errors.append(f"direct {type(exc).__name__}: {exc}")
        return Sample(time.perf_counter() - began, ok)

    async def chat(self, session: Any, i: int, session_id: str | None = None) -> Sample:
        session_id = session_id or f"{self.prefix}-{i}"
        sent_at = time.time()
        began = time.perf_counter()
        fallback = False
        try:
            async with session.post(
                self.chat_url,
                json={"message": MESSAGE, "session_id": session_id},
                headers={"Authorization": f"Bearer {self.key}", "Host": "localhost"},
            ) as response:
                body = await response.read()
                ok = response.status == 200
                if ok:
                    answer = json.loads(body)
                    fallback = bool(answer.get("fallback"))
                    if fallback or not str(answer.get("response") or "").startswith("Echo: "):
                        ok = False
                        self.errors.append(f"chat 200, not the upstream's answer: {body[:300]!r}")
                else:
                    self.errors.append(f"chat HTTP {response.status}: {body[:300]!r}")
        except Exception as exc:
            ok = False
            self.errors.append(f"chat {type(exc).__name__}: {exc}")
        latency = time.perf_counter() - began
        return Sample(latency, ok, sent_at, time.time(), session_id, fallback)


async def measure(
    client: Client,
    kind: str,
    n: int,
    concurrency: int,
    warmup: int,
    cpu: Callable[[], dict[str, float]],
    db: Callable[[], dict[str, float]] | None = None,
    *,
    shared_session: str | None = None,
) -> Run:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=concurrency)
    run = Run(kind, concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if kind == "direct":
            request: Request = client.direct
        elif shared_session:

            async def request(s: Any, i: int) -> Sample:
                return await client.chat(s, i, shared_session)
        else:
            request = client.chat
        client.errors.clear()
        client.prefix = f"bench-warm-c{concurrency}-{time.monotonic_ns()}"
        warm = Run("warm-up", concurrency)
        await drive(session, request, warmup, concurrency, warm)
        run.warmup_errors = list(client.errors)
        client.errors.clear()
        client.prefix = f"bench-c{concurrency}-{time.monotonic_ns()}"
        await asyncio.sleep(STATS_FLUSH)  # the warm-up's database statistics reach the server
        db_before = db() if db else {}
        before = cpu()
        await drive(session, request, n, concurrency, run)
        after = cpu()
        await asyncio.sleep(STATS_FLUSH)
        db_after = db() if db else {}
    run.cpu = {name: after[name] - before.get(name, 0.0) for name in after}
    run.db = {name: db_after[name] - db_before.get(name, 0.0) for name in db_after}
    run.errors = list(client.errors)
    return run


# --------------------------------------------------------------------------- the product side


@dataclass
class Bench:
    company: Any
    key: str
    payload: dict[str, Any]


def product_setup(upstream: str) -> Bench:
    """The bench company, its API key and its profile pointed at the fake upstream."""
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from apps.api.services import api_key_create
    from apps.assistants.models import Provider
    from apps.assistants.prompting import assistant_config_load, messages_compose
    from apps.assistants.services import assistant_profile_get
    from apps.tenants.services import company_create

    created = company_create(
        name="Bench Chat",
        slug="bench-chat",
        owner_email="owner@bench-chat.bench.example.com",
        owner_name="Bench Owner",
        owner_password=None,
    )
    company = created.company
    issued = api_key_create(company=company, name="bench", scopes=["chat"])
    with tenant_context(company):
        profile = assistant_profile_get()
        profile.provider = Provider.OPENAI
        profile.api_base_url = upstream
        profile.api_key = UPSTREAM_KEY
        profile.save()
        config = assistant_config_load(profile=profile, company_name=company.name)
        messages = messages_compose(config, [], MESSAGE, None)
    payload = {
        "model": config.model or settings.OPENAI_MODEL,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    }
    return Bench(company=company, key=issued.key, payload=payload)


def foreign_workers() -> list[str]:
    """Celery workers already consuming from this broker (they would take our tasks)."""
    from chapi.celery import app

    return [name for reply in app.control.ping(timeout=1.0) or [] for name in reply]


def worker_ready(name: str) -> bool:
    from chapi.celery import app

    return any(name in reply for reply in app.control.ping(destination=[name], timeout=0.5) or [])


def count_queries(
    bench: Bench, histories: list[int], *, show_sql: bool = False
) -> list[dict[str, Any]]:
    """Queries of message_receive + reply_generate, and of a whole POST /v1/chat (test client,
    reply task run eagerly in-process), for conversations with `h` earlier messages."""
    from django.db import connection
    from django.test import Client as TestClient
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import tenant_context

    from apps.conversations.models import Channel, Contact, Conversation, Message
    from apps.conversations.services import message_receive, reply_generate
    from chapi.celery import app

    def conversation_with(session_id: str, earlier: int) -> None:
        contact = Contact.objects.create(channel=Channel.API, external_id=session_id)
        conversation = Conversation.objects.create(
            channel=Channel.API, session_id=session_id, contact=contact
        )
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                channel=Channel.API,
                role=Message.Role.VISITOR if i % 2 == 0 else Message.Role.ASSISTANT,
                text=f"earlier message number {i} about prices and plans",
                status=Message.Status.RECEIVED if i % 2 == 0 else Message.Status.COMPLETED,
            )
            for i in range(earlier)
        )

    logging.disable(logging.INFO)  # the in-process pipeline's INFO lines (httpx2, celery)
    rows: list[dict[str, Any]] = []
    web = TestClient()
    with tenant_context(bench.company):  # unmeasured: first-use costs (month's usage row...)
        warm = message_receive(channel=Channel.API, session_id="bench-queries-warm", text=MESSAGE,
                               generate=False)  # fmt: skip
        reply_generate(message_id=warm.message.pk)
    for earlier in histories:
        row: dict[str, Any] = {"history": earlier}
        with tenant_context(bench.company):
            session_id = f"bench-queries-svc-{earlier}"
            conversation_with(session_id, earlier)
            with CaptureQueriesContext(connection) as receive:
                received = message_receive(
                    channel=Channel.API, session_id=session_id, text=MESSAGE, generate=False
                )
            with CaptureQueriesContext(connection) as generate:
                reply = reply_generate(message_id=received.message.pk)
            row["receive"] = len(receive.captured_queries)
            row["generate"] = len(generate.captured_queries)
            row["reply"] = (
                f"{reply.status}, {reply.provider}, fallback={reply.fallback}" if reply else None
            )
            if earlier == histories[0] or show_sql:
                row["receive_sql"] = [q["sql"] for q in receive.captured_queries]
                row["generate_sql"] = [q["sql"] for q in generate.captured_queries]
            http_session = f"bench-queries-http-{earlier}"
            conversation_with(http_session, earlier)
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            with CaptureQueriesContext(connection) as whole:
                response = web.post(
                    "/v1/chat",
                    data=json.dumps({"message": MESSAGE, "session_id": http_session}),
                    content_type="application/json",
                    HTTP_HOST="localhost",
                    HTTP_AUTHORIZATION=f"Bearer {bench.key}",
                )
        finally:
            app.conf.task_always_eager = eager
        row["http"] = len(whole.captured_queries)
        row["http_status"] = response.status_code
        if response.status_code != 200:
            row["http_body"] = response.content[:300]
        if earlier == histories[0] or show_sql:
            row["http_sql"] = [q["sql"] for q in whole.captured_queries]
        rows.append(row)
    return rows


def stage_breakdown(bench: Bench, run: Run) -> dict[str, list[float]]:
    """Per request, seconds spent between the timestamps the pipeline stores."""
    from django_tenants.utils import tenant_context

    from apps.conversations.models import Message

    by_session = {s.session_id: s for s in run.samples if s.ok}
    stages: dict[str, list[float]] = {
        k: [] for k in ("ingress", "queue", "generate", "upstream", "egress", "total")
    }
    with tenant_context(bench.company):
        visitors = (
            Message.objects.filter(
                conversation__session_id__in=list(by_session), role=Message.Role.VISITOR
            )
            .select_related("conversation", "reply")
            .order_by("id")
        )
        for visitor in visitors:
            sample = by_session[visitor.conversation.session_id]
            reply = getattr(visitor, "reply", None)
            if reply is None or reply.completed_at is None:
                continue
            sent, created = sample.sent_at, visitor.created_at.timestamp()
            started, completed = reply.created_at.timestamp(), reply.completed_at.timestamp()
            stages["ingress"].append(created - sent)
            stages["queue"].append(started - created)
            stages["generate"].append(completed - started)
            stages["upstream"].append((reply.latency_ms or 0) / 1000)
            stages["egress"].append(sample.received_at - completed)
            stages["total"].append(sample.latency)
    return stages


# --------------------------------------------------------------------------- reporting


def print_runs(pairs: list[tuple[Run, Run]]) -> None:
    print()
    print("Latency in ms (nearest-rank percentiles); added = chapi - direct at the same level")
    header = f"{'conc':>4}  {'path':<7} {'ok/n':>9} {'req/s':>7}  {'p50':>7} {'p95':>7} {'p99':>7}"
    print(header)
    print("-" * len(header))
    for direct, chapi in pairs:
        for run in (direct, chapi):
            n = len(run.samples)
            print(
                f"{run.concurrency:>4}  {run.name:<7} {len(run.ok):>4}/{n:<4} {run.rps:>7.1f}  "
                f"{ms(run.pct(0.50))} {ms(run.pct(0.95))} {ms(run.pct(0.99))}"
            )
        added = [chapi.pct(f) - direct.pct(f) for f in (0.50, 0.95, 0.99)]
        print(f"{'':>4}  {'added':<7} {'':>9} {'':>7}  " + " ".join(ms(a) for a in added))
    for direct, chapi in pairs:
        for run in (direct, chapi):
            if run.warmup_errors:
                where = f"{run.name}'s warm-up at concurrency {run.concurrency}"
                print(f"\n{len(run.warmup_errors)} error(s) in {where} (not counted):")
                for error in sorted(set(run.warmup_errors))[:5]:
                    print(f"  {error}")
            if run.errors:
                where = f"{run.name} at concurrency {run.concurrency}"
                print(f"\n{len(run.errors)} error(s) in {where}:")
                for error in sorted(set(run.errors))[:5]:
                    print(f"  {error}")


def print_database(runs: list[Run]) -> None:
    print()
    print("PostgreSQL per CHAPI request, this database only (pg_stat_database): connections")
    print("opened, transactions, and ms the server spent running statements")
    header = f"{'conc':>4}  {'sessions':>9} {'transactions':>13} {'active ms':>10}"
    print(header)
    print("-" * len(header))
    for run in runs:
        count = max(1, len(run.samples))
        print(
            f"{run.concurrency:>4}  {run.db.get('sessions', 0) / count:9.2f} "
            f"{run.db.get('transactions', 0) / count:13.2f} "
            f"{run.db.get('active_ms', 0) / count:10.2f}"
        )


def print_cpu(pairs: list[tuple[Run, Run]]) -> None:
    print()
    print("CPU ms per request (user+system) during each measurement; 'other' = the rest of")
    print("the machine: PostgreSQL, Redis and anything else running (other workloads too)")
    names: list[str] = []
    for _direct, chapi in pairs:
        names = list(chapi.cpu)
    header = f"{'conc':>4}  {'path':<7} " + " ".join(f"{n:>8}" for n in names)
    print(header)
    print("-" * len(header))
    for direct, chapi in pairs:
        for run in (direct, chapi):
            count = max(1, len(run.samples))
            print(
                f"{run.concurrency:>4}  {run.name:<7} "
                + " ".join(f"{run.cpu.get(n, 0.0) * 1000 / count:8.2f}" for n in names)
            )


def print_stages(bench: Bench, runs: list[Run]) -> None:
    print()
    print("Where a CHAPI request's time goes, ms, median [p99] (timestamps stored by the")
    print("pipeline, same clock as the client's):")
    print("  ingress  client send -> visitor message built (HTTP, middleware, auth, rate limit)")
    print("  queue    -> reply row created by the worker (commit, broker, worker pick-up, loads)")
    print("  generate -> reply completed (history, prompt, upstream call, deltas published)")
    print("  upstream    of which the model call as the pipeline timed it (latency_ms)")
    print("  egress   -> client received (store, commit, publish, web wake-up, response)")
    keys = ("ingress", "queue", "generate", "upstream", "egress", "total")
    header = f"{'conc':>4}  " + " ".join(f"{k:>15}" for k in keys)
    print(header)
    print("-" * len(header))
    for run in runs:
        stages = stage_breakdown(bench, run)
        if not stages["total"]:
            print(f"{run.concurrency:>4}  (no completed requests)")
            continue
        cells = [
            f"{statistics.median(v) * 1000:6.1f} [{percentile(v, 0.99) * 1000:6.1f}]"
            for v in (stages[k] for k in keys)
        ]
        print(f"{run.concurrency:>4}  " + " ".join(f"{c:>15}" for c in cells))


def print_queries(rows: list[dict[str, Any]], *, show_sql: bool = False) -> None:
    print()
    print("Database queries per chat request, by earlier messages in the conversation:")
    header = (
        f"{'history':>7} {'receive':>8} {'generate':>9} {'svc total':>10} "
        f"{'POST /v1/chat':>14}  reply"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['history']:>7} {row['receive']:>8} {row['generate']:>9} "
            f"{row['receive'] + row['generate']:>10} {row['http']:>14}  {row['reply']}"
            + ("" if row["http_status"] == 200 else f"  HTTP {row['http_status']}")
        )
    for row in rows:
        if row["http_status"] != 200:
            status, body = row["http_status"], row.get("http_body")
            print(f"  POST /v1/chat in-process: HTTP {status}: {body!r}")
    for row in rows:
        for key, title in (
            ("receive_sql", "message_receive"),
            ("generate_sql", "reply_generate"),
            ("http_sql", "POST /v1/chat (web + worker)"),
        ):
            if key in row and (show_sql or key == "http_sql"):
                print(f"\n{title}, history {row['history']}: {len(row[key])} queries")
                for i, sql in enumerate(row[key], 1):
                    print(f"  {i:>2}. {' '.join(sql.split())[:160]}")


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> None:
    import django

    python = sys.executable
    print("manage.py setup_platform --no-demo on the scratch database...")
    started = time.perf_counter()
    done = subprocess.run(
        [python, "manage.py", "setup_platform", "--no-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"setup_platform failed:\n{done.stdout}\n{done.stderr}")
    print(f"  done in {time.perf_counter() - started:.1f} s")

    django.setup()
    from django.db import connection

    others = foreign_workers()
    if others:
        raise RuntimeError(
            f"Celery worker(s) {others} already serve this broker ({env['REDIS_URL']}): they "
            "would take the benchmark's tasks. Point REDIS_URL at another Redis database."
        )

    services: list[Service] = []
    try:
        upstream_service = Service(
            "upstream",
            [python, "-m", "tests.fakes.openai_server", "--port", "0", "--latency-ms",
             str(args.latency_ms)],
            env,
            log_dir,
        )  # fmt: skip
        services.append(upstream_service)

        def upstream_url() -> str | None:
            for line in upstream_service.log_text().splitlines():
                if "base_url=" in line:
                    return line.split("base_url=", 1)[1].strip()
            return None

        upstream = wait_for("the fake upstream", upstream_url, services, 30)
        print(f"fake upstream: {upstream} (latency {args.latency_ms:g} ms)")

        bench = product_setup(upstream)
        print(f"company {bench.company.schema_name!r}, API key with the chat scope")

        port = free_port()
        services.append(
            Service(
                "web",
                [python, "-m", "uvicorn", "chapi.asgi:application", "--host", "127.0.0.1",
                 "--port", str(port), "--lifespan", "off", "--no-access-log",
                 "--log-level", "warning"],
                env,
                log_dir,
            )
        )  # fmt: skip
        worker_env = dict(env)
        if args.worker_conn_max_age is not None:
            worker_env["DATABASE_CONN_MAX_AGE"] = str(args.worker_conn_max_age)
        worker_names = [
            f"chapi-bench-chat-{os.getpid()}-{index}@{socket.gethostname()}"
            for index in range(args.workers)
        ]
        for index, worker_name in enumerate(worker_names):
            services.append(
                Service(
                    "worker" if args.workers == 1 else f"worker-{index}",
                    worker_command(python, worker_name, args.worker_concurrency),
                    worker_env,
                    log_dir,
                )
            )  # fmt: skip
        wait_for("the web server's /healthz", lambda: healthz(port), services, 60)
        for worker_name in worker_names:
            wait_for("the Celery worker", partial(worker_ready, worker_name), services, 60)
        print(
            f"uvicorn on 127.0.0.1:{port}, {args.workers} Celery worker process(es) "
            f"({args.worker_concurrency} threads each)"
        )
        print(
            "DATABASE_CONN_MAX_AGE: web "
            f"{env.get('DATABASE_CONN_MAX_AGE', '0 (default)')}, worker "
            f"{worker_env.get('DATABASE_CONN_MAX_AGE', '0 (default)')}; DEBUG={env['DEBUG']}"
        )
        connection.close()  # the in-process connection is not needed while loading

        client = Client(upstream=upstream, web_port=port, key=bench.key, payload=bench.payload)
        bench_pid = os.getpid()

        servers = {
            name: probe
            for name, probe in (
                ("postgres", server_cpu(env["DATABASE_URL"])),
                ("redis", server_cpu(env["REDIS_URL"])),
            )
            if probe is not None
        }

        db_counters = database_counters(env["DATABASE_URL"], args.database)

        def cpu() -> dict[str, float]:
            import psutil

            me = psutil.Process(bench_pid).cpu_times()
            values: dict[str, float] = {}
            for service in services:  # the worker processes count as one "worker"
                name = "worker" if service.name.startswith("worker") else service.name
                values[name] = values.get(name, 0.0) + service.cpu_seconds()
            values["client"] = me.user + me.system
            values.update({name: probe() for name, probe in servers.items()})
            system = psutil.cpu_times()
            busy = system.user + system.system + system.nice + system.irq + system.softirq
            values["other"] = busy - sum(values.values())
            values["machine"] = busy
            return values

        # One warm-up round through everything (imports, first connections, worker threads).
        warm = asyncio.run(measure(client, "chat", 20, 10, 0, cpu))
        print(
            f"warm-up: 20 POST /v1/chat at concurrency 10, {len(warm.ok)} ok in {warm.wall:.1f} s"
        )
        for error in sorted(set(warm.errors))[:5]:
            print(f"  warm-up error: {error}")
        if not warm.ok:
            print("\nWARM-UP FAILED: every POST /v1/chat failed.")
            for service in services:
                print(f"\n--- {service.name} log (last lines) ---\n{service.tail(40)}")

        pairs: list[tuple[Run, Run]] = []
        for level in args.levels:
            warmup = max(2 * level, 10)
            direct = asyncio.run(measure(client, "direct", args.requests, level, warmup, cpu))
            chapi = asyncio.run(
                measure(client, "chat", args.requests, level, warmup, cpu, db_counters)
            )
            chapi.name = "chapi"
            pairs.append((direct, chapi))
            print(
                f"  concurrency {level:>3}: direct p50 {direct.pct(0.5) * 1000:.1f} ms, "
                f"chapi p50 {chapi.pct(0.5) * 1000:.1f} ms, {len(chapi.ok)}/{args.requests} ok"
            )
        turns = max(10, args.requests // 2)
        shared = asyncio.run(
            measure(
                client, "chat", turns, 1, 0, cpu, shared_session=f"bench-shared-{time.time_ns()}"
            )
        )
        shared.name = "shared"

        print_runs(pairs)
        if shared.ok:
            first, last = shared.ok[:10], shared.ok[-10:]
            print(
                f"\nOne conversation of {turns} turns at concurrency 1 (history grows to "
                f"{2 * turns} messages): p50 {ms(shared.pct(0.5))} p95 {ms(shared.pct(0.95))} "
                f"p99 {ms(shared.pct(0.99))} ms; median of the first 10 turns "
                f"{ms(statistics.median(first))}, of the last 10 {ms(statistics.median(last))}"
            )
        if shared.errors:
            print(f"  {len(shared.errors)} error(s): {sorted(set(shared.errors))[:3]}")
        print_cpu(pairs)
        print_database([chapi for _direct, chapi in pairs])
        print_stages(bench, [chapi for _direct, chapi in pairs])
        print_queries(
            count_queries(bench, args.histories, show_sql=args.show_sql), show_sql=args.show_sql
        )

        for service in services:
            report_log(service)
    finally:
        stop_services(services)
        print(f"\nstopped: {', '.join(s.name for s in services) or 'nothing'}")
        from django.db import connections

        connections.close_all()


def report_log(service: Service) -> None:
    """The kinds of warnings and errors in a server's log, counted (numbers and ids masked)."""
    import collections
    import re

    kinds: collections.Counter[str] = collections.Counter()
    for line in service.log_text().splitlines():
        if not re.search(r"WARNING|ERROR|Error\b|Error:|Full\b|Exception", line):
            continue
        if line.startswith((" ", "Traceback", "The above", "During handling")):
            continue  # traceback bodies: their last line names the exception
        line = re.sub(r"^\[?\d{4}-\d\d-\d\d[ T][\d:,.]+(: )?", "", line)
        line = re.sub(r"\[[0-9a-f-]{36}\]", "[id]", line)
        kinds[re.sub(r"\d+", "N", line)[:160]] += 1
    if kinds:
        total = sum(kinds.values())
        print(f"\n{service.name} log ({service.log_path}): {total} warning/error lines")
        for text, count in kinds.most_common(8):
            print(f"  {count:>5} x {text}")


def machine() -> str:
    import platform

    import psutil

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU cores, {psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
        f"Python {platform.python_version()}, load average {load}"
    )


def scratch_run(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, dict[str, str], Path], None],
    name: str,
) -> int:
    """Run a benchmark in a scratch database (`args.database`, dropped unless
    `args.keep_database`) on DATABASE_URL's server, with the embedded PostgreSQL / Redis when
    DATABASE_URL / REDIS_URL are unset, server logs in `args.logs` (or a temporary directory
    removed at the end); everything is stopped and released on Ctrl-C, SIGTERM or failure."""
    from chapi import embedded

    releases: list[Callable[[], bool]] = []
    cleanups: list[Callable[[], object]] = []
    log_dir = args.logs or Path(tempfile.mkdtemp(prefix=f"chapi-bench-{name}-"))
    if args.logs is None:

        def remove_logs() -> None:
            shutil.rmtree(log_dir, ignore_errors=True)
            print(f"removed the server logs ({log_dir}); --logs DIR keeps them")

        cleanups.append(remove_logs)
    log_dir.mkdir(parents=True, exist_ok=True)
    server_url = os.environ.get("DATABASE_URL", "")
    try:
        if not server_url:
            releases.append(embedded.release_postgres)
            server_url = embedded.start_postgres()
            print(f"using the embedded PostgreSQL ({embedded.pg_data_dir()})")
        if not os.environ.get("REDIS_URL"):
            releases.append(embedded.release_redis)
            os.environ["REDIS_URL"] = embedded.start_redis()
            print(f"using the embedded Redis ({embedded.redis_socket_path()})")
        database_recreate(server_url, args.database)
        print(f"scratch database {args.database!r} created; server logs in {log_dir}")
        os.environ["DATABASE_URL"] = with_database(server_url, args.database)
        env = dict(os.environ, PYTHONUNBUFFERED="1", CHAPI_DEV_ROOT=str(ROOT))
        try:
            run(args, env, log_dir)
        finally:
            if args.keep_database:
                print(f"kept database {args.database!r}")
            else:
                database_drop(server_url, args.database)
                print(f"dropped database {args.database!r}")
    except KeyboardInterrupt:
        print("\ninterrupted: everything stopped and cleaned up")
        return 130
    except Stop as exc:
        print(f"\nstopped by {exc}: everything stopped and cleaned up")
        return 143
    finally:
        for cleanup in [*reversed(releases), *cleanups]:
            with contextlib.suppress(Exception):
                cleanup()
    print(f"machine at the end: {machine()}")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")
    os.environ.setdefault("DEBUG", "true")
    for name in ("API_RATE_LIMIT_PER_KEY", "API_RATE_LIMIT_PER_IP", "API_RATE_LIMIT_PER_SESSION"):
        os.environ[name] = HUGE_LIMIT
    print(f"machine: {machine()}")

    return scratch_run(args, run, "chat")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
