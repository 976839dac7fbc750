"""The offline responder as a provider: no network, answers from the company's own FAQ, facts
and industry template (apps.assistants.offline)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from apps.assistants.offline import OfflineProfile, OfflineReply, Turn, offline_reply
from apps.assistants.providers.base import (
    CompletionRequest,
    ProviderError,
    StreamDelta,
    StreamDone,
    StreamEvent,
    Usage,
)
from apps.assistants.tokens import count_tokens


@dataclass(frozen=True)
class OfflineContext:
    profile: OfflineProfile
    history: Sequence[Turn]
    message: str


class OfflineProvider:
    name = "offline"

    def __init__(self) -> None:
        self.last_reply: OfflineReply | None = None

    def reply(self, context: OfflineContext) -> OfflineReply:
        return offline_reply(context.profile, context.history, context.message)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        context = request.offline_context
        if not isinstance(context, OfflineContext):
            raise ProviderError("bad_request", retryable=False, detail="no offline context")
        reply = self.reply(context)
        self.last_reply = reply
        # Word-sized pieces, so every channel renders it like any streamed answer.
        for piece in re.findall(r"\S+\s*", reply.text):
            yield StreamDelta(piece)
        yield StreamDone(
            usage=Usage(input_tokens=0, output_tokens=count_tokens(reply.text)),
            finish_reason="stop",
        )

    async def complete_json(
        self, request: CompletionRequest, *, schema: dict[str, Any], name: str
    ) -> dict[str, Any]:
        raise ProviderError("unsupported", retryable=False, detail="no structured output offline")

    async def moderate(self, text: str) -> bool:
        return False
