"""The model-provider interface: stream a reply, complete with structured output, moderate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    temperature: float
    # For the offline responder, which answers from the profile rather than from a prompt.
    offline_context: Any = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class StreamDelta:
    text: str


@dataclass(frozen=True)
class StreamDone:
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"


StreamEvent = StreamDelta | StreamDone


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether trying again may help; `reason` is a
    stable code recorded on the message (e.g. "timeout", "rate_limited", "invalid_api_key")."""

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: float | None = None, detail: str = ""
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.detail = detail


class Provider(Protocol):
    name: str

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, then one StreamDone with the usage. Raise ProviderError."""
        ...

    async def complete_json(
        self, request: CompletionRequest, *, schema: dict[str, Any], name: str
    ) -> dict[str, Any]:
        """A structured answer that validates against the JSON `schema`."""
        ...

    async def moderate(self, text: str) -> bool:
        """Whether `text` is flagged. Raise ProviderError when the check itself fails."""
        ...
