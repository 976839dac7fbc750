"""Benchmark: N concurrent web-widget conversations over real websockets.

Starts, in one run, the fake OpenAI-compatible upstream (`tests.fakes.openai_server`: first
token after `--latency-ms`, 50 ms by default, then `--tokens-per-second` pieces, 50 by
default; each reply is the fake's `Echo: <message>`, 41 pieces), the Celery workers (`--workers`
processes, as many as `dev.py run` starts by default; queues `default,llm`, threads pool, 64
threads in all) and, one after the other, each web server of `--servers` (uvicorn and
daphne by default; interleaved level by level), and measures, for each number of
conversations N of `--connections` (default 100, 500, 1000):

* "N concurrent conversations": N websocket connections to `/ws/widget/` open at the same
  time, one visitor (its own session id, so its own conversation) each, all connected and
  past `hello` before any message is sent. Each conversation sends a message every `--pace`
  seconds on average (60), so N/pace messages per second arrive. A round is `--window`
  seconds (12) of that: N x window/pace conversations each send one message at a uniformly
  random moment of the window and wait for the whole reply; round 2 has the same
  conversations send their second message. At the largest N, one more round per `--rates`
  (8 and 12 messages per second, for `--rate-seconds`): the rate that meets the target with
  N connections open. At the `--burst` levels (100, 500), a burst: all N at the same instant.
* added time to first token: the widget's TTFT (client sends the `message` frame -> first
  `delta` frame of the reply) minus the fake upstream's own TTFT, measured directly before
  the servers with the same request (system prompt + the visitor's message, streaming) at
  the same arrival rate for `--direct-seconds` or, for a burst, N at once;
* delivery: per reply, the `delta` frames must chain exactly (offset 0, then each offset the
  UTF-16 length shown so far: a larger offset is a dropped delta, a smaller one a
  duplicate) and their concatenation must equal the final `message` frame's text, which must
  be the fake's answer; replies missing (after `--reply-timeout`), garbled, with an error or
  from the offline fallback are counted, and for a reply that never arrived the database
  tells whether it was stored; the peak of the web process's channel-layer queue is sampled
  (channels_redis drops group messages beyond its capacity without an error);
* memory: RSS of the web server process before connecting, with the N connections idle after
  `hello`, and the difference per connection; the web server is restarted for each N so each
  starts from the same state;
* idle connections one server process holds: connections opened in steps (`--idle-steps`,
  cumulative), each past `hello` and then idle except for the widget's application-level
  ping every 25 s; after `--idle-hold` seconds at each step every connection must answer a
  `ping` with a `pong`. Stops at the first step with failures;
* where the time goes: CPU seconds per message of every process (web server, worker, fake
  upstream, the client, PostgreSQL and Redis when they listen on local TCP ports, the rest of
  the machine), PostgreSQL's counters for the scratch database, and the pipeline's stored
  timestamps (client send -> visitor message stored -> reply row created by the worker ->
  first model token -> first delta at the client).

The client (this process, uvloop when installed) runs on the same machine as the servers and
shares its cores: its CPU use and its event loop's lag are printed with each round. Like a
browser it sends an Origin header and offers permessage-deflate; it opens `--handshakes`
websockets at a time.

It never touches your data: it creates a scratch database (`chapi_bench_widget`) on the server
of DATABASE_URL, migrates it (`manage.py setup_platform --no-demo`), creates one company, a
widget key for the origin http://bench.local (the Origin every client sends), points the
company's assistant profile at the fake upstream, and drops the database at the end, and it
deletes its channel-layer groups from Redis. Without DATABASE_URL / REDIS_URL it starts (and
afterwards releases) the embedded PostgreSQL / Redis. Every process it starts runs in its own
process group and is stopped at the end, also on Ctrl-C or failure. The widget's rate limits
(WIDGET_CONNECTIONS_PER_IP, WIDGET_RATE_LIMIT_PER_IP, WIDGET_RATE_LIMIT_PER_SESSION) are
raised in the servers' environment: every client connects from 127.0.0.1. The Redis database
of REDIS_URL must be the benchmark's own: the run refuses to start if a Celery worker
answers a ping there (it would take the benchmark's tasks).

Run inside the project's virtualenv, from the repository root (about 10 minutes):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chapi_wsbench \\
    REDIS_URL=redis://127.0.0.1:6379/11 DEBUG=true .venv/bin/python bench/widget_ws.py
    .venv/bin/python bench/widget_ws.py                  # embedded PostgreSQL and Redis

Options: --connections 100,500,1000, --servers uvicorn,daphne, --latency-ms 50,
--tokens-per-second 50, --pace 60, --window 12, --rounds 2, --rates 8,12, --rate-seconds 8,
--burst 100,500 ("" for none, like --rates and --idle-steps), --direct-seconds 2,
--idle-steps 1000,2000,5000, --idle-hold 5, --handshakes 50, --workers K (default: as many as
`dev.py run` starts, WORKER_PROCESSES or one per core up to two), --worker-concurrency T
(threads per process; 64 in all by default),
--reply-timeout 30, --seed 1, --database NAME, --keep-database, --logs DIR (keep the
servers' logs there; by default a temporary directory removed at the end). The servers
inherit the environment (DATABASE_CONN_MAX_AGE=... applies to them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from chat_api import (  # noqa: E402 - the REST benchmark's process and statistics helpers
    HUGE_LIMIT,
    STATS_FLUSH,
    UPSTREAM_KEY,
    Service,
    Stop,
    database_counters,
    foreign_workers,
    free_port,
    healthz,
    machine,
    percentile,
    report_log,
    scratch_run,
    server_cpu,
    stop_services,
    wait_for,
    worker_ready,
)
from company_create import (  # noqa: E402 - the benchmarks' Celery worker helpers
    worker_arguments_add,
    worker_arguments_resolve,
    worker_command,
)

ORIGIN = "http://bench.local"
# Multi-byte characters and an emoji (two UTF-16 code units): offsets are counted in UTF-16.
MESSAGE = (
    "Hola 👋, ¿cuánto cuesta el plan mensual, qué incluye exactamente y cómo se compara con "
    "el plan anual? También quisiera saber si hay descuentos para pymes, cómo funciona la "
    "facturación electrónica y si puedo cancelar en cualquier momento sin penalización."
)
EXPECTED = f"Echo: {MESSAGE}"  # what the fake upstream answers
WIDGET_PING = 25.0  # seconds: the widget's application-level ping
WARM_VISITORS = 10
WORKER_QUEUES = ("default", "llm")  # what the benchmark's workers consume (worker_command)
SESSIONS: list[str] = []  # every visitor's session id, for the channel-layer clean-up
SERVERS = ("uvicorn", "daphne")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N concurrent web-widget conversations over websockets, per web server."
    )
    parser.add_argument("--connections", default="100,500,1000", help="levels of N")
    parser.add_argument("--servers", default=",".join(SERVERS), help="uvicorn and/or daphne")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="upstream first token")
    parser.add_argument(
        "--tokens-per-second", type=float, default=50.0, help="upstream pace after the first"
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=60.0,
        help="seconds between two messages of one conversation, on average (rate N/pace)",
    )
    parser.add_argument("--window", type=float, default=12.0, help="seconds of each round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per level")
    parser.add_argument(
        "--burst", default="100,500", help="levels with a burst round (all N at once)"
    )
    parser.add_argument(
        "--rates",
        default="8,12",
        help="extra rounds at the largest N at these message rates (per second)",
    )
    parser.add_argument(
        "--rate-seconds", type=float, default=8.0, help="length of each --rates round"
    )
    parser.add_argument(
        "--handshakes", type=int, default=50, help="websocket handshakes in flight at once"
    )
    parser.add_argument(
        "--direct-seconds",
        type=float,
        default=2.0,
        help="length of the direct upstream baseline at each level's arrival rate",
    )
    parser.add_argument(
        "--idle-steps", default="1000,2000,5000", help="idle connections held, cumulative"
    )
    parser.add_argument(
        "--idle-hold", type=float, default=5.0, help="seconds idle at each step before pings"
    )
    worker_arguments_add(parser)
    parser.add_argument(
        "--reply-timeout", type=float, default=30.0, help="seconds to wait for a reply"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival schedule")
    parser.add_argument(
        "--database", default="chapi_bench_widget", help="scratch database to create (and drop)"
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the scratch database"
    )
    parser.add_argument("--logs", type=Path, default=None, help="keep the servers' logs here")
    args = parser.parse_args(argv)

    def ints(value: str, name: str) -> list[int]:
        try:
            numbers = [int(x) for x in value.split(",") if x.strip()]
        except ValueError:
            parser.error(f"{name} takes comma-separated integers")
        if any(n < 1 for n in numbers):
            parser.error(f"every number of {name} must be at least 1")
        return numbers

    args.levels = ints(args.connections, "--connections")
    worker_arguments_resolve(parser, args)
    args.bursts = set(ints(args.burst, "--burst"))
    args.rate_list = ints(args.rates, "--rates")
    args.steps = sorted(set(ints(args.idle_steps, "--idle-steps")))
    args.server_names = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.levels:
        parser.error("--connections needs at least one level")
    if not args.server_names or any(s not in SERVERS for s in args.server_names):
        parser.error(f"--servers takes a comma-separated subset of {', '.join(SERVERS)}")
    if min(args.pace, args.window, args.direct_seconds, args.rate_seconds, args.handshakes) <= 0:
        parser.error("--pace, --window, --direct-seconds, --rate-seconds, --handshakes must be > 0")
    if args.rounds < 0:
        parser.error("--rounds must be at least 0")
    if not args.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return args


# --------------------------------------------------------------------------- statistics


def utf16(text: str) -> int:
    """Length in UTF-16 code units (JavaScript's `string.length`), as the offsets count."""
    return len(text.encode("utf-16-le")) // 2


def pct(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) if values else float("nan")


def ms(seconds: float, width: int = 7) -> str:
    return f"{seconds * 1000:{width}.1f}"


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def fds(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).num_fds())


