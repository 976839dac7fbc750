"""A local server speaking Twilio's Messages API, for tests and benchmarks (there is no internet).

`FakeTwilio` runs an aiohttp server on its own event loop in a daemon thread; the product
talks to it through the real `twilio` SDK (9.13)::

    with FakeTwilio() as fake:                 # knows DEFAULT_ACCOUNT_SID / DEFAULT_AUTH_TOKEN
        client = twilio_client(fake)           # twilio.rest.Client aimed at the fake
        message = client.messages.create(from_=DEFAULT_SENDER, to="whatsapp:+5215512345678",
                                         body="hola")
        assert fake.sent(to="whatsapp:+5215512345678")[0].body == "hola"

Pointing the SDK at the fake: every SDK call ends in `Client.request()` ->
`http_client.request(method, url, ...)` with an absolute `https://api.twilio.com/2010-04-01/...`
URL (twilio/base/domain.py joins the Api domain's `base_url` and the path). So the robust way
is an `http_client` whose `request()` swaps that origin for the fake's: `FakeTwilioHttpClient`
(a `TwilioHttpClient` subclass; what `twilio_client(fake, sid, token)` builds, and what the
product's `_BaseUrlHttpClient` does with TWILIO_API_BASE_URL = `fake.base_url`). It covers
every domain, region/edge rewriting and the SDK's own auth. Setting `client.api.base_url =
fake.url` also works for the Api domain only, and breaks as soon as `region`/`edge` is set
(`ClientBase.get_hostname` rewrites the host by splitting it on dots).

Endpoints (HTTP basic auth: account SID + auth token; `add_account()`; wrong or missing -> 401
`{"code": 20003, "message": "Authenticate", "more_info": ..., "status": 401}`, the account in
the URL must be the authenticated one; unknown paths -> 404 code 20404; errors are Twilio's
legacy JSON, which the SDK raises as `TwilioRestException` with `.status`, `.code` and `.msg`
= "Unable to create record: <message>"):
- `GET /2010-04-01/Accounts/{AccountSid}.json`: the Account (status "active", type "Full", ...).
- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: To, From or
  MessagingServiceSid, Body, MediaUrl (repeatable), StatusCallback, ContentSid,
  ContentVariables, ...): 201 and a Message (`sid` "SM" + 32 hex, `status` "queued" ("accepted"
  with a MessagingServiceSid), `direction` "outbound-api", `num_segments`, `num_media`,
  `price` null, RFC 2822 dates, `uri`, `subresource_uris`). Checked like Twilio: To required
  (21604) and E.164, optionally `whatsapp:`-prefixed (21211 "Invalid 'To' Phone Number: ...");
  From or MessagingServiceSid (21603); Body, MediaUrl or ContentSid (21602); Body <= 1600
  characters (21617); From and To on the same channel (21910); ContentSid "HX" + 32 hex (21655)
  and ContentVariables a JSON object (21656). Recorded: `sent(to=...)`.
- `GET .../Messages/{Sid}.json`: a message sent. `GET .../Messages/{MM}/Media/{ME}`: inbound
  media the builders registered, without auth (if sent it must be right): a 307 to `/cdn/{ME}`
  which serves the bytes, like Twilio's redirect to its CDN (clients must follow redirects).

Faults (`queue_fault(kind, times=1, endpoint="messages", **options)`; endpoint "messages"
(create), "account" (fetch) or "*") hit the next requests after authentication, before
validation: "429" (HTTP 429, code 20429 "Too Many Requests", `Retry-After` = option
`retry_after`, default 1; the SDK does not retry), "500" (code 20500), "21610" (400
"Attempt to send to unsubscribed recipient"), "21211" (400, invalid To), "63016" (400, outside
the 24-hour window: freeform not allowed), "hang" (no answer; the SDK's requests raise
`requests.exceptions.ReadTimeout`, an OSError, once `timeout` passes). Real Twilio accepts a
WhatsApp freeform message outside the window (201 "queued") and reports 63016 later in a
"failed"/"undelivered" status callback: `callback(sid, "failed", error_code=63016)` does that.

Webhooks: `signature(url, params, auth_token)` is X-Twilio-Signature (base64 HMAC-SHA1 of the
URL followed by each parameter name and value, names sorted; identical to
`twilio.request_validator.RequestValidator.compute_signature`). Builders: `incoming(...)` (an
inbound WhatsApp message: MessageSid, From "whatsapp:+...", To, Body, NumMedia/MediaUrl0/
MediaContentType0, ProfileName, WaId, location, button replies) and `status_callback(sid,
status, error_code=...)` (MessageSid, MessageStatus queued/sent/delivered/read/failed/
undelivered, ErrorCode) return the form parameters; `deliver(url, params, auth_token)` POSTs
them signed, as Twilio does; `fake.callback(sid, status)` posts to the StatusCallback a
message was created with.

Requests are recorded (`requests`, `last_request`) before any check. `latency_ms` delays every
answer. `reset()` forgets records, faults, messages, media and accounts but the default one.
CLI: `python -m tests.fakes.twilio_server --port 8092 [--latency-ms N]`. Imports neither
Django nor pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx2
from aiohttp import web
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from tests.fakes._server import LocalServer

FaultKind = Literal["429", "500", "21610", "21211", "63016", "hang"]
Endpoint = Literal["messages", "account", "*"]

DEFAULT_ACCOUNT_SID = "AC" + "fa4e" * 8
DEFAULT_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
DEFAULT_SENDER = "whatsapp:+14155238886"
TWILIO_ORIGIN = "https://api.twilio.com"
MAX_BODY = 1600
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_FAULTS: dict[str, tuple[int, int, str]] = {
    "429": (429, 20429, "Too Many Requests"),
    "500": (500, 20500, "Internal Server Error"),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "21211": (400, 21211, "Invalid 'To' Phone Number: {to}"),
    "63016": (
        400,
        63016,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
}
_FAULT_OPTIONS = {kind: {"message"} for kind in _FAULTS} | {"hang": set()}
_FAULT_OPTIONS["429"] = {"message", "retry_after"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request: `headers` keys lowercased; `form` the form body (a repeated field, like
    MediaUrl, as a list); `auth` the basic-auth (username, password), if any."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str | list[str]]
    raw: bytes
    timestamp: float

    @property
    def auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user, password


@dataclass(frozen=True)
class SentMessage:
    """A message the fake accepted: the main fields, every form field (`params`) and the
    Message resource answered (`resource`)."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str | None
    media_urls: tuple[str, ...]
    content_sid: str | None
    content_variables: dict[str, Any] | None
    status_callback: str | None
    params: dict[str, str | list[str]]
    resource: dict[str, Any] = field(repr=False)


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]


class FakeTwilioHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending `https://*.twilio.com` requests to `base_url`."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        url = re.sub(r"^https://[a-z0-9.-]+\.twilio\.com", self.base_url, url)
        return super().request(method, url, *args, **kwargs)


def twilio_client(
    fake: FakeTwilio,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    *,
    timeout: float | None = 5.0,
) -> Client:
    """A real `twilio.rest.Client` whose requests go to `fake` (see the module docstring)."""
    return Client(
        account_sid, auth_token, http_client=FakeTwilioHttpClient(fake.base_url, timeout=timeout)
    )


def signature(
    url: str, params: Mapping[str, Any] | Iterable[tuple[str, str]], auth_token: str
) -> str:
    """X-Twilio-Signature for a POST of `params` to `url`: base64(HMAC-SHA1(auth_token, url +
    name1 + value1 + ...)) over the names sorted (several values of a name: sorted, as the SDK's
    RequestValidator does). For a GET, pass the URL with its query and no params."""
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        for item in value if isinstance(value, list | tuple) else [value]:
            values.setdefault(str(name), set()).add(str(item))
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def deliver(
    url: str, params: Mapping[str, Any], auth_token: str, *, timeout: float = 10
) -> httpx2.Response:
    """POST `params` form-encoded to `url`, signed like Twilio's webhooks."""
    headers = {
        "X-Twilio-Signature": signature(url, params, auth_token),
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        "User-Agent": "TwilioProxy/1.1",
    }
    return httpx2.post(url, data=dict(params), headers=headers, timeout=timeout)


