"""The company's CRM webhook: signed JSON events POSTed to its URL, one WebhookDelivery per
event with every attempt logged, retried with backoff, re-sent by hand. See
docs/leads/crm-webhook.md for what receivers get and how they verify it.

Also the lead settings' audited update (the settings page and the company admin both save
through it), kept here because the webhook URL and secret are its delicate part.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import Actor, audit_diff, audit_record
from apps.leads.models import Lead, LeadSettings, WebhookDelivery

logger = logging.getLogger(__name__)

USER_AGENT = "CHAPI-Webhooks/1"
EVENT_QUALIFIED = "lead.qualified"
EVENT_TEST = "webhook.test"
# Backoff before attempt n+1: BASE * 3**(n-1) with ±20 % jitter, at most CAP. Under an hour,
# so a countdown never outlives the Redis broker's visibility timeout (which would run the
# attempt twice; harmless, but noisy).
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 1800.0
RETRYABLE_CODES = frozenset({408, 429})
EXCERPT_CHARS = 500
_READ_LIMIT_BYTES = 4096  # of the response body: enough for the excerpt
_CONNECT_TIMEOUT_CAP = 5.0


class WebhookURLError(ValidationError):
    """The webhook URL may not be used (scheme, or a host on a private network)."""


# --- Signing -------------------------------------------------------------------------------


def webhook_sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """HMAC-SHA256 (hex) of `"<timestamp>." + body` under `secret`: what
    `X-Chapi-Signature: sha256=<hex>` carries."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_headers(
    *, secret: str, timestamp: str | int, body: bytes, event: str, delivery_id: int
) -> dict[str, str]:
    """The headers of one attempt. Without a secret there is no signature header."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chapi-Event": event,
        "X-Chapi-Delivery": str(delivery_id),
        "X-Chapi-Timestamp": str(timestamp),
    }
    if secret:
        headers["X-Chapi-Signature"] = f"sha256={webhook_sign(secret, timestamp, body)}"
    return headers


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON. Receivers verify these bytes as
    received, never a re-serialization."""
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


# --- Where a webhook may go (SSRF guard) ---------------------------------------------------


def _allow_private() -> bool:
    return bool(settings.CRM_WEBHOOK_ALLOW_PRIVATE)


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared (CGNAT), reserved and
    # unspecified ranges; multicast has to be named.
    return not ip.is_global or ip.is_multicast


def webhook_url_validate(url: str) -> None:
    """Raise WebhookURLError unless `url` is an acceptable webhook target as written: https
    (http too when private hosts are allowed), a host, no credentials, and not a literal
    private address or `localhost`. Names are resolved and checked at each attempt."""
    parts = urlsplit(url)
    allow_private = _allow_private()
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        raise WebhookURLError(_("The webhook URL must start with https://."), code="scheme")
    if not parts.hostname:
        raise WebhookURLError(_("The webhook URL needs a host."), code="host")
    if parts.username or parts.password:
        raise WebhookURLError(
            _("Put credentials in the signing secret, not in the URL."), code="credentials"
        )
    if allow_private:
        return
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise WebhookURLError(_("The webhook URL cannot point at this server."), code="private")
    try:
        refused = _address_refused(host)
    except ValueError:
        return  # a name: resolved at delivery time
    if refused:
        raise WebhookURLError(
            _("The webhook URL cannot point at a private or local address."), code="private"
        )


@dataclass(frozen=True)
class _Target:
    url: str  # what is connected to: the checked address when pinned
    host_header: str  # the Host header (and TLS name) of the original URL
    sni: str


def _target(url: str) -> _Target:
    """Resolve the URL's host once, refuse private addresses (unless allowed) and connect to
    the address that was checked, so a DNS answer that changes between the check and the
    connection (rebinding) cannot redirect the request."""
    webhook_url_validate(url)
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectionError(f"could not resolve {hostname}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not _allow_private() and any(_address_refused(a) for a in addresses):
        raise WebhookURLError(
            _("The webhook URL resolves to a private or local address."), code="private"
        )
    address = addresses[0]
    literal = f"[{address.split('%', 1)[0]}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    return _Target(url=pinned, host_header=netloc, sni=hostname)


# --- Deliveries ----------------------------------------------------------------------------


def webhook_delivery_create(
    *,
    event: str,
    payload: dict[str, Any],
    url: str,
    lead: Lead | None = None,
    resend_of: WebhookDelivery | None = None,
) -> WebhookDelivery:
    """Record a pending delivery and queue its first attempt after commit."""
    from apps.leads.tasks import webhook_deliver_task

    delivery = WebhookDelivery.objects.create(
        event=event, lead=lead, url=url, payload=payload, resend_of=resend_of
    )
    delivery_id = delivery.pk
    transaction.on_commit(lambda: webhook_deliver_task.delay(delivery_id, 1))
    return delivery


def webhook_backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): what the receiver asked
    for in Retry-After when it did, otherwise exponential with jitter; never over the cap."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), BACKOFF_CAP_SECONDS)
    delay = BACKOFF_BASE_SECONDS * 3 ** (attempt - 1)
    jittered = delay * random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries, not crypto
    return round(min(jittered, BACKOFF_CAP_SECONDS), 3)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - timezone.now()).total_seconds(), 0.0)


@dataclass(frozen=True)
class _Outcome:
    code: int | None = None
    error: str = ""
    excerpt: str = ""
    retryable: bool = False
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def _post(delivery: WebhookDelivery, secret: str) -> _Outcome:
    try:
        target = _target(delivery.url)
    except WebhookURLError as exc:
        return _Outcome(error=exc.messages[0])
    except ConnectionError as exc:
        return _Outcome(error=str(exc), retryable=True)
    body = webhook_body(delivery.payload)
    timestamp = str(int(time.time()))
    headers = webhook_headers(
        secret=secret,
        timestamp=timestamp,
        body=body,
        event=delivery.event,
        delivery_id=delivery.pk,
    )
    headers["Host"] = target.host_header
    seconds = float(settings.CRM_WEBHOOK_TIMEOUT)
    timeout = httpx2.Timeout(seconds, connect=min(seconds, _CONNECT_TIMEOUT_CAP))
    try:
        with (
            httpx2.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST",
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.sni},
            ) as response,
        ):
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= _READ_LIMIT_BYTES:
                    break
            code = response.status_code
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except httpx2.TimeoutException as exc:
        return _Outcome(error=f"timeout ({type(exc).__name__})", retryable=True)
    except httpx2.HTTPError as exc:
        return _Outcome(error=f"connection error ({type(exc).__name__})", retryable=True)
    excerpt = raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    if 200 <= code < 300:
        return _Outcome(code=code, excerpt=excerpt)
    if code >= 500 or code in RETRYABLE_CODES:
        return _Outcome(
            code=code,
            excerpt=excerpt,
            error=f"HTTP {code}",
            retryable=True,
            retry_after=retry_after,
        )
    if 300 <= code < 400:
        return _Outcome(
            code=code, excerpt=excerpt, error=f"HTTP {code}: redirects are not followed"
        )
    return _Outcome(code=code, excerpt=excerpt, error=f"HTTP {code}")


