"""Model providers behind one small interface, chosen per company (see docs/architecture.md)."""

from __future__ import annotations

from apps.assistants.providers.base import (
    ChatMessage,
    CompletionRequest,
    Provider,
    ProviderError,
    StreamDelta,
    StreamDone,
    StreamEvent,
    Usage,
)

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "Provider",
    "ProviderError",
    "StreamDelta",
    "StreamDone",
    "StreamEvent",
    "Usage",
]