class FakeTwilio(LocalServer):
    """Twilio Messages API server in a background thread (see the module docstring).

    Scripting methods, builders and records are thread-safe. `start()` binds (port 0 picks a
    free port, kept for restarts) and returns once connections are accepted (OSError if the port
    is taken); `stop()` drops hung requests and returns once the port is closed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0) -> None:
        super().__init__(host, port)
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        self._accounts: dict[str, dict[str, str]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._records: list[RecordedRequest] = []
        self._sent: list[SentMessage] = []
        self._media: dict[str, tuple[str, bytes]] = {}
        self.add_account(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What stands for https://api.twilio.com (TWILIO_API_BASE_URL)."""
        return self.url

    # -- scripting and records -------------------------------------------------------------

    def add_account(
        self, account_sid: str, auth_token: str, friendly_name: str = "CHAPI test"
    ) -> None:
        if not re.fullmatch(r"AC[0-9a-f]{32}", account_sid):
            raise ValueError(f"an account SID is AC + 32 hex digits, not {account_sid!r}")
        with self._lock:
            self._accounts[account_sid] = {"auth_token": auth_token, "friendly_name": friendly_name}

    def queue_fault(
        self, kind: FaultKind, times: int = 1, *, endpoint: Endpoint = "messages", **options: Any
    ) -> None:
        """The next `times` requests to `endpoint` fail with `kind` (module docstring)."""
        if kind not in _FAULT_OPTIONS:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_OPTIONS)}"
            )
        if endpoint not in ("messages", "account", "*"):
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if unknown := set(options) - _FAULT_OPTIONS[kind]:
            raise TypeError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(_Fault(kind, times, options))

    def reset(self) -> None:
        """Forget records, faults, messages, media and added accounts. `latency_ms` is kept."""
        with self._lock:
            self._faults.clear()
            self._records.clear()
            self._sent.clear()
            self._media.clear()
            self._accounts.clear()
        self.add_account(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._records:
                raise AssertionError("FakeTwilio received no request")
            return self._records[-1]

    def sent(self, to: str | None = None) -> list[SentMessage]:
        """Messages created (oldest first), to `to` when given."""
        with self._lock:
            return [m for m in self._sent if to is None or m.to == to]

    def message(self, sid: str) -> SentMessage:
        with self._lock:
            for message in self._sent:
                if message.sid == sid:
                    return message
        raise KeyError(sid)

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        form: dict[str, str | list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for name, value in parse_qsl(raw.decode(errors="replace"), keep_blank_values=True):
                previous = form.get(name)
                form[name] = value if previous is None else [*_as_list(previous), value]
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            form,
            raw,
            time.time(),
        )
        with self._lock:
            self._records.append(record)
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        path = request.path
        if match := re.fullmatch(r"/cdn/(ME[0-9a-f]{32})", path):
            with self._lock:
                stored = self._media.get(match.group(1))
            if stored is not None:
                return web.Response(body=stored[1], content_type=stored[0])
            return _error(404, 20404, f"The requested resource {path} was not found")
        match = re.fullmatch(r"/2010-04-01/Accounts/([^/]+?)(?:\.json|/(.+))", path)
        if match is None:
            return _error(404, 20404, f"The requested resource {path} was not found")
        account_sid, rest = match.groups()
        with self._lock:
            account = self._accounts.get(account_sid)
            media = re.fullmatch(r"Messages/MM[0-9a-f]{32}/Media/(ME[0-9a-f]{32})", rest or "")
            media_sid = media.group(1) if media and media.group(1) in self._media else None
        expected = (account_sid, account["auth_token"]) if account is not None else None
        # Media URLs are public unless credentials are sent (then they must be right).
        if media_sid and request.method == "GET" and record.auth in (None, expected):
            raise web.HTTPTemporaryRedirect(f"/cdn/{media_sid}")
        if account is None or record.auth != expected:
            return _error(
                401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        if rest is None and request.method == "GET":
            return await self._faulted(request, "account", record) or _json(
                _account(account_sid, account)
            )
        if rest == "Messages.json" and request.method == "POST":
            return await self._faulted(request, "messages", record) or self._create(
                account_sid, form
            )
        if match := re.fullmatch(r"Messages/([A-Z]{2}[0-9a-f]{32})\.json", rest or ""):
            sent = next((m for m in self.sent() if m.sid == match.group(1)), None)
            if sent is not None and sent.account_sid == account_sid and request.method == "GET":
                return _json(sent.resource)
        return _error(404, 20404, f"The requested resource {path} was not found")

    async def _faulted(
        self, request: web.Request, endpoint: str, record: RecordedRequest
    ) -> web.StreamResponse | None:
        with self._lock:
            fault = None
            for key in (endpoint, "*"):
                if faults := self._faults.get(key):
                    fault = faults[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.popleft()
                    break
        if fault is None:
            return None
        if fault.kind == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        status, code, message = _FAULTS[fault.kind]
        message = fault.options.get("message", message).format(to=record.form.get("To", ""))
        headers = (
            {"Retry-After": str(fault.options.get("retry_after", 1))} if status == 429 else None
        )
        return _error(status, code, message, headers)

    def _create(self, account_sid: str, form: dict[str, str | list[str]]) -> web.Response:
        value = {name: (v[-1] if isinstance(v, list) else v) for name, v in form.items()}
        to, from_ = value.get("To", ""), value.get("From")
        service, body = value.get("MessagingServiceSid"), value.get("Body")
        media_urls = tuple(_as_list(form.get("MediaUrl", [])))
        content_sid, variables = value.get("ContentSid"), value.get("ContentVariables")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.fullmatch(to.removeprefix("whatsapp:")):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_ and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not media_urls and not content_sid:
            return _error(400, 21602, "Message body is required.")
        if body and len(body) > MAX_BODY:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if from_ and from_.startswith("whatsapp:") != to.startswith("whatsapp:"):
            return _error(
                400, 21910, "Invalid From and To pair. From and To should be of the same channel"
            )
        if content_sid and not re.fullmatch(r"HX[0-9a-f]{32}", content_sid):
            return _error(400, 21655, "The ContentSid is Invalid.")
        parsed_variables = None
        if variables is not None:
            try:
                parsed_variables = json.loads(variables)
            except ValueError:
                parsed_variables = None
            if not isinstance(parsed_variables, dict):
                return _error(400, 21656, "The ContentVariables Parameter is invalid.")
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=False).replace("-0000", "+0000")
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
        resource = {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(len(media_urls)),
            "num_segments": _segments(body or "", to.startswith("whatsapp:")),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not from_ else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "tags": None,
            "to": to,
            "uri": f"{uri}.json",
        }
        sent = SentMessage(
            sid,
            account_sid,
            to,
            from_,
            body,
            media_urls,
            content_sid,
            parsed_variables,
            value.get("StatusCallback"),
            dict(form),
            resource,
        )
        with self._lock:
            self._sent.append(sent)
        return _json(resource, status=201)

    # -- webhook builders ------------------------------------------------------------------

    def incoming(
        self,
        body: str = "",
        *,
        from_: str = "whatsapp:+5215512345678",
        to: str = DEFAULT_SENDER,
        profile_name: str = "Ana",
        media: Sequence[tuple[str, bytes]] = (),
        latitude: float | None = None,
        longitude: float | None = None,
        address: str | None = None,
        label: str | None = None,
        button_text: str | None = None,
        button_payload: str | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
    ) -> dict[str, str]:
        """The form Twilio posts for an inbound WhatsApp message. `media`: (content type,
        bytes) pairs, served by the fake (MediaUrlN points at it when it runs)."""
        sid = ("MM" if media else "SM") + secrets.token_hex(16)
        params = {
            "SmsMessageSid": sid,
            "NumMedia": str(len(media)),
            "ProfileName": profile_name,
            "MessageType": "text",
            "SmsSid": sid,
            "WaId": re.sub(r"\D", "", from_),
            "SmsStatus": "received",
            "Body": body,
            "To": to,
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": account_sid,
            "From": from_,
            "ApiVersion": "2010-04-01",
        }
        origin = self.url if self._thread is not None else TWILIO_ORIGIN
        for index, (content_type, data) in enumerate(media):
            media_sid = "ME" + secrets.token_hex(16)
            with self._lock:
                self._media[media_sid] = (content_type, data)
            params[f"MediaContentType{index}"] = content_type
            params[f"MediaUrl{index}"] = (
                f"{origin}/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media/{media_sid}"
            )
            if index == 0:
                major = content_type.partition("/")[0]
                params["MessageType"] = (
                    major if major in ("image", "audio", "video") else "document"
                )
        if latitude is not None and longitude is not None:
            params |= {
                "Latitude": str(latitude),
                "Longitude": str(longitude),
                "MessageType": "location",
            }
            params |= {k: v for k, v in (("Address", address), ("Label", label)) if v}
        if button_text is not None:
            params |= {"ButtonText": button_text, "ButtonPayload": button_payload or button_text}
            params["MessageType"] = "button"
        return params

    def status_callback(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        to: str | None = None,
        from_: str | None = None,
        account_sid: str | None = None,
    ) -> dict[str, str]:
        """The form of a status callback for message `sid` (To/From/AccountSid taken from the
        message when the fake sent it); `error_code` adds ErrorCode (failed/undelivered)."""
        sent = next((m for m in self.sent() if m.sid == sid), None)
        to = to or (sent.to if sent else "whatsapp:+5215512345678")
        from_ = from_ or (sent.from_ if sent and sent.from_ else DEFAULT_SENDER)
        params = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": to,
            "MessageSid": sid,
            "AccountSid": account_sid or (sent.account_sid if sent else DEFAULT_ACCOUNT_SID),
            "From": from_,
            "ApiVersion": "2010-04-01",
        }
        if to.startswith("whatsapp:"):
            params |= {
                "ChannelPrefix": "whatsapp",
                "ChannelToAddress": to.removeprefix("whatsapp:"),
            }
            params |= {"ChannelInstallSid": "XE" + "0" * 32, "StructuredMessage": "false"}
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def callback(
        self, sid: str, status: str, *, error_code: int | None = None, url: str | None = None
    ) -> httpx2.Response:
        """POST a signed status callback for message `sid` to its StatusCallback (or `url`)."""
        sent = self.message(sid)
        target = url or sent.status_callback
        if not target:
            raise AssertionError(f"message {sid} has no StatusCallback")
        with self._lock:
            token = self._accounts[sent.account_sid]["auth_token"]
        return deliver(target, self.status_callback(sid, status, error_code=error_code), token)


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _segments(body: str, whatsapp: bool) -> str:
    if whatsapp or not body:
        return "1"
    single, part = (160, 153) if body.isascii() else (70, 67)
    return "1" if len(body) <= single else str(math.ceil(len(body) / part))


def _account(sid: str, account: dict[str, str]) -> dict[str, Any]:
    names = {
        "calls": "Calls",
        "messages": "Messages",
        "incoming_phone_numbers": "IncomingPhoneNumbers",
        "balance": "Balance",
        "usage": "Usage",
    }
    return {
        "auth_token": account["auth_token"],
        "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
        "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000",
        "friendly_name": account["friendly_name"],
        "owner_account_sid": sid,
        "sid": sid,
        "status": "active",
        "subresource_uris": {k: f"/2010-04-01/Accounts/{sid}/{v}.json" for k, v in names.items()},
        "type": "Full",
        "uri": f"/2010-04-01/Accounts/{sid}.json",
    }


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(
        payload, status=status, headers={"Twilio-Request-Id": "RQ" + secrets.token_hex(16)}
    )


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(payload, status=status, headers=headers)


def main(argv: Iterable[str] | None = None) -> int:
    """Run a FakeTwilio in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    fake = FakeTwilio(host=args.host, port=args.port, latency_ms=args.latency_ms)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    fake.start()
    print(
        f"FakeTwilio listening: base_url={fake.base_url} account_sid={DEFAULT_ACCOUNT_SID} "
        f"auth_token={DEFAULT_AUTH_TOKEN}",
        flush=True,
    )
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
