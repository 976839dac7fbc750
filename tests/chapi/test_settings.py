"""Production settings refuse to start insecurely (run in subprocesses: settings are read at
import time)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def base_environment() -> dict[str, str]:
    """A clean environment (nothing inherited, so no DEBUG=true from the test run) pointing at
    the servers this test run uses."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "chapi.settings",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or settings.DATABASE_URL,
        "REDIS_URL": os.environ.get("REDIS_URL") or settings.REDIS_URL,
        "DEBUG": "false",
    }
    if "CHAPI_DEV_ROOT" in os.environ:
        env["CHAPI_DEV_ROOT"] = os.environ["CHAPI_DEV_ROOT"]
    return env


def production_environment() -> dict[str, str]:
    return {
        **base_environment(),
        "SECRET_KEY": secrets.token_urlsafe(60)[:60],
        "JWT_SECRET": secrets.token_urlsafe(48),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ROOT_DOMAIN": "chapi.example.com",
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_without_secrets_refuses_to_start_and_names_each_variable() -> None:
    result = manage(base_environment(), "check")

    assert result.returncode != 0
    assert "Refusing to start with DEBUG=false on an insecure configuration" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr
    assert "JWT_SECRET must be set" in result.stderr
    assert "FIELD_ENCRYPTION_KEYS must hold at least one Fernet key" in result.stderr
    assert "System check identified" not in result.stdout


def test_a_short_secret_key_is_refused() -> None:
    result = manage({**production_environment(), "SECRET_KEY": "x" * 49}, "check")

    assert result.returncode != 0
    assert "SECRET_KEY must be set to a random value of at least 50 characters" in result.stderr
    assert "JWT_SECRET" not in result.stderr
    assert "FIELD_ENCRYPTION_KEYS must" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ALLOWED_HOSTS", "*"), ("ALLOWED_HOSTS", "shop.example.org,*"), ("ROOT_DOMAIN", "*")],
)
def test_a_wildcard_host_is_refused(variable: str, value: str) -> None:
    result = manage({**production_environment(), variable: value}, "check")

    assert result.returncode != 0
    assert "ALLOWED_HOSTS and ROOT_DOMAIN must not be wildcards" in result.stderr
    assert "SECRET_KEY" not in result.stderr


def test_a_correct_production_environment_passes_the_deploy_checks() -> None:
    result = manage(production_environment(), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout
