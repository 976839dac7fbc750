"""A local server speaking OpenAI's HTTP API, for tests and benchmarks (there is no internet here).

`FakeOpenAI` runs an aiohttp server on its own event loop in a daemon thread, so sync tests, async
tests and benchmarks can all point the real `openai` SDK at it::

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        fake.queue_reply("Hola")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert fake.last_request.api_key == "sk-test"

Endpoints (under `/v1`): `POST /chat/completions` (JSON and SSE streaming, tool calls,
`response_format` json_schema/json_object), `POST /moderations`, `GET /models`,
`GET /models/{id}`; anything else answers OpenAI's 404 JSON.

What a chat completion answers, first match wins:
1. the request has `tools` and a tool call is queued (`queue_tool_call`): `tool_calls`,
   `finish_reason="tool_calls"`;
2. `response_format` is json_schema/json_object and JSON is queued (`queue_json`): that JSON;
3. a queued reply (`queue_reply`), for a request that does not ask for JSON;
4. `responder(request_json)` when set (it runs on the server's thread: keep it quick);
5. json_schema/json_object: the smallest object valid for the schema (required properties only:
   "" / 0 / false / [] / null, nested objects recursively, first enum/anyOf choice, local $refs);
6. `"Echo: <text of the last user message>"`.

Usage is deterministic and identical in both modes: prompt_tokens = sum over messages of
(whitespace words of the text + 3); completion_tokens = number of pieces the reply streams as
(whitespace-delimited words, their trailing spaces attached; for tool calls, pieces of the
arguments JSON). `max_completion_tokens`/`max_tokens` cut the reply to that many pieces with
`finish_reason="length"`. `latency_ms` delays the first byte of every response (errors too);
`tokens_per_second` paces the pieces after the first.

Moderations: an input is flagged (category `violence`, score 0.99) when it contains any of
`flagged_words` as a whole word, case-insensitively (default `DEFAULT_FLAGGED_WORDS`:
kill, matar, bomb, bomba). A list of strings gets one result per string.

Faults (`queue_fault(kind, times=1, endpoint="chat", **options)`) hit the next requests to that
endpoint, before any scripted answer is consumed, and what the openai 3.57 SDK raises for each
(checked by tests/fakes/test_openai_server.py, the same for `OpenAI` and `AsyncOpenAI`; the SDK
retries 408/409/429/5xx and connection errors twice by default, so build clients with
`max_retries=0` to see the first failure):

=================  ======================================================================
kind               SDK exception
=================  ======================================================================
"401"              `openai.AuthenticationError` (`.code == "invalid_api_key"`)
"429_rate_limit"   `openai.RateLimitError`, `.code == "rate_limit_exceeded"`, headers
                   `retry-after` (whole seconds, option `retry_after`, default 1) and
                   `retry-after-ms` (the SDK prefers the latter when it retries)
"429_quota"        `openai.RateLimitError`, `.code == .type == "insufficient_quota"`, no
                   Retry-After. The SDK retries it like any 429: check `.code` yourself.
"500" / "503"      `openai.InternalServerError` (`.status_code` 500 / 503)
"400"              `openai.BadRequestError`, `.code == "context_length_exceeded"` (option `code`)
"hang"             `openai.APITimeoutError` once the client's timeout passes, raised by
                   `create()` (stream or not). With option `after_chunks=N` and `stream=True`
                   the headers and N content chunks arrive first, then nothing: the read
                   timeout raises `openai.APITimeoutError` from the stream's iteration.
"cut"              stream: N content chunks (option `after_chunks`, default 2), then the
                   connection closes mid-body with no final chunk nor `[DONE]`: iterating
                   raises `openai.APIConnectionError` (from httpx2.RemoteProtocolError,
                   "incomplete chunked read"). Non-stream: half the body, then close:
                   `create()` raises `openai.APIConnectionError`.
"malformed"        stream: N content chunks (default 1), then `data: {"id": ...` (not JSON):
                   iterating raises a bare `json.JSONDecodeError` (a ValueError, *not* an
                   `openai.OpenAIError`; the SDK does not wrap it). Non-stream: a 200
                   `application/json` whose body is cut in half: `create()` raises the same
                   bare `json.JSONDecodeError`. (Were the content type not JSON, the SDK
                   would return the body as a `str` instead of raising.)
=================  ======================================================================

Requests are recorded (`requests`, `last_request`) before any fault applies, so SDK retries show
as several records. `reset()` forgets queues, faults, records and `responder` and restores the
default `flagged_words`; the constructor's `latency_ms`/`tokens_per_second` stay (they are plain
attributes: change them at will).

One event loop serves every connection (no thread per request); the listen backlog is 1024.
CLI for benchmarks: `python -m tests.fakes.openai_server --port 8090 --latency-ms 50
[--tokens-per-second N]` serves until SIGINT/SIGTERM (port 0 picks a free port; the first
line printed holds the base URL). Imports neither Django nor pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.fakes._server import LocalServer

FaultKind = Literal[
    "401", "429_rate_limit", "429_quota", "500", "503", "400", "hang", "cut", "malformed"
]
Endpoint = Literal["chat", "moderations"]
Responder = Callable[[dict[str, Any]], str]

DEFAULT_FLAGGED_WORDS: frozenset[str] = frozenset({"kill", "matar", "bomb", "bomba"})
MODELS: tuple[str, ...] = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "omni-moderation-latest",
)
MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
FLAGGED_CATEGORY = "violence"

_STATUS_FAULTS: dict[str, int] = {
    "401": 401,
    "429_rate_limit": 429,
    "429_quota": 429,
    "500": 500,
    "503": 503,
    "400": 400,
}
_FAULT_OPTIONS: dict[str, frozenset[str]] = {
    "401": frozenset({"message"}),
    "429_rate_limit": frozenset({"message", "retry_after"}),
    "429_quota": frozenset({"message"}),
    "500": frozenset({"message"}),
    "503": frozenset({"message"}),
    "400": frozenset({"message", "code", "param"}),
    "hang": frozenset({"after_chunks"}),
    "cut": frozenset({"after_chunks"}),
    "malformed": frozenset({"after_chunks"}),
}
_DEFAULT_AFTER_CHUNKS = {"cut": 2, "malformed": 1}
_ENDPOINTS = frozenset({"chat", "moderations"})
# Splits before every non-space that follows a space: the pieces concatenate back to the text.
_PIECE_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")
_MALFORMED_EVENT = b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": {"content": \n\n'


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: `headers` keys are lowercased, `json` is the parsed body
    (None when empty or not JSON), `timestamp` is `time.time()` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    timestamp: float

    @property
    def api_key(self) -> str | None:
        """The bearer token of the `authorization` header, if any."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]


