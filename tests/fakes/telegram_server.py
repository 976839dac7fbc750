"""A local server speaking Telegram's Bot API, for tests and benchmarks (there is no internet here).

`FakeTelegram` runs an aiohttp server on its own event loop in a daemon thread, so sync tests,
async tests and benchmarks can all point an HTTP client (the product uses httpx2) at it::

    with FakeTelegram() as fake:               # knows DEFAULT_TOKEN (@chapi_test_bot)
        settings.TELEGRAM_API_BASE_URL = fake.base_url
        httpx2.post(fake.api_url("sendMessage"), json={"chat_id": 42, "text": "hola"})
        assert fake.sent(chat_id=42)[0].text == "hola"
        deliver(webhook_url, fake.update_text("precio?", chat_id=42), secret_token="s3cret")

Endpoints: `{base_url}/bot<token>/<method>` (GET or POST; parameters from the query string and a
JSON, form-urlencoded or multipart body, merged; method names are case-insensitive, as
Telegram's) and `GET {base_url}/file/bot<token>/<file_path>` (a file's bytes). Every answer is
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "..."}` with N
as the HTTP status. A token added with `add_bot(token, username)` (DEFAULT_TOKEN is added
already) is valid; another `<digits>:<chars>` token answers 401 "Unauthorized", a malformed
one, an unknown method or path 404 "Not Found".

Methods:
- `getMe`: the bot (`id` = the token's digits, `is_bot`, `first_name`, `username`, flags).
- `setWebhook(url, secret_token, allowed_updates, drop_pending_updates, max_connections)`:
  recorded per token (`webhook(token)`); `true` + "Webhook was set" / "Webhook is already
  set". Like Telegram: the URL must be HTTPS on port 443, 80, 88 or 8443 ("Bad Request: bad
  webhook: ..."; set `require_https_webhook = False` to allow http://127.0.0.1 receivers) and the
  secret 1-256 of `A-Za-z0-9_-`; an empty url deletes. `deleteWebhook` -> "Webhook was deleted" /
  "Webhook is already deleted". `getWebhookInfo` -> `url`, `has_custom_certificate`,
  `pending_update_count` (+ `max_connections`, `ip_address`, `allowed_updates` when set).
- `sendMessage(chat_id, text, parse_mode, entities, reply_markup, ...)`: "chat_id is empty",
  "message text is empty" (also when only markup/whitespace remains), "unsupported parse_mode",
  "can't parse entities: ..." (below), "message is too long" (> 4096 UTF-16 code units after
  parsing). The result is a Message: `message_id` (counted per chat, shared with the messages
  the update builders make, as in a private chat), `from` (the bot), `chat`, `date`, `text`
  (markup removed, stripped), `entities` (those of the markup, or the `entities` passed; no
  auto-detected url/mention entities), `reply_markup` (an inline keyboard, echoed). Recorded:
  `sent(chat_id=..., token=...)`.
- `sendChatAction(chat_id, action)`: `true`; an unknown action -> "wrong parameter action in
  request". `getFile(file_id)` -> File with `file_path`; unknown -> "invalid file_id". Files come
  from `add_file()` or the media update builders.

Markup (`parse_entities`, also usable offline to check the product's escaping), after
tdlib's parsers (td/telegram/MessageEntity.cpp; messages and UTF-8 byte offsets are
Telegram's, checked against tdlib's own test vectors):
- MarkdownV2: `_*[]()~\\`>#+-=|{}.!` outside entities must be escaped with `\\` ("Character
  '.' is reserved and must be escaped with the preceding '\\'"); inside code/pre only `` ` ``
  and `\\`; an unclosed entity -> "Can't find end of Bold entity at byte offset 5"; links,
  custom emoji, block quotes (`>`, expandable with a final `||`) as documented.
- HTML: only b/strong, i/em, u/ins, s/strike/del, span class="tg-spoiler", tg-spoiler, a,
  tg-emoji, code, pre, blockquote [expandable]; `<` must be `&lt;` ("Unsupported start tag
  \\"foo\\" at byte offset 3", "Unclosed start tag ...", "Unmatched end tag at byte offset 9,
  expected \\"</b>\\", found \\"</i>\\"", "Can't find end tag corresponding to start tag
  \\"b\\""). Entities: &lt; &gt; &amp; &quot; and numeric ones. Like real Telegram, a bare `>`
  or an `&` that starts no entity is accepted as text; `strict_html = True` refuses them too
  (a fake-only check, same error prefix) to catch escaping the product forgot.
- Markdown (legacy): accepted as is (not checked; no entities).

Faults (`queue_fault(kind, times=1, method="sendMessage", **options)`; method "*" = any method)
hit the next requests to that method after the token check, before validation:
"429" (HTTP 429, "Too Many Requests: retry after N", `parameters.retry_after` = option
`retry_after`, default 5), "500" ("Internal Server Error"), "502" (nginx's HTML 502 page, not
JSON), "403_blocked" ("Forbidden: bot was blocked by the user"), "400_chat_not_found" ("Bad
Request: chat not found"), "hang" (no answer until the client gives up or the fake stops).
Requests are recorded (`requests`, `last_request`) before any check or fault.

Update builders (`update_text`, `update_start`, `update_photo`, `update_document`,
`update_voice`, `update_location`, `update_contact`, `update_edited`, `update_callback`) return
dicts shaped as Telegram posts them (private chat by default; `chat_type="group"` /
"supergroup" with a negative `chat_id` and `title` for groups); media builders register their
bytes so `getFile` and the download work. `deliver(url, update, secret_token)` POSTs an update
like Telegram (JSON, `X-Telegram-Bot-Api-Secret-Token`); `fake.push(update)` delivers it to the
webhook the product registered (skipped, None, when its type is not in `allowed_updates`).

`latency_ms` delays every answer. `reset()` forgets records, faults, sent messages, webhooks,
files and bots but DEFAULT_TOKEN's, and restores `strict_html`/`require_https_webhook`. CLI:
`python -m tests.fakes.telegram_server --port 8091 [--latency-ms N]` serves until
SIGINT/SIGTERM (the first line printed holds the base URL). Imports neither Django nor pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx2
from aiohttp import web

from tests.fakes._server import LocalServer

FaultKind = Literal["429", "500", "502", "403_blocked", "400_chat_not_found", "hang"]

DEFAULT_TOKEN = "7000000001:AAFakeTokenForChapiTests_0123456789"
DEFAULT_USERNAME = "chapi_test_bot"
DEFAULT_CHAT_ID = 424242424
MAX_TEXT = 4096
CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_FAULTS: dict[str, tuple[int, str]] = {
    "500": (500, "Internal Server Error"),
    "403_blocked": (403, "Forbidden: bot was blocked by the user"),
    "400_chat_not_found": (400, "Bad Request: chat not found"),
}
_FAULT_OPTIONS = {"429": {"retry_after"}, "500": set(), "502": set(), "hang": set()}
_FAULT_OPTIONS |= {"403_blocked": set(), "400_chat_not_found": set()}
_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
    b"Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)
_TOKEN = re.compile(r"\d+:[\w-]+")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class EntityParseError(ValueError):
    """Markup Telegram refuses; str() is what follows "Bad Request: can't parse entities: "."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request: `headers` keys lowercased; `body` the parsed JSON/form/multipart body (a
    file part is {"filename", "content_type", "data"}), None when empty or unparseable."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes
    timestamp: float

    @property
    def params(self) -> dict[str, Any]:
        """The Bot API parameters: the query string, then the body's fields over it."""
        return {**self.query, **(self.body if isinstance(self.body, dict) else {})}

    @property
    def token(self) -> str | None:
        match = re.match(r"/(?:file/)?bot([^/]*)/", self.path)
        return match.group(1) if match else None

    @property
    def api_method(self) -> str | None:
        match = re.fullmatch(r"/bot[^/]*/([^/]+)", self.path)
        return match.group(1) if match else None


