"""Channel adapters, one per kind: verify and parse what a provider's webhook sends, send
messages (raising `SendError`, which says whether trying again can help), and set up or tear
down the provider's side of a connection. `adapter_for(kind)` is the registry."""

from __future__ import annotations

from apps.channels.adapters.base import (
    Adapter,
    Ignored,
    Inbound,
    Parsed,
    SendError,
    SetupError,
    StatusUpdate,
    split_text,
)


def adapter_for(kind: str) -> Adapter:
    from apps.channels.adapters.meta import MetaAdapter
    from apps.channels.adapters.telegram import TelegramAdapter
    from apps.channels.adapters.twilio import TwilioAdapter

    adapters: dict[str, Adapter] = {
        "telegram": TelegramAdapter(),
        "whatsapp_twilio": TwilioAdapter(),
        "whatsapp_meta": MetaAdapter(),
    }
    return adapters[kind]


__all__ = [
    "Adapter",
    "Ignored",
    "Inbound",
    "Parsed",
    "SendError",
    "SetupError",
    "StatusUpdate",
    "adapter_for",
    "split_text",
]
