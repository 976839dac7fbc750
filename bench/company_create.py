"""Benchmark: how long creating a company takes, cloning the template schema vs. migrating.

Creates N companies (default 10) each way, interleaved, through the product's own service
(`apps.tenants.services.company_create`: company row, schema, host, owner, assistant profile,
audit entry) and prints min / median / p95 / max seconds per company:

* clone:   the product's path. The new schema is cloned from the always-migrated template
           schema (TENANT_BASE_SCHEMA) and its migrations are recorded as applied
           (TENANT_CREATION_FAKES_MIGRATIONS=True).
* migrate: the baseline. TENANT_CREATION_FAKES_MIGRATIONS=False, so django-tenants creates an
           empty schema and runs every tenant migration in it.

It never touches your data: it creates a separate database (`chapi_bench` by default) on the
server of DATABASE_URL, migrates it (`setup_platform --no-demo`), deletes the companies it
created (`Company.delete(force_drop=True)`) and drops the database at the end. Without
DATABASE_URL it starts (and afterwards releases) the embedded PostgreSQL under .data/.

Run inside the project's virtualenv (created by any `python3 dev.py ...` command):

    .venv/bin/python bench/company_create.py                  # embedded PostgreSQL
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chapi \\
        .venv/bin/python bench/company_create.py -n 20        # an external server

Options: -n/--companies N, --database NAME, --keep-database, --no-password (skip the owner's
password hashing, which is a fixed cost of every signup unrelated to the schema).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-2026-not-a-secret"  # noqa: S105 - throwaway accounts


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time creating companies: template-schema clone vs. running every migration."
    )
    parser.add_argument("-n", "--companies", type=int, default=10, help="companies per method")
    parser.add_argument(
        "--database", default="chapi_bench", help="scratch database to create (and drop)"
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the scratch database at the end"
    )
    parser.add_argument(
        "--no-password",
        action="store_true",
        help="create owners without a password (leaves out password hashing)",
    )
    args = parser.parse_args(argv)
    if args.companies < 1:
        parser.error("--companies must be at least 1")
    if not args.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return args


# --------------------------------------------------------------------------- Celery workers

WORKER_THREADS = 64  # in all, shared by the worker processes: each may hold a database connection


def worker_arguments_add(parser: argparse.ArgumentParser) -> None:
    """--workers and --worker-concurrency, for the benchmarks that start Celery workers."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Celery worker processes, each with its threads (default: as `dev.py run`)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=None,
        help=f"Celery threads per worker process (default: {WORKER_THREADS} in all, shared)",
    )


def worker_arguments_resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Defaults: as many processes as `dev.py run` starts, sharing WORKER_THREADS threads."""
    if args.workers is None:
        from chapi.devserver import worker_processes

        args.workers = worker_processes()
    elif args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.worker_concurrency is None:
        args.worker_concurrency = max(1, WORKER_THREADS // args.workers)
    elif args.worker_concurrency < 1:
        parser.error("--worker-concurrency must be at least 1")


def worker_command(python: str, name: str, threads: int) -> list[str]:
    """A Celery worker on the queues `default,llm` (threads pool), quiet and stand-alone."""
    return [python, "-m", "celery", "-A", "chapi", "worker", "-Q", "default,llm",
            "--pool", "threads", "--concurrency", str(threads), "-n", name,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING"]  # fmt: skip


# --------------------------------------------------------------------------- scratch database


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` on the same server (the last path segment is the
    database; for the embedded server the segment before it is the socket directory)."""
    parts = urlsplit(url)
    head = parts.path.rsplit("/", 1)[0]
    return urlunsplit(parts._replace(path=f"{head}/{name}"))