def mb(size: float) -> str:
    return f"{size / 2**20:7.1f}"


# --------------------------------------------------------------------------- the client


@dataclass
class Exchange:
    """One visitor message and its reply, as the client saw them (perf_counter times)."""

    visitor: int
    client_id: str
    external_id: str
    sent: float = 0.0
    sent_wall: float = 0.0
    echo: float | None = None
    first_delta: float | None = None
    first_delta_wall: float | None = None
    final: float | None = None
    reply_id: int | None = None
    shown: list[str] = field(default_factory=list)
    expected_offset: int = 0  # UTF-16 length of the text received in order so far
    deltas: int = 0
    gaps: int = 0  # a delta whose offset is past what was received: deltas were dropped
    duplicates: int = 0  # a delta whose offset was already covered
    foreign: int = 0  # deltas of another reply while this one was awaited
    resets: int = 0
    final_text: str | None = None
    error: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def delta(self, offset: int, text: str, now: float) -> None:
        self.deltas += 1
        if self.first_delta is None:
            self.first_delta, self.first_delta_wall = now, time.time()
        if offset == self.expected_offset:
            self.shown.append(text)
            self.expected_offset += utf16(text)
        elif offset < self.expected_offset:
            self.duplicates += 1
        else:
            self.gaps += 1
            self.expected_offset = offset + utf16(text)  # count each gap once

    @property
    def tail_missing(self) -> bool:
        """The final text is longer than the deltas received: the last ones never came."""
        return self.final_text is not None and self.expected_offset < utf16(self.final_text)

    def status(self) -> str:
        if self.final_text is None:
            return self.error or "no answer"
        if self.final_text != EXPECTED:
            return "wrong answer"  # the offline fallback or a cut answer
        if self.deltas == 0:
            return "no deltas"
        if self.gaps or self.tail_missing:
            return "dropped"
        if self.duplicates:
            return "duplicated"
        if "".join(self.shown) != self.final_text:
            return "garbled"
        return "ok"


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (a refused connection may fail `ready` while the
    hello is still being sent, and nobody awaits it then)."""
    if not future.cancelled():
        future.exception()


class Visitor:
    """One browser tab: a websocket to /ws/widget/, its own session id."""

    def __init__(self, index: int, session_id: str) -> None:
        self.index = index
        self.session_id = session_id
        SESSIONS.append(session_id)
        self.ws: Any = None
        self.ready: asyncio.Future[dict[str, Any]] | None = None
        self.current: Exchange | None = None
        self.pong: asyncio.Future[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.failed = ""
        self.closed = ""
        self.errors: list[str] = []
        self.stray = 0  # frames of a reply after it was complete (or of no exchange)
        self.pongs = 0
        self.connect_time = 0.0
        self.extensions = ""

    async def open(self, url: str) -> None:
        from websockets.asyncio.client import connect

        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.ready.add_done_callback(_retrieve)
        began = time.perf_counter()
        # Like a browser: Origin, permessage-deflate offered, no protocol-level pings of its
        # own (the server's are answered).
        self.ws = await connect(
            url,
            origin=ORIGIN,  # type: ignore[arg-type]
            ping_interval=None,
            open_timeout=30,
            close_timeout=2,
            max_size=2**20,
            user_agent_header="chapi-bench-widget",
            proxy=None,
        )
        self.extensions = self.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        self.tasks.append(asyncio.create_task(self.read()))
        hello = {
            "type": "hello",
            "session_id": self.session_id,
            "after": 0,
            "context": {"page": f"{ORIGIN}/precios", "title": "Precios", "language": "es"},
        }
        await self.ws.send(json.dumps(hello))
        await asyncio.wait_for(self.ready, 60)
        self.connect_time = time.perf_counter() - began

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                self.frame(json.loads(raw), time.perf_counter())
        except Exception as exc:  # a reset connection, a frame that is not JSON
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            self.closed = f"closed {self.ws.close_code} {self.ws.close_reason or ''}".strip()
            if self.ready is not None and not self.ready.done():
                self.ready.set_exception(ConnectionError(self.closed))
            if self.current is not None and not self.current.done.is_set():
                self.current.error = self.current.error or self.closed
                self.current.done.set()
            if self.pong is not None and not self.pong.done():
                self.pong.set_exception(ConnectionError(self.closed))

    def frame(self, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        # The exchange waiting for its reply, if any (one message at a time per visitor).
        live = self.current if self.current and not self.current.done.is_set() else None
        if kind == "delta":
            if live is None:
                self.stray += 1
                return
            if live.reply_id is None:
                live.reply_id = frame["message_id"]
            if frame["message_id"] != live.reply_id:
                live.foreign += 1
                return
            live.delta(int(frame["offset"]), str(frame["text"]), now)
        elif kind == "message":
            message = frame["message"]
            role = message.get("role")
            if role == "visitor":
                if live is not None and message.get("client_id") == live.client_id:
                    live.echo = now
            elif role != "assistant":
                self.errors.append(f"unexpected {role} message")
            elif live is None or live.reply_id not in (None, message["id"]):
                self.stray += 1
            else:
                live.reply_id = message["id"]
                live.final, live.final_text = now, message.get("text") or ""
                live.done.set()
        elif kind == "reset":
            if live is not None:
                live.resets += 1
                live.shown, live.expected_offset = [], 0
        elif kind == "pong":
            self.pongs += 1
            if self.pong is not None and not self.pong.done():
                self.pong.set_result(None)
        elif kind == "ready":
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(frame)
        elif kind == "error":
            code = str(frame.get("code"))
            mine = live is not None and frame.get("client_id") == live.client_id
            if live is not None and mine and code != "unavailable":  # unavailable: stored
                live.error = code
                live.done.set()
            self.errors.append(f"error frame {code}: {frame.get('message')}")
            if self.ready is not None and not self.ready.done():
                self.ready.set_exception(ConnectionError(f"error frame {code}"))
        else:
            self.errors.append(f"unknown frame {str(kind)[:40]}")

    async def send_message(self, round_label: str) -> Exchange:
        client_id = f"{round_label}-{uuid.uuid4().hex[:12]}"
        exchange = Exchange(self.index, client_id, f"{self.session_id}:{client_id}")
        self.current = exchange
        payload = json.dumps(
            {"type": "message", "client_id": client_id, "text": MESSAGE}, ensure_ascii=False
        )
        exchange.sent_wall = time.time()
        exchange.sent = time.perf_counter()
        await self.ws.send(payload)
        return exchange

    async def ping(self, timeout: float) -> bool:
        self.pong = asyncio.get_running_loop().create_future()
        self.pong.add_done_callback(_retrieve)
        try:
            await self.ws.send('{"type": "ping"}')
            await asyncio.wait_for(self.pong, timeout)
            return True
        except Exception:
            return False

    def keep_alive(self) -> None:
        """The widget's ping every 25 s (first one at a random moment of the first 25 s)."""

        async def loop() -> None:
            await asyncio.sleep(random.uniform(0, WIDGET_PING))  # noqa: S311 - jitter
            while True:
                with contextlib.suppress(Exception):
                    await self.ws.send('{"type": "ping"}')
                await asyncio.sleep(WIDGET_PING)

        self.tasks.append(asyncio.create_task(loop()))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def connect_all(url: str, visitors: list[Visitor], in_flight: int) -> float:
    """Open every visitor's websocket and say hello, `in_flight` at a time; the wall time."""
    gate = asyncio.Semaphore(in_flight)

    async def one(visitor: Visitor) -> None:
        async with gate:
            try:
                await visitor.open(url)
            except Exception as exc:
                visitor.failed = f"{type(exc).__name__}: {exc}"[:200]

    began = time.perf_counter()
    await asyncio.gather(*(one(v) for v in visitors))
    return time.perf_counter() - began


