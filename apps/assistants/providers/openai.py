"""OpenAI and every OpenAI-compatible endpoint (Azure OpenAI, Ollama, vLLM, LM Studio,
OpenRouter…), through the official SDK, async and streaming."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from django.conf import settings

from apps.assistants.providers.base import (
    CompletionRequest,
    ProviderError,
    StreamDelta,
    StreamDone,
    StreamEvent,
    Usage,
)

# Per loop id, key and endpoint: the client and the loop it belongs to (an id can be reused by
# a new loop once the old one is gone; a client of a dead loop must never serve a new one).
_CLIENTS: OrderedDict[
    tuple[int, str, str], tuple[weakref.ref[asyncio.AbstractEventLoop], openai.AsyncOpenAI]
] = OrderedDict()
_MAX_CLIENTS = 64


def _client(api_key: str, base_url: str) -> openai.AsyncOpenAI:
    """One client (and connection pool) per event loop, key and endpoint, reused."""
    loop = asyncio.get_running_loop()
    cache_key = (id(loop), api_key, base_url)
    cached = _CLIENTS.get(cache_key)
    client = cached[1] if cached is not None and cached[0]() is loop else None
    if client is None:
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,  # retries are the pipeline's, with its own budget
            timeout=httpx2.Timeout(
                connect=settings.LLM_CONNECT_TIMEOUT,
                read=settings.LLM_READ_TIMEOUT,
                write=settings.LLM_CONNECT_TIMEOUT,
                pool=settings.LLM_CONNECT_TIMEOUT,
            ),
        )
        _CLIENTS[cache_key] = (weakref.ref(loop), client)
        while len(_CLIENTS) > _MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
    else:
        _CLIENTS.move_to_end(cache_key)
    return client


def clients_close() -> None:
    """Close and forget every cached client: the next call builds one with the settings in
    force then (tests change timeouts and endpoints between runs)."""
    from chapi import aio

    clients = [client for _loop, client in _CLIENTS.values()]
    _CLIENTS.clear()
    for client in clients:
        # A client bound to a loop that is gone needs no closing.
        with contextlib.suppress(Exception):
            aio.run(client.close())


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or "")
    return ""


def translate_error(exc: Exception) -> ProviderError:
    """Map the SDK's exceptions to retryable or terminal provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection_error", retryable=True, detail=type(exc).__name__)
    if isinstance(exc, openai.RateLimitError):
        code = _error_code(exc)
        if code == "insufficient_quota":
            return ProviderError("insufficient_quota", retryable=False)
        return ProviderError("rate_limited", retryable=True, retry_after=_retry_after(exc))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError("invalid_api_key", retryable=False, detail=str(exc.status_code))
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderError("server_error", retryable=True, detail=str(exc.status_code))
        return ProviderError("bad_request", retryable=False, detail=_error_code(exc))
    # Raised while reading a stream (the SDK's raw response does not wrap them).
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError("timeout", retryable=True)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError("connection_error", retryable=True, detail=type(exc).__name__)
    if isinstance(exc, json.JSONDecodeError | ValueError | httpx2.HTTPError):
        # A stream cut midway or a malformed chunk.
        return ProviderError("stream_interrupted", retryable=True, detail=type(exc).__name__)
    return ProviderError("provider_error", retryable=True, detail=type(exc).__name__)


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, api_key: str, base_url: str) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.last_usage = Usage()  # of the last complete_json call

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        client = _client(self.api_key, self.base_url)
        usage = Usage()
        finish = "stop"
        try:
            # The SDK's raw streaming response (status errors are raised as usual), its
            # server-sent events read here: building the SDK's typed object for every chunk
            # cost the worker about as much as the rest of the streaming.
            async with client.chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
                model=request.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                saw_end = False
                async for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict):
                        raise ValueError("a chunk that is not an object")
                    if chunk.get("error"):
                        raise ProviderError("server_error", retryable=True, detail="error event")
                    if chunk.get("usage"):
                        usage = Usage(
                            int(chunk["usage"].get("prompt_tokens") or 0),
                            int(chunk["usage"].get("completion_tokens") or 0),
                        )
                    for choice in chunk.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            yield StreamDelta(content)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                            saw_end = True
            if not saw_end:
                raise ProviderError("stream_interrupted", retryable=True, detail="no finish")
        except Exception as exc:
            raise translate_error(exc) from exc
        yield StreamDone(usage=usage, finish_reason=finish)

    async def complete_json(
        self, request: CompletionRequest, *, schema: dict[str, Any], name: str
    ) -> dict[str, Any]:
        client = _client(self.api_key, self.base_url)
        try:
            response = await client.chat.completions.create(  # type: ignore[call-overload]
                model=request.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": True},
                },
            )
            if response.usage is not None:
                self.last_usage = Usage(
                    input_tokens=response.usage.prompt_tokens,
                    output_tokens=response.usage.completion_tokens,
                )
            content = response.choices[0].message.content or "{}"
            data = json.loads(content)
        except Exception as exc:
            raise translate_error(exc) from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_output", retryable=False, detail="not an object")
        return data

    async def moderate(self, text: str) -> bool:
        client = _client(self.api_key, self.base_url)
        try:
            result = await client.moderations.create(input=text)
        except Exception as exc:
            raise translate_error(exc) from exc
        return any(item.flagged for item in result.results)
