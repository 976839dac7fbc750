"""Periodic housekeeping of invitations."""

from __future__ import annotations

from celery import shared_task

from apps.accounts.services import invitations_expire
from apps.tenants.services import companies_fan_out


@shared_task(name="accounts.invitations_expire_dispatch", time_limit=60, soft_time_limit=50)
def invitations_expire_dispatch() -> int:
    """Beat entry point (public schema): send one `invitations_expire` per active company."""
    return companies_fan_out(invitations_expire_task)


@shared_task(name="accounts.invitations_expire", time_limit=60, soft_time_limit=50)
def invitations_expire_task() -> int:
    """Delete the current company's long-expired invitations (idempotent)."""
    return invitations_expire()