async def close_all(visitors: list[Visitor], in_flight: int) -> None:
    """Close like tabs closing, `in_flight` at a time (each costs the server channel-layer
    calls: thousands at once would measure the close storm, not the next step)."""
    gate = asyncio.Semaphore(in_flight)

    async def one(visitor: Visitor) -> None:
        async with gate:
            await visitor.close()

    await asyncio.gather(*(one(v) for v in visitors))


class LoopLag:
    """How late the client's event loop wakes up (a busy client delays every timestamp)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            self.samples.append(time.perf_counter() - began - 0.01)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


# --------------------------------------------------------------------------- measurements


@dataclass
class Round:
    label: str  # "round 1", "round 2", "burst"
    level: int
    rate: float  # messages per second offered (inf for a burst)
    exchanges: list[Exchange] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    db: dict[str, float] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)
    stray: int = 0
    direct: list[float] = field(default_factory=list)  # the baseline TTFTs for this round
    stages: dict[str, list[float]] = field(default_factory=dict)
    backlog: int = -1  # peak of the web process's pending channel-layer messages (-1: unknown)
    # Messages without a final `message` frame, by what the database says happened:
    undelivered: int = 0  # stored complete within the wait: the client never got it
    late: int = 0  # stored complete, but after the client stopped waiting
    unanswered: int = 0  # the visitor message was stored, no complete reply (yet)
    unstored: int = 0  # the visitor message was not stored

    @property
    def ttft(self) -> list[float]:
        return [e.first_delta - e.sent for e in self.exchanges if e.first_delta is not None]

    def count(self, status: str) -> int:
        return sum(1 for e in self.exchanges if e.status() == status)

    def added(self, fraction: float) -> float:
        return pct(self.ttft, fraction) - pct(self.direct, fraction)

    @property
    def other(self) -> float:
        """Share of the machine's cores used by other processes during the round (noise)."""
        return self.cpu.get("other", 0.0) / max(self.wall, 1e-9) / (os.cpu_count() or 1)


@dataclass
class Level:
    server: str
    level: int
    connected: int = 0
    failures: list[str] = field(default_factory=list)
    connect_times: list[float] = field(default_factory=list)
    connect_wall: float = 0.0
    rss_before: int = 0
    rss_idle: int = 0
    rss_after: int = 0
    fds_idle: int = 0
    pg_per_connection: float = 0.0  # PostgreSQL connections opened per websocket connection
    extensions: str = ""
    rounds: list[Round] = field(default_factory=list)


@dataclass
class IdleStep:
    target: int
    open: int = 0
    failures: list[str] = field(default_factory=list)
    connect_wall: float = 0.0
    alive: int = 0
    rss: int = 0
    fds: int = 0
    web_cpu: float = 0.0  # share of one core used by the web server while idle
    hold: float = 0.0


@dataclass
class Idle:
    server: str
    rss_before: int = 0
    steps: list[IdleStep] = field(default_factory=list)


@dataclass
class Context:
    args: argparse.Namespace
    url: str  # ws://127.0.0.1:PORT/ws/widget/?key=...
    prefix: str  # of session ids
    cpu: Callable[[], dict[str, float]]
    db: Callable[[], dict[str, float]]
    layer: Layer
    queue_key: str = ""  # the Redis key of the web process's pending channel-layer messages


@dataclass(frozen=True)
class Layer:
    """Where the channel layer keeps things (CHANNEL_LAYERS), and the bench key's group."""

    address: str
    prefix: str
    capacity: int
    key_group: str

    @classmethod
    def from_settings(cls, widget_key_id: int) -> Layer:
        from django.conf import settings

        from apps.widget.services import key_group

        config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
        host = config["hosts"][0]
        address = host["address"] if isinstance(host, dict) else str(host)
        return cls(
            address,
            config.get("prefix", "asgi"),
            int(config.get("capacity", 100)),
            key_group(widget_key_id),
        )

    def forget(self, schema: str, sessions: list[str]) -> int:
        """Delete the bench's channel-layer groups: every conversation group of its schema,
        its widget key's group and its visitors' session groups. A failed group_discard leaves
        a closed connection's channel in its groups for a day (group_expiry), and the next run,
        whose fresh database numbers conversations from 1 again, would send its events to
        those dead channels too."""
        import redis

        from apps.widget.consumers import session_group

        client = redis.Redis.from_url(self.address)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}:group:conv.{schema}.*", count=1000))
            keys.append(f"{self.prefix}:group:{self.key_group}".encode())
            keys += [f"{self.prefix}:group:{session_group(schema, s)}".encode() for s in sessions]
            return sum(int(client.delete(*keys[i : i + 500])) for i in range(0, len(keys), 500))
        finally:
            client.close()

    async def queue_key(self) -> str:
        """The sorted set in which every process-local channel of the newest web process
        waits (channels_redis: one per process, `capacity` messages at most, beyond which
        group_send drops messages without an error), found through the widget key's group."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.address)
        try:
            newest = await client.zrange(f"{self.prefix}:group:{self.key_group}", -1, -1)
        finally:
            await client.aclose()
        if not newest:
            return ""
        channel = newest[0].decode()
        return self.prefix + channel[: channel.find("!") + 1]


class Backlog:
    """Samples the size of the web process's channel-layer queue every 50 ms; the peak."""

    def __init__(self, address: str, key: str) -> None:
        self.address, self.key = address, key
        self.peak = -1
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.address)
        try:
            while True:
                self.peak = max(self.peak, int(await client.zcard(self.key)))
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def __enter__(self) -> Backlog:
        if self.key:
            self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


