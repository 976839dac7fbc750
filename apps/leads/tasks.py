"""Lead work outside the request: reading messages, the model's structured reading, telling
the team about qualified leads."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from apps.conversations.models import Message

logger = logging.getLogger(__name__)


@shared_task(
    name="leads.message_process",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def message_process_task(message_id: int) -> None:
    """Read a visitor message no reply task handles (e.g. a person has the conversation) into
    its lead. Idempotent."""
    from apps.leads.services import lead_message_process

    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is not None:
        lead_message_process(message=message)


@shared_task(
    name="leads.model_extract",
    acks_late=True,
    time_limit=90,
    soft_time_limit=75,
    ignore_result=True,
)
def model_extract_task(message_id: int, conversation_id: int | None = None) -> None:
    """The model's structured reading of the conversation up to visitor message
    `message_id`, applied with source "model" (never over what the visitor stated); skipped
    when a later message's reading is scheduled."""
    from apps.leads.extract_model import lead_model_extract

    lead_model_extract(message_id=message_id, conversation_id=conversation_id)


@shared_task(
    name="leads.qualified_notify",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def lead_qualified_notify_task(lead_id: int) -> None:
    """Tell the team a lead is qualified: in-dashboard notifications, email, CRM webhook."""
    from apps.leads.notify import lead_qualified_notify

    lead_qualified_notify(lead_id=lead_id)


@shared_task(
    name="leads.handoff_wait",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def handoff_wait_task(conversation_id: int, requested_at: str) -> None:
    """The company's wait time after a handoff request has passed: if nobody took the
    conversation, the assistant says so and asks how to call back. Idempotent."""
    from apps.leads.handoff import handoff_wait_expire

    handoff_wait_expire(conversation_id=conversation_id, requested_at=requested_at)


@shared_task(
    name="leads.webhook_deliver",
    bind=True,
    acks_late=True,
    max_retries=None,  # the service stops at CRM_WEBHOOK_MAX_ATTEMPTS
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def webhook_deliver_task(self: Task, delivery_id: int, attempt: int = 1) -> None:
    """Attempt `attempt` of a CRM webhook delivery; when it asks for another, retry after
    the delay it gives (backoff or the receiver's Retry-After). Idempotent: an attempt
    already recorded is not made again."""
    from apps.leads.crm import webhook_deliver

    delay = webhook_deliver(delivery_id=delivery_id, attempt=attempt)
    if delay is not None:
        raise self.retry(args=(delivery_id,), kwargs={"attempt": attempt + 1}, countdown=delay)


@shared_task(
    name="leads.booking_invite",
    acks_late=True,
    max_retries=3,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def booking_invite_task(lead_id: int) -> None:
    """Send a booked meeting's calendar invitations once the lead's email is known
    (idempotent: sent once per meeting)."""
    from apps.leads.booking import booking_invite_pending
    from apps.leads.models import Lead

    booking_invite_pending(Lead(pk=lead_id))
