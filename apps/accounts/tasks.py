"""Periodic housekeeping of invitations."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.accounts.services import invitations_expire
from apps.tenants.models import Company


@shared_task(name="accounts.invitations_expire_dispatch", time_limit=60, soft_time_limit=50)
def invitations_expire_dispatch() -> int:
    """Beat entry point (public schema): send one `invitations_expire` per active company."""
    sent = 0
    companies = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(
        suspended_at=None
    )
    for company in companies.iterator():
        with tenant_context(company):
            invitations_expire_task.apply_async()
        sent += 1
    return sent


@shared_task(name="accounts.invitations_expire", time_limit=60, soft_time_limit=50)
def invitations_expire_task() -> int:
    """Delete the current company's long-expired invitations (idempotent)."""
    return invitations_expire()
