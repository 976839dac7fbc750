"""The CRM webhook: signed deliveries to a local CRM (tests/fakes/crm_server.py), retries with
backoff and Retry-After, permanent failures, re-sends, the SSRF guard, and the secret kept out
of logs and stored data."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils import translation
from django_tenants.utils import tenant_context

from apps.audit.models import AuditLog
from apps.audit.services import Actor
from apps.leads.crm import (
    BACKOFF_CAP_SECONDS,
    WebhookURLError,
    webhook_backoff,
    webhook_deliver,
    webhook_delivery_create,
    webhook_resend,
    webhook_sign,
    webhook_url_validate,
)
from apps.leads.models import WebhookDelivery
from apps.leads.services import lead_settings_get
from apps.leads.tasks import webhook_deliver_task
from apps.tenants.models import Company
from chapi.celery import app as celery_app
from tests.conftest import owner
from tests.fakes.crm_server import Answer, FakeCrm

SECRET = "whsec_0123456789abcdefSECRET"
PAYLOAD = {"event": "lead.qualified", "company": "alpha", "lead": {"id": 7, "name": "Ana"}}


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    with FakeCrm(secret=SECRET) as server:
        yield server


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


def configure(url: str, secret: str = SECRET) -> None:
    row = lead_settings_get()
    row.crm_webhook_url = url
    row.crm_webhook_secret = secret
    row.save()


def delivery_to(url: str, payload: dict[str, Any] | None = None) -> WebhookDelivery:
    configure(url)
    return webhook_delivery_create(event="lead.qualified", payload=payload or PAYLOAD, url=url)


def reloaded(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.objects.get(pk=delivery.pk)


def run_task(delivery: WebhookDelivery) -> None:
    """Run the delivery task as a worker would, its retries at once (eager `apply` runs a
    retry's signature immediately, ignoring the countdown, unless eager exceptions propagate:
    then the first Retry escapes)."""
    celery_app.conf.task_eager_propagates = False
    try:
        result = webhook_deliver_task.apply(args=(delivery.pk,))
    finally:
        celery_app.conf.task_eager_propagates = True
    assert result.state == "SUCCESS", result.traceback


# --- Signing and headers -------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"lead.qualified"}'

    assert webhook_sign("whsec_test_secret", "1700000000", body) == (
        "19c6d66e11dedbc6c2b2210b0ad3fa0c309adbaca49e10c84fa2d070a9d7b426"
    )
    assert webhook_sign("whsec_test_secret", 1700000000, body) == webhook_sign(
        "whsec_test_secret", "1700000000", body
    )


def test_a_delivery_reaches_the_crm_signed_with_exact_headers(alpha: Company, crm: FakeCrm) -> None:
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())
        before = int(time.time())

        delay = webhook_deliver(delivery_id=delivery.pk, attempt=1)

        stored = reloaded(delivery)
    assert delay is None
    assert len(crm.received) == 1
    request = crm.received[0]
    assert request.signature_valid is True
    assert request.path == "/hooks/chapi"
    assert request.json == PAYLOAD
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "CHAPI-Webhooks/1"
    assert headers["X-Chapi-Event"] == "lead.qualified"
    assert headers["X-Chapi-Delivery"] == str(delivery.pk)
    assert headers["Host"] == f"127.0.0.1:{crm.port}"
    assert before <= int(headers["X-Chapi-Timestamp"]) <= int(time.time())
    assert headers["X-Chapi-Signature"] == "sha256=" + webhook_sign(
        SECRET, headers["X-Chapi-Timestamp"], request.body
    )
    assert stored.status == WebhookDelivery.Status.DELIVERED
    assert stored.attempts == 1
    assert stored.response_code == 200
    assert stored.response_excerpt == '{"ok": true}'
    assert stored.error == ""
    assert stored.delivered_at is not None
    assert [{k: v for k, v in e.items() if k not in {"at", "ms"}} for e in stored.log] == [
        {"attempt": 1, "code": 200, "error": ""}
    ]
    assert isinstance(stored.log[0]["ms"], int)


def test_without_a_secret_no_signature_header_is_sent(alpha: Company, crm: FakeCrm) -> None:
    with tenant_context(alpha):
        configure(crm.hook_url(), secret="")
        delivery = webhook_delivery_create(event="lead.qualified", payload=PAYLOAD, url=crm.url)

        webhook_deliver(delivery_id=delivery.pk, attempt=1)

    assert "X-Chapi-Signature" not in crm.received[0].headers
    assert crm.received[0].signature_valid is False


# --- Retries -------------------------------------------------------------------------------


def test_a_500_is_retried_by_the_task_until_the_crm_accepts(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(500, "boom"), Answer(502, "bad gateway"))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        run_task(delivery)

        stored = reloaded(delivery)
    assert [r.signature_valid for r in crm.received] == [True, True, True]
    assert len({r.headers["X-Chapi-Delivery"] for r in crm.received}) == 1
    assert stored.status == WebhookDelivery.Status.DELIVERED
    assert stored.attempts == 3
    assert [e["code"] for e in stored.log] == [500, 502, 200]
    assert [e["error"] for e in stored.log] == ["HTTP 500", "HTTP 502", ""]
    assert [e["attempt"] for e in stored.log] == [1, 2, 3]
    assert 24 <= stored.log[0]["retry_in"] <= 36  # 30 s ± 20 %
    assert 72 <= stored.log[1]["retry_in"] <= 108  # 90 s ± 20 %
    assert "retry_in" not in stored.log[2]


def test_a_410_fails_at_once(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(410, "gone"))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        run_task(delivery)

        stored = reloaded(delivery)
    assert len(crm.received) == 1
    assert stored.status == WebhookDelivery.Status.FAILED
    assert stored.attempts == 1
    assert stored.response_code == 410
    assert stored.response_excerpt == "gone"
    assert stored.error == "HTTP 410"
    assert stored.delivered_at is None


def test_a_redirect_is_not_followed(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(302, "", headers={"Location": "http://169.254.169.254/"}))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        assert webhook_deliver(delivery_id=delivery.pk, attempt=1) is None

        stored = reloaded(delivery)
    assert len(crm.received) == 1
    assert stored.status == WebhookDelivery.Status.FAILED
    assert stored.error == "HTTP 302: redirects are not followed"


@override_settings(CRM_WEBHOOK_TIMEOUT=0.3)
def test_a_timeout_is_retried(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(200, delay=3))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        delay = webhook_deliver(delivery_id=delivery.pk, attempt=1)
        pending = reloaded(delivery)
        assert webhook_deliver(delivery_id=delivery.pk, attempt=2) is None

        stored = reloaded(delivery)
    assert delay is not None and 24 <= delay <= 36
    assert pending.status == WebhookDelivery.Status.PENDING
    assert pending.attempts == 1
    assert pending.response_code is None
    assert pending.error == "timeout (ReadTimeout)"
    assert stored.status == WebhookDelivery.Status.DELIVERED
    assert [e["code"] for e in stored.log] == [None, 200]
    assert [e["error"] for e in stored.log] == ["timeout (ReadTimeout)", ""]


def test_a_closed_port_is_a_retryable_connection_error(alpha: Company) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tenant_context(alpha):
        delivery = delivery_to(f"http://127.0.0.1:{port}/hook")

        delay = webhook_deliver(delivery_id=delivery.pk, attempt=1)

        stored = reloaded(delivery)
    assert delay is not None
    assert stored.status == WebhookDelivery.Status.PENDING
    assert stored.error == "connection error (ConnectError)"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "120", 120.0), (503, "7", 7.0), (429, "99999", BACKOFF_CAP_SECONDS)],
)
def test_retry_after_is_honoured_up_to_the_cap(
    alpha: Company, crm: FakeCrm, status: int, retry_after: str, expected: float
) -> None:
    crm.answer(Answer(status, "slow down", headers={"Retry-After": retry_after}))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        delay = webhook_deliver(delivery_id=delivery.pk, attempt=1)

        stored = reloaded(delivery)
    assert delay == expected
    assert stored.log[0]["retry_in"] == expected
    assert stored.status == WebhookDelivery.Status.PENDING


def test_the_backoff_grows_with_jitter_and_is_capped() -> None:
    for _ in range(50):
        assert 24 <= webhook_backoff(1) <= 36
        assert 216 <= webhook_backoff(3) <= 324
    assert webhook_backoff(5) == BACKOFF_CAP_SECONDS
    assert webhook_backoff(12) == BACKOFF_CAP_SECONDS
    assert webhook_backoff(2, retry_after=0.0) == 0.0


@override_settings(CRM_WEBHOOK_MAX_ATTEMPTS=3)
def test_after_the_last_attempt_the_delivery_fails(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(503), Answer(503), Answer(503), Answer(200))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())

        run_task(delivery)

        stored = reloaded(delivery)
    assert len(crm.received) == 3
    assert stored.status == WebhookDelivery.Status.FAILED
    assert stored.attempts == 3
    assert [e["code"] for e in stored.log] == [503, 503, 503]
    assert "retry_in" not in stored.log[2]
    assert stored.error == "HTTP 503"


def test_an_attempt_already_made_is_not_made_again(alpha: Company, crm: FakeCrm) -> None:
    crm.answer(Answer(500))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())
        assert webhook_deliver(delivery_id=delivery.pk, attempt=1) is not None

        # A redelivered task for the same attempt, and one for a settled delivery.
        assert webhook_deliver(delivery_id=delivery.pk, attempt=1) is None
        assert webhook_deliver(delivery_id=delivery.pk, attempt=2) is None
        assert webhook_deliver(delivery_id=delivery.pk, attempt=3) is None
        assert webhook_deliver(delivery_id=999999, attempt=1) is None

        stored = reloaded(delivery)
    assert len(crm.received) == 2
    assert [e["code"] for e in stored.log] == [500, 200]


def test_the_timeout_and_attempt_settings_have_their_defaults() -> None:
    from chapi import settings as project_settings

    assert project_settings.CRM_WEBHOOK_TIMEOUT == 10.0
    assert project_settings.CRM_WEBHOOK_MAX_ATTEMPTS == 6
    assert project_settings.CRM_WEBHOOK_ALLOW_PRIVATE is project_settings.DEBUG


# --- Re-sending ----------------------------------------------------------------------------


def test_a_resend_is_a_new_audited_delivery_of_the_same_payload(
    alpha: Company, crm: FakeCrm
) -> None:
    crm.answer(Answer(410))
    with tenant_context(alpha):
        boss = owner(alpha)
        failed = delivery_to(crm.hook_url())
        webhook_deliver(delivery_id=failed.pk, attempt=1)

        resent = webhook_resend(
            delivery=reloaded(failed), actor=Actor(kind="user", user_id=boss.pk, email=boss.email)
        )
        run_task(resent)

        original, copy = reloaded(failed), reloaded(resent)
        audit = list(AuditLog.objects.filter(action="lead_webhook.resend").values_list(
            "actor_email", "object_id", "changes"
        ))  # fmt: skip
    assert copy.pk != original.pk
    assert copy.resend_of_id == original.pk
    assert copy.payload == original.payload == PAYLOAD
    assert copy.event == "lead.qualified"
    assert copy.status == WebhookDelivery.Status.DELIVERED
    assert original.status == WebhookDelivery.Status.FAILED
    assert original.attempts == 1
    assert [r.headers["X-Chapi-Delivery"] for r in crm.received] == [
        str(original.pk),
        str(copy.pk),
    ]
    assert crm.received[0].body == crm.received[1].body
    assert audit == [(boss.email, str(copy.pk), {"resend_of": [None, original.pk]})]


def test_a_resend_goes_to_the_current_url(alpha: Company, crm: FakeCrm) -> None:
    with tenant_context(alpha):
        old = delivery_to(crm.hook_url("/old"))
        configure(crm.hook_url("/new"))

        resent = webhook_resend(delivery=old, actor=Actor())
        webhook_deliver(delivery_id=resent.pk, attempt=1)

    assert resent.url == crm.hook_url("/new")
    assert [r.path for r in crm.received] == ["/new"]


def test_a_resend_without_a_url_is_refused(alpha: Company) -> None:
    with tenant_context(alpha):
        old = delivery_to("https://crm.example.com/hook")
        configure("")

        with pytest.raises(WebhookURLError) as raised:
            webhook_resend(delivery=old, actor=Actor())

        count = WebhookDelivery.objects.count()
    assert raised.value.messages == ["Set the CRM webhook URL first."]
    assert count == 1


# --- The secret ----------------------------------------------------------------------------


def test_the_secret_is_never_logged_nor_stored_with_deliveries(
    alpha: Company, crm: FakeCrm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    crm.answer(Answer(500, "nope"), Answer(410, "gone"))
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())
        run_task(delivery)
        resent = webhook_resend(delivery=reloaded(delivery), actor=Actor())
        webhook_deliver(delivery_id=resent.pk, attempt=1)

        stored = [json.dumps(row, default=str) for row in WebhookDelivery.objects.values()]
        audit = json.dumps(list(AuditLog.objects.values("changes")))
    assert len(crm.received) == 3
    assert "webhook delivery" in caplog.text  # attempts are logged…
    assert SECRET not in caplog.text  # …never with the secret
    assert all(SECRET not in row for row in stored)
    assert SECRET not in audit
    assert all(SECRET.encode() not in r.body for r in crm.received)
    assert all(SECRET not in json.dumps(r.headers) for r in crm.received)


# --- Where webhooks may go (SSRF) ------------------------------------------------------------


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://crm.example.com/hook", "scheme"),
        ("ftp://crm.example.com/hook", "scheme"),
        ("https:///hook", "host"),
        ("https://user:pass@crm.example.com/hook", "credentials"),
        ("https://localhost/hook", "private"),
        ("https://api.localhost/hook", "private"),
        ("https://127.0.0.1/hook", "private"),
        ("https://10.1.2.3/hook", "private"),
        ("https://172.16.0.9/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https://0.0.0.0/hook", "private"),
        ("https://224.0.0.251/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[fe80::1]/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
    ],
)
def test_the_guard_refuses_private_and_non_https_urls(url: str, code: str) -> None:
    with pytest.raises(WebhookURLError) as raised:
        webhook_url_validate(url)

    assert raised.value.code == code


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    "url", ["https://crm.example.com/hooks/chapi?x=1", "https://93.184.215.14:8443/h"]
)
def test_the_guard_accepts_public_https_urls(url: str) -> None:
    webhook_url_validate(url)


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=True)
def test_private_hosts_and_http_are_allowed_when_the_setting_says_so() -> None:
    webhook_url_validate("http://127.0.0.1:9000/hook")
    webhook_url_validate("http://crm.internal/hook")


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> list[tuple[str, int]]:
    """Resolve `names` to the given addresses (the network seam); everything else as usual."""
    real = socket.getaddrinfo
    asked: list[tuple[str, int]] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            asked.append((host, port))
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=False)
def test_a_name_resolving_to_a_private_address_fails_at_once_unsent(
    alpha: Company, crm: FakeCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_dns(monkeypatch, {"crm.example.com": "10.0.0.7"})
    with tenant_context(alpha):
        delivery = delivery_to("https://crm.example.com/hook")

        run_task(delivery)

        stored = reloaded(delivery)
    assert asked == [("crm.example.com", 443)]
    assert stored.status == WebhookDelivery.Status.FAILED
    assert stored.attempts == 1
    assert stored.response_code is None
    assert stored.error == "The webhook URL resolves to a private or local address."
    assert crm.received == []


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=False)
def test_a_local_crm_is_refused_when_private_hosts_are_not_allowed(
    alpha: Company, crm: FakeCrm
) -> None:
    with tenant_context(alpha):
        delivery = WebhookDelivery.objects.create(
            event="lead.qualified", url=crm.hook_url(), payload=PAYLOAD
        )

        webhook_deliver(delivery_id=delivery.pk, attempt=1)

        stored = reloaded(delivery)
    assert stored.status == WebhookDelivery.Status.FAILED
    assert stored.error == "The webhook URL must start with https://."
    assert crm.received == []


def test_the_request_goes_to_the_address_that_was_checked_with_the_original_host(
    alpha: Company, crm: FakeCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_dns(monkeypatch, {"crm.customer.test": "127.0.0.1"})
    with tenant_context(alpha):
        delivery = delivery_to(f"http://crm.customer.test:{crm.port}/in?source=chapi")

        webhook_deliver(delivery_id=delivery.pk, attempt=1)

        stored = reloaded(delivery)
    # Resolved once: the connection uses that answer, not a second (possibly different) one.
    assert asked == [("crm.customer.test", crm.port)]
    assert stored.status == WebhookDelivery.Status.DELIVERED
    assert crm.received[0].headers["Host"] == f"crm.customer.test:{crm.port}"
    assert crm.received[0].path == "/in?source=chapi"
    assert crm.received[0].signature_valid is True


# --- Isolation -----------------------------------------------------------------------------


def test_a_delivery_uses_its_own_companys_secret(
    alpha: Company, beta: Company, crm: FakeCrm
) -> None:
    with tenant_context(beta):
        configure(crm.hook_url(), secret="whsec_beta_other_secret_0000")
    with tenant_context(alpha):
        delivery = delivery_to(crm.hook_url())
        webhook_deliver(delivery_id=delivery.pk, attempt=1)
    with tenant_context(beta):
        beta_deliveries = WebhookDelivery.objects.count()

    assert crm.received[0].signature_valid is True  # signed with alpha's SECRET
    assert beta_deliveries == 0
