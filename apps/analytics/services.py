"""Recording analytics events."""

from __future__ import annotations

from typing import Any

from apps.analytics.models import Event


def event_emit(
    *,
    kind: str,
    conversation_id: int | None = None,
    message_id: int | None = None,
    channel: str = "",
    **data: Any,
) -> Event:
    """Append one event in the current schema (call it inside the transaction of the change
    it describes, so an event exists exactly when the change does)."""
    return Event.objects.create(
        kind=kind,
        conversation_id=conversation_id,
        message_id=message_id,
        channel=channel,
        data=data,
    )
