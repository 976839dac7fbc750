"""The analytics rollup, every minute: the beat dispatcher fans out one run per company."""

from __future__ import annotations

import random

from celery import shared_task
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.analytics.rollup import rollup_run
from apps.tenants.models import Company


@shared_task(name="analytics.dispatch", time_limit=60, soft_time_limit=50, ignore_result=True)
def analytics_dispatch() -> int:
    """Beat entry point (public schema): one `analytics.rollup` per active company, spread
    over ANALYTICS_ROLLUP_JITTER_SECONDS."""
    sent = 0
    companies = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(
        suspended_at=None
    )
    for company in companies.iterator():
        with tenant_context(company):
            rollup_task.apply_async(
                countdown=random.uniform(0, settings.ANALYTICS_ROLLUP_JITTER_SECONDS)  # noqa: S311
            )
        sent += 1
    return sent


@shared_task(name="analytics.rollup", acks_late=True, time_limit=300, soft_time_limit=280,
             ignore_result=True)  # fmt: skip
def rollup_task() -> int:
    """Count the current company's new events into its rollups (exactly once: see
    apps.analytics.rollup)."""
    return rollup_run()
