"""Development runner behind ``python3 dev.py``: ``python -m chapi.devserver run|test|manage``.

* Environment: ``.env`` (if any) is loaded without overriding the real environment, and
  ``DEBUG`` defaults to ``true``. When ``DATABASE_URL`` / ``REDIS_URL`` are unset (or empty),
  the embedded PostgreSQL / Redis of ``chapi.embedded`` are started and their URLs exported;
  when set, they are used as they are and nothing is started.
* ``run``: ``manage.py setup_platform`` (migrations, public tenant, demo company), then the web
  server (uvicorn), the Celery worker(s) (``WORKER_PROCESSES``, one per core up to two) and
  Celery beat as child processes, each in its own process group, their output prefixed with
  their name. Ctrl-C / SIGTERM / SIGHUP stop them
  (SIGTERM to each group, SIGKILL after 10 s; a second Ctrl-C kills at once), then the
  embedded servers; exit 0. If a child dies on its own, everything is stopped and the exit
  code is 1. On Linux the children also get SIGTERM if this process is killed outright.
* ``test [pytest args]``: ``python -m pytest`` with that environment; exits with pytest's code.
* ``manage <args>``: ``python manage.py <args>`` with that environment; exits with its code.

Embedded servers are released at the end (stopped unless another ``dev.py`` still uses them).
Every process started from here carries ``CHAPI_DEV_ROOT=<repo>`` in its environment, which
lets CI check that nothing was left behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from chapi import embedded

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 10.0
USAGE = "usage: python -m chapi.devserver run | test [pytest args] | manage <args>\n"


def say(message: str) -> None:
    print(f"dev: {message}", flush=True)


class Interrupted(Exception):
    """A stop signal arrived while setting up."""


# --------------------------------------------------------------------------- environment


def load_environment() -> None:
    """Set up os.environ for the children: .env, DEBUG, settings module, marker."""
    os.chdir(ROOT)
    if (ROOT / ".env").is_file():
        import environ

        environ.Env.read_env(ROOT / ".env", overwrite=False)
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")
    os.environ["CHAPI_DEV_ROOT"] = str(ROOT)


def start_servers() -> list[Callable[[], bool]]:
    """Start the embedded servers whose URL variable is unset and export their URLs.

    Returns the release functions of the embedded servers this process uses.
    """
    releases: list[Callable[[], bool]] = []
    servers = [
        server
        for server, variable in (("pg", "DATABASE_URL"), ("redis", "REDIS_URL"))
        if not os.environ.get(variable)
    ]
    if servers:
        # Stops the embedded servers should this process be killed outright (kill -9).
        embedded.spawn_watcher(servers)
    if os.environ.get("DATABASE_URL"):
        say("DATABASE_URL is set: using that PostgreSQL, starting none")
    else:
        started = time.monotonic()
        releases.append(embedded.release_postgres)  # first: released even if start fails
        os.environ["DATABASE_URL"] = embedded.start_postgres()
        say(
            f"embedded PostgreSQL ready in {time.monotonic() - started:.1f} s "
            f"(data: {embedded.pg_data_dir()}, socket: {embedded.pg_socket_dir()})"
        )
    if os.environ.get("REDIS_URL"):
        say("REDIS_URL is set: using that Redis, starting none")
    else:
        started = time.monotonic()
        releases.append(embedded.release_redis)
        os.environ["REDIS_URL"] = embedded.start_redis()
        say(
            f"embedded Redis ready in {time.monotonic() - started:.1f} s "
            f"(data: {embedded.redis_dir()}, socket: {embedded.redis_socket_path()})"
        )
    return releases


def release_servers(releases: list[Callable[[], bool]]) -> None:
    names = {embedded.release_postgres: "PostgreSQL", embedded.release_redis: "Redis"}
    for release in reversed(releases):
        name = names.get(release, "server")
        try:
            if release():
                say(f"embedded {name} stopped")
            else:
                say(f"embedded {name} left running: another dev.py process uses it")
        except Exception as exc:
            print(f"dev: could not stop embedded {name}: {exc}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- test / manage


def run_foreground(args: list[str]) -> int:
    """Run a command in our process group (it owns the terminal: pdb, shell, Ctrl-C work).

    Ctrl-C reaches it directly from the terminal, so we ignore SIGINT while it runs;
    SIGTERM / SIGHUP sent to us are passed on as SIGTERM, and on Linux it gets SIGTERM if we
    are killed outright.
    """
    proc = subprocess.Popen(args, cwd=ROOT, preexec_fn=_set_parent_death_signal)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGHUP: signal.signal(signal.SIGHUP, forward),
    }
    try:
        code = proc.wait()
        return 128 - code if code < 0 else code  # killed by a signal: shell convention
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --------------------------------------------------------------------------- run


def _set_parent_death_signal() -> None:
    """In the child before exec (Linux): get SIGTERM when the dev runner dies, even by -9."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: S110 - best effort
        pass