@dataclass(frozen=True)
class Plan:
    """One round: which conversations send (indexes) and when (seconds from its start)."""

    label: str
    rate: float  # messages per second offered; inf for a burst
    senders: list[int]
    offsets: list[float]


def plans(args: argparse.Namespace, level: int) -> list[Plan]:
    """The rounds of one level. Each conversation sends a message every `--pace` seconds on
    average, so N/pace messages per second arrive: a round is `--window` seconds of that,
    N x window / pace conversations each sending one message at a uniformly random moment of
    it; round 2 has the same conversations send their second message. At the largest level,
    one round per `--rates` (that many messages per second from distinct conversations, for
    `--rate-seconds`), and at the `--burst` levels a burst: every conversation at once."""
    result = []
    rng = random.Random(f"{args.seed}-{level}")  # noqa: S311 - a benchmark schedule
    count = min(level, max(1, round(level * args.window / args.pace)))
    senders = sorted(rng.sample(range(level), count))
    for number in range(1, args.rounds + 1):
        offsets = [rng.uniform(0, args.window) for _ in senders]
        result.append(Plan(f"round {number}", count / args.window, senders, offsets))
    if level == max(args.levels):
        for rate in args.rate_list:
            count = min(level, max(1, round(rate * args.rate_seconds)))
            chosen = sorted(rng.sample(range(level), count))
            offsets = [rng.uniform(0, count / rate) for _ in chosen]
            result.append(Plan(f"{rate}/s", float(rate), chosen, offsets))
    if level in args.bursts:
        result.append(Plan("burst", float("inf"), list(range(level)), [0.0] * level))
    return result


async def direct_round(
    upstream: str, payload: dict[str, Any], offsets: list[float], timeout: float
) -> tuple[list[float], list[str]]:
    """Streaming chat completions straight to the fake upstream at the given offsets; the
    time to the first content chunk of each."""
    import aiohttp

    body = dict(payload, stream=True, stream_options={"include_usage": True})
    url = f"{upstream.rstrip('/')}/chat/completions"
    headers = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        start = time.perf_counter() + 0.2

        async def one(offset: float) -> float | None:
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            began = time.perf_counter()
            first: float | None = None
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    async for line in response.content:
                        if first is None and line.startswith(b"data: {"):
                            chunk = json.loads(line[6:])
                            if any(
                                (c.get("delta") or {}).get("content")
                                for c in chunk.get("choices") or []
                            ):
                                first = time.perf_counter() - began
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return None
            return first

        results = await asyncio.gather(*(one(o) for o in offsets))
    return [r for r in results if r is not None], errors


async def widget_round(ctx: Context, level: int, visitors: list[Visitor], plan: Plan) -> Round:
    """Every visitor of the plan sends its message at its moment and waits for the reply."""
    label, offsets = plan.label, plan.offsets
    result = Round(label, level, plan.rate)
    stray_before = sum(v.stray for v in visitors)
    db_before = ctx.db()
    cpu_before = ctx.cpu()
    start = time.perf_counter() + 0.2

    async def one(visitor: Visitor, offset: float) -> Exchange:
        await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
        try:
            exchange = await visitor.send_message(label.replace(" ", "").replace("/", "p"))
        except Exception as exc:
            exchange = visitor.current or Exchange(visitor.index, "", "")
            exchange.error = f"send: {type(exc).__name__}"
            return exchange
        try:
            await asyncio.wait_for(exchange.done.wait(), ctx.args.reply_timeout)
        except TimeoutError:
            exchange.error = exchange.error or "timeout"
        return exchange

    with LoopLag() as lag, Backlog(ctx.layer.address, ctx.queue_key) as backlog:
        began = time.perf_counter()
        result.exchanges = await asyncio.gather(
            *(one(v, o) for v, o in zip(visitors, offsets, strict=True))
        )
        result.wall = time.perf_counter() - began
        cpu_after = ctx.cpu()
        await asyncio.sleep(STATS_FLUSH)  # late frames show up as stray; PG stats flush
    result.backlog = backlog.peak
    result.db = {k: v - db_before.get(k, 0.0) for k, v in ctx.db().items()}
    result.cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
    result.lag = lag.samples
    result.stray = sum(v.stray for v in visitors) - stray_before
    result.stray += sum(e.foreign for e in result.exchanges)
    return result


async def warm_up(ctx: Context, name: str) -> list[str]:
    """A few conversations through everything (imports, first connections, thread pools)."""
    visitors = [Visitor(i, f"{ctx.prefix}-{name}-warm-{i}") for i in range(WARM_VISITORS)]
    await connect_all(ctx.url, visitors, ctx.args.handshakes)
    problems = [v.failed for v in visitors if v.failed]
    live = [v for v in visitors if not v.failed]
    exchanges = await asyncio.gather(*(v.send_message("warm") for v in live))
    for exchange in exchanges:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exchange.done.wait(), 60)
        if exchange.status() != "ok":
            problems.append(f"warm-up reply: {exchange.status()}")
    await close_all(visitors, ctx.args.handshakes)
    return problems


async def level_run(ctx: Context, server: str, pid: int, level: int) -> Level:
    result = Level(server, level)
    for problem in await warm_up(ctx, f"{server}{level}"):
        result.failures.append(problem)
    await asyncio.sleep(1.0)
    result.rss_before = rss(pid)
    visitors = [Visitor(i, f"{ctx.prefix}-{server}{level}-{i}") for i in range(level)]
    db_before = ctx.db()
    result.connect_wall = await connect_all(ctx.url, visitors, ctx.args.handshakes)
    live = [v for v in visitors if not v.failed]
    result.connected = len(live)
    result.failures += [v.failed for v in visitors if v.failed]
    result.connect_times = [v.connect_time for v in live]
    result.extensions = live[0].extensions if live else ""
    await asyncio.sleep(2.0)
    result.rss_idle, result.fds_idle = rss(pid), fds(pid)
    opened = ctx.db().get("sessions", 0.0) - db_before.get("sessions", 0.0)
    result.pg_per_connection = opened / max(1, result.connected)
    ctx.queue_key = await ctx.layer.queue_key()
    for plan in plans(ctx.args, level):
        pairs = [(i, o) for i, o in zip(plan.senders, plan.offsets, strict=True) if i < len(live)]
        plan = Plan(plan.label, plan.rate, [i for i, _ in pairs], [o for _, o in pairs])
        senders = [live[i] for i in plan.senders]
        result.rounds.append(await widget_round(ctx, level, senders, plan))
        done = result.rounds[-1]
        bad = len(done.exchanges) - done.count("ok")
        print(
            f"    {plan.label:<8} {len(done.exchanges)} messages in {done.wall:5.1f} s: TTFT p50 "
            f"{ms(pct(done.ttft, 0.5)).strip()} p95 {ms(pct(done.ttft, 0.95)).strip()} ms, "
            f"{bad} not ok",
            flush=True,
        )
    result.rss_after = rss(pid)
    await close_all(visitors, ctx.args.handshakes)
    return result