@dataclass(frozen=True)
class _Answer:
    """What one chat completion says: text, or tool calls as (id, name, arguments JSON)."""

    content: str | None
    tool_calls: tuple[tuple[str, str, str], ...] = ()


class FakeOpenAI(LocalServer):
    """OpenAI-compatible HTTP server in a background thread (see the module docstring).

    Scripting methods and `requests` are thread-safe: call them from tests while the server runs.
    `start()` binds (port 0 picks a free port, kept in `port` so a restart reuses it) and returns
    once connections are accepted; it raises the bind error (OSError) if the port is taken, and
    RuntimeError if already started. `stop()` drops hung and in-flight requests, returns once the
    port is closed, and does nothing when not started.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        tokens_per_second: float | None = None,
    ) -> None:
        super().__init__(host, port)
        self.latency_ms = latency_ms
        self.tokens_per_second = tokens_per_second
        self.responder: Responder | None = None
        self.flagged_words: set[str] = set(DEFAULT_FLAGGED_WORDS)
        self._lock = threading.Lock()
        self._replies: deque[str] = deque()
        self._tool_calls: deque[tuple[tuple[str, str, str], ...]] = deque()
        self._json: deque[Any] = deque()
        self._faults: dict[str, deque[_Fault]] = {endpoint: deque() for endpoint in _ENDPOINTS}
        self._records: list[RecordedRequest] = []
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://<host>:<port>/v1`, what `openai.OpenAI(base_url=...)` takes."""
        return f"{self.url}/v1"

    # -- scripting ---------------------------------------------------------------------------

    def queue_reply(self, text: str) -> None:
        """The next chat completion that is not a tool call nor queued JSON answers `text`."""
        with self._lock:
            self._replies.append(text)

    def queue_tool_call(
        self, name: str, arguments: dict[str, Any], *, call_id: str | None = None
    ) -> None:
        """The next chat completion whose request has `tools` calls function `name`."""
        self.queue_tool_calls([(name, arguments)], call_ids=[call_id] if call_id else None)

    def queue_tool_calls(
        self,
        calls: Sequence[tuple[str, dict[str, Any]]],
        *,
        call_ids: Sequence[str] | None = None,
    ) -> None:
        """The next chat completion whose request has `tools` makes these parallel calls."""
        ids = list(call_ids) if call_ids else [f"call_{uuid.uuid4().hex[:24]}" for _ in calls]
        if len(ids) != len(calls):
            raise ValueError("call_ids must match calls one to one")
        answer = tuple(
            (call_id, name, json.dumps(arguments, ensure_ascii=False))
            for call_id, (name, arguments) in zip(ids, calls, strict=True)
        )
        with self._lock:
            self._tool_calls.append(answer)

    def queue_json(self, obj: Any) -> None:
        """The next chat completion with a json_schema/json_object `response_format` answers
        `obj` serialized (it is not checked against the schema: invalid output is a test case)."""
        with self._lock:
            self._json.append(obj)

    def queue_fault(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        endpoint: Endpoint = "chat",
        **options: Any,
    ) -> None:
        """The next `times` requests to `endpoint` fail with `kind` (see the module docstring
        for kinds, options and what the SDK raises). Faults queue up in order."""
        if kind not in _FAULT_OPTIONS:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_OPTIONS)}"
            )
        if endpoint not in _ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(_ENDPOINTS)}")
        if unknown := set(options) - _FAULT_OPTIONS[kind]:
            raise TypeError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults[endpoint].append(_Fault(kind, times, dict(options)))

    def reset(self) -> None:
        """Forget queued replies/tool calls/JSON, faults, records and `responder`; restore the
        default `flagged_words`. Latency and pacing are kept."""
        with self._lock:
            self._replies.clear()
            self._tool_calls.clear()
            self._json.clear()
            for faults in self._faults.values():
                faults.clear()
            self._records.clear()
            self.responder = None
            self.flagged_words = set(DEFAULT_FLAGGED_WORDS)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; AssertionError when there is none."""
        with self._lock:
            if not self._records:
                raise AssertionError("FakeOpenAI received no request")
            return self._records[-1]

    # -- plumbing shared by handlers -----------------------------------------------------------

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            json=body,
            timestamp=time.time(),
        )
        with self._lock:
            self._records.append(record)
        return body

    def _take_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            faults = self._faults[endpoint]
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.popleft()
            return fault

    def _request_id(self) -> str:
        return f"req_fake{next(self._ids):08d}"

    async def _first_byte_delay(self) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)

    def _json_response(
        self, payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            body=json.dumps(payload, ensure_ascii=False).encode(),
            status=status,
            content_type="application/json",
            headers={"x-request-id": self._request_id(), **(headers or {})},
        )

    @staticmethod
    def _drop(request: web.Request) -> None:
        """Close the connection; bytes already written are flushed first."""
        if request.transport is not None:
            request.transport.close()

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        assert self._stopping is not None
        await self._stopping.wait()
        self._drop(request)
        return web.Response(status=503)  # never reaches the client: its connection is gone

    async def _before_answer(
        self, request: web.Request, fault: _Fault | None, *, stream: bool = False
    ) -> web.StreamResponse | None:
        """Faults that answer before any content: status errors, and a hang (unless streaming
        with `after_chunks`)."""
        if fault is None:
            return None
        if fault.kind in _STATUS_FAULTS:
            await self._first_byte_delay()
            return self._error_response(fault)
        if fault.kind == "hang" and (not stream or fault.options.get("after_chunks") is None):
            return await self._hang(request)
        return None

    def _error_response(self, fault: _Fault) -> web.Response:
        kind, options = fault.kind, fault.options
        headers: dict[str, str] = {}
        if kind == "401":
            error = _error(
                options.get(
                    "message",
                    "Incorrect API key provided: sk-****. You can find your "
                    "API key at https://platform.openai.com/account/api-keys.",
                ),
                "invalid_request_error",
                code="invalid_api_key",
            )
        elif kind == "429_rate_limit":
            retry_after = float(options.get("retry_after", 1))
            headers = {
                "retry-after": str(math.ceil(retry_after)),
                "retry-after-ms": str(round(retry_after * 1000)),
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after:g}s",
            }
            error = _error(
                options.get(
                    "message",
                    f"Rate limit reached for requests. Please try again in {retry_after:g}s.",
                ),
                "requests",
                code="rate_limit_exceeded",
            )
        elif kind == "429_quota":
            error = _error(
                options.get(
                    "message",
                    "You exceeded your current quota, please check your plan and billing details.",
                ),
                "insufficient_quota",
                code="insufficient_quota",
            )
        elif kind == "400":
            error = _error(
                options.get(
                    "message",
                    "This model's maximum context length is 128000 tokens. "
                    "Please reduce the length of the messages.",
                ),
                "invalid_request_error",
                code=options.get("code", "context_length_exceeded"),
                param=options.get("param", "messages"),
            )
        elif kind == "503":
            error = _error(
                options.get(
                    "message", "The engine is currently overloaded, please try again later."
                ),
                "server_error",
            )
        else:
            error = _error(
                options.get(
                    "message",
                    "The server had an error while processing your request. Sorry about that!",
                ),
                "server_error",
            )
        return self._json_response(error, status=_STATUS_FAULTS[kind], headers=headers)

    # -- chat completions ----------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        fault = self._take_fault("chat")
        stream = isinstance(body, dict) and bool(body.get("stream"))
        if (early := await self._before_answer(request, fault, stream=stream)) is not None:
            return early
        if not isinstance(body, dict):
            return self._json_response(
                _error(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
                status=400,
            )
        for name in ("model", "messages"):
            if name not in body:
                return self._json_response(
                    _error(
                        f"Missing required parameter: '{name}'.",
                        "invalid_request_error",
                        code="missing_required_parameter",
                        param=name,
                    ),
                    status=400,
                )
        answer = self._answer(body)
        if stream:
            return await self._stream_chat(request, body, answer, fault)
        return await self._complete_chat(request, body, answer, fault)

    def _answer(self, body: dict[str, Any]) -> _Answer:
        response_format = body.get("response_format") or {}
        json_mode = response_format.get("type") in ("json_schema", "json_object")
        with self._lock:
            if body.get("tools") and self._tool_calls:
                return _Answer(None, self._tool_calls.popleft())
            if json_mode and self._json:
                return _Answer(json.dumps(self._json.popleft(), ensure_ascii=False))
            if self._replies and not json_mode:
                return _Answer(self._replies.popleft())
        responder = self.responder
        if responder is not None:
            return _Answer(responder(body))
        if json_mode:
            schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
            return _Answer(json.dumps(minimal_json(schema), ensure_ascii=False))
        return _Answer(f"Echo: {_last_user_text(body.get('messages'))}")

    @staticmethod
    def _limit(body: dict[str, Any], pieces: list[str]) -> tuple[list[str], str]:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            return pieces[:limit], "length"
        return pieces, "stop"

    @staticmethod
    def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
        prompt_tokens = prompt_token_count(body.get("messages"))
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    async def _complete_chat(
        self, request: web.Request, body: dict[str, Any], answer: _Answer, fault: _Fault | None
    ) -> web.StreamResponse:
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if answer.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, name, args in answer.tool_calls
            ]
            finish_reason = "tool_calls"
            completion_tokens = sum(len(split_pieces(args)) for _, _, args in answer.tool_calls)
        else:
            pieces, finish_reason = self._limit(body, split_pieces(answer.content or ""))
            message["content"] = "".join(pieces)
            completion_tokens = len(pieces)
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": self._usage(body, completion_tokens),
        }
        await self._first_byte_delay()
        if fault is not None and fault.kind in ("cut", "malformed"):
            encoded = json.dumps(payload, ensure_ascii=False).encode()
            response = web.StreamResponse(
                headers={"Content-Type": "application/json", "x-request-id": self._request_id()}
            )
            if fault.kind == "cut":
                response.content_length = len(encoded)
                await response.prepare(request)
                await response.write(encoded[: len(encoded) // 2])
                self._drop(request)
                return response
            await response.prepare(request)
            await response.write(encoded[: len(encoded) // 2])
            return response
        return self._json_response(payload)

    async def _stream_chat(
        self, request: web.Request, body: dict[str, Any], answer: _Answer, fault: _Fault | None
    ) -> web.StreamResponse:
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "system_fingerprint": "fp_fake",
                "service_tier": "default",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return data

        # Each entry: (chunk, whether it carries a content piece that counts for pacing/faults).
        events: list[tuple[dict[str, Any], bool]] = []
        if answer.tool_calls:
            completion_tokens = 0
            for index, (call_id, name, args) in enumerate(answer.tool_calls):
                header = {
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                delta: dict[str, Any] = {"tool_calls": [header]}
                if index == 0:
                    delta = {"role": "assistant", "content": None, "refusal": None, **delta}
                events.append((chunk(delta), False))
                pieces = split_pieces(args)
                completion_tokens += len(pieces)
                events.extend(
                    (chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}), True)
                    for p in pieces
                )
            finish_reason = "tool_calls"
        else:
            events.append((chunk({"role": "assistant", "content": "", "refusal": None}), False))
            pieces, finish_reason = self._limit(body, split_pieces(answer.content or ""))
            completion_tokens = len(pieces)
            events.extend((chunk({"content": piece}), True) for piece in pieces)
        closing = [chunk({}, finish_reason)]
        if include_usage:
            closing.append(
                {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "system_fingerprint": "fp_fake",
                    "service_tier": "default",
                    "choices": [],
                    "usage": self._usage(body, completion_tokens),
                }
            )

        await self._first_byte_delay()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": self._request_id(),
            }
        )
        await response.prepare(request)
        stream_fault = (
            fault if fault is not None and fault.kind in ("hang", "cut", "malformed") else None
        )
        fault_after = (
            int(
                stream_fault.options.get(
                    "after_chunks", _DEFAULT_AFTER_CHUNKS.get(stream_fault.kind, 0)
                )
            )
            if stream_fault is not None
            else -1
        )
        interval = 1 / self.tokens_per_second if self.tokens_per_second else 0.0
        assert self._stopping is not None
        sent = 0
        for data, is_piece in events:
            if is_piece:
                if sent == fault_after:
                    return await self._stream_fault(request, response, stream_fault)
                if interval and sent:
                    await asyncio.sleep(interval)
                if self._stopping.is_set():
                    self._drop(request)
                    return response
                sent += 1
            await response.write(_sse(data))
        if stream_fault is not None:
            return await self._stream_fault(request, response, stream_fault)
        for data in closing:
            await response.write(_sse(data))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _stream_fault(
        self, request: web.Request, response: web.StreamResponse, fault: _Fault | None
    ) -> web.StreamResponse:
        assert fault is not None
        if fault.kind == "malformed":
            await response.write(_MALFORMED_EVENT)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        if fault.kind == "hang":
            return await self._hang(request)
        self._drop(request)
        return response

    # -- moderations, models, 404 ------------------------------------------------------------

    async def _moderations(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        fault = self._take_fault("moderations")
        if (early := await self._before_answer(request, fault)) is not None:
            return early
        if fault is not None and fault.kind in ("cut", "malformed"):
            await self._first_byte_delay()
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            if fault.kind == "cut":
                response.content_length = 4096
            await response.prepare(request)
            await response.write(b'{"id": "modr-broken", "results": [')
            if fault.kind == "cut":
                self._drop(request)
            return response
        if not isinstance(body, dict) or "input" not in body:
            return self._json_response(
                _error(
                    "Missing required parameter: 'input'.",
                    "invalid_request_error",
                    code="missing_required_parameter",
                    param="input",
                ),
                status=400,
            )
        await self._first_byte_delay()
        payload = {
            "id": f"modr-{uuid.uuid4().hex}",
            "model": body.get("model") or "omni-moderation-latest",
            "results": [self._moderate(text) for text in _moderation_texts(body["input"])],
        }
        return self._json_response(payload)

    def _moderate(self, text: str) -> dict[str, Any]:
        words = list(self.flagged_words)
        flagged = any(
            re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) for word in words
        )
        return {
            "flagged": flagged,
            "categories": {
                name: flagged and name == FLAGGED_CATEGORY for name in MODERATION_CATEGORIES
            },
            "category_scores": {
                name: 0.99 if flagged and name == FLAGGED_CATEGORY else 0.0001
                for name in MODERATION_CATEGORIES
            },
            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
        }

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        await self._first_byte_delay()
        return self._json_response({"object": "list", "data": [_model(m) for m in MODELS]})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        await self._first_byte_delay()
        model = request.match_info["model"]
        if model not in MODELS:
            return self._json_response(
                _error(
                    f"The model '{model}' does not exist",
                    "invalid_request_error",
                    code="model_not_found",
                    param="model",
                ),
                status=404,
            )
        return self._json_response(_model(model))

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return self._json_response(
            _error(f"Invalid URL ({request.method} {request.path})", "invalid_request_error"),
            status=404,
        )


# -- helpers (public ones are useful to tests computing expected values) -------------------------


def split_pieces(text: str) -> list[str]:
    """The pieces `text` streams as: words with their trailing whitespace; they join to `text`."""
    return [piece for piece in _PIECE_BOUNDARY.split(text) if piece]


def content_text(content: Any) -> str:
    """The text of a message's `content`: the string, or its text parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def prompt_token_count(messages: Any) -> int:
    """The fake's prompt_tokens: per message, its whitespace-separated words plus 3."""
    if not isinstance(messages, list):
        return 0
    return sum(
        len(content_text(m.get("content")).split()) + 3 for m in messages if isinstance(m, dict)
    )