def webhook_deliver(*, delivery_id: int, attempt: int) -> float | None:
    """Make attempt number `attempt` (1-based) of a pending delivery and record it (time,
    status code, error, duration) in its log. Returns the seconds to wait before the next
    attempt, or None when there is none: delivered (2xx), failed for good (other 4xx, 3xx, a
    refused address, CRM_WEBHOOK_MAX_ATTEMPTS reached), or nothing to do (the delivery is
    gone, settled, or this attempt was already made: safe to run twice)."""
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if (
        delivery is None
        or delivery.status != WebhookDelivery.Status.PENDING
        or delivery.attempts >= attempt
    ):
        return None
    secret = LeadSettings.objects.filter(pk=1).values_list("crm_webhook_secret", flat=True).first()
    started = time.monotonic()
    outcome = _post(delivery, secret or "")
    ms = round((time.monotonic() - started) * 1000)
    now = timezone.now()
    entry = {
        "attempt": attempt,
        "at": now.isoformat(),
        "code": outcome.code,
        "error": outcome.error,
        "ms": ms,
    }
    delay: float | None = None
    fields: dict[str, Any] = {
        "attempts": attempt,
        "response_code": outcome.code,
        "response_excerpt": outcome.excerpt,
        "error": outcome.error[:500],
        "log": [*delivery.log, entry],
    }
    if outcome.delivered:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now)
    elif outcome.retryable and attempt < settings.CRM_WEBHOOK_MAX_ATTEMPTS:
        delay = webhook_backoff(attempt, outcome.retry_after)
        entry["retry_in"] = delay
    else:
        fields["status"] = WebhookDelivery.Status.FAILED
    # Only the worker that made the previous attempt's record wins (a duplicate run of the
    # same attempt, e.g. a redelivered task, writes nothing and schedules nothing).
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, attempts=delivery.attempts, status=WebhookDelivery.Status.PENDING
    ).update(**fields)
    if not updated:
        return None
    logger.info(
        "webhook delivery %s (%s) attempt %s: code=%s error=%s ms=%s",
        delivery.pk,
        delivery.event,
        attempt,
        outcome.code,
        outcome.error or "-",
        ms,
    )
    return delay


def webhook_resend(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """A new delivery of `delivery`'s payload to the current webhook URL (`resend_of` set),
    queued after commit and audited. Raises WebhookURLError without a URL."""
    url = _current_url()
    with transaction.atomic():
        resent = webhook_delivery_create(
            event=delivery.event,
            payload=delivery.payload,
            url=url,
            lead=delivery.lead,
            resend_of=delivery,
        )
        audit_record(
            actor=actor,
            action="lead_webhook.resend",
            instance=resent,
            changes={"resend_of": [None, delivery.pk]},
        )
    return resent


def webhook_test_send(*, actor: Actor) -> WebhookDelivery:
    """Queue a `webhook.test` event (signed like any other) to the current URL, audited.
    Raises WebhookURLError without a URL."""
    url = _current_url()
    company = connection.tenant  # type: ignore[attr-defined]
    payload = {
        "event": EVENT_TEST,
        "company": company.slug,
        "occurred_at": timezone.now().isoformat(),
        "data": {"message": "Test event from CHAPI"},
    }
    with transaction.atomic():
        delivery = webhook_delivery_create(event=EVENT_TEST, payload=payload, url=url)
        audit_record(actor=actor, action="lead_webhook.test", instance=delivery)
    return delivery


def _current_url() -> str:
    url = LeadSettings.objects.filter(pk=1).values_list("crm_webhook_url", flat=True).first()
    if not url:
        raise WebhookURLError(_("Set the CRM webhook URL first."), code="missing")
    webhook_url_validate(url)
    return url


# --- Lead settings -------------------------------------------------------------------------

SECRET_FIELDS = frozenset({"crm_webhook_secret"})


def lead_settings_update(
    *, lead_settings: LeadSettings, values: dict[str, Any], actor: Actor
) -> dict[str, list[Any]]:
    """Apply `values` (field name → new value) to the company's lead settings and record the
    change in the audit log, secrets masked. Returns the changes ({field: [old, new]})."""
    with transaction.atomic():
        row = LeadSettings.objects.select_for_update().get(pk=lead_settings.pk)
        old = {field: getattr(row, field) for field in values}
        for field, value in values.items():
            setattr(row, field, value)
        changes = audit_diff(row, old, secret_fields=SECRET_FIELDS)
        if changes:
            row.save(update_fields=list(changes))
            audit_record(actor=actor, action="lead_settings.update", instance=row, changes=changes)
    for field in values:
        setattr(lead_settings, field, getattr(row, field))
    return changes
