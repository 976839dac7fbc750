"""Real-time events of a conversation, over the channel layer.

Every event goes to the conversation's group (`conversation_group`), which websocket
consumers join, and optionally to one reply channel (a waiting REST request). Events:
`reply.delta` {message_id, offset, text} (`offset`: the length of the text sent before this
part, in UTF-16 code units as JavaScript counts), `reply.reset` {message_id} (a retry starts
over: drop the partial text), `reply.completed` {message_id, conversation_id, created_at, text,
status, fallback, usage}.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


def conversation_group(schema_name: str, conversation_id: int) -> str:
    return f"conv.{schema_name}.{conversation_id}"


class Publisher:
    """Sends a reply's events; text deltas are batched (at most one send per `interval`)."""

    def __init__(
        self,
        *,
        group: str,
        reply_channel: str | None,
        message_id: int,
        interval: float | None = None,
        reply_deltas: bool = True,
    ) -> None:
        self.layer = get_channel_layer()
        self.group = group
        self.reply_channel = reply_channel
        # A waiting request that does not stream only needs the final event.
        self.reply_deltas = reply_deltas
        self.message_id = message_id
        # At most one delta event per interval (the first at once): each is a group send.
        self.interval = settings.REPLY_DELTA_INTERVAL_SECONDS if interval is None else interval
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._offset = 0
        self.sent_any = False

    async def _send(self, event: dict[str, Any], *, final: bool = False) -> None:
        """Best effort: the reply is stored whatever happens here, so a channel-layer (Redis)
        failure costs live delivery, never the answer."""
        if self.layer is None:
            return
        try:
            if self.group:
                await self.layer.group_send(self.group, event)
            if self.reply_channel and (final or self.reply_deltas):
                await self.layer.send(self.reply_channel, event)
        except Exception:
            logger.warning("could not publish %s for message %s", event["type"], self.message_id)

    async def delta(self, text: str) -> None:
        self._pending.append(text)
        now = time.monotonic()
        if now - self._last_flush >= self.interval:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        self._last_flush = time.monotonic()
        self.sent_any = True
        # In UTF-16 code units: what a browser's `string.length` counts.
        offset, self._offset = self._offset, self._offset + len(text.encode("utf-16-le")) // 2
        await self._send(
            {"type": "reply.delta", "message_id": self.message_id, "offset": offset, "text": text}
        )

    async def reset(self) -> None:
        self._pending = []
        self._offset = 0
        if self.sent_any:
            await self._send({"type": "reply.reset", "message_id": self.message_id})
        self.sent_any = False

    async def discarded(self, mode: str) -> None:
        """Tell the waiting request that no bot answer will come, because a person has the
        conversation; clients that showed part of it drop it (`reply.reset`)."""
        self._pending = []
        if self.sent_any and self.group and self.layer is not None:
            try:
                await self.layer.group_send(
                    self.group, {"type": "reply.reset", "message_id": self.message_id}
                )
            except Exception:
                logger.warning("could not publish reply.reset for message %s", self.message_id)
        if self.layer is None or not self.reply_channel:
            return
        try:
            await self.layer.send(
                self.reply_channel,
                {"type": "reply.discarded", "message_id": self.message_id, "mode": mode},
            )
        except Exception:
            logger.warning("could not publish reply.discarded for message %s", self.message_id)

    async def completed(self, payload: dict[str, Any]) -> None:
        await self._send(
            {"type": "reply.completed", "message_id": self.message_id, **payload}, final=True
        )
