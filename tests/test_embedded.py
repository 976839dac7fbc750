"""The embedded servers' URLs are what django-environ, redis-py and Celery expect."""

from __future__ import annotations

import os
from pathlib import Path

import environ
import pytest
import redis

from chapi import embedded


@pytest.mark.parametrize(
    "root",
    [
        None,  # this checkout
        Path("/srv/my projects/chapi+dev"),  # spaces and '+' survive the URL round trip
        Path("/home/dev/" + "very-long-folder-name/" * 5 + "chapi"),  # socket path too long
    ],
)
def test_urls_point_at_the_sockets(root: Path | None) -> None:
    db = environ.Env.db_url_config(embedded.embedded_database_url(root))
    assert db["HOST"] == str(embedded.pg_socket_dir(root))
    assert (db["NAME"], db["USER"], db["PORT"]) == ("chapi", "postgres", 5432)
    assert db["ENGINE"] == "django.db.backends.postgresql"

    client = redis.Redis.from_url(embedded.embedded_redis_url(root))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["path"] == str(embedded.redis_socket_path(root))
    assert kwargs["db"] == 0

    for sock in (embedded.pg_socket_dir(root) / ".s.PGSQL.5432", embedded.redis_socket_path(root)):
        assert len(os.fsencode(sock)) <= 107


def test_long_paths_fall_back_to_a_short_stable_dir() -> None:
    root = Path("/home/dev/" + "very-long-folder-name/" * 5 + "chapi")
    assert embedded.pg_data_dir(root) == root / ".data" / "pg"  # the data stays in the repo
    assert embedded.pg_socket_dir(root).parent == embedded.redis_socket_path(root).parent
    assert embedded.redis_socket_path(root).parent.name.startswith("chapi-")
    other = Path("/home/dev/" + "very-long-folder-name/" * 5 + "chapi2")
    assert embedded.redis_socket_path(other) != embedded.redis_socket_path(root)


def test_embedded_servers_run_when_used() -> None:
    if os.environ.get("DATABASE_URL") != embedded.embedded_database_url():
        pytest.skip("the suite runs against an external PostgreSQL")
    assert embedded.postgres_running()
    if os.environ.get("REDIS_URL") == embedded.embedded_redis_url():
        assert embedded.redis_ping()