@dataclass(frozen=True)
class SentMessage:
    """A message `sendMessage` accepted: `text`/`parse_mode` as sent, `message` the Message
    answered (`message["text"]` without markup), `params` every parameter."""

    token: str
    chat_id: int | str
    text: str
    parse_mode: str | None
    message: dict[str, Any]
    params: dict[str, Any]

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]


@dataclass
class _Bot:
    token: str
    username: str
    first_name: str
    webhook: dict[str, Any] | None = None

    @property
    def user(self) -> dict[str, Any]:
        bot_id = int(self.token.split(":")[0])
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)

    def as_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


class FakeTelegram(LocalServer):
    """Telegram Bot API server in a background thread (see the module docstring).

    Scripting methods, builders and records are thread-safe. `start()` binds (port 0 picks a
    free port, kept for restarts) and returns once connections are accepted (OSError if the port
    is taken); `stop()` drops hung requests and returns once the port is closed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0) -> None:
        super().__init__(host, port)
        self.latency_ms = latency_ms
        self.strict_html = False
        self.require_https_webhook = True
        self._lock = threading.Lock()
        self._bots: dict[str, _Bot] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._records: list[RecordedRequest] = []
        self._sent: list[SentMessage] = []
        self._files: dict[str, _File] = {}
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._update_ids = itertools.count(100000001)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self.add_bot(DEFAULT_TOKEN, DEFAULT_USERNAME)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What TELEGRAM_API_BASE_URL takes (the root: methods are under /bot<token>/)."""
        return self.url

    def api_url(self, method: str, token: str = DEFAULT_TOKEN) -> str:
        return f"{self.url}/bot{token}/{method}"

    # -- scripting and records -------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> None:
        """Make `token` (`<digits>:<secret>`) valid, for a bot called @`username`."""
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"a bot token looks like 123456:ABC-def, not {token!r}")
        with self._lock:
            self._bots[token] = _Bot(token, username, first_name or username.removesuffix("_bot"))

    def add_file(self, data: bytes, *, kind: str = "documents", extension: str = "bin") -> dict:
        """Store `data` for getFile/download; returns the File (file_id, file_path, ...)."""
        prefix = {"photos": "AgAC", "voice": "AwAC", "documents": "BQAC"}.get(kind, "CQAC")
        with self._lock:
            number = next(self._file_ids)
        tag = base64.urlsafe_b64encode(f"fake-file-{number:06d}".encode()).decode().rstrip("=")
        stored = _File(
            f"{prefix}AgQAAxkBAAI{tag}",
            f"AQAD{tag[-12:]}",
            f"{kind}/file_{number}.{extension}",
            data,
        )
        with self._lock:
            self._files[stored.file_id] = stored
        return stored.as_file()

    def queue_fault(
        self, kind: FaultKind, times: int = 1, *, method: str = "sendMessage", **options: Any
    ) -> None:
        """The next `times` calls of `method` ("*": any) fail with `kind` (module docstring)."""
        if kind not in _FAULT_OPTIONS:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_OPTIONS)}"
            )
        if unknown := set(options) - _FAULT_OPTIONS[kind]:
            raise TypeError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(method.lower(), deque()).append(_Fault(kind, times, options))

    def reset(self) -> None:
        """Forget records, faults, sent messages, webhooks, files, chats and the bots added
        (DEFAULT_TOKEN stays); restore the strictness flags. `latency_ms` is kept."""
        with self._lock:
            self._faults.clear()
            self._records.clear()
            self._sent.clear()
            self._files.clear()
            self._chats.clear()
            self._message_ids.clear()
            self._bots.clear()
        self.strict_html = False
        self.require_https_webhook = True
        self.add_bot(DEFAULT_TOKEN, DEFAULT_USERNAME)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._records:
                raise AssertionError("FakeTelegram received no request")
            return self._records[-1]

    def sent(
        self, chat_id: int | str | None = None, *, token: str | None = None
    ) -> list[SentMessage]:
        """Messages sent (oldest first), to `chat_id` and by `token` when given."""
        with self._lock:
            return [
                s
                for s in self._sent
                if (chat_id is None or str(s.chat_id) == str(chat_id))
                and (token is None or s.token == token)
            ]

    def webhook(self, token: str = DEFAULT_TOKEN) -> dict[str, Any] | None:
        """What setWebhook recorded for `token` (url, secret_token, allowed_updates, ...)."""
        with self._lock:
            bot = self._bots.get(token)
            return dict(bot.webhook) if bot and bot.webhook else None

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = _parse_body(request.content_type, request.headers.get("Content-Type", ""), raw)
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            raw,
            time.time(),
        )
        with self._lock:
            self._records.append(record)
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        if match := re.fullmatch(r"/file/bot([^/]*)/(.+)", request.path):
            return self._download(*match.groups())
        match = re.fullmatch(r"/bot([^/]*)/([^/]+)", request.path)
        if match is None or not _TOKEN.fullmatch(match.group(1)):
            return _error(404, "Not Found")
        token, method = match.groups()
        with self._lock:
            bot = self._bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found")
        fault = self._take_fault(method.lower())
        if fault is not None:
            return await self._fault_response(request, fault)
        params = {k: _decode_param(k, v) for k, v in record.params.items()}
        return handler(bot, params)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for key in (method, "*"):
                faults = self._faults.get(key)
                if faults:
                    fault = faults[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.popleft()
                    return fault
        return None

    async def _fault_response(self, request: web.Request, fault: _Fault) -> web.StreamResponse:
        if fault.kind == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        if fault.kind == "429":
            retry_after = int(fault.options.get("retry_after", 5))
            return _error(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        if fault.kind == "502":
            return web.Response(status=502, body=_NGINX_502, content_type="text/html")
        return _error(*_FAULTS[fault.kind])

    def _download(self, token: str, file_path: str) -> web.Response:
        with self._lock:
            known = token in self._bots
            stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if not known:
            return _error(401, "Unauthorized")
        if stored is None:
            return _error(404, "Not Found")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # -- Bot API methods ---------------------------------------------------------------------

    def _api_getme(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        flags = {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        return _ok({**bot.user, **flags})

    def _api_setwebhook(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        url = str(params.get("url") or "")
        if not url:
            return self._api_deletewebhook(bot, params)
        parts = urlsplit(url)
        if self.require_https_webhook and parts.scheme != "https":
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if self.require_https_webhook and parts.port not in (None, 80, 88, 443, 8443):
            return _error(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
            "drop_pending_updates": params.get("drop_pending_updates") in (True, "true", "True"),
            "max_connections": int(params.get("max_connections") or 40),
        }
        with self._lock:
            same = bot.webhook is not None and bot.webhook["url"] == url
            bot.webhook = webhook
        return _ok(True, "Webhook is already set" if same else "Webhook was set")

    def _api_deletewebhook(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        with self._lock:
            had, bot.webhook = bot.webhook is not None, None
        return _ok(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _api_getwebhookinfo(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        with self._lock:
            webhook = dict(bot.webhook) if bot.webhook else None
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if webhook:
            info |= {"url": webhook["url"], "max_connections": webhook["max_connections"]}
            info["ip_address"] = "127.0.0.1"
            if webhook["allowed_updates"] is not None:
                info["allowed_updates"] = webhook["allowed_updates"]
        return _ok(info)

    def _api_sendmessage(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        text = params.get("text")
        if text in (None, ""):
            return _error(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode") or None
        try:
            plain, entities = parse_entities(str(text), parse_mode, strict_html=self.strict_html)
        except KeyError:
            return _error(400, "Bad Request: unsupported parse_mode")
        except EntityParseError as exc:
            return _error(400, f"Bad Request: can't parse entities: {exc}")
        plain, entities = _strip(plain, entities)
        if not plain:
            return _error(400, "Bad Request: message text is empty")
        if _u16(plain) > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        if parse_mode is None and isinstance(params.get("entities"), list):
            entities = params["entities"]
        message = self._message(chat_id, bot.user, text=plain)
        if entities:
            message["entities"] = entities
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        sent = SentMessage(bot.token, message["chat"]["id"], str(text), parse_mode, message, params)
        with self._lock:
            self._sent.append(sent)
        return _ok(message)

    def _api_sendchataction(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        if params.get("chat_id") in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if params.get("action") not in CHAT_ACTIONS:
            return _error(400, "Bad Request: wrong parameter action in request")
        return _ok(True)

    def _api_getfile(self, bot: _Bot, params: dict[str, Any]) -> web.Response:
        with self._lock:
            stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            return _error(400, "Bad Request: invalid file_id")
        return _ok(stored.as_file())

    # -- update builders ---------------------------------------------------------------------

    def _chat(self, chat_id: Any, **who: Any) -> dict[str, Any]:
        """The chat `chat_id`: remembered from the builders (the names/title/type given
        replace the remembered ones), else a private chat with "Ana" (a group if negative)."""
        chat_id = _chat_id(chat_id)
        given = {k: who[k] for k in ("first_name", "last_name", "username", "title") if who.get(k)}
        with self._lock:
            known = self._chats.get(chat_id)
        if known is not None and not given and not who.get("chat_type"):
            return dict(known)
        default = "private" if not str(chat_id).startswith("-") else "group"
        chat_type = who.get("chat_type") or (known or {}).get("type") or default
        if chat_type == "private":
            names = {k: v for k, v in (known or {}).items() if k != "title"} | given
            chat = {"id": chat_id, "first_name": names.get("first_name") or "Ana"}
            chat |= {k: names[k] for k in ("last_name", "username") if names.get(k)}
        else:
            chat = {"id": chat_id, "title": given.get("title") or (known or {}).get("title")}
            chat["title"] = chat["title"] or "Grupo de prueba"
        chat["type"] = chat_type
        with self._lock:
            self._chats[chat_id] = chat
        return dict(chat)

    def _message(self, chat_id: Any, sender: dict[str, Any], **fields: Any) -> dict[str, Any]:
        chat = self._chat(chat_id)
        with self._lock:
            counter = self._message_ids.setdefault(chat["id"], itertools.count(1))
            message_id = next(counter)
        date = fields.pop("date", None) or int(time.time())
        return {"message_id": message_id, "from": sender, "chat": chat, "date": date, **fields}

    @staticmethod
    def _user_id(chat_id: int | str, who: dict[str, Any]) -> int:
        """The sender: `user_id`, else the private chat's id, else a fixed group member."""
        chat_id = _chat_id(chat_id)
        private = isinstance(chat_id, int) and chat_id > 0
        return int(who.get("user_id") or (chat_id if private else 77777777))

    def _update(self, key: str, chat_id: int | str, who: dict[str, Any], **fields: Any) -> dict:
        chat = self._chat(chat_id, **who)
        # In a private chat the sender is the chat: same names unless others are given.
        names = {k: v for k, v in chat.items() if k in ("first_name", "last_name", "username")}
        names = (names if chat["type"] == "private" else {}) | {
            k: who[k]
            for k in ("first_name", "last_name", "username", "language_code")
            if who.get(k)
        }
        user: dict[str, Any] = {
            "id": self._user_id(chat_id, who),
            "is_bot": False,
            "first_name": names.get("first_name") or "Ana",
        }
        user |= {k: names[k] for k in ("last_name", "username", "language_code") if names.get(k)}
        with self._lock:
            update_id = next(self._update_ids)
        if key == "callback_query":
            return {"update_id": update_id, key: {**fields, "from": user}}
        return {"update_id": update_id, key: self._message(chat_id, user, **fields)}

    def update_text(
        self,
        text: str,
        *,
        chat_id: int | str = DEFAULT_CHAT_ID,
        entities: list | None = None,
        **who: Any,
    ) -> dict[str, Any]:
        """A `message` update with `text`. `who`: user_id, first_name ("Ana"), last_name,
        username, language_code ("es"), chat_type ("private"/"group"/"supergroup"), title."""
        who.setdefault("language_code", "es")
        fields: dict[str, Any] = {"text": text}
        if entities:
            fields["entities"] = entities
        return self._update("message", chat_id, who, **fields)

    def update_start(self, payload: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """`/start` (with a deep-link `payload`), with its bot_command entity."""
        text = f"/start {payload}" if payload else "/start"
        return self.update_text(
            text, entities=[{"offset": 0, "length": 6, "type": "bot_command"}], **kwargs
        )

    def update_photo(
        self,
        *,
        caption: str | None = None,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg" + bytes(2000),
        sizes: Iterable[tuple[int, int]] = ((90, 68), (320, 240), (800, 600)),
        chat_id: int | str = DEFAULT_CHAT_ID,
        **who: Any,
    ) -> dict[str, Any]:
        """A photo: one PhotoSize per size, smallest first (the last is `data`)."""
        sizes = list(sizes)
        width, height = sizes[-1]
        photo = []
        for w, h in sizes:
            part = (
                data
                if (w, h) == (width, height)
                else data[: max(1, len(data) * w * h // (width * height))]
            )
            stored = self.add_file(part, kind="photos", extension="jpg")
            photo.append(
                {k: stored[k] for k in ("file_id", "file_unique_id", "file_size")}
                | {"width": w, "height": h}
            )
        fields: dict[str, Any] = {"photo": photo}
        if caption:
            fields["caption"] = caption
        return self._update("message", chat_id, who, **fields)

    def update_document(
        self,
        *,
        file_name: str = "catalogo.pdf",
        mime_type: str = "application/pdf",
        data: bytes = b"%PDF-1.4 fake document",
        caption: str | None = None,
        chat_id: int | str = DEFAULT_CHAT_ID,
        **who: Any,
    ) -> dict[str, Any]:
        stored = self.add_file(
            data, kind="documents", extension=file_name.rpartition(".")[2] or "bin"
        )
        document = {"file_name": file_name, "mime_type": mime_type}
        document |= {k: stored[k] for k in ("file_id", "file_unique_id", "file_size")}
        fields: dict[str, Any] = {"document": document}
        if caption:
            fields["caption"] = caption
        return self._update("message", chat_id, who, **fields)

    def update_voice(
        self,
        *,
        duration: int = 3,
        data: bytes = b"OggS fake voice",
        chat_id: int | str = DEFAULT_CHAT_ID,
        **who: Any,
    ) -> dict[str, Any]:
        stored = self.add_file(data, kind="voice", extension="oga")
        voice = {"duration": duration, "mime_type": "audio/ogg"}
        voice |= {k: stored[k] for k in ("file_id", "file_unique_id", "file_size")}
        return self._update("message", chat_id, who, voice=voice)

    def update_location(
        self, latitude: float, longitude: float, *, chat_id: int | str = DEFAULT_CHAT_ID, **who: Any
    ) -> dict[str, Any]:
        return self._update(
            "message", chat_id, who, location={"latitude": latitude, "longitude": longitude}
        )

    def update_contact(
        self,
        phone_number: str,
        first_name: str = "Ana",
        *,
        last_name: str | None = None,
        contact_user_id: int | None = None,
        own: bool = True,
        chat_id: int | str = DEFAULT_CHAT_ID,
        **who: Any,
    ) -> dict[str, Any]:
        """A shared contact; `own` (the default) shares the sender's own number (user_id =
        sender, as the "share my phone" button does); phone numbers come without "+"."""
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        user_id = self._user_id(chat_id, who) if own else contact_user_id
        if user_id:
            contact["user_id"] = user_id
        return self._update("message", chat_id, who, contact=contact)

    def update_edited(
        self, text: str, message_id: int, *, chat_id: int | str = DEFAULT_CHAT_ID, **who: Any
    ) -> dict[str, Any]:
        """An `edited_message` update: message `message_id` now says `text`."""
        update = self._update("edited_message", chat_id, who, text=text)
        edited = update["edited_message"]
        edited["message_id"] = message_id
        edited["edit_date"] = edited["date"]
        edited["date"] -= 60
        return update

    def update_callback(
        self,
        data: str,
        *,
        message_text: str = "¿Te interesa?",
        token: str = DEFAULT_TOKEN,
        chat_id: int | str = DEFAULT_CHAT_ID,
        **who: Any,
    ) -> dict[str, Any]:
        """A `callback_query`: a button with `data` pressed under a bot message."""
        self._chat(chat_id, **who)
        with self._lock:
            bot_user = self._bots[token].user
            callback_id = str(4_100_000_000_000_000_000 + next(self._callback_ids))
        digest = hashlib.sha256(f"{token}:{chat_id}".encode()).hexdigest()
        fields = {
            "id": callback_id,
            "message": self._message(chat_id, bot_user, text=message_text),
            "chat_instance": str(-(int(digest[:15], 16))),
            "data": data,
        }
        update = self._update("callback_query", chat_id, who, **fields)
        query = update["callback_query"]
        update["callback_query"] = {"id": query["id"], "from": query["from"], **query}
        return update

    def push(
        self, update: dict[str, Any], token: str = DEFAULT_TOKEN, *, timeout: float = 10
    ) -> httpx2.Response | None:
        """Deliver `update` to the webhook set for `token`, as Telegram would: None (nothing
        sent) when its type is not in the webhook's `allowed_updates`."""
        webhook = self.webhook(token)
        if webhook is None:
            raise AssertionError(f"no webhook is set for {token}")
        kinds = set(update) - {"update_id"}
        allowed = webhook["allowed_updates"]
        if allowed:
            wanted = kinds & set(allowed)
        else:  # unset: every type but these three, as Telegram
            wanted = kinds - {"chat_member", "message_reaction", "message_reaction_count"}
        if not wanted:
            return None
        return deliver(webhook["url"], update, webhook["secret_token"], timeout=timeout)


def deliver(
    url: str, update: dict[str, Any], secret_token: str | None = None, *, timeout: float = 10
) -> httpx2.Response:
    """POST `update` to a webhook as Telegram does (JSON; the secret in
    X-Telegram-Bot-Api-Secret-Token when given); the receiver's response."""
    headers = {"Content-Type": "application/json"}
    if secret_token:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
    body = json.dumps(update, ensure_ascii=False).encode()
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)


# -- markup parsing (after tdlib) ----------------------------------------------------------------


def parse_entities(
    text: str, parse_mode: str | None, *, strict_html: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """`text` without markup and its entities (UTF-16 offsets), as Telegram parses it for
    `parse_mode` (None, MarkdownV2, HTML or Markdown, any case). Raises EntityParseError for
    markup Telegram refuses and KeyError for an unknown parse mode."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "markdown":  # legacy Markdown: not checked
        return text, []
    return {"markdownv2": _markdown_v2, "html": _html}[mode](text, strict_html)


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!\n"
_TD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _Open:
    kind: str
    pos: int  # index in the source (for byte offsets)
    offset: int  # UTF-16 offset in the result
    part: int  # index in the output parts (the entity's text starts there)
    argument: str = ""
    expandable: bool = False
    code: tuple[str, int, int] | None = None  # HTML: a <code class="language-x"> inside <pre>


class _Out:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.u16 = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.u16 += _u16(text)

    def since(self, opened: _Open) -> str:
        return "".join(self.parts[opened.part :])

    def entity(self, kind: str, opened: _Open, **extra: Any) -> None:
        self.span(kind, opened.offset, self.u16, **extra)

    def span(self, kind: str, offset: int, end: int, **extra: Any) -> None:
        if end > offset:
            self.entities.append({"offset": offset, "length": end - offset, "type": kind, **extra})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def _markdown_v2(text: str, strict: bool = False) -> tuple[str, list[dict[str, Any]]]:
    out, stack, n, i = _Out(), list[_Open](), len(text), 0
    line_start = True

    def at(k: int) -> str:
        return text[k] if k < n else ""

    def reserved(c: str) -> EntityParseError:
        return EntityParseError(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )

    def unclosed(o: _Open) -> EntityParseError:
        name = "PreCode" if o.kind == "pre" and o.argument else _TD_NAMES[o.kind]
        return EntityParseError(
            f"Can't find end of {name} entity at byte offset {_byte(text, o.pos)}"
        )

    def quote_open() -> bool:
        return any(o.kind == "blockquote" for o in stack)

    def url_in_parens(start: int, what: str) -> tuple[str, int]:
        url, j = "", start
        while j < n and text[j] != ")":
            if text[j] == "\\" and 0 < ord(at(j + 1) or "\x7f") <= 126:
                url, j = url + text[j + 1], j + 2
            else:
                url, j = url + text[j], j + 1
        if j >= n:
            raise EntityParseError(f"Can't find end of {what} at byte offset {_byte(text, start)}")
        return url, j + 1

    while i < n:
        c, nxt = text[i], at(i + 1)
        if c == "\\" and nxt and 0 < ord(nxt) <= 126:
            out.add(nxt)
            line_start = nxt == "\n" if nxt != "\r" else line_start
            i += 2
            continue
        top = stack[-1] if stack else None
        special = "`" if top is not None and top.kind in ("code", "pre") else _MDV2_RESERVED
        if c not in special:
            out.add(c)
            line_start = False if c != "\r" else line_start
            i += 1
            continue
        if top is not None and quote_open() and c == "\n" and nxt != ">":
            if top.kind != "blockquote":
                raise unclosed(top)
            out.add("\n")
            out.entity("expandable_blockquote" if top.expandable else "blockquote", stack.pop())
            line_start, i = True, i + 1
            continue
        ends = top is not None and {
            "bold": c == "*",
            "italic": c == "_" and nxt != "_",
            "underline": c == "_" and nxt == "_",
            "code": c == "`",
            "pre": text.startswith("```", i),
            "text_link": c == "]",
            "custom_emoji": c == "]",
            "strikethrough": c == "~",
            "spoiler": c == "|" and nxt == "|",
        }.get(top.kind, False)
        if ends and top is not None:
            stack.pop()
            extra: dict[str, Any] = {}
            if top.kind == "text_link":
                if nxt == "(":
                    url, i = url_in_parens(i + 2, "a URL")
                else:
                    url, i = out.since(top), i + 1
                link = _link_url(url)
                if link:
                    out.entity("text_link", top, url=link)
                continue
            if top.kind == "custom_emoji":
                if nxt != "(":
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                url, i = url_in_parens(i + 2, "a custom emoji URL")
                emoji_id = re.search(r"[?&]id=(\d+)", url)
                if emoji_id is None:
                    raise EntityParseError("Custom emoji URL must have an emoji identifier")
                out.entity("custom_emoji", top, custom_emoji_id=emoji_id.group(1))
                continue
            if top.argument:
                extra["language"] = top.argument
            out.entity(top.kind, top, **extra)
            i += {"underline": 2, "spoiler": 2, "pre": 3}.get(top.kind, 1)
            continue
        opened = _Open("", i, out.u16, len(out.parts))
        if c == "_":
            opened.kind = "underline" if nxt == "_" else "italic"
            i += 2 if nxt == "_" else 1
        elif c in "*~[":
            opened.kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[c]
            i += 1
        elif c == "|" and nxt == "|":
            rest = text[i + 2 :]
            if quote_open() and (not rest or rest.startswith(("\n", "\r\n"))):
                next(o for o in reversed(stack) if o.kind == "blockquote").expandable = True
                i += 2
                continue
            opened.kind, i = "spoiler", i + 2
        elif c == "!" and nxt == "[":
            opened.kind, i = "custom_emoji", i + 2
        elif c == "`" and text.startswith("```", i):
            j = end = i + 3
            while end < n and text[end] not in " \t\r\n\v\f`":
                end += 1
            if end > j and end < n and text[end] != "`":
                opened.argument, j = text[j:end], end
            if at(j) in ("\n", "\r"):
                j += 2 if at(j + 1) in ("\n", "\r") and at(j + 1) != at(j) else 1
            opened.kind, i = "pre", j
        elif c == "`":
            opened.kind, i = "code", i + 1
        elif c == "\n":
            out.add("\n")
            line_start, i = True, i + 1
            continue
        elif c == ">" and line_start:
            i += 1
            if not quote_open():
                opened.kind = "blockquote"
                stack.append(opened)
            continue
        else:
            raise reserved(c)
        stack.append(opened)
    while stack:
        top = stack.pop()
        if top.kind != "blockquote":
            raise unclosed(top)
        out.entity("expandable_blockquote" if top.expandable else "blockquote", top)
    return out.result()


_HTML_KINDS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_SPACE = " \t\r\n\v\x00"


def _html(text: str, strict: bool = False) -> tuple[str, list[dict[str, Any]]]:
    out, stack, n, i = _Out(), list[_Open](), len(text), 0

    def at(k: int) -> str:
        return text[k] if k < n else "\x00"

    def fail(message: str, pos: int | None = None) -> EntityParseError:
        suffix = f" at byte offset {_byte(text, pos)}" if pos is not None else ""
        return EntityParseError(message + suffix)

    def skip_spaces(k: int) -> int:
        while k < n and at(k) in _SPACE:
            k += 1
        return k

    while i < n:
        c = text[i]
        if c == "&":
            decoded, j = _html_entity(text, i)
            if decoded is not None:
                out.add(decoded)
                i = j
                continue
            if strict:
                raise fail("Unescaped '&' (FakeTelegram strict_html; Telegram accepts it)", i)
        if c != "<":
            if strict and c == ">":
                raise fail("Unescaped '>' (FakeTelegram strict_html; Telegram accepts it)", i)
            out.add(c)
            i += 1
            continue
        begin, i = i, i + 1
        if at(i) != "/":
            while at(i) not in _SPACE and at(i) != ">":
                i += 1
            if i >= n:
                raise fail("Unclosed start tag", begin)
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_KINDS:
                raise fail(f'Unsupported start tag "{tag}"', begin)
            opened = _Open(tag, begin, out.u16, len(out.parts))
            while at(i) != ">":
                i = skip_spaces(i)
                if at(i) == ">":
                    break
                name_begin = i
                while at(i) not in _SPACE and at(i) not in "=>":
                    i += 1
                name = text[name_begin:i].lower()
                if not name:
                    raise fail(f'Empty attribute name in the tag "{tag}"', begin)
                i = skip_spaces(i)
                if at(i) != "=":
                    opened.expandable |= tag == "blockquote" and name == "expandable"
                    continue
                i = skip_spaces(i + 1)
                if i >= n:
                    raise fail(f'Unclosed start tag "{tag}"', begin)
                value = ""
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if at(i) not in _SPACE and at(i) != ">":
                        raise fail("Unexpected end of name token", token_begin)
                else:
                    quote, i = at(i), i + 1
                    while i < n and at(i) != quote:
                        decoded, j = _html_entity(text, i) if at(i) == "&" else (None, i)
                        value, i = (
                            (value + decoded, j) if decoded is not None else (value + at(i), i + 1)
                        )
                    i += 1 if at(i) == quote else 0
                if i >= n:
                    raise fail("Unclosed start tag", begin)
                if (tag, name) in (("a", "href"), ("tg-emoji", "emoji-id")):
                    opened.argument = value
                elif (tag, name) == ("code", "class") and value.startswith("language-"):
                    opened.argument = value.removeprefix("language-")
                elif (tag, name) == ("span", "class") and value.startswith("tg-"):
                    opened.argument = value.removeprefix("tg-")
                elif (tag, name) == ("blockquote", "expandable"):
                    opened.expandable = True
            if tag == "span" and opened.argument != "spoiler":
                raise fail('Tag "span" must have class "tg-spoiler"', begin)
            stack.append(opened)
            i += 1
            continue
        if not stack:
            raise fail("Unexpected end tag", begin)
        i += 1
        while at(i) not in _SPACE and at(i) != ">":
            i += 1
        end_name = text[begin + 2 : i].lower()
        i = skip_spaces(i)
        if at(i) != ">":
            raise fail("Unclosed end tag", begin)
        i += 1
        top = stack.pop()
        if end_name and end_name != top.kind:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {_byte(text, begin)}, "
                f'expected "</{top.kind}>", found "</{end_name}>"'
            )
        kind = _HTML_KINDS[top.kind]
        if kind == "text_link":
            if link := _link_url(top.argument or out.since(top)):
                out.entity("text_link", top, url=link)
        elif kind == "custom_emoji":
            if top.argument.isdigit():
                out.entity("custom_emoji", top, custom_emoji_id=top.argument)
        elif kind == "code" and top.argument and stack and stack[-1].kind == "pre":
            stack[-1].code = (top.argument, top.offset, out.u16)  # the pre's language, if alone
        elif kind == "pre":
            language, code_start, code_end = top.code or ("", -1, -1)
            if (code_start, code_end) == (top.offset, out.u16):
                out.entity("pre", top, language=language)
            else:
                out.entity("pre", top)
                out.span("code", code_start, code_end)
        elif kind == "blockquote":
            out.entity("expandable_blockquote" if top.expandable else "blockquote", top)
        else:
            out.entity(kind, top)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].kind}"')
    return out.result()


def _html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """The character an HTML entity at `pos` stands for (tdlib's rules: the 4 named ones and
    numeric ones, ';' optional) and where it ends; (None, pos) when it is none."""
    end = pos + 1
    if text.startswith("&#", pos):
        hexadecimal = text.startswith("&#x", pos)
        end = pos + (3 if hexadecimal else 2)
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        while end < len(text) and text[end] in digits:
            end += 1
        number = text[pos + (3 if hexadecimal else 2) : end]
        value = int(number, 16 if hexadecimal else 10) if number and len(number) < 8 else 0
        if not 0 < value < 0x10FFFF:
            return None, pos
        if 0xD800 <= value <= 0xDFFF:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        character = chr(value)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        character = named
    return character, end + 1 if text.startswith(";", end) else end


def _link_url(url: str) -> str | None:
    """The URL Telegram keeps for a link (tdlib adds http:// and a "/" path), None when it
    drops the link; tg:// links (user mentions) are dropped here."""
    url = url.strip()
    if re.match(r"(?i)^(https?|ton)://\S+$", url):
        netloc = urlsplit(url).netloc
        return url if urlsplit(url).path else url.replace(netloc, netloc + "/", 1)
    if re.fullmatch(r"(?i)[\w-]+(\.[\w-]+)*\.[a-z]{2,}(/\S*)?", url):
        return "http://" + url + ("" if "/" in url else "/")
    return None


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims the text; entities move and shrink with it."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead, size = _u16(text[: len(text) - len(text.lstrip())]), _u16(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _chat_id(value: Any) -> int | str:
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _decode_param(name: str, value: Any) -> Any:
    """Form and query values are strings: JSON-typed parameters are decoded, like Telegram."""
    if name == "chat_id":
        return _chat_id(value)
    if name in ("reply_markup", "allowed_updates", "entities") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_body(content_type: str, header: str, raw: bytes) -> Any:
    if not raw:
        return None
    try:
        if content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
        if content_type == "multipart/form-data":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + header.encode() + b"\r\n\r\n" + raw
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():  # type: ignore[attr-defined]
                name = str(part.get_param("name", header="content-disposition"))
                data = part.get_payload(decode=True)
                data = data if isinstance(data, bytes) else b""
                if part.get_filename():
                    fields[name] = {
                        "filename": part.get_filename(),
                        "content_type": part.get_content_type(),
                        "data": data,
                    }
                else:
                    fields[name] = data.decode()
            return fields
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _ok(result: Any, description: str | None = None) -> web.Response:
    payload: dict[str, Any] = {"ok": True, "result": result}
    if description:
        payload["description"] = description
    return web.json_response(payload, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return web.json_response(payload, status=code)


def main(argv: Iterable[str] | None = None) -> int:
    """Run a FakeTelegram in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    fake = FakeTelegram(host=args.host, port=args.port, latency_ms=args.latency_ms)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    fake.start()
    print(f"FakeTelegram listening: base_url={fake.base_url} token={DEFAULT_TOKEN}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
