"""Secrets never reach the log output (chapi.logging)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from chapi.logging import RedactSecretsFilter, redact

OPENAI_KEY = "sk-test-" + "Q7vX2mN9pL4rT8wY1zB6cH3jK5dF0gS2aE7uI9oP"
PROJECT_KEY = "sk-proj-test-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56"
BOT_TOKEN = "123456789:" + "AAHtestQ7vX2mN9pL4rT8wY1zB6cH3jK5dF"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXRlc3Q"
FERNET_TOKEN = Fernet(Fernet.generate_key()).encrypt(b"sk-test-plaintext").decode()


def console_handler() -> logging.Handler:
    """The handler LOGGING installs on the root logger (the one that writes the log)."""
    for handler in logging.getLogger().handlers:
        if any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            return handler
    raise AssertionError("no root handler carries RedactSecretsFilter")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the configured console handler writes, captured."""
    handler = console_handler()
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"calling the model with key {OPENAI_KEY}", "calling the model with key [redacted]"),
        (f"key={PROJECT_KEY} rejected", "key=[redacted] rejected"),
        (f"telegram token {BOT_TOKEN} set", "telegram token [redacted] set"),
        (f"Authorization: Bearer {BEARER}", "Authorization: Bearer [redacted]"),
        (f"authorization: bearer {BEARER}", "authorization: bearer [redacted]"),
        (f"stored value {FERNET_TOKEN}", "stored value [redacted]"),
        (
            f"{OPENAI_KEY} and {BOT_TOKEN} and Bearer {BEARER}",
            "[redacted] and [redacted] and Bearer [redacted]",
        ),
    ],
)
def test_redact_removes_each_kind_of_secret(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_redact_removes_a_telegram_token_from_a_bot_api_url() -> None:
    line = f"HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage 200 OK"

    cleaned = redact(line)

    assert BOT_TOKEN not in cleaned
    assert BOT_TOKEN.split(":")[1] not in cleaned


@pytest.mark.parametrize(
    "line",
    [
        "GET /dashboard/team/ 200",
        "company alpha created with 3 members at 12:30:45",
        "Bearer realm=api",
        "sk-short",
    ],
)
def test_redact_leaves_ordinary_lines_alone(line: str) -> None:
    assert redact(line) == line


def test_the_logging_configuration_puts_the_filter_on_the_console_handler() -> None:
    assert settings.LOGGING["filters"]["redact"] == {"()": "chapi.logging.RedactSecretsFilter"}
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["redact"]
    assert settings.LOGGING["root"]["handlers"] == ["console"]
    assert settings.LOGGING["loggers"]["django"]["handlers"] == ["console"]


def test_a_logged_secret_is_redacted_in_the_output(log_output: io.StringIO) -> None:
    logger = logging.getLogger("apps.test_logging")

    logger.warning("provider refused key %s for %s", OPENAI_KEY, "alpha")
    logger.warning("webhook for bot %s", BOT_TOKEN)
    logger.warning("upstream sent Authorization: Bearer %s", BEARER)
    logger.warning("could not decrypt %s", FERNET_TOKEN)

    written = log_output.getvalue()
    assert OPENAI_KEY not in written
    assert BOT_TOKEN not in written
    assert BEARER not in written
    assert FERNET_TOKEN not in written
    lines = [line.split(" apps.test_logging ", 1)[1] for line in written.splitlines()]
    assert lines == [
        "provider refused key [redacted] for alpha",
        "webhook for bot [redacted]",
        "upstream sent Authorization: Bearer [redacted]",
        "could not decrypt [redacted]",
    ]


def test_django_loggers_are_redacted_too(log_output: io.StringIO) -> None:
    logging.getLogger("django.request").error("Bad request with key %s", OPENAI_KEY)

    written = log_output.getvalue()
    assert OPENAI_KEY not in written
    assert "Bad request with key [redacted]" in written


def test_a_secret_in_a_logged_exception_is_redacted(log_output: io.StringIO) -> None:
    logger = logging.getLogger("apps.test_logging")

    try:
        raise RuntimeError(f"provider said: invalid key {OPENAI_KEY}")
    except RuntimeError:
        logger.exception("model call failed")

    written = log_output.getvalue()
    assert "model call failed" in written
    assert "RuntimeError" in written
    assert OPENAI_KEY not in written


def test_the_filter_keeps_clean_records_untouched() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "user %s logged in", ("ana",), None)

    assert RedactSecretsFilter().filter(record) is True

    assert (record.msg, record.args) == ("user %s logged in", ("ana",))
    assert record.getMessage() == "user ana logged in"


def test_the_filter_rewrites_a_record_carrying_a_secret() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (OPENAI_KEY,), None)

    assert RedactSecretsFilter().filter(record) is True

    assert record.getMessage() == "key [redacted]"
    assert record.args is None
