"""A local server speaking Meta's WhatsApp Cloud API (Graph API), for tests and benchmarks.

`FakeMeta` runs an aiohttp server on its own event loop in a daemon thread; the product talks
to it with plain httpx2, as to https://graph.facebook.com::

    with FakeMeta() as fake:      # knows DEFAULT_PHONE_NUMBER_ID and DEFAULT_ACCESS_TOKEN
        url = f"{fake.base_url}/v21.0/{DEFAULT_PHONE_NUMBER_ID}/messages"
        httpx2.post(url, headers={"Authorization": f"Bearer {DEFAULT_ACCESS_TOKEN}"},
                    json={"messaging_product": "whatsapp", "to": "5215512345678",
                          "type": "text", "text": {"body": "hola"}})
        assert fake.sent(to="5215512345678")[0].text == "hola"
        deliver(webhook_url, fake.message_text("precio?"), DEFAULT_APP_SECRET)

Endpoints (any `v<major>.<minor>` version; the token as `Authorization: Bearer` or the
`access_token` query parameter; `add_phone_number(id, token, ...)` says which token may use
which phone number id; errors are Graph's `{"error": {"message", "type", "code",
["error_subcode"], ["error_data": {"messaging_product", "details"}], "fbtrace_id"}}`):
- `POST /{version}/{phone_number_id}/messages` (JSON or form): `messaging_product` "whatsapp",
  `to`, `type` (default text) and its object: text {body <= 4096 characters, preview_url},
  template {name, language{code}, components}, image/document/audio/video/sticker {id or link,
  caption, filename}, location, contacts, interactive, reaction -> 200
  `{"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": digits}], "messages":
  [{"id": "wamid...."}]}` (+ `"message_status": "accepted"` for templates). `{"status": "read",
  "message_id": ...}` (mark as read, optional typing_indicator) -> `{"success": true}`.
  Invalid parameters -> 400 code 100 ("(#100) The parameter to is required.", "(#100) Param
  text['body'] must be at most 4096 characters long.", ...). Recorded: `sent(to=...)`.
- `GET /{version}/{phone_number_id}[?fields=a,b]`: verified_name, code_verification_status,
  display_phone_number ("+1 555-..."), quality_rating, platform_type, throughput, id (only the
  `fields` asked, and id).
- `GET /{version}/{media_id}` -> `{"messaging_product", "url", "mime_type", "sha256",
  "file_size", "id"}`; the url (`/whatsapp_business/attachments/?mid=...`, like Meta's
  lookaside URLs) serves the bytes to a request with a valid bearer token (401 without).
A missing/unknown token -> 401 code 190 "Invalid OAuth access token - Cannot parse access
token" (type OAuthException, `WWW-Authenticate` header); a phone number or media id the token
cannot use -> 400 GraphMethodException code 100, subcode 33 ("Unsupported post request. Object
with ID '...' does not exist, ..."); other paths -> 400 code 2500 "Unknown path components".

Faults (`queue_fault(kind, times=1, endpoint="messages", **options)`; endpoint "messages",
"phone", "media" or "*") hit the next requests after the token check, before validation:
"429" (HTTP 429 code 130429 "(#130429) Rate limit hit"; option `code=80007` (WABA rate limit)
or `code=131056` (pair rate limit), both HTTP 400 as Meta answers them), "500" (HTTP 500 code
131000 "Something went wrong"), "131047" (re-engagement: more than 24 hours since the customer
last wrote), "131026" (message undeliverable), "131051" (unsupported message type), all 400
with `error_data.details`; "190" (401, expired token, subcode 463); "hang" (no answer until the
client gives up). Real Cloud API usually accepts such messages (200) and reports 131047/131026
in a later "failed" status webhook: `status(wamid, "failed", error_code=131047)` builds it.

Webhooks: builders return payloads shaped as Meta posts them (`object`
"whatsapp_business_account", `entry[].changes[].value` with `metadata`, `contacts`, `messages`
or `statuses`, `field` "messages"): `message_text`, `message_image`, `message_document`,
`message_audio`, `message_location`, `message_contacts`, `message_interactive`,
`message_button`, `message_reaction`, `message_unsupported`, `status` (sent/delivered/read/
failed with `errors[]`); `combine(*payloads)` batches several in one notification. Media
builders register their bytes (download them as above). `signature(body, app_secret)` is
X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body); `deliver(url, payload,
app_secret)` POSTs the payload as Meta does (compact JSON, non-ASCII escaped as \\uXXXX: verify
the raw bytes, never re-serialised JSON); `verify(url, verify_token, challenge)` makes the GET
subscription handshake (hub.mode=subscribe, hub.verify_token, hub.challenge).

Requests are recorded (`requests`, `last_request`) before any check. `latency_ms` delays every
answer. `reset()` forgets records, faults, messages, media and phone numbers but the default.
CLI: `python -m tests.fakes.meta_server --port 8093 [--latency-ms N]`. Imports neither Django
nor pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx2
from aiohttp import web

from tests.fakes._server import LocalServer

FaultKind = Literal["429", "500", "131047", "131026", "131051", "190", "hang"]
Endpoint = Literal["messages", "phone", "media", "*"]

DEFAULT_VERSION = "v21.0"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_WABA_ID = "102290129340398"
DEFAULT_ACCESS_TOKEN = "EAAFakeAccessTokenForChapiTests0123456789"
DEFAULT_DISPLAY_PHONE_NUMBER = "+1 555-010-0199"
DEFAULT_VERIFIED_NAME = "CHAPI Test"
DEFAULT_APP_SECRET = "fake-app-secret-0123456789abcdef"
DEFAULT_VERIFY_TOKEN = "fake-verify-token"
DEFAULT_CUSTOMER = "5215512345678"
MAX_TEXT = 4096
MESSAGE_TYPES: tuple[str, ...] = ("audio", "contacts", "document", "image", "interactive")
MESSAGE_TYPES += ("location", "reaction", "sticker", "template", "text", "video")
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
# code -> (HTTP status, title, details)
ERRORS: dict[int, tuple[int, str, str]] = {
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    80007: (400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone "
        "number in a short period of time.",
    ),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131026: (400, "Message undeliverable", "Unable to deliver message."),
    131051: (400, "Unsupported message type", "Message type is not currently supported."),
}
_FAULT_CODES = {"500": 131000, "131047": 131047, "131026": 131026, "131051": 131051}
_FAULT_OPTIONS: dict[str, set[str]] = {"429": {"code"}, "190": set(), "hang": set()}
_FAULT_OPTIONS |= {kind: set() for kind in _FAULT_CODES}
_PHONE_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "id",
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request: `headers` keys lowercased; `body` the parsed JSON (or form) body, None when
    empty or unparseable; `raw` the bytes."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes
    timestamp: float

    @property
    def access_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            return token
        return self.query.get("access_token")


@dataclass(frozen=True)
class SentMessage:
    """A message the fake accepted: `body` the JSON sent, `text`/`template` its content."""

    id: str
    phone_number_id: str
    to: str
    wa_id: str
    type: str
    body: dict[str, Any] = field(repr=False)

    @property
    def text(self) -> str | None:
        return (self.body.get("text") or {}).get("body") if self.type == "text" else None

    @property
    def template(self) -> dict[str, Any] | None:
        return self.body.get("template") if self.type == "template" else None


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]


def signature(body: bytes, app_secret: str) -> str:
    """X-Hub-Signature-256 for `body`: "sha256=" + hex HMAC-SHA256 with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def payload_bytes(payload: dict[str, Any]) -> bytes:
    """A payload serialised as Meta sends it: compact, non-ASCII as \\uXXXX escapes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def deliver(
    url: str, payload: dict[str, Any] | bytes, app_secret: str, *, timeout: float = 10
) -> httpx2.Response:
    """POST a notification (a dict, or raw bytes sent as they are) as Meta does: JSON with
    X-Hub-Signature-256 (and the legacy SHA-1 X-Hub-Signature)."""
    body = payload if isinstance(payload, bytes) else payload_bytes(payload)
    sha1 = hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature(body, app_secret),
        "X-Hub-Signature": f"sha1={sha1}",
        "User-Agent": "facebookexternalua",
    }
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)


def verify(
    url: str, verify_token: str, challenge: str = "1158201444", *, timeout: float = 10
) -> httpx2.Response:
    """The GET Meta makes to check a callback URL; a genuine endpoint answers the challenge."""
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
    return httpx2.get(url, params=params, timeout=timeout)


class FakeMeta(LocalServer):
    """WhatsApp Cloud API server in a background thread (see the module docstring).

    Scripting methods, builders and records are thread-safe. `start()` binds (port 0 picks a
    free port, kept for restarts) and returns once connections are accepted (OSError if the port
    is taken); `stop()` drops hung requests and returns once the port is closed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0) -> None:
        super().__init__(host, port)
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        self._phones: dict[str, dict[str, str]] = {}
        self._media: dict[str, tuple[str, bytes]] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._records: list[RecordedRequest] = []
        self._sent: list[SentMessage] = []
        self._ids = itertools.count(1)
        self.add_phone_number(DEFAULT_PHONE_NUMBER_ID, DEFAULT_ACCESS_TOKEN)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What stands for https://graph.facebook.com (WHATSAPP_CLOUD_API_BASE_URL)."""
        return self.url

    # -- scripting and records -------------------------------------------------------------

    def add_phone_number(
        self,
        phone_number_id: str,
        access_token: str,
        *,
        display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
        verified_name: str = DEFAULT_VERIFIED_NAME,
        waba_id: str = DEFAULT_WABA_ID,
    ) -> None:
        """Let `access_token` send from (and read) phone number `phone_number_id`."""
        with self._lock:
            self._phones[phone_number_id] = {
                "token": access_token,
                "display_phone_number": display_phone_number,
                "verified_name": verified_name,
                "waba_id": waba_id,
            }

    def add_media(self, data: bytes, mime_type: str) -> str:
        """Store media (as a customer's upload); returns its id."""
        media_id = str(1_000_000_000_000_000 + next(self._ids) * 7919)
        with self._lock:
            self._media[media_id] = (mime_type, data)
        return media_id

    def queue_fault(
        self, kind: FaultKind, times: int = 1, *, endpoint: Endpoint = "messages", **options: Any
    ) -> None:
        """The next `times` requests to `endpoint` fail with `kind` (module docstring)."""
        if kind not in _FAULT_OPTIONS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(_FAULT_OPTIONS)}")
        if endpoint not in ("messages", "phone", "media", "*"):
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if unknown := set(options) - _FAULT_OPTIONS[kind]:
            raise TypeError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        if kind == "429" and options.get("code", 130429) not in (130429, 80007, 131056):
            raise ValueError("a 429 fault's code is 130429, 80007 or 131056")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(_Fault(kind, times, options))

    def reset(self) -> None:
        """Forget records, faults, messages, media and added phone numbers. Keeps latency."""
        with self._lock:
            self._faults.clear()
            self._records.clear()
            self._sent.clear()
            self._media.clear()
            self._phones.clear()
        self.add_phone_number(DEFAULT_PHONE_NUMBER_ID, DEFAULT_ACCESS_TOKEN)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._records:
                raise AssertionError("FakeMeta received no request")
            return self._records[-1]

    def sent(self, to: str | None = None) -> list[SentMessage]:
        """Messages accepted (oldest first), to `to` (compared as digits) when given."""
        with self._lock:
            return [m for m in self._sent if to is None or m.wa_id == _digits(to)]

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw and request.content_type == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = RecordedRequest(
            request.method, request.path, dict(request.query), headers, body, raw, time.time()
        )
        with self._lock:
            self._records.append(record)
            tokens = {phone["token"] for phone in self._phones.values()}
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        if record.access_token not in tokens:
            message = "Invalid OAuth access token - Cannot parse access token"
            www = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
            return _error(401, 190, message, headers={"WWW-Authenticate": www})
        if request.path == "/whatsapp_business/attachments/":
            return self._download(request.query.get("mid", ""))
        match = re.fullmatch(r"/v\d+\.\d+/([^/]+)(/messages)?/?", request.path)
        if match is None:
            return _error(400, 2500, f"Unknown path components: {request.path}")
        object_id, edge = match.groups()
        with self._lock:
            phone = self._phones.get(object_id)
            media = self._media.get(object_id)
        if phone is not None and phone["token"] != record.access_token:
            phone = None
        verb = request.method.lower()
        if edge and verb == "post" and phone is not None:
            if (early := await self._fault(request, "messages")) is not None:
                return early
            return self._send(object_id, body)
        if not edge and verb == "get" and phone is not None:
            if (early := await self._fault(request, "phone")) is not None:
                return early
            return self._phone(object_id, phone, request.query.get("fields"))
        if not edge and verb == "get" and media is not None:
            if (early := await self._fault(request, "media")) is not None:
                return early
            return _json(self._media_info(object_id, *media))
        return _error(
            400,
            100,
            f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please read "
            "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            type_="GraphMethodException",
            subcode=33,
        )

    async def _fault(self, request: web.Request, endpoint: str) -> web.StreamResponse | None:
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
        if fault.kind == "190":
            expired = time.strftime("%A, %d-%b-%y %H:%M:%S PDT", time.gmtime(time.time() - 3600))
            message = (
                f"Error validating access token: Session has expired on {expired}. The current "
                f"time is {time.strftime('%A, %d-%b-%y %H:%M:%S PDT', time.gmtime())}."
            )
            return _error(401, 190, message, subcode=463)
        code = int(fault.options.get("code", 130429)) if fault.kind == "429" else 0
        return _whatsapp_error(code or _FAULT_CODES[fault.kind])

    def _send(self, phone_number_id: str, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return _error(400, 100, "(#100) Invalid parameter")
        product = body.get("messaging_product")
        if product is None:
            return _error(400, 100, "(#100) The parameter messaging_product is required.")
        if product != "whatsapp":
            return _error(
                400,
                100,
                f'(#100) Param messaging_product must be one of {{WHATSAPP}} - got "{product}".',
            )
        if body.get("status") == "read":
            if not body.get("message_id"):
                return _error(400, 100, "(#100) The parameter message_id is required.")
            return _json({"success": True})
        to = str(body.get("to") or "")
        if not to:
            return _error(400, 100, "(#100) The parameter to is required.")
        kind = str(body.get("type") or "text")
        if kind not in MESSAGE_TYPES:
            choices = ", ".join(t.upper() for t in MESSAGE_TYPES)
            return _error(
                400, 100, f'(#100) Param type must be one of {{{choices}}} - got "{kind}".'
            )
        content = body.get(kind)
        if not isinstance(content, dict) and not (kind == "contacts" and isinstance(content, list)):
            return _error(400, 100, f"(#100) The parameter {kind} is required.")
        if problem := _content_problem(kind, content):
            return _error(400, 100, problem)
        wa_id = _digits(to)
        message_id = "wamid." + base64.b64encode(
            f"\x15\x02\x00\x11\x18\x12{wa_id}{next(self._ids):08d}{secrets.token_hex(8)}".encode()
        ).decode().rstrip("=")
        sent = SentMessage(message_id, phone_number_id, to, wa_id, kind, body)
        with self._lock:
            self._sent.append(sent)
        answer: dict[str, Any] = {"id": message_id}
        if kind == "template":
            answer["message_status"] = "accepted"
        return _json(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [answer],
            }
        )

    def _phone(self, phone_id: str, phone: dict[str, str], fields: str | None) -> web.Response:
        info: dict[str, Any] = {
            "verified_name": phone["verified_name"],
            "code_verification_status": "VERIFIED",
            "display_phone_number": phone["display_phone_number"],
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": phone_id,
        }
        if not fields:
            return _json(info)
        asked = [name.strip() for name in fields.split(",") if name.strip()]
        for name in asked:
            if name not in _PHONE_FIELDS:
                return _error(
                    400,
                    100,
                    f"(#100) Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                )
        return _json({name: info[name] for name in [*asked, "id"]})

    def _media_info(self, media_id: str, mime_type: str, data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        url = (
            f"{self.url}/whatsapp_business/attachments/?mid={media_id}"
            f"&ext={int(time.time())}&hash=AT{digest[:20]}"
        )
        return {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": mime_type,
            "sha256": digest,
            "file_size": len(data),
            "id": media_id,
        }

    def _download(self, media_id: str) -> web.Response:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=media[1], content_type=media[0].split(";")[0])

    # -- webhook builders ------------------------------------------------------------------

    def notification(self, phone_number_id: str = DEFAULT_PHONE_NUMBER_ID, **value: Any) -> dict:
        """A notification for phone `phone_number_id` whose change's value holds `value`
        (contacts, messages, statuses, errors) after `messaging_product` and `metadata`."""
        with self._lock:
            phone = self._phones.get(phone_number_id) or {
                "display_phone_number": DEFAULT_DISPLAY_PHONE_NUMBER,
                "waba_id": DEFAULT_WABA_ID,
            }
        metadata = {
            "display_phone_number": _digits(phone["display_phone_number"]),
            "phone_number_id": phone_number_id,
        }
        change = {
            "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
            "field": "messages",
        }
        entry = {"id": phone["waba_id"], "changes": [change]}
        return {"object": "whatsapp_business_account", "entry": [entry]}

    def _inbound(
        self,
        kind: str,
        content: Any,
        *,
        from_: str = DEFAULT_CUSTOMER,
        name: str = "Ana",
        context_id: str | None = None,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        **extra: Any,
    ) -> dict[str, Any]:
        wamid = "wamid." + base64.b64encode(
            f"\x15\x02\x00\x12\x18\x14{from_}{next(self._ids):08d}".encode()
        ).decode().rstrip("=")
        message: dict[str, Any] = {"from": from_, "id": wamid, "timestamp": str(int(time.time()))}
        if context_id:
            with self._lock:
                display = (self._phones.get(phone_number_id) or {}).get(
                    "display_phone_number", DEFAULT_DISPLAY_PHONE_NUMBER
                )
            message["context"] = {"from": _digits(display), "id": context_id}
        message |= (
            {kind: content, "type": kind, **extra}
            if content is not None
            else {"type": kind, **extra}
        )
        contacts = [{"profile": {"name": name}, "wa_id": from_}]
        return self.notification(phone_number_id, contacts=contacts, messages=[message])

    def message_text(self, body: str, **who: Any) -> dict[str, Any]:
        """An inbound text. `who`: from_ (DEFAULT_CUSTOMER), name ("Ana"), context_id (the
        wamid replied to), phone_number_id."""
        return self._inbound("text", {"body": body}, **who)

    def _media_content(self, data: bytes, mime_type: str, **fields: Any) -> dict[str, Any]:
        media_id = self.add_media(data, mime_type)
        content = {k: v for k, v in fields.items() if v is not None}
        return {
            **content,
            "mime_type": mime_type,
            "sha256": hashlib.sha256(data).hexdigest(),
            "id": media_id,
        }

    def message_image(
        self,
        *,
        caption: str | None = None,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        mime_type: str = "image/jpeg",
        **who: Any,
    ) -> dict[str, Any]:
        return self._inbound("image", self._media_content(data, mime_type, caption=caption), **who)

    def message_document(
        self,
        *,
        filename: str = "catalogo.pdf",
        caption: str | None = None,
        data: bytes = b"%PDF-1.4 fake document",
        mime_type: str = "application/pdf",
        **who: Any,
    ) -> dict[str, Any]:
        content = self._media_content(data, mime_type, caption=caption, filename=filename)
        return self._inbound("document", content, **who)

    def message_audio(
        self,
        *,
        voice: bool = True,
        data: bytes = b"OggS fake voice",
        mime_type: str = "audio/ogg; codecs=opus",
        **who: Any,
    ) -> dict[str, Any]:
        content = self._media_content(data, mime_type) | {"voice": voice}
        return self._inbound("audio", content, **who)

    def message_location(
        self,
        latitude: float,
        longitude: float,
        *,
        name: str | None = None,
        address: str | None = None,
        **who: Any,
    ) -> dict[str, Any]:
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        location |= {k: v for k, v in (("name", name), ("address", address)) if v}
        return self._inbound("location", location, **who)

    def message_contacts(
        self, formatted_name: str, phone: str, *, first_name: str | None = None, **who: Any
    ) -> dict[str, Any]:
        contact = {
            "name": {"formatted_name": formatted_name, "first_name": first_name or formatted_name},
            "phones": [{"phone": phone, "wa_id": _digits(phone), "type": "CELL"}],
        }
        return self._inbound("contacts", [contact], **who)

    def message_interactive(
        self,
        reply_id: str,
        title: str,
        *,
        kind: Literal["button_reply", "list_reply"] = "button_reply",
        description: str | None = None,
        **who: Any,
    ) -> dict[str, Any]:
        """A tap on a reply button / list row the business sent (pass `context_id`)."""
        reply = {"id": reply_id, "title": title}
        if description and kind == "list_reply":
            reply["description"] = description
        return self._inbound("interactive", {"type": kind, kind: reply}, **who)

    def message_button(self, text: str, payload: str | None = None, **who: Any) -> dict:
        """A template's quick-reply button pressed."""
        return self._inbound("button", {"payload": payload or text, "text": text}, **who)

    def message_reaction(self, message_id: str, emoji: str, **who: Any) -> dict[str, Any]:
        return self._inbound("reaction", {"message_id": message_id, "emoji": emoji}, **who)

    def message_unsupported(self, **who: Any) -> dict[str, Any]:
        """A message type the Cloud API does not support (it says so with error 131051)."""
        _, title, details = ERRORS[131051]
        errors = [
            {"code": 131051, "title": title, "message": title, "error_data": {"details": details}}
        ]
        return self._inbound("unsupported", None, errors=errors, **who)

    def status(
        self,
        message_id: str,
        status: Literal["sent", "delivered", "read", "failed"],
        *,
        recipient_id: str = DEFAULT_CUSTOMER,
        error_code: int | None = None,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    ) -> dict[str, Any]:
        """A status notification for a message the business sent; "failed" carries errors[]
        (`error_code`, default 131000, described as in ERRORS)."""
        now = int(time.time())
        item: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(now),
            "recipient_id": recipient_id,
        }
        if status in ("sent", "delivered"):
            conversation: dict[str, Any] = {
                "id": hashlib.sha256(recipient_id.encode()).hexdigest()[:32]
            }
            if status == "sent":
                conversation["expiration_timestamp"] = str(now + 24 * 3600)
            conversation["origin"] = {"type": "service"}
            item["conversation"] = conversation
            item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
        if status == "failed":
            code = error_code or 131000
            _, title, details = ERRORS.get(code, (400, "Error", ""))
            item["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": ERROR_HREF,
                }
            ]
        return self.notification(phone_number_id, statuses=[item])

    @staticmethod
    def combine(*payloads: dict[str, Any]) -> dict[str, Any]:
        """Several notifications as one POST (Meta batches changes of one account)."""
        changes = [change for p in payloads for entry in p["entry"] for change in entry["changes"]]
        entry_id = payloads[0]["entry"][0]["id"] if payloads else DEFAULT_WABA_ID
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": entry_id, "changes": changes}],
        }