def minimal_json(schema: Any, root: Any = None, _depth: int = 0) -> Any:
    """The smallest value valid for a JSON schema's required parts (see module docstring)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or _depth > 32:
        return None
    if isinstance(ref := schema.get("$ref"), str):
        return minimal_json(_resolve_ref(root, ref), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_json(schema[key][0], root, _depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: minimal_json(properties.get(name, {}), root, _depth + 1)
            for name in schema.get("required") or []
        }
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}.get(
        kind  # type: ignore[arg-type]
    )


def _resolve_ref(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        if not isinstance(node, dict):
            return {}
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return content_text(message.get("content"))
    return ""


def _moderation_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, list):  # multimodal parts: one result for the whole input
        return [content_text(value)]
    return [""]


def _error(
    message: str, type_: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _model(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def main(argv: Iterable[str] | None = None) -> int:
    """Run a FakeOpenAI in the foreground until Ctrl-C or SIGTERM (benchmarks, manual checks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--tokens-per-second", type=float, default=None)
    args = parser.parse_args(list(argv) if argv is not None else None)
    fake = FakeOpenAI(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        tokens_per_second=args.tokens_per_second,
    )
    done = threading.Event()
    # Installed explicitly: a process started in the background by a non-interactive shell
    # inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    fake.start()
    print(f"FakeOpenAI listening: base_url={fake.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
