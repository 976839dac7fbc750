"""The analytics rollup, every minute: the beat dispatcher fans out one run per company."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.analytics.rollup import rollup_run
from apps.tenants.services import companies_fan_out


@shared_task(name="analytics.dispatch", time_limit=60, soft_time_limit=50, ignore_result=True)
def analytics_dispatch() -> int:
    """Beat entry point (public schema): one `analytics.rollup` per active company, spread
    over ANALYTICS_ROLLUP_JITTER_SECONDS."""
    return companies_fan_out(rollup_task, jitter_seconds=settings.ANALYTICS_ROLLUP_JITTER_SECONDS)


@shared_task(name="analytics.rollup", acks_late=True, time_limit=300, soft_time_limit=280,
             ignore_result=True)  # fmt: skip
def rollup_task() -> int:
    """Count the current company's new events into its rollups (exactly once: see
    apps.analytics.rollup)."""
    return rollup_run()