def _content_problem(kind: str, content: Any) -> str | None:
    """Graph's complaint about a message's content, if any."""
    if kind == "text":
        body = content.get("body")
        if body is None or body == "":
            return "(#100) The parameter text['body'] is required."
        if not isinstance(body, str):
            return "(#100) Param text['body'] must be a string."
        if len(body) > MAX_TEXT:
            return f"(#100) Param text['body'] must be at most {MAX_TEXT} characters long."
    elif kind == "template":
        if not content.get("name"):
            return "(#100) The parameter template['name'] is required."
        if not isinstance(content.get("language"), dict) or not content["language"].get("code"):
            return "(#100) The parameter template['language'] is required."
    elif kind in ("image", "document", "audio", "video", "sticker") and not (
        content.get("id") or content.get("link")
    ):
        return f"(#100) Param {kind} must contain either id or link."
    return None


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


def _error(
    status: int,
    code: int,
    message: str,
    *,
    type_: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if subcode:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)[:22]
    return web.json_response({"error": error}, status=status, headers=headers)


def _whatsapp_error(code: int) -> web.Response:
    status, title, details = ERRORS[code]
    return _error(status, code, f"(#{code}) {title}", details=details)


def main(argv: Iterable[str] | None = None) -> int:
    """Run a FakeMeta in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    fake = FakeMeta(host=args.host, port=args.port, latency_ms=args.latency_ms)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    fake.start()
    print(
        f"FakeMeta listening: base_url={fake.base_url} phone_number_id={DEFAULT_PHONE_NUMBER_ID}"
        f" access_token={DEFAULT_ACCESS_TOKEN}",
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