class Child:
    """A supervised child process with its output pumped, line by line, with a prefix."""

    COLORS = ("36", "33", "35", "32", "34")

    def __init__(self, name: str, args: list[str], index: int, width: int, lock: threading.Lock):
        self.name = name
        self.args = args
        color = os.environ.get("NO_COLOR") is None and sys.stdout.isatty()
        label = f"{name:<{width}} |"
        self.prefix = (
            f"\033[{self.COLORS[index % len(self.COLORS)]}m{label}\033[0m "
            if color
            else label + " "
        )
        self.lock = lock
        parent = os.getpid()

        def preexec() -> None:
            _set_parent_death_signal()
            if os.getppid() != parent:  # the runner died before prctl took effect
                os._exit(1)

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=preexec,  # only prctl and getppid: safe after fork
        )
        self.pump = threading.Thread(target=self._pump, name=f"pump-{name}", daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        stream: IO[bytes] | None = self.proc.stdout
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with self.lock:
                sys.stdout.write(f"{self.prefix}{line}\n")
                sys.stdout.flush()
        stream.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, signum: int) -> None:
        """Signal the child's whole process group (it is the group leader)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)


def stop_children(children: list[Child], state: dict[str, Any]) -> None:
    """SIGTERM every group, wait up to GRACE_SECONDS (less on a second signal), SIGKILL rest."""
    for child in children:
        if child.alive():
            child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while any(c.alive() for c in children):
        if time.monotonic() > deadline or state["signals"] > 1:
            break
        time.sleep(0.1)
    for child in children:
        if child.alive():
            say(f"{child.name} did not stop in time: killing it")
        # Also clears any process the child left in its group after it exited.
        child.signal_group(signal.SIGKILL)
    for child in children:
        child.proc.wait()
        child.pump.join(timeout=2)


def probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def port_free(host: str, port: int) -> bool:
    """Whether uvicorn will be able to bind (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def web_answers(host: str, port: int) -> bool:
    """Whether our web server answers GET /healthz with 200 (not just anything on the port)."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/healthz", headers={"Host": "localhost"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def print_urls(port: int) -> None:
    base = f"http://localhost:{port}"
    say(
        "CHAPI is running:\n"
        f"    public site          {base}/\n"
        f"    demo company         http://demo.localhost:{port}/\n"
        f"    widget demo page     http://localhost:{port + 1}/  (another origin)\n"
        f"    platform admin       {base}/admin/\n"
        f"    health               {base}/healthz\n"
        "  (the demo login is printed by setup_platform above) -- press Ctrl-C to stop"
    )


def web_address() -> tuple[str, int]:
    host = os.environ.get("API_HOST", "0.0.0.0")  # noqa: S104 - the dev server listens on all
    return host, int(os.environ.get("API_PORT", "8000"))


def worker_processes() -> int:
    """Celery worker processes to start: WORKER_PROCESSES, by default one per core up to two.
    Each runs its tasks in threads, and one Python process uses one core at most (the GIL)."""
    value = os.environ.get("WORKER_PROCESSES", "").strip()
    if not value:
        return max(1, min(2, os.cpu_count() or 1))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WORKER_PROCESSES must be a whole number of at least 1, not {value!r}")
    return int(value)


def command_run() -> int:
    host, port = web_address()
    try:
        workers = worker_processes()
    except ValueError as exc:
        say(str(exc))
        return 1
    python = sys.executable
    say("manage.py setup_platform (migrations, public tenant, demo company)")
    code = subprocess.run([python, "manage.py", "setup_platform"], cwd=ROOT, check=False)
    if code.returncode != 0:
        say(f"setup_platform failed (exit code {code.returncode}): not starting")
        return code.returncode or 1

    state: dict[str, Any] = {"signals": 0, "signal": None}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        state["signals"] += 1
        state["signal"] = signum

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    specs = [
        (
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "chapi.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--proxy-headers",
                "--lifespan",
                "off",
                # Widget frames are at most 32 KB; uvicorn closes bigger ones (1009).
                "--ws-max-size",
                "65536",
                # A websocket consumer can stay blocked in channels-redis's receive after its
                # socket closed; never let that hold a restart for long.
                "--timeout-graceful-shutdown",
                "10",
                # Frames are small JSON: compression costs memory per connection for nothing.
                "--ws-per-message-deflate",
                "false",
            ],
        ),
        *(
            (
                "worker" if workers == 1 else f"worker{index + 1}",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "chapi",
                    "worker",
                    "-Q",
                    "default,llm",
                    "--pool",
                    "threads",
                    "--concurrency",
                    "8",
                    "-n",
                    f"chapi{index + 1}@%h",
                    "--loglevel",
                    "INFO",
                ],
            )
            for index in range(workers)
        ),
        (
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "chapi",
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile=",
            ],
        ),
        (
            "demo",
            [
                python,
                "manage.py",
                "widget_demo",
                "--port",
                str(port + 1),
                "--api",
                f"http://localhost:{port}",
            ],
        ),
    ]
    lock = threading.Lock()
    width = max(len(name) for name, _ in specs)
    children: list[Child] = []
    failed: Child | None = None
    try:
        for index, (name, args) in enumerate(specs):
            if state["signals"]:
                break
            children.append(Child(name, args, index, width, lock))
        announced = False
        while not state["signals"]:
            failed = next((c for c in children if not c.alive()), None)
            if failed is not None:
                break
            if not announced and web_answers(probe_host(host), port):
                announced = True
                print_urls(port)
            time.sleep(0.2)
    finally:
        if failed is not None:
            say(
                f"{failed.name} exited unexpectedly (exit code {failed.proc.returncode}): "
                "stopping everything"
            )
        else:
            say("stopping...")
        stop_children(children, state)
    if failed is not None:
        return 1
    return 0


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "manage"):
        sys.stderr.write(USAGE)
        return 2
    command, rest = argv[0], argv[1:]

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    # Until the command's own handling takes over, a stop signal unwinds through `finally`,
    # so servers started so far are released.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    releases: list[Callable[[], bool]] = []
    try:
        load_environment()
        if command == "run":
            host, port = web_address()
            if not port_free(host, port):
                say(f"port {port} on {host} is already in use (another dev.py run?): set API_PORT")
                return 1
        releases = start_servers()
        if command == "run":
            return command_run()
        if command == "test":
            if embedded.release_redis in releases:
                # Tests flush their Redis database: keep them off the one `run` uses.
                os.environ["REDIS_URL"] = os.environ["REDIS_URL"].replace("?db=0", "?db=1")
            return run_foreground([sys.executable, "-m", "pytest", *rest])
        return run_foreground([sys.executable, "manage.py", *rest])
    except (KeyboardInterrupt, Interrupted):
        say("interrupted")
        return 130
    except embedded.EmbeddedServerError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # let the clean-up finish
        release_servers(releases)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
