"""Follow-ups: a beat dispatcher fans out one run per company (with jitter), which schedules
the flows' inactivity follow-ups and sends those that are due, one task each."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.followups.services import followup_send, followups_due, inactivity_scan
from apps.tenants.services import companies_fan_out


@shared_task(name="followups.dispatch", time_limit=60, soft_time_limit=50, ignore_result=True)
def followups_dispatch() -> int:
    """Beat entry point (public schema): one `followups.run` per active company, spread over
    FOLLOWUP_JITTER_SECONDS so companies do not all hit the database at once."""
    return companies_fan_out(followups_run_task, jitter_seconds=settings.FOLLOWUP_JITTER_SECONDS)


@shared_task(name="followups.run", acks_late=True, time_limit=120, soft_time_limit=100,
             ignore_result=True)  # fmt: skip
def followups_run_task() -> int:
    """The current company: schedule inactivity follow-ups, then queue the due ones."""
    inactivity_scan()
    due = followups_due()
    for followup_id in due:
        followup_send_task.delay(followup_id)
    return len(due)


@shared_task(name="followups.send", acks_late=True, time_limit=120, soft_time_limit=100,
             ignore_result=True)  # fmt: skip
def followup_send_task(followup_id: int) -> str:
    """Send one follow-up at most once (safe to run twice: the second run finds it taken)."""
    return followup_send(followup_id=followup_id)
