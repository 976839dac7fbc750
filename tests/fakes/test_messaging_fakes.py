"""FakeTelegram, FakeTwilio and FakeMeta driven through the clients the product uses: httpx2
for the Bot API and the Cloud API, the real `twilio` SDK (9.13) for Twilio. Wire shapes,
validation, faults, recording, the webhook builders and their signatures (checked on a small
local receiver, and for Twilio with the SDK's own RequestValidator).

No database: these tests use no Django fixture and run in a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx2
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes import meta_server, telegram_server, twilio_server
from tests.fakes.meta_server import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_APP_SECRET,
    DEFAULT_CUSTOMER,
    DEFAULT_PHONE_NUMBER_ID,
    FakeMeta,
)
from tests.fakes.telegram_server import (
    DEFAULT_CHAT_ID,
    DEFAULT_TOKEN,
    EntityParseError,
    FakeTelegram,
    parse_entities,
)
from tests.fakes.twilio_server import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SENDER,
    FakeTwilio,
    twilio_client,
)

REPO = Path(__file__).resolve().parents[2]
CUSTOMER_WA = "whatsapp:+5215512345678"
TIMEOUT = 0.3  # the hang tests wait this long


# -- a webhook receiver (what the product's endpoints would be) -----------------------------------


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Records every request; answers 200 "ok", or for a Meta-style GET handshake the
    challenge when hub.verify_token is "good" (403 otherwise)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.hit(self)

            def do_POST(self) -> None:
                receiver.hit(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def hit(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path, _, query = handler.path.partition("?")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.hits.append(Hit(handler.command, path, query, headers, body))
        answer, status = b"ok", 200
        params = parse_qs(query)
        if "hub.mode" in params:
            good = params.get("hub.verify_token") == ["good"]
            answer = params["hub.challenge"][0].encode() if good else b"forbidden"
            status = 200 if good else 403
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hits(receiver: Receiver) -> Iterator[list[Hit]]:
    receiver.hits.clear()
    yield receiver.hits


# == Telegram ======================================================================================


@pytest.fixture(scope="module")
def telegram_server_() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def telegram(telegram_server_: FakeTelegram) -> Iterator[FakeTelegram]:
    telegram_server_.reset()
    yield telegram_server_
    telegram_server_.reset()
    telegram_server_.latency_ms = 0


def bot(fake: FakeTelegram, method: str, token: str = DEFAULT_TOKEN, **kwargs: Any) -> Any:
    return httpx2.post(fake.api_url(method, token), timeout=5, **kwargs)


def send(fake: FakeTelegram, text: str, parse_mode: str | None = None, **params: Any) -> Any:
    payload = {"chat_id": DEFAULT_CHAT_ID, "text": text, **params}
    if parse_mode:
        payload["parse_mode"] = parse_mode
    return bot(fake, "sendMessage", json=payload)


def test_telegram_get_me_by_get_and_post(telegram: FakeTelegram) -> None:
    by_get = httpx2.get(telegram.api_url("getMe"), timeout=5)
    by_post = bot(telegram, "getMe")

    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json() == by_post.json()
    result = by_get.json()["result"]
    assert by_get.json()["ok"] is True
    assert result["id"] == int(DEFAULT_TOKEN.split(":")[0])
    assert result["is_bot"] is True
    assert result["username"] == "chapi_test_bot"
    assert isinstance(result["first_name"], str)
    assert result["can_join_groups"] is True


def test_telegram_tokens_methods_and_paths(telegram: FakeTelegram) -> None:
    unknown = bot(telegram, "getMe", token="123456:wrong-token")
    malformed = bot(telegram, "getMe", token="not-a-token")
    no_method = bot(telegram, "sendTelepathy")
    telegram.add_bot("5550001:another_Token", "otro_bot")

    assert unknown.status_code == 401
    assert unknown.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert malformed.status_code == 404
    assert malformed.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert no_method.json()["description"] == "Not Found"
    assert bot(telegram, "GETME").json()["result"]["username"] == "chapi_test_bot"
    assert bot(telegram, "getMe", token="5550001:another_Token").json()["result"]["id"] == 5550001
    assert httpx2.get(f"{telegram.url}/favicon.ico", timeout=5).status_code == 404


def test_telegram_webhook_lifecycle(telegram: FakeTelegram) -> None:
    url = "https://chapi.example/webhooks/telegram/abc"
    params = {
        "url": url,
        "secret_token": "s3cret_Token-1",
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": True,
    }
    first = bot(telegram, "setWebhook", json=params).json()
    again = bot(telegram, "setWebhook", json=params).json()
    info = bot(telegram, "getWebhookInfo").json()["result"]
    deleted = bot(telegram, "deleteWebhook").json()
    deleted_again = bot(telegram, "deleteWebhook").json()

    assert first == {"ok": True, "result": True, "description": "Webhook was set"}
    assert again["description"] == "Webhook is already set"
    assert info["url"] == url
    assert info["has_custom_certificate"] is False
    assert info["pending_update_count"] == 0
    assert info["allowed_updates"] == ["message", "callback_query"]
    assert info["max_connections"] == 40
    assert deleted["description"] == "Webhook was deleted"
    assert deleted_again["description"] == "Webhook is already deleted"
    assert bot(telegram, "getWebhookInfo").json()["result"] == {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    }


def test_telegram_set_webhook_records_form_parameters(telegram: FakeTelegram) -> None:
    data = {
        "url": "https://chapi.example/hook",
        "secret_token": "abc",
        "allowed_updates": '["message"]',
    }
    answer = bot(telegram, "setWebhook", data=data)

    assert answer.json()["ok"] is True
    assert telegram.webhook() == {
        "url": "https://chapi.example/hook",
        "secret_token": "abc",
        "allowed_updates": ["message"],
        "drop_pending_updates": False,
        "max_connections": 40,
    }
    assert telegram.last_request.body == data


@pytest.mark.parametrize(
    ("params", "description"),
    [
        (
            {"url": "http://chapi.example/hook"},
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
        ),
        (
            {"url": "https://chapi.example:8080/hook"},
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        ),
        (
            {"url": "https://chapi.example/hook", "secret_token": "with spaces!"},
            "Bad Request: secret token contains unallowed characters",
        ),
    ],
)
def test_telegram_set_webhook_refusals(
    telegram: FakeTelegram, params: dict[str, Any], description: str
) -> None:
    answer = bot(telegram, "setWebhook", json=params)

    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error_code": 400, "description": description}
    assert telegram.webhook() is None


def test_telegram_send_message(telegram: FakeTelegram) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Sí", "callback_data": "yes"}]]}
    first = send(telegram, "Hola 👋", reply_markup=keyboard).json()["result"]
    second = send(telegram, "¿En qué te ayudo?").json()["result"]
    other = bot(telegram, "sendMessage", json={"chat_id": 99, "text": "x"}).json()["result"]

    assert first["message_id"] == 1
    assert second["message_id"] == 2
    assert other["message_id"] == 1
    assert first["from"] == {
        "id": 7000000001,
        "is_bot": True,
        "first_name": "chapi_test",
        "username": "chapi_test_bot",
    }
    assert first["chat"] == {"id": DEFAULT_CHAT_ID, "first_name": "Ana", "type": "private"}
    assert abs(first["date"] - time.time()) < 5
    assert first["text"] == "Hola 👋"
    assert "entities" not in first
    assert first["reply_markup"] == keyboard
    sent = telegram.sent(chat_id=DEFAULT_CHAT_ID)
    assert [s.text for s in sent] == ["Hola 👋", "¿En qué te ayudo?"]
    assert sent[0].message_id == 1
    assert sent[0].params["reply_markup"] == keyboard
    assert [s.chat_id for s in telegram.sent(chat_id="99")] == [99]
    assert telegram.sent(token="1:other") == []


def test_telegram_send_message_form_and_multipart_bodies(telegram: FakeTelegram) -> None:
    by_form = bot(telegram, "sendMessage", data={"chat_id": "555", "text": "por form"})
    by_multipart = bot(
        telegram,
        "sendMessage",
        data={"chat_id": "555", "text": "multipart"},
        files={"document": ("a.txt", b"hello", "text/plain")},
    )

    assert by_form.json()["result"]["chat"]["id"] == 555
    assert by_multipart.json()["result"]["text"] == "multipart"
    assert [s.chat_id for s in telegram.sent(chat_id=555)] == [555, 555]
    body = telegram.last_request.body
    assert body["text"] == "multipart"
    assert body["document"] == {"filename": "a.txt", "content_type": "text/plain", "data": b"hello"}


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"text": "hola"}, "Bad Request: chat_id is empty"),
        ({"chat_id": 1}, "Bad Request: message text is empty"),
        ({"chat_id": 1, "text": "  \n "}, "Bad Request: message text is empty"),
        (
            {"chat_id": 1, "text": "*  *", "parse_mode": "MarkdownV2"},
            "Bad Request: message text is empty",
        ),
        (
            {"chat_id": 1, "text": "x", "parse_mode": "Markdown3"},
            "Bad Request: unsupported parse_mode",
        ),
        ({"chat_id": 1, "text": "a" * 4097}, "Bad Request: message is too long"),
        ({"chat_id": 1, "text": "😀" * 2049}, "Bad Request: message is too long"),  # 4098 UTF-16
    ],
)
def test_telegram_send_message_refusals(
    telegram: FakeTelegram, params: dict[str, Any], description: str
) -> None:
    answer = bot(telegram, "sendMessage", json=params)

    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error_code": 400, "description": description}
    assert telegram.sent() == []


def test_telegram_length_counts_text_after_markup(telegram: FakeTelegram) -> None:
    assert send(telegram, "a" * 4096).status_code == 200
    assert send(telegram, "<b>" + "a" * 4096 + "</b>", "HTML").status_code == 200


def test_telegram_markdown_v2_escaped_text_is_accepted(telegram: FakeTelegram) -> None:
    text = "*Precio:* 1\\.500 MXN \\(IVA incl\\.\\) [ver](https://chapi.example/p?id=1) `a_b`"
    result = send(telegram, text, "MarkdownV2").json()["result"]

    assert result["text"] == "Precio: 1.500 MXN (IVA incl.) ver a_b"
    assert result["entities"] == [
        {"offset": 0, "length": 7, "type": "bold"},
        {"offset": 30, "length": 3, "type": "text_link", "url": "https://chapi.example/p?id=1"},
        {"offset": 34, "length": 3, "type": "code"},
    ]
    assert telegram.sent()[0].text == text
    assert telegram.sent()[0].parse_mode == "MarkdownV2"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Versión 1.0", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("Hola (amigo)", "Character '(' is reserved and must be escaped with the preceding '\\'"),
        ("precio-final", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("2 > 1", "Character '>' is reserved and must be escaped with the preceding '\\'"),
        ("🏟 🏟_abacaba", "Can't find end of Italic entity at byte offset 9"),
        ("🏟 🏟_abac * asd ", "Can't find end of Bold entity at byte offset 15"),
        ("🏟 🏟```a ", "Can't find end of PreCode entity at byte offset 9"),
        ("[telegram\\.org](asd", "Can't find end of a URL at byte offset 16"),
    ],
)
def test_telegram_markdown_v2_refusals(telegram: FakeTelegram, text: str, error: str) -> None:
    answer = send(telegram, text, "MarkdownV2")

    assert answer.status_code == 400
    assert answer.json()["description"] == f"Bad Request: can't parse entities: {error}"


def test_telegram_html_is_checked(telegram: FakeTelegram) -> None:
    text = '<b>Hola</b> &lt;3 &amp; <a href="https://chapi.example/x?a=1&amp;b=2">ver</a> é'
    result = send(telegram, text, "HTML").json()["result"]
    lenient = send(telegram, "a > b & c", "HTML")
    telegram.strict_html = True
    strict = send(telegram, "a > b & c", "HTML")

    assert result["text"] == "Hola <3 & ver é"
    assert result["entities"] == [
        {"offset": 0, "length": 4, "type": "bold"},
        {"offset": 10, "length": 3, "type": "text_link", "url": "https://chapi.example/x?a=1&b=2"},
    ]
    assert lenient.json()["result"]["text"] == "a > b & c"  # real Telegram tolerates these
    assert strict.status_code == 400
    assert strict.json()["description"].startswith(
        "Bad Request: can't parse entities: Unescaped '>'"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("precio <100", "Unclosed start tag at byte offset 7"),
        ("<p>hola</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("a <br/> b", 'Unsupported start tag "br/" at byte offset 2'),
        ("<b>hola", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>hola</i>", 'Unmatched end tag at byte offset 7, expected "</b>", found "</i>"'),
        ("hola</b>", "Unexpected end tag at byte offset 4"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        ('<span class="x">a</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_telegram_html_refusals(telegram: FakeTelegram, text: str, error: str) -> None:
    answer = send(telegram, text, "HTML")

    assert answer.status_code == 400
    assert answer.json()["description"] == f"Bad Request: can't parse entities: {error}"


# tdlib's own vectors (test/message_entities.cpp): markup -> (text, [(type, offset, length)]).
PARSED = [
    ("MarkdownV2", "\\\\\\", "\\\\", []),
    ("MarkdownV2", "🏟 🏟_abac \\* asd _", "🏟 🏟abac * asd ", [("italic", 5, 11)]),
    ("MarkdownV2", "||test||", "test", [("spoiler", 0, 4)]),
    ("MarkdownV2", "🏟 🏟```🏟\n🏟```", "🏟 🏟🏟", [("pre", 5, 2)]),
    ("MarkdownV2", "abc\n> \n> \n>\ndef", "abc\n \n \n\ndef", [("blockquote", 4, 5)]),
    (
        "MarkdownV2",
        ">asd\n>q||e||w||\nasdad",
        "asd\nqew\nasdad",
        [("expandable_blockquote", 0, 8), ("spoiler", 5, 1)],
    ),
    (
        "MarkdownV2",
        "`_* *_`__*` `*__",
        "_* *_ ",
        [("code", 0, 5), ("underline", 5, 1), ("bold", 5, 1), ("code", 5, 1)],
    ),
    ("HTML", "&ge;&lt;&gt;&amp;&quot;&laquo;&#12345678;", '&ge;<>&"&laquo;&#12345678;', []),
    ("HTML", "🏟 🏟<i>🏟 &lt🏟</i>", "🏟 🏟🏟 <🏟", [("italic", 5, 6)]),
    ("HTML", "🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;'>a</>", "🏟 🏟<a", [("italic", 6, 1)]),
    (
        "HTML",
        '🏟 🏟&lt;<pre><code class="language-fift">🏟 🏟&lt;</></>',
        "🏟 🏟<🏟 🏟<",
        [("pre", 6, 6)],
    ),
    (
        "HTML",
        "<blockquote   expandable>a&lt;<pre  >b;</></>",
        "a<b;",
        [("expandable_blockquote", 0, 4), ("pre", 2, 2)],
    ),
]


@pytest.mark.parametrize(("mode", "markup", "text", "entities"), PARSED)
def test_parse_entities_matches_tdlib(
    mode: str, markup: str, text: str, entities: list[tuple[str, int, int]]
) -> None:
    parsed_text, parsed = parse_entities(markup, mode)

    assert parsed_text == text
    assert sorted((e["type"], e["offset"], e["length"]) for e in parsed) == sorted(entities)


def test_parse_entities_errors_and_modes() -> None:
    with pytest.raises(EntityParseError, match="Empty attribute name"):
        parse_entities("🏟 🏟&lt;<i   =aba>", "HTML")
    with pytest.raises(EntityParseError, match="unmatched surrogate"):
        parse_entities("&#57311;", "html")
    with pytest.raises(KeyError):
        parse_entities("x", "Markdown3")
    assert parse_entities("*sin revisar_", "Markdown") == ("*sin revisar_", [])
    assert parse_entities("a.b", None) == ("a.b", [])


def test_telegram_chat_action(telegram: FakeTelegram) -> None:
    typing = bot(telegram, "sendChatAction", json={"chat_id": 1, "action": "typing"})
    wrong = bot(telegram, "sendChatAction", json={"chat_id": 1, "action": "dancing"})

    assert typing.json() == {"ok": True, "result": True}
    assert wrong.json()["description"] == "Bad Request: wrong parameter action in request"


def test_telegram_get_file_and_download(telegram: FakeTelegram) -> None:
    update = telegram.update_photo(data=b"J" * 1000)
    largest = update["message"]["photo"][-1]
    file = bot(telegram, "getFile", json={"file_id": largest["file_id"]}).json()["result"]
    download = httpx2.get(f"{telegram.url}/file/bot{DEFAULT_TOKEN}/{file['file_path']}", timeout=5)

    assert file == {
        "file_id": largest["file_id"],
        "file_unique_id": largest["file_unique_id"],
        "file_size": 1000,
        "file_path": file["file_path"],
    }
    assert file["file_path"].startswith("photos/file_")
    assert download.status_code == 200
    assert download.content == b"J" * 1000
    bad_id = bot(telegram, "getFile", json={"file_id": "nope"})
    assert bad_id.json()["description"] == "Bad Request: invalid file_id"
    missing = httpx2.get(f"{telegram.url}/file/bot{DEFAULT_TOKEN}/photos/none.jpg", timeout=5)
    assert missing.status_code == 404
    wrong_token = httpx2.get(f"{telegram.url}/file/bot1:x/{file['file_path']}", timeout=5)
    assert wrong_token.status_code == 401


@pytest.mark.parametrize(
    ("kind", "status", "description"),
    [
        ("500", 500, "Internal Server Error"),
        ("403_blocked", 403, "Forbidden: bot was blocked by the user"),
        ("400_chat_not_found", 400, "Bad Request: chat not found"),
    ],
)
def test_telegram_faults(telegram: FakeTelegram, kind: Any, status: int, description: str) -> None:
    telegram.queue_fault(kind)
    failed = send(telegram, "hola")
    recovered = send(telegram, "hola")

    assert failed.status_code == status
    assert failed.json() == {"ok": False, "error_code": status, "description": description}
    assert recovered.status_code == 200
    assert len(telegram.sent()) == 1


def test_telegram_fault_429_is_scoped_and_counted(telegram: FakeTelegram) -> None:
    telegram.queue_fault("429", times=2, retry_after=7)
    action = bot(telegram, "sendChatAction", json={"chat_id": 1, "action": "typing"})
    limited = [send(telegram, "a"), send(telegram, "b")]
    telegram.queue_fault("403_blocked", method="*")
    any_method = bot(telegram, "getMe")

    assert action.status_code == 200
    assert [r.status_code for r in limited] == [429, 429]
    assert limited[0].json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert any_method.status_code == 403
    assert send(telegram, "c").status_code == 200


def test_telegram_fault_502_is_nginx_html(telegram: FakeTelegram) -> None:
    telegram.queue_fault("502")
    answer = send(telegram, "hola")

    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert b"502 Bad Gateway" in answer.content
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_telegram_fault_hang_times_out(telegram: FakeTelegram) -> None:
    telegram.queue_fault("hang")
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            telegram.api_url("sendMessage"), json={"chat_id": 1, "text": "x"}, timeout=TIMEOUT
        )
    assert send(telegram, "después").status_code == 200


def test_telegram_queue_fault_checks_its_arguments(telegram: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        telegram.queue_fault("418")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes no option"):
        telegram.queue_fault("500", retry_after=1)
    with pytest.raises(ValueError, match="times"):
        telegram.queue_fault("500", times=0)


def test_telegram_update_text_start_and_group(telegram: FakeTelegram) -> None:
    text = telegram.update_text("hola", first_name="Ana", last_name="Pérez", username="anap")
    start = telegram.update_start("promo_42")
    group = telegram.update_text(
        "hola grupo", chat_id=-1001234567890, chat_type="supergroup", user_id=31337, title="Ventas"
    )

    assert set(text) == {"update_id", "message"}
    message = text["message"]
    assert set(message) == {"message_id", "from", "chat", "date", "text"}
    assert message["from"] == {
        "id": DEFAULT_CHAT_ID,
        "is_bot": False,
        "first_name": "Ana",
        "last_name": "Pérez",
        "username": "anap",
        "language_code": "es",
    }
    assert message["chat"] == {
        "id": DEFAULT_CHAT_ID,
        "first_name": "Ana",
        "last_name": "Pérez",
        "username": "anap",
        "type": "private",
    }
    assert start["update_id"] == text["update_id"] + 1
    assert start["message"]["message_id"] == message["message_id"] + 1
    assert start["message"]["text"] == "/start promo_42"
    assert start["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert telegram.update_start()["message"]["text"] == "/start"
    assert group["message"]["chat"] == {
        "id": -1001234567890,
        "title": "Ventas",
        "type": "supergroup",
    }
    assert group["message"]["from"]["id"] == 31337


def test_telegram_update_media_builders(telegram: FakeTelegram) -> None:
    photo = telegram.update_photo(caption="¿Lo tienen en rojo?")["message"]
    document = telegram.update_document(
        file_name="lista.xlsx", mime_type="application/vnd.ms-excel"
    )["message"]
    voice = telegram.update_voice(duration=7)["message"]

    assert [(p["width"], p["height"]) for p in photo["photo"]] == [(90, 68), (320, 240), (800, 600)]
    sizes = [p["file_size"] for p in photo["photo"]]
    assert sizes == sorted(sizes)
    assert set(photo["photo"][0]) == {"file_id", "file_unique_id", "file_size", "width", "height"}
    assert photo["caption"] == "¿Lo tienen en rojo?"
    assert document["document"]["file_name"] == "lista.xlsx"
    assert document["document"]["mime_type"] == "application/vnd.ms-excel"
    assert set(document["document"]) == {
        "file_name",
        "mime_type",
        "file_id",
        "file_unique_id",
        "file_size",
    }
    assert voice["voice"]["duration"] == 7
    assert voice["voice"]["mime_type"] == "audio/ogg"
    file = bot(telegram, "getFile", json={"file_id": voice["voice"]["file_id"]}).json()["result"]
    assert file["file_path"].startswith("voice/") and file["file_path"].endswith(".oga")


def test_telegram_update_other_builders(telegram: FakeTelegram) -> None:
    location = telegram.update_location(19.4326, -99.1332)["message"]
    contact = telegram.update_contact("5215512345678", "Ana", last_name="Pérez")["message"]
    other_contact = telegram.update_contact("5215599999999", "Luis", own=False, contact_user_id=9)
    edited = telegram.update_edited("hola (editado)", message_id=3)
    callback = telegram.update_callback("buy:42")

    assert location["location"] == {"latitude": 19.4326, "longitude": -99.1332}
    assert contact["contact"] == {
        "phone_number": "5215512345678",
        "first_name": "Ana",
        "last_name": "Pérez",
        "user_id": contact["from"]["id"],
    }
    assert other_contact["message"]["contact"]["user_id"] == 9
    assert set(edited) == {"update_id", "edited_message"}
    assert edited["edited_message"]["message_id"] == 3
    assert edited["edited_message"]["edit_date"] > edited["edited_message"]["date"]
    query = callback["callback_query"]
    assert list(query) == ["id", "from", "message", "chat_instance", "data"]
    assert query["data"] == "buy:42"
    assert query["from"]["is_bot"] is False
    assert query["message"]["from"]["username"] == "chapi_test_bot"
    assert isinstance(query["chat_instance"], str)


def test_telegram_message_ids_are_shared_per_chat(telegram: FakeTelegram) -> None:
    inbound = telegram.update_text("hola")
    reply = send(telegram, "¡Hola!").json()["result"]

    assert inbound["message"]["message_id"] == 1
    assert reply["message_id"] == 2


def test_telegram_deliver_and_push(
    telegram: FakeTelegram, receiver: Receiver, hits: list[Hit]
) -> None:
    update = telegram.update_text("precio del plan pro")
    delivered = telegram_server.deliver(f"{receiver.url}/tg", update, secret_token="s3cret")
    telegram.require_https_webhook = False
    params = {"url": f"{receiver.url}/hook", "secret_token": "abc", "allowed_updates": ["message"]}
    bot(telegram, "setWebhook", json=params)
    pushed = telegram.push(telegram.update_text("otra"))
    skipped = telegram.push(telegram.update_callback("x"))

    assert delivered.status_code == 200
    assert hits[0].method == "POST"
    assert hits[0].path == "/tg"
    assert hits[0].headers["content-type"] == "application/json"
    assert hits[0].headers["x-telegram-bot-api-secret-token"] == "s3cret"
    assert json.loads(hits[0].body) == update
    assert pushed is not None and pushed.status_code == 200
    assert hits[1].path == "/hook"
    assert hits[1].headers["x-telegram-bot-api-secret-token"] == "abc"
    assert json.loads(hits[1].body)["message"]["text"] == "otra"
    assert skipped is None
    assert len(hits) == 2


def test_telegram_records_latency_and_reset(telegram: FakeTelegram) -> None:
    telegram.add_bot("42:other", "other_bot")
    telegram.strict_html = True
    telegram.latency_ms = 150
    started = time.perf_counter()
    bot(
        telegram,
        "sendMessage",
        data={"chat_id": "7", "text": "x"},
        params={"disable_notification": "true"},
    )
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.15
    record = telegram.last_request
    assert record.method == "POST"
    assert record.token == DEFAULT_TOKEN
    assert record.api_method == "sendMessage"
    assert record.params == {"disable_notification": "true", "chat_id": "7", "text": "x"}
    assert record.raw == b"chat_id=7&text=x"
    telegram.reset()
    assert telegram.requests == [] and telegram.sent() == []
    assert telegram.strict_html is False
    assert bot(telegram, "getMe", token="42:other").status_code == 401
    assert bot(telegram, "getMe").status_code == 200


# == Twilio ========================================================================================


@pytest.fixture(scope="module")
def twilio_server_() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio(twilio_server_: FakeTwilio) -> Iterator[FakeTwilio]:
    twilio_server_.reset()
    yield twilio_server_
    twilio_server_.reset()
    twilio_server_.latency_ms = 0


@pytest.fixture
def client(twilio: FakeTwilio) -> Client:
    return twilio_client(twilio)


def test_twilio_send_whatsapp_through_the_sdk(twilio: FakeTwilio, client: Client) -> None:
    message = client.messages.create(
        from_=DEFAULT_SENDER,
        to=CUSTOMER_WA,
        body="Hola, ¿en qué te ayudo?",
        status_callback="https://chapi.example/webhooks/twilio/status",
    )

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.to == CUSTOMER_WA
    assert message.from_ == DEFAULT_SENDER
    assert message.body == "Hola, ¿en qué te ayudo?"
    assert message.num_segments == "1"
    assert message.num_media == "0"
    assert message.price is None
    assert message.error_code is None
    assert message.account_sid == DEFAULT_ACCOUNT_SID
    assert message.date_created is not None and message.date_created.tzinfo is not None
    assert message.uri == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{message.sid}.json"
    sent = twilio.sent(to=CUSTOMER_WA)
    assert len(sent) == 1
    assert sent[0].sid == message.sid
    assert sent[0].status_callback == "https://chapi.example/webhooks/twilio/status"
    record = twilio.last_request
    assert record.path == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    assert record.auth == (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    assert record.headers["user-agent"].startswith("twilio-python/9.13")
    assert record.form["To"] == CUSTOMER_WA


def test_twilio_fetch_account_and_message(twilio: FakeTwilio, client: Client) -> None:
    account = client.api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch()
    created = client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x")
    fetched = client.messages(created.sid).fetch()

    assert account.sid == DEFAULT_ACCOUNT_SID
    assert account.status == "active"
    assert account.type == "Full"
    assert fetched.sid == created.sid
    assert fetched.body == "x"


def test_twilio_base_url_attribute_also_works(twilio: FakeTwilio) -> None:
    sdk = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    sdk.api.base_url = twilio.url

    assert sdk.api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch().status == "active"


def test_twilio_wrong_credentials(twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as wrong:
        twilio_client(twilio, auth_token="nope").api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch()
    other = "AC" + "0" * 32
    with pytest.raises(TwilioRestException) as unknown:
        twilio_client(twilio, account_sid=other).messages.create(
            from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x"
        )
    raw = httpx2.get(f"{twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}.json", timeout=5)

    assert wrong.value.status == 401
    assert wrong.value.code == 20003
    assert wrong.value.msg == "Unable to fetch record: Authenticate"
    assert unknown.value.status == 401
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    assert raw.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert twilio.sent() == []


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        (
            {"body": "x" * 1601},
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ),
        ({"to": "whatsapp:12345", "body": "x"}, 21211, "Invalid 'To' Phone Number: whatsapp:12345"),
        ({}, 21602, "Message body is required."),
        (
            {"from_": "+14155238886", "body": "x"},
            21910,
            "Invalid From and To pair. From and To should be of the same channel",
        ),
        ({"content_sid": "welcome_es"}, 21655, "The ContentSid is Invalid."),
        (
            {"content_sid": "HX" + "a" * 32, "content_variables": "{nope"},
            21656,
            "The ContentVariables Parameter is invalid.",
        ),
    ],
)
def test_twilio_validation(client: Client, fields: dict[str, Any], code: int, message: str) -> None:
    arguments = {"from_": DEFAULT_SENDER, "to": CUSTOMER_WA, **fields}
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(**arguments)

    assert raised.value.status == 400
    assert raised.value.code == code
    assert raised.value.msg == f"Unable to create record: {message}"


def test_twilio_limit_template_and_media(twilio: FakeTwilio, client: Client) -> None:
    longest = client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x" * 1600)
    template = client.messages.create(
        from_=DEFAULT_SENDER,
        to=CUSTOMER_WA,
        content_sid="HX" + "b" * 32,
        content_variables=json.dumps({"1": "Ana", "2": "martes"}),
    )
    media = client.messages.create(
        from_=DEFAULT_SENDER,
        to=CUSTOMER_WA,
        body="catálogo",
        media_url=["https://chapi.example/a.pdf", "https://chapi.example/b.jpg"],
    )

    assert longest.status == "queued"
    assert template.body == ""
    assert twilio.message(template.sid).content_sid == "HX" + "b" * 32
    assert twilio.message(template.sid).content_variables == {"1": "Ana", "2": "martes"}
    assert media.num_media == "2"
    assert twilio.message(media.sid).media_urls == (
        "https://chapi.example/a.pdf",
        "https://chapi.example/b.jpg",
    )
    assert twilio.message(media.sid).params["MediaUrl"] == list(
        twilio.message(media.sid).media_urls
    )


@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("429", 429, 20429, "Too Many Requests"),
        ("500", 500, 20500, "Internal Server Error"),
        ("21610", 400, 21610, "Attempt to send to unsubscribed recipient"),
        ("21211", 400, 21211, f"Invalid 'To' Phone Number: {CUSTOMER_WA}"),
        (
            "63016",
            400,
            63016,
            "Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template.",
        ),
    ],
)
def test_twilio_faults(
    twilio: FakeTwilio, client: Client, kind: Any, status: int, code: int, message: str
) -> None:
    twilio.queue_fault(kind)
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="hola")
    recovered = client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="hola")

    assert raised.value.status == status
    assert raised.value.code == code
    assert raised.value.msg == f"Unable to create record: {message}"
    assert recovered.status == "queued"
    assert len(twilio.sent()) == 1


def test_twilio_429_has_retry_after_and_faults_are_scoped(
    twilio: FakeTwilio, client: Client
) -> None:
    twilio.queue_fault("429", retry_after=3)
    twilio.queue_fault("500", endpoint="account")
    auth = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    url = f"{twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    limited = httpx2.post(
        url, data={"To": CUSTOMER_WA, "From": DEFAULT_SENDER, "Body": "x"}, auth=auth, timeout=5
    )
    created = client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x")
    with pytest.raises(TwilioRestException) as account:
        client.api.v2010.accounts(DEFAULT_ACCOUNT_SID).fetch()

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["code"] == 20429
    assert created.status == "queued"
    assert account.value.status == 500


def test_twilio_fault_hang_raises_the_requests_timeout(twilio: FakeTwilio) -> None:
    twilio.queue_fault("hang")
    with pytest.raises(requests.exceptions.ReadTimeout) as raised:
        twilio_client(twilio, timeout=TIMEOUT).messages.create(
            from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x"
        )

    assert isinstance(raised.value, OSError)


def test_twilio_queue_fault_checks_its_arguments(twilio: FakeTwilio) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        twilio.queue_fault("63018")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown endpoint"):
        twilio.queue_fault("500", endpoint="calls")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes no option"):
        twilio.queue_fault("500", retry_after=2)


def test_twilio_signature_is_the_request_validators() -> None:
    url = "https://chapi.example:8443/webhooks/twilio/abc?tenant=alpha"
    params = {
        "Body": "¿Precio? ñandú 😀",
        "From": CUSTOMER_WA,
        "NumMedia": "0",
        "To": DEFAULT_SENDER,
    }
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)

    computed = twilio_server.signature(url, params, DEFAULT_AUTH_TOKEN)

    assert computed == validator.compute_signature(url, params)
    assert validator.validate(url, params, computed)
    assert not validator.validate(url, {**params, "Body": "otro"}, computed)
    assert twilio_server.signature(url, list(params.items()), DEFAULT_AUTH_TOKEN) == computed


def test_twilio_incoming_builder_and_deliver(
    twilio: FakeTwilio, receiver: Receiver, hits: list[Hit]
) -> None:
    params = twilio.incoming("Hola, ¿tienen envío?", profile_name="Ana Pérez")
    url = f"{receiver.url}/webhooks/twilio/abc?x=1"
    answer = twilio_server.deliver(url, params, DEFAULT_AUTH_TOKEN)

    assert params["MessageSid"].startswith("SM") and params["SmsSid"] == params["MessageSid"]
    assert params["From"] == CUSTOMER_WA
    assert params["WaId"] == "5215512345678"
    assert params["To"] == DEFAULT_SENDER
    assert params["Body"] == "Hola, ¿tienen envío?"
    assert params["NumMedia"] == "0"
    assert params["ProfileName"] == "Ana Pérez"
    assert params["AccountSid"] == DEFAULT_ACCOUNT_SID
    assert params["MessageType"] == "text"
    assert answer.status_code == 200
    hit = hits[0]
    assert hit.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "i-twilio-idempotency-token" in hit.headers
    received = dict(parse_qsl(hit.body.decode()))
    assert received == params
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(url, received, hit.headers["x-twilio-signature"])


def test_twilio_incoming_media_location_and_button(twilio: FakeTwilio) -> None:
    media = twilio.incoming(media=[("image/jpeg", b"JPEG!"), ("application/pdf", b"%PDF")])
    location = twilio.incoming(latitude=19.43, longitude=-99.13, address="Zócalo")
    button = twilio.incoming("Sí", button_text="Sí", button_payload="yes")
    first = httpx2.get(media["MediaUrl0"], timeout=5)
    followed = httpx2.get(media["MediaUrl0"], follow_redirects=True, timeout=5)
    authed = httpx2.get(
        media["MediaUrl1"],
        auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
        follow_redirects=True,
        timeout=5,
    )
    wrong = httpx2.get(media["MediaUrl1"], auth=(DEFAULT_ACCOUNT_SID, "nope"), timeout=5)

    assert media["MessageSid"].startswith("MM")
    assert media["NumMedia"] == "2"
    assert media["MediaContentType0"] == "image/jpeg"
    assert media["MessageType"] == "image"
    assert media["MediaUrl0"].startswith(
        f"{twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/MM"
    )
    assert first.status_code == 307
    assert followed.content == b"JPEG!"
    assert followed.headers["content-type"] == "image/jpeg"
    assert authed.content == b"%PDF"
    assert wrong.status_code == 401
    assert (location["Latitude"], location["Longitude"], location["Address"]) == (
        "19.43",
        "-99.13",
        "Zócalo",
    )
    assert location["MessageType"] == "location"
    assert (button["ButtonText"], button["ButtonPayload"], button["MessageType"]) == (
        "Sí",
        "yes",
        "button",
    )


def test_twilio_status_callbacks(
    twilio: FakeTwilio, client: Client, receiver: Receiver, hits: list[Hit]
) -> None:
    callback_url = f"{receiver.url}/webhooks/twilio/abc/status"
    message = client.messages.create(
        from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x", status_callback=callback_url
    )
    delivered = twilio.status_callback(message.sid, "delivered")
    answer = twilio.callback(message.sid, "failed", error_code=63016)

    assert delivered["MessageSid"] == delivered["SmsSid"] == message.sid
    assert delivered["MessageStatus"] == delivered["SmsStatus"] == "delivered"
    assert (delivered["To"], delivered["From"]) == (CUSTOMER_WA, DEFAULT_SENDER)
    assert delivered["ChannelPrefix"] == "whatsapp"
    assert "ErrorCode" not in delivered
    assert answer.status_code == 200
    received = dict(parse_qsl(hits[0].body.decode()))
    assert received["MessageStatus"] == "failed"
    assert received["ErrorCode"] == "63016"
    assert RequestValidator(DEFAULT_AUTH_TOKEN).validate(
        callback_url, received, hits[0].headers["x-twilio-signature"]
    )


def test_twilio_unknown_paths_latency_and_reset(twilio: FakeTwilio, client: Client) -> None:
    auth = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    calls = httpx2.get(
        f"{twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Calls.json", auth=auth, timeout=5
    )
    elsewhere = httpx2.get(f"{twilio.url}/v1/Services", auth=auth, timeout=5)
    twilio.add_account("AC" + "1" * 32, "token-1")
    twilio.latency_ms = 150
    started = time.perf_counter()
    client.messages.create(from_=DEFAULT_SENDER, to=CUSTOMER_WA, body="x")
    elapsed = time.perf_counter() - started

    assert calls.status_code == 404
    assert calls.json()["code"] == 20404
    assert elsewhere.status_code == 404
    assert elapsed >= 0.15
    assert (
        twilio_client(twilio, "AC" + "1" * 32, "token-1")
        .api.v2010.accounts("AC" + "1" * 32)
        .fetch()
    )
    twilio.reset()
    assert twilio.requests == [] and twilio.sent() == []
    with pytest.raises(TwilioRestException):
        twilio_client(twilio, "AC" + "1" * 32, "token-1").api.v2010.accounts(
            "AC" + "1" * 32
        ).fetch()


# == Meta (WhatsApp Cloud API) =====================================================================


@pytest.fixture(scope="module")
def meta_server_() -> Iterator[FakeMeta]:
    with FakeMeta() as fake:
        yield fake


@pytest.fixture
def meta(meta_server_: FakeMeta) -> Iterator[FakeMeta]:
    meta_server_.reset()
    yield meta_server_
    meta_server_.reset()
    meta_server_.latency_ms = 0


BEARER = {"Authorization": f"Bearer {DEFAULT_ACCESS_TOKEN}"}


def graph(
    fake: FakeMeta, method: str, path: str, token: str | None = DEFAULT_ACCESS_TOKEN, **kwargs: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.request(
        method, f"{fake.base_url}/v21.0/{path}", headers=headers, timeout=5, **kwargs
    )


def send_meta(fake: FakeMeta, body: dict[str, Any], **kwargs: Any) -> Any:
    return graph(fake, "POST", f"{DEFAULT_PHONE_NUMBER_ID}/messages", json=body, **kwargs)


TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": DEFAULT_CUSTOMER,
    "type": "text",
    "text": {"body": "Hola, ¿en qué te ayudo?", "preview_url": False},
}


def test_meta_send_text(meta: FakeMeta) -> None:
    answer = send_meta(meta, {**TEXT, "to": "+52 1 55 1234 5678"})

    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["messaging_product", "contacts", "messages"]
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+52 1 55 1234 5678", "wa_id": DEFAULT_CUSTOMER}]
    assert len(body["messages"]) == 1 and list(body["messages"][0]) == ["id"]
    assert body["messages"][0]["id"].startswith("wamid.")
    sent = meta.sent(to=DEFAULT_CUSTOMER)
    assert [(s.id, s.type, s.text, s.phone_number_id) for s in sent] == [
        (body["messages"][0]["id"], "text", "Hola, ¿en qué te ayudo?", DEFAULT_PHONE_NUMBER_ID)
    ]
    assert meta.last_request.access_token == DEFAULT_ACCESS_TOKEN
    assert meta.last_request.body["to"] == "+52 1 55 1234 5678"


def test_meta_send_template_media_and_mark_read(meta: FakeMeta) -> None:
    template = {
        "name": "seguimiento",
        "language": {"code": "es_MX"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    }
    by_template = send_meta(
        meta,
        {
            "messaging_product": "whatsapp",
            "to": DEFAULT_CUSTOMER,
            "type": "template",
            "template": template,
        },
    )
    by_image = send_meta(
        meta,
        {
            "messaging_product": "whatsapp",
            "to": DEFAULT_CUSTOMER,
            "type": "image",
            "image": {"link": "https://chapi.example/a.jpg", "caption": "Modelo A"},
        },
    )
    read = send_meta(
        meta,
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.X",
            "typing_indicator": {"type": "text"},
        },
    )

    assert by_template.json()["messages"][0]["message_status"] == "accepted"
    assert meta.sent()[0].template == template
    assert by_image.status_code == 200
    assert meta.sent()[1].type == "image" and meta.sent()[1].text is None
    assert read.json() == {"success": True}
    assert len(meta.sent()) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"to": "1", "text": {"body": "x"}}, "(#100) The parameter messaging_product is required."),
        (
            {**TEXT, "messaging_product": "sms"},
            '(#100) Param messaging_product must be one of {WHATSAPP} - got "sms".',
        ),
        ({**TEXT, "to": ""}, "(#100) The parameter to is required."),
        (
            {**TEXT, "type": "fax"},
            "(#100) Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, "
            'LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got "fax".',
        ),
        ({**TEXT, "text": None}, "(#100) The parameter text is required."),
        ({**TEXT, "text": {"body": ""}}, "(#100) The parameter text['body'] is required."),
        ({**TEXT, "text": {"body": 42}}, "(#100) Param text['body'] must be a string."),
        (
            {**TEXT, "text": {"body": "x" * 4097}},
            "(#100) Param text['body'] must be at most 4096 characters long.",
        ),
        (
            {**TEXT, "type": "template", "template": {"name": "t"}},
            "(#100) The parameter template['language'] is required.",
        ),
        (
            {**TEXT, "type": "document", "document": {"filename": "a.pdf"}},
            "(#100) Param document must contain either id or link.",
        ),
    ],
)
def test_meta_validation(meta: FakeMeta, body: dict[str, Any], message: str) -> None:
    answer = send_meta(meta, body)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["message"] == message
    assert error["type"] == "OAuthException"
    assert error["code"] == 100
    assert isinstance(error["fbtrace_id"], str)
    assert meta.sent() == []


def test_meta_text_limit(meta: FakeMeta) -> None:
    assert send_meta(meta, {**TEXT, "text": {"body": "x" * 4096}}).status_code == 200


def test_meta_authentication_and_objects(meta: FakeMeta) -> None:
    missing = send_meta(meta, TEXT, token=None)
    wrong = send_meta(meta, TEXT, token="EAAwrong")
    by_query = httpx2.post(
        f"{meta.base_url}/v21.0/{DEFAULT_PHONE_NUMBER_ID}/messages",
        params={"access_token": DEFAULT_ACCESS_TOKEN},
        json=TEXT,
        timeout=5,
    )
    meta.add_phone_number("200000000000001", "EAAother")
    not_yours = graph(meta, "POST", "200000000000001/messages", json=TEXT)
    unknown = graph(meta, "GET", "999")
    bad_path = graph(meta, "GET", f"{DEFAULT_PHONE_NUMBER_ID}/templates/x")

    assert missing.status_code == wrong.status_code == 401
    assert set(wrong.json()["error"]) == {"message", "type", "code", "fbtrace_id"}
    assert (
        wrong.json()["error"]["message"] == "Invalid OAuth access token - Cannot parse access token"
    )
    assert wrong.json()["error"]["type"] == "OAuthException"
    assert wrong.json()["error"]["code"] == 190
    assert wrong.headers["www-authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')
    assert by_query.status_code == 200
    assert not_yours.status_code == 400
    error = not_yours.json()["error"]
    assert error["type"] == "GraphMethodException"
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert error["message"].startswith(
        "Unsupported post request. Object with ID '200000000000001' does not exist"
    )
    assert unknown.json()["error"]["message"].startswith("Unsupported get request.")
    assert bad_path.json()["error"]["code"] == 2500
    assert len(meta.sent()) == 1


def test_meta_phone_number_info(meta: FakeMeta) -> None:
    everything = graph(meta, "GET", DEFAULT_PHONE_NUMBER_ID).json()
    some = graph(
        meta,
        "GET",
        DEFAULT_PHONE_NUMBER_ID,
        params={"fields": "display_phone_number,verified_name"},
    ).json()
    bad = graph(meta, "GET", DEFAULT_PHONE_NUMBER_ID, params={"fields": "owner"})

    assert everything == {
        "verified_name": "CHAPI Test",
        "code_verification_status": "VERIFIED",
        "display_phone_number": "+1 555-010-0199",
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "id": DEFAULT_PHONE_NUMBER_ID,
    }
    assert some == {
        "display_phone_number": "+1 555-010-0199",
        "verified_name": "CHAPI Test",
        "id": DEFAULT_PHONE_NUMBER_ID,
    }
    assert bad.status_code == 400
    assert (
        bad.json()["error"]["message"]
        == "(#100) Tried accessing nonexisting field (owner) on node type "
        "(WhatsAppBusinessPhoneNumber)"
    )


@pytest.mark.parametrize(
    ("kind", "options", "status", "code", "title"),
    [
        ("429", {}, 429, 130429, "Rate limit hit"),
        ("429", {"code": 80007}, 400, 80007, "Rate limit issues"),
        (
            "429",
            {"code": 131056},
            400,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
        ),
        ("500", {}, 500, 131000, "Something went wrong"),
        ("131047", {}, 400, 131047, "Re-engagement message"),
        ("131026", {}, 400, 131026, "Message undeliverable"),
        ("131051", {}, 400, 131051, "Unsupported message type"),
    ],
)
def test_meta_faults(
    meta: FakeMeta, kind: Any, options: dict[str, Any], status: int, code: int, title: str
) -> None:
    meta.queue_fault(kind, **options)
    failed = send_meta(meta, TEXT)
    recovered = send_meta(meta, TEXT)

    assert failed.status_code == status
    error = failed.json()["error"]
    assert error["message"] == f"(#{code}) {title}"
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert recovered.status_code == 200
    assert len(meta.sent()) == 1


def test_meta_fault_expired_token_scoping_and_hang(meta: FakeMeta) -> None:
    meta.queue_fault("190", endpoint="phone")
    sent = send_meta(meta, TEXT)
    expired = graph(meta, "GET", DEFAULT_PHONE_NUMBER_ID)
    meta.queue_fault("hang", endpoint="*")
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            f"{meta.base_url}/v21.0/{DEFAULT_PHONE_NUMBER_ID}/messages",
            headers=BEARER,
            json=TEXT,
            timeout=TIMEOUT,
        )

    assert sent.status_code == 200
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == 190
    assert expired.json()["error"]["error_subcode"] == 463
    assert expired.json()["error"]["message"].startswith(
        "Error validating access token: Session has expired on "
    )
    with pytest.raises(ValueError, match="130429, 80007 or 131056"):
        meta.queue_fault("429", code=4)


def test_meta_media_download(meta: FakeMeta) -> None:
    payload = meta.message_image(caption="¿Lo tienen en rojo?", data=b"JPEG-bytes")
    image = payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    info = graph(meta, "GET", image["id"]).json()
    download = httpx2.get(info["url"], headers=BEARER, timeout=5)
    anonymous = httpx2.get(info["url"], timeout=5)

    assert image == {
        "caption": "¿Lo tienen en rojo?",
        "mime_type": "image/jpeg",
        "sha256": hashlib.sha256(b"JPEG-bytes").hexdigest(),
        "id": image["id"],
    }
    assert info == {
        "messaging_product": "whatsapp",
        "url": info["url"],
        "mime_type": "image/jpeg",
        "sha256": image["sha256"],
        "file_size": 10,
        "id": image["id"],
    }
    assert urlsplit(info["url"]).path == "/whatsapp_business/attachments/"
    assert download.status_code == 200
    assert download.content == b"JPEG-bytes"
    assert download.headers["content-type"] == "image/jpeg"
    assert anonymous.status_code == 401


def test_meta_message_builders(meta: FakeMeta) -> None:
    text = meta.message_text("precio?", name="Ana Pérez", context_id="wamid.PREV")

    assert text["object"] == "whatsapp_business_account"
    assert len(text["entry"]) == 1
    entry = text["entry"][0]
    assert entry["id"] == meta_server.DEFAULT_WABA_ID
    change = entry["changes"][0]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {
        "display_phone_number": "15550100199",
        "phone_number_id": DEFAULT_PHONE_NUMBER_ID,
    }
    assert value["contacts"] == [{"profile": {"name": "Ana Pérez"}, "wa_id": DEFAULT_CUSTOMER}]
    message = value["messages"][0]
    assert message["from"] == DEFAULT_CUSTOMER
    assert message["id"].startswith("wamid.")
    assert message["timestamp"].isdigit()
    assert message["type"] == "text"
    assert message["text"] == {"body": "precio?"}
    assert message["context"] == {"from": "15550100199", "id": "wamid.PREV"}

    def first(payload: dict[str, Any]) -> dict[str, Any]:
        return payload["entry"][0]["changes"][0]["value"]["messages"][0]

    document = first(meta.message_document(filename="lista.pdf"))["document"]
    audio = first(meta.message_audio())["audio"]
    location = first(meta.message_location(19.43, -99.13, name="Oficina"))
    contacts = first(meta.message_contacts("Luis Gómez", "+52 55 9999 0000"))
    button = first(meta.message_interactive("opt_1", "Sí, quiero", context_id="wamid.Q"))
    listed = first(
        meta.message_interactive("row_2", "Plan Pro", kind="list_reply", description="$99")
    )
    quick = first(meta.message_button("Me interesa", "interested"))
    reaction = first(meta.message_reaction("wamid.OUT", "👍"))
    unsupported = first(meta.message_unsupported())

    assert document["filename"] == "lista.pdf" and document["mime_type"] == "application/pdf"
    assert audio["voice"] is True and audio["mime_type"] == "audio/ogg; codecs=opus"
    assert location["location"] == {"latitude": 19.43, "longitude": -99.13, "name": "Oficina"}
    assert contacts["contacts"][0]["phones"] == [
        {"phone": "+52 55 9999 0000", "wa_id": "525599990000", "type": "CELL"}
    ]
    assert button["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "opt_1", "title": "Sí, quiero"},
    }
    assert listed["interactive"]["list_reply"] == {
        "id": "row_2",
        "title": "Plan Pro",
        "description": "$99",
    }
    assert quick["type"] == "button" and quick["button"] == {
        "payload": "interested",
        "text": "Me interesa",
    }
    assert reaction["reaction"] == {"message_id": "wamid.OUT", "emoji": "👍"}
    assert unsupported["type"] == "unsupported"
    assert unsupported["errors"][0]["code"] == 131051


def test_meta_status_builders_and_combine(meta: FakeMeta) -> None:
    sent = meta.status("wamid.OUT", "sent")
    read = meta.status("wamid.OUT", "read")
    failed = meta.status("wamid.OUT", "failed", error_code=131047)
    both = FakeMeta.combine(meta.message_text("hola"), failed)

    def status(payload: dict[str, Any]) -> dict[str, Any]:
        return payload["entry"][0]["changes"][0]["value"]["statuses"][0]

    assert set(status(sent)) == {
        "id",
        "status",
        "timestamp",
        "recipient_id",
        "conversation",
        "pricing",
    }
    assert status(sent)["conversation"]["origin"] == {"type": "service"}
    assert status(sent)["pricing"] == {
        "billable": True,
        "pricing_model": "CBP",
        "category": "service",
    }
    assert set(status(read)) == {"id", "status", "timestamp", "recipient_id"}
    assert status(failed)["errors"] == [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {
                "details": "Message failed to send because more than 24 hours have passed since "
                "the customer last replied to this number."
            },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }
    ]
    changes = both["entry"][0]["changes"]
    assert len(both["entry"]) == 1 and len(changes) == 2
    assert "messages" in changes[0]["value"] and "statuses" in changes[1]["value"]


def test_meta_signature_deliver_and_verify(
    meta: FakeMeta, receiver: Receiver, hits: list[Hit]
) -> None:
    payload = meta.message_text("¿Precio? José 😀")
    delivered = meta_server.deliver(f"{receiver.url}/wa", payload, DEFAULT_APP_SECRET)
    handshake = meta_server.verify(f"{receiver.url}/wa", "good", challenge="8765")
    refused = meta_server.verify(f"{receiver.url}/wa", "bad")

    assert delivered.status_code == 200
    raw = hits[0].body
    assert raw == meta_server.payload_bytes(payload)
    assert b"\\u00e9" in raw and b" " not in raw.split(b'"body":')[0]  # escaped, compact
    expected = "sha256=" + hmac.new(DEFAULT_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert (
        hits[0].headers["x-hub-signature-256"]
        == expected
        == meta_server.signature(raw, DEFAULT_APP_SECRET)
    )
    assert hits[0].headers["x-hub-signature"].startswith("sha1=")
    assert hits[0].headers["content-type"] == "application/json"
    assert json.loads(raw) == payload
    assert hits[1].method == "GET"
    assert parse_qs(hits[1].query) == {
        "hub.mode": ["subscribe"],
        "hub.challenge": ["8765"],
        "hub.verify_token": ["good"],
    }
    assert handshake.text == "8765"
    assert refused.status_code == 403


def test_meta_records_latency_and_reset(meta: FakeMeta) -> None:
    meta.add_phone_number("300000000000001", "EAAthird")
    meta.latency_ms = 150
    started = time.perf_counter()
    send_meta(meta, TEXT)
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.15
    assert meta.last_request.method == "POST"
    assert meta.last_request.path == f"/v21.0/{DEFAULT_PHONE_NUMBER_ID}/messages"
    assert json.loads(meta.last_request.raw) == TEXT
    meta.reset()
    assert meta.requests == [] and meta.sent() == []
    assert graph(meta, "GET", "300000000000001", token="EAAthird").status_code == 401


# == the command lines ===========================================================================


@pytest.mark.parametrize(
    ("module", "probe"),
    [
        ("telegram_server", lambda base: httpx2.get(f"{base}/bot{DEFAULT_TOKEN}/getMe", timeout=5)),
        (
            "twilio_server",
            lambda base: httpx2.get(
                f"{base}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}.json",
                auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
                timeout=5,
            ),
        ),
        (
            "meta_server",
            lambda base: httpx2.get(
                f"{base}/v21.0/{DEFAULT_PHONE_NUMBER_ID}", headers=BEARER, timeout=5
            ),
        ),
    ],
)
def test_cli_serves_until_sigterm(module: str, probe: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", f"tests.fakes.{module}", "--port", "0", "--latency-ms", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split("base_url=")[1].split()[0]
        answer = probe(base_url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert base_url.startswith("http://127.0.0.1:")
    assert answer.status_code == 200
