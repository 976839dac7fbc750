"""Delivery through the channels' APIs, on the `default` queue, with retries."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from apps.channels.adapters import SendError
from apps.channels.services import deliver, notice_send

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="channels.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def deliver_task(self: Task, message_id: int) -> None:
    """Send a reply through its channel; retried with backoff (and the provider's
    Retry-After) until it is sent or CHANNEL_SEND_MAX_ATTEMPTS is reached. Idempotent: parts
    already sent are not sent again."""
    outcome = deliver(message_id, attempt=self.request.retries)
    if not outcome.done and outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(
    bind=True,
    name="channels.notice_send",
    acks_late=True,
    max_retries=3,
    time_limit=60,
    soft_time_limit=50,  # below time_limit (the default, CELERY_TASK_SOFT_TIME_LIMIT, is not)
    ignore_result=True,
)
def notice_send_task(self: Task, channel_id: int, chat_id: str, text: str) -> None:
    """A short notice that is not part of a conversation (e.g. "I only chat in private")."""
    try:
        notice_send(channel_id, chat_id, text)
    except SendError as exc:
        if exc.permanent:
            logger.info("notice not sent on channel %s: %s", channel_id, exc)
            return
        raise self.retry(countdown=exc.retry_after or settings.CHANNEL_BURST_SECONDS) from exc
