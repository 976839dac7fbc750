"""Live updates for the sales inbox: one channel-layer group per company that open dashboards
join. Events: `inbox.event` {kind: "lead.changed" | "message.created" | "queue.changed" |
"conversation.changed", lead_id?, conversation_id?}. Dashboards re-fetch what they show."""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection, transaction

from chapi import aio

logger = logging.getLogger(__name__)


def inbox_group(schema_name: str) -> str:
    return f"inbox.{schema_name}"


def inbox_publish(kind: str, **data: Any) -> None:
    """Send an inbox event to the current company's dashboards after commit (best effort: a
    channel-layer outage costs a live update, never data)."""
    group = inbox_group(connection.schema_name)  # type: ignore[attr-defined]

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            aio.run(layer.group_send(group, {"type": "inbox.event", "kind": kind, **data}))
        except Exception:
            logger.warning("could not publish %s to %s", kind, group)

    transaction.on_commit(send)