async def ping_all(visitors: list[Visitor], in_flight: int) -> list[bool]:
    """Every visitor sends a `ping`; whether its `pong` came back within 15 s."""
    gate = asyncio.Semaphore(in_flight)

    async def check(visitor: Visitor) -> bool:
        async with gate:
            return await visitor.ping(15)

    return await asyncio.gather(*(check(v) for v in visitors))


async def idle_run(ctx: Context, server: str, pid: int, steps: list[int], hold: float) -> Idle:
    import psutil

    result = Idle(server)
    for problem in await warm_up(ctx, f"{server}idle"):
        print(f"    warm-up problem: {problem}")
    await asyncio.sleep(1.0)
    result.rss_before = rss(pid)
    visitors: list[Visitor] = []
    process = psutil.Process(pid)
    try:
        for target in steps:
            step = IdleStep(target)
            new = [
                Visitor(i, f"{ctx.prefix}-{server}idle-{i}") for i in range(len(visitors), target)
            ]
            visitors += new
            step.connect_wall = await connect_all(ctx.url, new, ctx.args.handshakes)
            for visitor in new:
                if visitor.failed:
                    step.failures.append(visitor.failed)
                else:
                    visitor.keep_alive()
            live = [v for v in visitors if not v.failed and not v.closed]
            step.open = len(live)
            cpu_before = sum(process.cpu_times()[:2])
            began = time.perf_counter()
            await asyncio.sleep(hold)
            step.hold = time.perf_counter() - began
            step.web_cpu = (sum(process.cpu_times()[:2]) - cpu_before) / step.hold
            answers = await ping_all(live, 500)
            step.alive = sum(answers)
            step.rss, step.fds = rss(pid), fds(pid)
            result.steps.append(step)
            print(
                f"    {step.open} open ({len(step.failures)} failed) in "
                f"{step.connect_wall:.1f} s, {step.alive} answered a ping after "
                f"{step.hold:.0f} s idle; RSS {mb(step.rss).strip()} MB",
                flush=True,
            )
            if step.failures or step.alive < step.open:
                break
    finally:
        await close_all(visitors, ctx.args.handshakes)
    return result


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --------------------------------------------------------------------------- the product side


@dataclass
class Bench:
    company: Any
    key: str
    key_id: int
    payload: dict[str, Any]  # the upstream request CHAPI sends for the first message


def product_setup(upstream: str) -> Bench:
    """The bench company, its widget key (origin http://bench.local), its profile pointed at
    the fake upstream, and the upstream request CHAPI composes for a first message."""
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from apps.assistants.models import Provider
    from apps.assistants.prompting import assistant_config_load, messages_compose
    from apps.assistants.services import assistant_profile_get
    from apps.tenants.services import company_create
    from apps.widget.services import widget_key_create

    created = company_create(
        name="Bench Widget",
        slug="bench-widget",
        owner_email="owner@bench-widget.bench.example.com",
        owner_name="Bench Owner",
        owner_password=None,
    )
    company = created.company
    widget_key = widget_key_create(company=company, name="bench", origins=[ORIGIN])
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
    return Bench(company=company, key=widget_key.key, key_id=widget_key.pk, payload=payload)


def stage_breakdown(bench: Bench, rounds: list[Round], timeout: float) -> None:
    """Per message, seconds between the timestamps the pipeline stores (same clock), and
    what the database says about the messages whose reply never reached the client."""
    from django_tenants.utils import tenant_context

    from apps.conversations.models import Channel, Message

    for result in rounds:
        by_id = {e.external_id: e for e in result.exchanges if e.external_id}
        stages: dict[str, list[float]] = {
            k: [] for k in ("ingress", "queue", "model", "delivery", "ttft")
        }
        found: set[str] = set()
        with tenant_context(bench.company):
            ids = list(by_id)
            for start in range(0, len(ids), 1000):
                visitors = Message.objects.filter(
                    channel=Channel.WEB, external_id__in=ids[start : start + 1000]
                ).select_related("reply")
                for visitor in visitors:
                    exchange = by_id[visitor.external_id]
                    found.add(visitor.external_id)
                    reply = getattr(visitor, "reply", None)
                    if exchange.final_text is None:
                        if reply is None or reply.completed_at is None:
                            result.unanswered += 1
                        elif reply.completed_at.timestamp() < exchange.sent_wall + timeout - 1:
                            result.undelivered += 1
                        else:
                            result.late += 1
                    if exchange.first_delta_wall is None or reply is None:
                        continue
                    if reply.ttft_ms is None:
                        continue
                    created, started = visitor.created_at.timestamp(), reply.created_at.timestamp()
                    token = started + reply.ttft_ms / 1000
                    stages["ingress"].append(created - exchange.sent_wall)
                    stages["queue"].append(started - created)
                    stages["model"].append(reply.ttft_ms / 1000)
                    stages["delivery"].append(exchange.first_delta_wall - token)
                    stages["ttft"].append(exchange.first_delta_wall - exchange.sent_wall)
        result.unstored = sum(
            1 for e in result.exchanges if e.final_text is None and e.external_id not in found
        )
        result.stages = stages


# --------------------------------------------------------------------------- reporting


