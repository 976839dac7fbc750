"""Housekeeping of invitations: `accounts.invitations_expire_dispatch`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Invitation, Role
from apps.accounts.tasks import invitations_expire_dispatch, invitations_expire_task
from apps.audit.services import SYSTEM
from apps.tenants.models import Company
from apps.tenants.services import company_suspend
from chapi.celery import app as celery_app


def make_invitation(
    company: Company,
    email: str,
    *,
    expires_at: datetime,
    accepted_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> Invitation:
    with tenant_context(company):
        return Invitation.objects.create(
            email=email,
            role=Role.AGENT,
            token_hash=f"{company.slug}-{email}".ljust(64, "0")[:64],
            expires_at=expires_at,
            accepted_at=accepted_at,
            revoked_at=revoked_at,
        )


def seed(company: Company) -> None:
    """One invitation of each kind the housekeeping must tell apart."""
    now = timezone.now()
    make_invitation(company, "long-expired@example.com", expires_at=now - timedelta(days=8))
    make_invitation(
        company,
        "long-expired-revoked@example.com",
        expires_at=now - timedelta(days=30),
        revoked_at=now - timedelta(days=35),
    )
    make_invitation(company, "just-expired@example.com", expires_at=now - timedelta(days=6))
    make_invitation(company, "open@example.com", expires_at=now + timedelta(days=3))
    make_invitation(
        company,
        "accepted@example.com",
        expires_at=now - timedelta(days=60),
        accepted_at=now - timedelta(days=65),
    )


def emails(company: Company) -> set[str]:
    with tenant_context(company):
        return set(Invitation.objects.values_list("email", flat=True))


KEPT = {"just-expired@example.com", "open@example.com", "accepted@example.com"}
ALL = KEPT | {"long-expired@example.com", "long-expired-revoked@example.com"}


def test_the_dispatch_is_scheduled_hourly() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["invitations-expire"]

    assert entry == {"task": "accounts.invitations_expire_dispatch", "schedule": 3600.0}
    assert "accounts.invitations_expire_dispatch" in celery_app.tasks


def test_the_tasks_time_limits_allow_them_to_be_sent() -> None:
    # Celery refuses to send a task whose soft limit (here inherited from
    # CELERY_TASK_SOFT_TIME_LIMIT) exceeds its hard limit.
    for task in (invitations_expire_dispatch, invitations_expire_task):
        soft, hard = task.soft_time_limit, task.time_limit
        assert not (soft and hard and soft > hard), f"{task.name}: soft {soft} > hard {hard}"


def test_long_expired_invitations_are_deleted_in_every_company(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    seed(alpha)
    seed(beta)
    active = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(
        suspended_at=None
    )

    sent = invitations_expire_dispatch.delay().get()

    assert sent == active.count()
    assert emails(alpha) == KEPT
    assert emails(beta) == KEPT


def test_suspended_companies_are_skipped(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    seed(alpha)
    seed(beta)
    company_suspend(company=beta, actor=SYSTEM, reason="unpaid")
    active = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(
        suspended_at=None
    )

    sent = invitations_expire_dispatch.delay().get()

    assert sent == active.count()
    assert not active.filter(pk=beta.pk).exists()
    assert emails(alpha) == KEPT
    assert emails(beta) == ALL


def test_the_company_task_is_idempotent(alpha) -> None:  # type: ignore[no-untyped-def]
    seed(alpha)

    with tenant_context(alpha):
        first = invitations_expire_task.delay().get()
        second = invitations_expire_task.delay().get()

    assert (first, second) == (2, 0)
    assert emails(alpha) == KEPT


def test_the_company_task_runs_in_the_schema_it_was_sent_from(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    seed(alpha)
    seed(beta)

    with tenant_context(beta):
        deleted = invitations_expire_task.delay().get()

    assert deleted == 2
    assert emails(beta) == KEPT
    assert emails(alpha) == ALL