def admin_connect(url: str):  # type: ignore[no-untyped-def]
    """An autocommit psycopg connection to the server's maintenance database."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    return psycopg.connect(
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def database_recreate(url: str, name: str) -> None:
    with admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str, name: str) -> None:
    with admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- measuring


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (with 10 samples, p95 is the slowest one)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values: list[float]) -> str:
    return (
        f"min {min(values):6.3f}  median {statistics.median(values):6.3f}  "
        f"p95 {percentile(values, 0.95):6.3f}  max {max(values):6.3f}"
    )


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()

    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.test import override_settings
    from django_tenants.utils import schema_context

    from apps.tenants.models import Company
    from apps.tenants.services import company_create

    started = time.perf_counter()
    call_command("setup_platform", demo=False, verbosity=0)
    print(f"setup_platform --no-demo on the empty database: {time.perf_counter() - started:.2f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            [settings.TENANT_BASE_SCHEMA],
        )
        tables = cursor.fetchone()[0]
    print(f"template schema {settings.TENANT_BASE_SCHEMA!r}: {tables} tables")

    password = None if args.no_password else PASSWORD
    created: list[Company] = []

    def create(slug: str) -> float:
        began = time.perf_counter()
        result = company_create(
            name=f"Bench {slug}",
            slug=slug,
            owner_email=f"owner@{slug}.bench.example.com",
            owner_name="Bench Owner",
            owner_password=password,
        )
        elapsed = time.perf_counter() - began
        created.append(result.company)
        return elapsed

    def create_migrating(slug: str) -> float:
        with override_settings(TENANT_CREATION_FAKES_MIGRATIONS=False):
            return create(slug)

    methods: dict[str, Callable[[str], float]] = {"clone": create, "migrate": create_migrating}
    timings: dict[str, list[float]] = {name: [] for name in methods}
    try:
        # One unmeasured company per method first: it pays for lazy imports and cold caches
        # (migration graph, templates), which no later company pays again.
        for name, method in methods.items():
            print(f"warm-up {name:<7} {method(f'bench-{name}-warmup'):6.3f} s (not counted)")
        # Interleaved, so both methods see the same (growing) catalog.
        for i in range(1, args.companies + 1):
            for name, method in methods.items():
                timings[name].append(method(f"bench-{name}-{i:03d}"))
                connection.queries_log.clear()
        began = time.perf_counter()
        make_password(PASSWORD)
        hashing = time.perf_counter() - began
        print()
        print(f"Creating a company, seconds, n={args.companies} each:")
        for name, values in timings.items():
            print(f"  {name:<8} {summary(values)}")
        ratio = statistics.median(timings["migrate"]) / statistics.median(timings["clone"])
        print(f"  median speed-up of clone over migrate: {ratio:.1f}x")
        if password is not None:
            print(f"  (each includes hashing the owner's password once: {hashing:.3f} s)")
    finally:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            for company in created:
                company.delete(force_drop=True)
        print(f"deleted the {len(created)} companies created")
        connection.close()


def in_scratch_database(args: argparse.Namespace, run: Callable[[argparse.Namespace], None]) -> int:
    """Run `run(args)` in this process against a scratch database (`args.database`, created
    on DATABASE_URL's server, or the embedded PostgreSQL's when it is unset) and drop it
    afterwards unless `args.keep_database`. Development defaults for the other settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")
    os.environ.setdefault("DEBUG", "true")
    release = None
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url:
        from chapi import embedded

        release = embedded.release_postgres
        server_url = embedded.start_postgres()
        print(f"using the embedded PostgreSQL ({embedded.pg_data_dir()})")
    try:
        database_recreate(server_url, args.database)
        print(f"scratch database {args.database!r} created")
        os.environ["DATABASE_URL"] = with_database(server_url, args.database)
        try:
            run(args)
        finally:
            if args.keep_database:
                print(f"kept database {args.database!r}")
            else:
                database_drop(server_url, args.database)
                print(f"dropped database {args.database!r}")
    finally:
        if release is not None:
            release()
    return 0


def main(argv: list[str]) -> int:
    return in_scratch_database(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
