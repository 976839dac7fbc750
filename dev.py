#!/usr/bin/env python3
"""CHAPI developer entry point. Needs only Python 3.11+ (standard library only).

    python3 dev.py run                 run the whole product (web, worker, beat + embedded
                                       PostgreSQL and Redis unless DATABASE_URL/REDIS_URL are set)
    python3 dev.py test [pytest args]  run the test suite
    python3 dev.py manage <args>       run `manage.py <args>` with the same environment

Before each command the virtualenv `.venv` is created or brought up to date when
pyproject.toml, requirements.lock or the Python version changed (a hash is kept in
`.venv/.chapi-stamp`), then the command runs inside it as `python -m chapi.devserver`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".chapi-stamp"
COMMANDS = ("run", "test", "manage")
# pgserver (embedded PostgreSQL) ships wheels for CPython 3.9-3.12 only, and the lock file is
# pinned on 3.11: prefer those interpreters for the virtualenv.
SUPPORTED = ((3, 11), (3, 12))

USAGE = """\
usage: python3 dev.py <command> [args...]

commands:
  run                 run CHAPI: web (uvicorn), Celery worker and beat, with embedded
                      PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set
  test [pytest args]  run the test suite (pytest), e.g. `python3 dev.py test -x -k widget`
  manage <args>       run `python manage.py <args>` with the same environment,
                      e.g. `python3 dev.py manage createsuperuser`

The virtualenv .venv is created and kept in sync with pyproject.toml and requirements.lock
automatically. Data of the embedded servers lives in .data/ (delete it to start afresh).
"""


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def fail(message: str, code: int = 1) -> None:
    print(f"dev.py: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def read_dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    deps = list(project.get("dependencies", []))
    deps += project.get("optional-dependencies", {}).get("dev", [])
    return deps


def python_version(python: str | Path) -> tuple[int, int] | None:
    """Return (major, minor) of an interpreter, or None when it does not run."""
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def base_interpreter() -> str:
    """Pick the interpreter to build .venv with: this one if supported, else python3.11/3.12."""
    if sys.version_info[:2] in SUPPORTED:
        return sys.executable
    for major, minor in SUPPORTED:
        found = shutil.which(f"python{major}.{minor}")
        if found and python_version(found) == (major, minor):
            return found
    wanted = " or ".join(f"{a}.{b}" for a, b in SUPPORTED)
    fail(
        f"Python {sys.version_info[0]}.{sys.version_info[1]} runs dev.py, but the embedded "
        f"PostgreSQL (pgserver) needs Python {wanted}; install python{SUPPORTED[0][0]}."
        f"{SUPPORTED[0][1]} (it is then found on PATH) or run `python3.11 dev.py ...`"
    )
    raise AssertionError  # unreachable


def wanted_stamp(version: tuple[int, int]) -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    digest.update(f"python{version[0]}.{version[1]}".encode())
    return json.dumps({"hash": digest.hexdigest(), "python": list(version)})


def run_quietly(args: list[str], what: str) -> None:
    """Run a command with its output sent to a temp file; show the output if it fails."""
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
        if proc.returncode != 0:
            log.seek(0)
            sys.stderr.write(log.read())
            fail(f"{what} failed (exit code {proc.returncode}): {' '.join(args)}")


def ensure_venv() -> None:
    """Create .venv or install the locked dependencies into it when the stamp is out of date."""
    python = venv_python()
    current = STAMP.read_text() if STAMP.exists() else None
    version = python_version(python) if python.exists() else None
    if version is not None and current == wanted_stamp(version):
        return

    started = time.monotonic()
    created = version is None or version not in SUPPORTED
    if created:
        base = base_interpreter()
        base_version = python_version(base)
        assert base_version is not None
        say(f"creating .venv with Python {base_version[0]}.{base_version[1]} ({base})")
        run_quietly([base, "-m", "venv", "--clear", str(VENV)], "creating the virtualenv")
        version = base_version
    else:
        say(".venv is out of date (pyproject.toml, requirements.lock or Python changed)")
    assert version is not None

    stamp = wanted_stamp(version)
    deps = read_dependencies()
    hint = " (about a minute)" if created else ""
    say(f"installing {len(deps)} dependencies pinned by requirements.lock{hint}")
    STAMP.unlink(missing_ok=True)
    run_quietly(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-c",
            str(ROOT / "requirements.lock"),
            *deps,
        ],
        "pip install",
    )
    STAMP.write_text(stamp)
    say(f".venv ready in {time.monotonic() - started:.0f} s")


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"dev.py: unknown command {command!r}\n\n{USAGE}")
        raise SystemExit(2)

    ensure_venv()
    os.chdir(ROOT)
    python = str(venv_python())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, "-m", "chapi.devserver", command, *rest])  # noqa: S606


if __name__ == "__main__":
    main(sys.argv[1:])
