"""What every channel adapter provides, and the helpers they share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.http import HttpRequest

if TYPE_CHECKING:
    from apps.channels.models import ChannelConnection


class SendError(Exception):
    """A message could not be sent. `permanent`: trying again cannot help (blocked by the
    user, invalid number, outside WhatsApp's 24-hour window, bad credentials);
    `unreachable`: the contact cannot be reached on this channel any more;
    `retry_after`: what the provider asked us to wait, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.permanent = permanent or unreachable
        self.unreachable = unreachable
        self.retry_after = retry_after
        self.code = code


class SetupError(Exception):
    """Connecting a channel failed (bad credentials, provider refused the webhook…): the
    message is shown to the company's admin."""


@dataclass
class Inbound:
    """One message a person sent, as the product stores it."""

    provider_id: str  # unique per connection: the deduplication key
    kind: str  # message.text, message.photo, … (recorded on the inbound event)
    chat_id: str  # where answers go
    sender_id: str  # who wrote (the contact)
    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""
    phone: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # e.g. "start": answered with the welcome message, not the model


@dataclass
class StatusUpdate:
    """A delivery status of a message the product sent."""

    provider_id: str  # unique per connection (deduplication)
    provider_message_id: str
    status: str  # sent, delivered, read, failed
    error: str = ""


@dataclass
class Ignored:
    """Something the product accepts and records but does not act on."""

    provider_id: str
    kind: str
    reason: str
    chat_id: str = ""
    reply: str = ""  # a notice to send back (e.g. "I only chat in private")


Parsed = Inbound | StatusUpdate | Ignored


class Adapter(Protocol):
    kind: str
    limit: int  # characters per message

    def verify(self, request: HttpRequest, connection: ChannelConnection) -> bool: ...

    def parse(self, request: HttpRequest, connection: ChannelConnection) -> list[Parsed]: ...

    def send(self, connection: ChannelConnection, chat_id: str, text: str) -> str: ...

    def typing(self, connection: ChannelConnection, chat_id: str) -> None: ...

    def setup(self, connection: ChannelConnection, webhook_url: str) -> None: ...

    def teardown(self, connection: ChannelConnection) -> None: ...


_BREAKS = (
    re.compile(r"\n\s*\n"),  # paragraphs
    re.compile(r"(?<=[.!?…])\s+"),  # sentences
    re.compile(r"\n"),  # lines
    re.compile(r"\s+"),  # words
)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts a message (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, size: Callable[[str], int] = len) -> list[str]:
    """`text` in parts of at most `limit` (as `size` measures: characters by default), cut at the
    last paragraph, sentence, line or word boundary that fits (a hard cut only for a word
    longer than the limit)."""
    text = text.strip()
    parts: list[str] = []
    while size(text) > limit:
        fit = _fitting(text, limit, size)  # characters
        window = text[: fit + 1]
        cut = 0
        for pattern in _BREAKS:
            ends = [m.start() for m in pattern.finditer(window) if 0 < m.start() <= fit]
            if ends and ends[-1] >= fit // 3:
                cut = ends[-1]
                break
        if not cut:
            cut = fit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def _fitting(text: str, limit: int, size: Callable[[str], int]) -> int:
    """How many characters of `text` (longer than `limit`) fit in `limit`."""
    if size is len:
        return limit
    low, high = 1, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low
