"""Reply generation on the `llm` queue."""

from __future__ import annotations

from celery import shared_task

from apps.conversations.services import reply_generate


@shared_task(
    name="conversations.reply_generate",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=150,
    soft_time_limit=120,
    ignore_result=True,
)
def reply_generate_task(
    message_id: int, reply_channel: str | None = None, reply_deltas: bool = True
) -> None:
    """Answer one visitor message (idempotent: a message is answered once; a redelivered task
    re-announces the stored reply). Runs in the schema it was sent from."""
    reply_generate(message_id=message_id, reply_channel=reply_channel, reply_deltas=reply_deltas)