def status_counts(result: Round) -> str:
    counts: dict[str, int] = {}
    for exchange in result.exchanges:
        status = exchange.status()
        if status != "ok":
            counts[status] = counts.get(status, 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "-"
    fates = [
        f"{n} {what}"
        for n, what in (
            (result.undelivered, "stored complete in time but never delivered"),
            (result.late, "completed after the client gave up"),
            (result.unanswered, "stored, no complete reply"),
            (result.unstored, "not stored"),
        )
        if n
    ]
    return text + (f" ({'; '.join(fates)})" if fates else "")


def print_summary(levels: dict[str, list[Level]], servers: list[str]) -> None:
    print()
    print(
        "Added TTFT (widget: client sends `message` -> first `delta` frame, minus the fake\n"
        "upstream's own TTFT measured directly at the same arrival rate), ms, nearest-rank;\n"
        "lost = replies whose deltas did not chain exactly to the final text, or missing;\n"
        "dup = duplicated delta frames; other = share of the machine used meanwhile by other\n"
        "processes (noise). Rate: messages per second offered (burst: all at once)."
    )
    header = f"{'N':>5} {'round':<8} {'msg/s':>6} {'direct p50/p95':>15} |"
    for server in servers:
        header += f" {server + ' added p50/p95':>22} {'lost':>5} {'dup':>4} {'other':>5} |"
    print(header)
    print("-" * len(header))
    first = levels[servers[0]]
    for index, level in enumerate(first):
        for r, result in enumerate(level.rounds):
            rate = "all" if result.label == "burst" else f"{result.rate:6.1f}"
            line = (
                f"{level.level:>5} {result.label:<8} {rate:>6} "
                f"{ms(pct(result.direct, 0.5), 6)}/{ms(pct(result.direct, 0.95), 6).strip():<7} |"
            )
            for server in servers:
                other = levels[server][index].rounds[r]
                lost = len(other.exchanges) - sum(
                    1 for e in other.exchanges if e.status() in ("ok", "duplicated")
                )
                dups = sum(e.duplicates for e in other.exchanges) + other.stray
                line += (
                    f" {ms(other.added(0.5), 10)}/{ms(other.added(0.95), 10).strip():<11} "
                    f"{lost:>5} {dups:>4} {other.other:>5.0%} |"
                )
            print(line)


def print_details(levels: dict[str, list[Level]], servers: list[str]) -> None:
    print()
    print("Per round, ms: TTFT and added TTFT (p50 / p95 / p99), the echo of the visitor's")
    print("message, the whole reply (send -> final `message`), deltas per reply, the client's")
    print("event-loop lag (p99 / max), the peak of the web process's channel-layer queue")
    print("(`queue`: beyond its capacity group_send drops events silently), and replies that")
    print("were not ok, with what the database says of those that never got their reply")
    header = (
        f"{'server':<8} {'N':>5} {'round':<8} {'ok/n':>10} {'TTFT p50':>8} {'p95':>7} "
        f"{'p99':>7} {'added p50':>9} {'p95':>7} {'p99':>7} {'echo p50':>8} "
        f"{'reply p50':>9} {'p95':>7} {'deltas':>6} {'lag p99':>7} {'max':>6} {'queue':>5}"
        "  not ok"
    )
    print(header)
    print("-" * len(header))
    for server in servers:
        for level in levels[server]:
            for result in level.rounds:
                ex = result.exchanges
                echo = [e.echo - e.sent for e in ex if e.echo is not None]
                whole = [e.final - e.sent for e in ex if e.final is not None]
                deltas = statistics.mean([e.deltas for e in ex]) if ex else 0.0
                ttft = result.ttft
                print(
                    f"{server:<8} {level.level:>5} {result.label:<8} "
                    f"{result.count('ok'):>5}/{len(ex):<4} {ms(pct(ttft, 0.5), 8)} "
                    f"{ms(pct(ttft, 0.95))} {ms(pct(ttft, 0.99))} {ms(result.added(0.5), 9)} "
                    f"{ms(result.added(0.95))} {ms(result.added(0.99))} "
                    f"{ms(pct(echo, 0.5), 8)} {ms(pct(whole, 0.5), 9)} {ms(pct(whole, 0.95))} "
                    f"{deltas:6.1f} {ms(pct(result.lag, 0.99))} {ms(max(result.lag or [0]), 6)}"
                    f" {result.backlog:>5}  {status_counts(result)}"
                    + (f", {result.stray} stray frames" if result.stray else "")
                )


def print_memory(levels: dict[str, list[Level]], servers: list[str], handshakes: int) -> None:
    print()
    print("Web server memory (RSS, MB) before connecting, with N connections idle after")
    print("`hello`, and after the rounds; KB per connection = (idle - before) / N; handshake")
    print(f"+ hello -> ready, ms ({handshakes} handshakes in flight); PostgreSQL connections")
    print("opened per websocket connection (connect + hello); compression negotiated")
    header = (
        f"{'server':<8} {'N':>5} {'open':>5} {'before':>7} {'idle':>7} {'after':>7} "
        f"{'KB/conn':>7} {'fds':>6} {'connect p50':>11} {'p95':>7} {'conn/s':>7} "
        f"{'pg/conn':>7}  compression"
    )
    print(header)
    print("-" * len(header))
    for server in servers:
        for level in levels[server]:
            per = (level.rss_idle - level.rss_before) / max(1, level.connected) / 1024
            rate = level.connected / level.connect_wall if level.connect_wall else 0.0
            print(
                f"{server:<8} {level.level:>5} {level.connected:>5} {mb(level.rss_before)} "
                f"{mb(level.rss_idle)} {mb(level.rss_after)} {per:7.1f} {level.fds_idle:>6} "
                f"{ms(pct(level.connect_times, 0.5), 11)} {ms(pct(level.connect_times, 0.95))} "
                f"{rate:7.0f} {level.pg_per_connection:7.2f}  {level.extensions or 'none'}"
            )
    for server in servers:
        for level in levels[server]:
            if level.failures:
                print(f"  {server} N={level.level}: {len(level.failures)} failure(s):")
                for failure in sorted(set(level.failures))[:5]:
                    print(f"    {failure}")


def print_cpu(levels: dict[str, list[Level]], servers: list[str]) -> None:
    print()
    print("CPU ms per message (user+system) during each round. PostgreSQL and Redis are whole")
    print("servers (other databases' work included); 'total' = every column but 'other', the")
    print("rest of the machine (other workloads); 'busy' = the machine's busy share of its")
    print("cores. PostgreSQL counters of the scratch database only, per message: connections")
    print("opened, transactions, ms spent running statements")
    names: list[str] = []
    for server in servers:
        for level in levels[server]:
            for result in level.rounds:
                names = [n for n in result.cpu if n not in ("machine", "other")]
                break
    header = (
        f"{'server':<8} {'N':>5} {'round':<8} "
        + " ".join(f"{n:>8}" for n in [*names, "total", "other"])
        + f" {'busy':>5} {'pg conn':>7} {'pg xact':>7} {'pg ms':>6}"
    )
    print(header)
    print("-" * len(header))
    cores = os.cpu_count() or 1
    for server in servers:
        for level in levels[server]:
            for result in level.rounds:
                count = max(1, len(result.exchanges))
                total = sum(result.cpu.get(n, 0.0) for n in names)
                busy = result.cpu.get("machine", 0.0) / max(result.wall, 1e-9) / cores
                print(
                    f"{server:<8} {level.level:>5} {result.label:<8} "
                    + " ".join(f"{result.cpu.get(n, 0.0) * 1000 / count:8.2f}" for n in names)
                    + f" {total * 1000 / count:8.2f}"
                    f" {result.cpu.get('other', 0.0) * 1000 / count:8.2f} {busy:5.0%}"
                    f" {result.db.get('sessions', 0) / count:7.2f}"
                    f" {result.db.get('transactions', 0) / count:7.2f}"
                    f" {result.db.get('active_ms', 0) / count:6.1f}"
                )


def print_stages(levels: dict[str, list[Level]], servers: list[str]) -> None:
    print()
    print("Where the time to first token goes, ms, median [p95] (the pipeline's stored")
    print("timestamps, same clock as the client's):")
    print("  ingress   client send -> visitor message stored (frame, rate limit, DB thread)")
    print("  queue     -> reply row created by the worker (commit, echo, schedule, broker,")
    print("            worker pick-up, lock, loads)")
    print("  model     model call to its first token, as the pipeline timed it (ttft_ms)")
    print("  delivery  the rest: history and budget reads, publish, channel layer, web, client")
    keys = ("ingress", "queue", "model", "delivery", "ttft")
    header = f"{'server':<8} {'N':>5} {'round':<8} " + " ".join(f"{k:>15}" for k in keys)
    print(header)
    print("-" * len(header))
    for server in servers:
        for level in levels[server]:
            for result in level.rounds:
                stages = result.stages
                if not stages.get("ttft"):
                    print(f"{server:<8} {level.level:>5} {result.label:<8} (no data)")
                    continue
                cells = [
                    f"{statistics.median(stages[k]) * 1000:6.1f} [{ms(pct(stages[k], 0.95), 6)}]"
                    for k in keys
                ]
                print(
                    f"{server:<8} {level.level:>5} {result.label:<8} "
                    + " ".join(f"{c:>15}" for c in cells)
                )


def print_idle(idles: list[Idle]) -> None:
    print()
    print("Idle connections held by one web server process (cumulative steps; each past")
    print("`hello`, then idle but for the widget's 25 s ping; 'alive' answered a ping after")
    print("the hold); KB/conn = (RSS - RSS before the first step) / open; web CPU while idle")
    header = (
        f"{'server':<8} {'target':>6} {'open':>6} {'failed':>6} {'alive':>6} {'RSS MB':>7} "
        f"{'KB/conn':>7} {'fds':>6} {'conn/s':>7} {'web CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    for idle in idles:
        previous = 0
        for step in idle.steps:
            per = (step.rss - idle.rss_before) / max(1, step.open) / 1024
            rate = (step.target - previous) / step.connect_wall if step.connect_wall else 0.0
            previous = step.target
            print(
                f"{idle.server:<8} {step.target:>6} {step.open:>6} {len(step.failures):>6} "
                f"{step.alive:>6} {mb(step.rss)} {per:7.1f} {step.fds:>6} {rate:7.0f} "
                f"{step.web_cpu:7.1%}"
            )
            for failure in sorted(set(step.failures))[:3]:
                print(f"    {failure}")
        if idle.steps:
            last = idle.steps[-1]
            verdict = (
                "held every connection of the last step"
                if last.alive == last.open == last.target
                else "stopped: failures at this step"
            )
            print(f"  {idle.server}: {last.alive} alive of {last.target}; {verdict}")


def print_verdict(levels: dict[str, list[Level]], servers: list[str]) -> None:
    print()
    print("Target: 1000 concurrent conversations, added TTFT p95 <= 100 ms, nothing lost:")
    for server in servers:
        largest = max(level.level for level in levels[server])
        best = 0.0
        for level in levels[server]:
            for result in level.rounds:
                lost = len(result.exchanges) - result.count("ok") + result.stray
                met = result.added(0.95) <= 0.1 and lost == 0
                rate = "all at once" if result.label == "burst" else f"{result.rate:.1f} msg/s"
                print(
                    f"  {server:<8} N={result.level:<5} {result.label:<8} {rate:>12}: added "
                    f"p95 {ms(result.added(0.95)).strip()} ms, {lost} lost or not ok -> "
                    f"{'met' if met else 'NOT met'}"
                )
                if met and result.level == largest and result.label != "burst":
                    best = max(best, result.rate)
        print(
            f"  {server}: with {largest} conversations open, the highest rate tried that meets "
            "the target: " + (f"{best:.1f} messages per second" if best else "none")
        )
    if len(servers) < 2:
        return
    first, second = servers[0], servers[1]
    wins = {first: 0, second: 0}
    cpu: dict[str, list[float]] = {first: [], second: []}
    for a, b in zip(levels[first], levels[second], strict=True):
        for ra, rb in zip(a.rounds, b.rounds, strict=True):
            for fraction in (0.5, 0.95):
                wins[first if ra.added(fraction) <= rb.added(fraction) else second] += 1
            for server, result in ((first, ra), (second, rb)):
                cpu[server].append(result.cpu.get("web", 0.0) / max(1, len(result.exchanges)))
    total = sum(wins.values())
    faster = max(wins, key=lambda s: wins[s])
    print(
        f"  added TTFT p50 and p95, round by round: {first} lower in {wins[first]} of {total}, "
        f"{second} in {wins[second]}; web server CPU per message, median over the rounds: "
        f"{first} {statistics.median(cpu[first]) * 1000:.1f} ms, {second} "
        f"{statistics.median(cpu[second]) * 1000:.1f} ms -> faster: {faster}"
    )


# --------------------------------------------------------------------------- the run


def purge_tasks() -> int:
    """Drop the tasks waiting in the benchmark's broker: a run stopped with replies still
    queued leaves them there (acks_late: a stopping worker puts its unfinished tasks back),
    and the next run's worker would spend its time on message ids of a dropped database."""
    from chapi.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        return sum(int(channel.queue_purge(queue) or 0) for queue in WORKER_QUEUES)


def report_tracebacks(service: Service) -> None:
    """The exceptions in a server's log, by where they were raised from: the innermost frame
    of the project's code (or of channels' consumer), e.g. which call ran out of Redis
    connections."""
    import collections
    import re

    frame_re = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
    kinds: collections.Counter[str] = collections.Counter()
    frames: list[str] = []
    inside = False
    for line in service.log_text().splitlines():
        if line.startswith("Traceback (most recent call last):"):
            inside, frames = True, []
        elif inside and (match := frame_re.search(line)):
            path, number, function = match.groups()
            if "/apps/" in path or "/chapi/" in path or "channels/generic" in path:
                short = re.split(r"/site-packages/|^" + re.escape(f"{ROOT}/"), path)[-1]
                frames.append(f"{short}:{number} {function}")
        elif inside and line and not line.startswith(" "):
            inside = False
            exception = line.split(":", 1)[0].rsplit(".", 1)[-1]
            kinds[f"{exception} from {frames[-1] if frames else '?'}"] += 1
    if kinds:
        print(f"  {service.name}: exceptions by where they were raised")
        for text, count in kinds.most_common(6):
            print(f"    {count:>5} x {text}")


def stop_timed(web: Service) -> None:
    began = time.perf_counter()
    stop_services([web])
    took = time.perf_counter() - began
    if took > 2:
        print(f"    {web.name} took {took:.1f} s to stop")


def web_service(server: str, name: str, port: int, env: dict[str, str], log_dir: Path) -> Service:
    python = sys.executable
    if server == "uvicorn":
        command = [python, "-m", "uvicorn", "chapi.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port), "--lifespan", "off", "--ws-max-size", "65536",
                   "--ws-per-message-deflate", "false",  # as in production
                   "--no-access-log", "--log-level", "warning",
                   # As in production (docs/configuration.md, there 10 s): a consumer's
                   # channel-layer receive sometimes outlives its client and uvicorn would wait
                   # for it forever (tests/browser/widget_live.py); the log then says "Cancel
                   # N running task(s)".
                   "--timeout-graceful-shutdown", "3"]  # fmt: skip
    else:
        # The same listen backlog as uvicorn's default (Twisted's is 50); no access log.
        command = [python, "-m", "daphne", "-e",
                   f"tcp:port={port}:interface=127.0.0.1:backlog=2048", "-v", "0",
                   "chapi.asgi:application"]  # fmt: skip
    return Service(name, command, env, log_dir)


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
    purged = purge_tasks()
    if purged:
        print(f"  purged {purged} task(s) an earlier run left in the broker")

    services: list[Service] = []  # running now
    finished: list[Service] = []  # stopped web servers, for their logs
    bench: Bench | None = None
    layer: Layer | None = None
    try:
        upstream_service = Service(
            "upstream",
            [python, "-m", "tests.fakes.openai_server", "--port", "0", "--latency-ms",
             str(args.latency_ms), "--tokens-per-second", str(args.tokens_per_second)],
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
        bench = product_setup(upstream)
        pieces = len(EXPECTED.split())
        print(
            f"fake upstream {upstream}: first token after {args.latency_ms:g} ms, then "
            f"{args.tokens_per_second:g} tokens/s; each reply is {pieces} pieces "
            f"({utf16(EXPECTED)} UTF-16 units, about "
            f"{args.latency_ms / 1000 + (pieces - 1) / args.tokens_per_second:.2f} s)"
        )
        print(f"company {bench.company.schema_name!r}, widget key for origin {ORIGIN}")

        workers: list[Service] = []
        for index in range(args.workers):
            worker_name = f"chapi-bench-widget-{os.getpid()}-{index}@{socket.gethostname()}"
            worker = Service(
                "worker" if args.workers == 1 else f"worker-{index}",
                worker_command(python, worker_name, args.worker_concurrency),
                env,
                log_dir,
            )  # fmt: skip
            services.append(worker)
            workers.append(worker)
            wait_for("the Celery worker", partial(worker_ready, worker_name), services, 60)
        print(
            f"{args.workers} Celery worker process(es) (threads pool, {args.worker_concurrency} "
            f"threads each); DATABASE_CONN_MAX_AGE "
            f"{env.get('DATABASE_CONN_MAX_AGE', '0 (default)')}; DEBUG={env['DEBUG']}"
        )
        connection.close()

        probes = {
            name: probe
            for name, probe in (
                ("postgres", server_cpu(env["DATABASE_URL"])),
                ("redis", server_cpu(env["REDIS_URL"])),
            )
            if probe is not None
        }
        bench_pid = os.getpid()
        web_now: list[Service] = []

        def cpu() -> dict[str, float]:
            import psutil

            me = psutil.Process(bench_pid).cpu_times()
            values = {"web": sum(s.cpu_seconds() for s in web_now)}
            values["worker"] = sum(w.cpu_seconds() for w in workers)
            values["upstream"] = upstream_service.cpu_seconds()
            values["client"] = me.user + me.system
            values.update({name: probe() for name, probe in probes.items()})
            system = psutil.cpu_times()
            busy = system.user + system.system + system.nice + system.irq + system.softirq
            values["other"] = busy - sum(values.values())
            values["machine"] = busy
            return values

        db_counters = database_counters(env["DATABASE_URL"], args.database)
        layer = Layer.from_settings(bench.key_id)
        print(
            f"channel layer: {layer.capacity} pending events at most per web process (all its "
            "connections share one Redis sorted set; channels_redis's group_send drops the "
            "rest without an error)"
        )
        schema = bench.company.schema_name
        forgotten = layer.forget(schema, [])
        if forgotten:
            print(f"  deleted {forgotten} channel-layer group(s) left by an earlier run")

        # The baseline: the fake upstream alone, same request, same arrival rates.
        print(
            f"\ndirect upstream baseline (streaming, same request): {args.direct_seconds:g} s "
            "at each arrival rate of the rounds, and each burst at once:"
        )
        baselines: dict[float | tuple[str, int], list[float]] = {}
        wanted: list[float | tuple[str, int]] = []
        for level in args.levels:
            for plan in plans(args, level):
                key = ("burst", level) if plan.label == "burst" else plan.rate
                if key not in wanted:
                    wanted.append(key)
        for key in wanted:
            if isinstance(key, tuple):
                offsets = [0.0] * key[1]
                what = f"burst of {key[1]}"
            else:
                count = max(1, round(key * args.direct_seconds))
                rng = random.Random(f"{args.seed}-direct-{key}")  # noqa: S311
                offsets = [rng.uniform(0, args.direct_seconds) for _ in range(count)]
                what = f"{key:6.1f}/s x {args.direct_seconds:g} s"
            ttft, errors = run_async(
                direct_round(upstream, bench.payload, offsets, args.reply_timeout)
            )
            baselines[key] = ttft
            print(
                f"  {what:<18} {len(ttft):>4}/{len(offsets):<4} ok, TTFT p50 "
                f"{ms(pct(ttft, 0.5)).strip()} p95 {ms(pct(ttft, 0.95)).strip()} "
                f"p99 {ms(pct(ttft, 0.99)).strip()} ms"
            )
            for error in sorted(set(errors))[:3]:
                print(f"    error: {error}")

        levels: dict[str, list[Level]] = {s: [] for s in args.server_names}
        prefix = f"wsb{os.getpid()}"
        # Interleaved (every server at a level, then the next level): drifting machine load
        # weighs on both alike.
        for level in args.levels:
            for server in args.server_names:
                port = free_port()
                web = web_service(server, f"{server}-{level}", port, env, log_dir)
                services.append(web)
                web_now[:] = [web]
                try:
                    wait_for(f"{server}'s /healthz", lambda p=port: healthz(p), services, 60)
                    print(f"\n{server} (pid {web.proc.pid}), N={level}:", flush=True)
                    ctx = Context(
                        args,
                        f"ws://127.0.0.1:{port}/ws/widget/?key={bench.key}",
                        prefix,
                        cpu,
                        db_counters,
                        layer,
                    )
                    result = run_async(level_run(ctx, server, web.proc.pid, level))
                finally:
                    stop_timed(web)
                    services.remove(web)
                    finished.append(web)
                    web_now[:] = []
                for round_ in result.rounds:
                    burst = round_.label == "burst"
                    round_.direct = baselines[("burst", level) if burst else round_.rate]
                stage_breakdown(bench, result.rounds, args.reply_timeout)
                connection.close()
                levels[server].append(result)

        idles: list[Idle] = []
        if args.steps:
            for server in args.server_names:
                port = free_port()
                web = web_service(server, f"{server}-idle", port, env, log_dir)
                services.append(web)
                try:
                    wait_for(f"{server}'s /healthz", lambda p=port: healthz(p), services, 60)
                    print(f"\n{server} (pid {web.proc.pid}), idle connections:", flush=True)
                    ctx = Context(
                        args,
                        f"ws://127.0.0.1:{port}/ws/widget/?key={bench.key}",
                        prefix,
                        cpu,
                        db_counters,
                        layer,
                    )
                    idles.append(
                        run_async(idle_run(ctx, server, web.proc.pid, args.steps, args.idle_hold))
                    )
                finally:
                    stop_timed(web)
                    services.remove(web)
                    finished.append(web)

        print(
            f"\nThe client (this process, {'uvloop' if has_uvloop() else 'asyncio'}) runs on "
            f"the same {os.cpu_count()} cores as the servers: its CPU is in the tables."
        )
        print(
            "N concurrent conversations: N websockets open at once (all past hello before the "
            "first message), one visitor and conversation each. Each conversation sends a "
            f"message every {args.pace:g} s on average, so N/{args.pace:g} messages per second "
            f"arrive: a round is {args.window:g} s of that (N x {args.window:g}/{args.pace:g} "
            "conversations, each sending at a uniformly random moment, and waiting for the "
            "whole reply); round 2 = the same conversations' second message. 'R/s' rounds: R "
            f"messages per second for {args.rate_seconds:g} s with N open; burst: all N at "
            "the same instant."
        )
        servers = args.server_names
        print_summary(levels, servers)
        print_details(levels, servers)
        print_memory(levels, servers, args.handshakes)
        print_cpu(levels, servers)
        print_stages(levels, servers)
        if idles:
            print_idle(idles)
        print_verdict(levels, servers)
        for service in [*finished, *services]:
            report_log(service)
        print()
        for service in [*finished, *services]:
            report_tracebacks(service)
    finally:
        stop_services(services)
        with contextlib.suppress(Exception):
            purge_tasks()
        if layer is not None and bench is not None:
            with contextlib.suppress(Exception):
                layer.forget(bench.company.schema_name, SESSIONS)
        names = [s.name for s in [*finished, *services]]
        print(f"\nstopped: {', '.join(names) or 'nothing'}")
        from django.db import connections

        connections.close_all()


def code_state() -> str:
    """The commit measured, and the uncommitted changes to the product's code, if any."""

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", *command], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    status = git("status", "--porcelain", "--", "apps", "chapi")
    changed = ", ".join(line[3:] for line in status.splitlines())
    return f"commit {head}" + (f" + uncommitted changes to {changed}" if changed else "")


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str]) -> int:
    args = parse_args(argv)

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")
    os.environ.setdefault("DEBUG", "true")
    for name in (
        "WIDGET_CONNECTIONS_PER_IP",
        "WIDGET_RATE_LIMIT_PER_IP",
        "WIDGET_RATE_LIMIT_PER_SESSION",
    ):
        os.environ[name] = HUGE_LIMIT
    # Thousands of sockets: the client and the servers (which inherit it) need descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"machine: {machine()}; open files limit {soft}")
    print(f"code: {code_state()}")
    if args.steps and max(args.steps) + 200 > soft:
        print(f"  warning: --idle-steps up to {max(args.steps)} needs more than {soft} files")

    return scratch_run(args, run, "widget")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
