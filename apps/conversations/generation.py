"""Generating one reply (async, network only: the model and the channel layer; no database).

Retryable provider errors (timeouts, 429 rate limits, 5xx, streams cut midway, malformed
chunks) are retried with exponential backoff and jitter, honouring Retry-After, within a
bounded number of attempts and seconds. A terminal error (bad key, insufficient quota, bad
request), exhausted retries, an exhausted token budget or no key at all answer with the
offline responder, and the reason is recorded on the message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from django.conf import settings

from apps.assistants.prompting import AssistantConfig
from apps.assistants.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderError,
    StreamDelta,
    StreamDone,
    Usage,
)
from apps.assistants.providers.offline import OfflineContext, OfflineProvider
from apps.assistants.providers.openai import OpenAIProvider
from apps.conversations.realtime import Publisher

logger = logging.getLogger(__name__)

REFUSALS = {
    "es": "Lo siento, no puedo ayudarte con eso. ¿Hay algo sobre nuestros productos o "
    "servicios en lo que pueda ayudarte?",
    "en": "Sorry, I can't help with that. Is there anything about our products or services I "
    "can help you with?",
}


@dataclass
class GenerationResult:
    text: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    fallback: bool = False
    error: str = ""
    refused: bool = False
    ttft_ms: int | None = None
    latency_ms: int = 0
    attempts: int = 0
    offline_intent: str = ""
    offline_asked: str | None = None  # the qualification field the offline responder asked


def _backoff(attempt: int) -> float:
    base = settings.LLM_BACKOFF_BASE_SECONDS * (2**attempt)
    return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


async def _stream_into(
    provider: OpenAIProvider | OfflineProvider,
    request: CompletionRequest,
    publisher: Publisher,
    started: float,
    result: GenerationResult,
) -> str:
    parts: list[str] = []
    async for event in provider.stream(request):
        if isinstance(event, StreamDelta):
            if result.ttft_ms is None:
                result.ttft_ms = int((time.monotonic() - started) * 1000)
            parts.append(event.text)
            await publisher.delta(event.text)
        elif isinstance(event, StreamDone):
            result.usage = event.usage
    await publisher.flush()
    return "".join(parts)


async def _offline(
    config: AssistantConfig,
    offline_context: OfflineContext,
    publisher: Publisher,
    started: float,
    result: GenerationResult,
) -> GenerationResult:
    provider = OfflineProvider()
    request = CompletionRequest(
        messages=(), model="offline", max_tokens=0, temperature=0, offline_context=offline_context
    )
    await publisher.reset()
    result.ttft_ms = None
    result.text = await _stream_into(provider, request, publisher, started, result)
    result.provider, result.model = "offline", "offline"
    result.offline_intent = provider.last_reply.intent if provider.last_reply else ""
    result.offline_asked = provider.last_reply.asked_field if provider.last_reply else None
    return result


async def reply_generate_async(
    *,
    config: AssistantConfig,
    messages: tuple[ChatMessage, ...],
    offline_context: OfflineContext,
    publisher: Publisher,
    force_offline_reason: str = "",
) -> GenerationResult:
    """Produce the reply text, streaming it through `publisher`. Never raises for provider
    trouble: the offline responder answers instead and `error` says why."""
    started = time.monotonic()
    result = GenerationResult(text="", provider=config.provider, model=config.model)
    try:
        if force_offline_reason or config.provider != "openai":
            # Offline by choice or for want of a key is normal operation; only a forced
            # switch (the budget) is a fallback.
            result.fallback = bool(force_offline_reason)
            result.error = force_offline_reason
            return await _offline(config, offline_context, publisher, started, result)

        provider = OpenAIProvider(api_key=config.api_key, base_url=config.base_url)
        if config.moderation_enabled:
            try:
                flagged = await provider.moderate(offline_context.message)
            except ProviderError as exc:
                logger.warning("moderation unavailable: %s", exc.reason)
                flagged = False
            if flagged:
                result.refused = True
                result.error = "moderation_flagged"
                result.text = REFUSALS.get(config.language, REFUSALS["es"])
                await publisher.delta(result.text)
                await publisher.flush()
                return result

        request = CompletionRequest(
            messages=messages,
            model=config.model,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )
        deadline = started + settings.LLM_RETRY_BUDGET_SECONDS
        last_error: ProviderError | None = None
        for attempt in range(settings.LLM_MAX_ATTEMPTS):
            result.attempts = attempt + 1
            try:
                result.text = await _stream_into(provider, request, publisher, started, result)
                if not result.text.strip():
                    raise ProviderError("empty_answer", retryable=True)
                return result
            except ProviderError as exc:
                last_error = exc
                await publisher.reset()
                result.ttft_ms = None
                if not exc.retryable or attempt == settings.LLM_MAX_ATTEMPTS - 1:
                    break
                delay = exc.retry_after if exc.retry_after is not None else _backoff(attempt)
                if delay > settings.LLM_RETRY_AFTER_CAP_SECONDS:
                    break
                if time.monotonic() + delay > deadline:
                    break
                await asyncio.sleep(delay)
        assert last_error is not None
        result.fallback = True
        result.error = last_error.reason
        logger.warning(
            "model provider failed (%s) after %d attempt(s): offline answer",
            last_error.reason,
            result.attempts,
        )
        return await _offline(config, offline_context, publisher, started, result)
    finally:
        result.latency_ms = int((time.monotonic() - started) * 1000)
