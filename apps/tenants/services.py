"""Creating, changing, suspending companies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.assistants.services import assistant_profile_get
from apps.audit.services import SYSTEM, Actor, audit_diff, audit_record
from apps.tenants.models import Company, Domain
from apps.tenants.validators import slug_to_schema_name, validate_slug


def company_host(slug: str) -> str:
    return f"{slug}.{settings.ROOT_DOMAIN}"


def company_slug_check(*, slug: str) -> None:
    """Raise ValidationError if `slug` is malformed, reserved or taken."""
    validate_slug(slug)
    if (
        Company.objects.filter(slug=slug).exists()
        or Company.objects.filter(schema_name=slug_to_schema_name(slug)).exists()
        or Domain.objects.filter(domain=company_host(slug)).exists()
    ):
        raise ValidationError(_("This subdomain is already taken."), code="taken")


def company_owner_email_check(*, email: str) -> None:
    if Company.objects.filter(owner_email__iexact=email.strip()).exists():
        raise ValidationError(
            _(
                "A company was already created with this email. Log in at your company's "
                "address, or use another email."
            ),
            code="taken",
        )


@dataclass(frozen=True)
class CreatedCompany:
    company: Company
    domain: Domain
    owner: User


@transaction.atomic
def company_create(
    *,
    name: str,
    slug: str,
    owner_email: str,
    owner_name: str = "",
    owner_password: str | None = None,
    language: str = "es",
    actor: Actor = SYSTEM,
) -> CreatedCompany:
    """Create a company: its row, its schema (cloned from the template schema), its primary
    host `<slug>.ROOT_DOMAIN`, its owner and its assistant profile, in one transaction (the
    schema is dropped again if anything fails, as PostgreSQL DDL is transactional).

    Raises ValidationError (with field names) for a bad or taken slug, a taken owner email
    or a weak password.
    """
    slug = slug.strip().lower()
    owner_email = owner_email.strip().lower()
    errors: dict[str, list[ValidationError]] = {}
    for field, check in (
        ("slug", lambda: company_slug_check(slug=slug)),
        ("owner_email", lambda: company_owner_email_check(email=owner_email)),
    ):
        try:
            check()
        except ValidationError as exc:
            errors[field] = exc.error_list
    if not name.strip():
        errors["name"] = [ValidationError(_("The company needs a name."), code="required")]
    if owner_password is not None:
        try:
            # Checked before the schema exists, against an unsaved user for similarity checks.
            validate_password(owner_password, User(email=owner_email, name=owner_name))
        except ValidationError as exc:
            errors["owner_password"] = exc.error_list
    if errors:
        raise ValidationError(errors)

    company = Company(
        schema_name=slug_to_schema_name(slug),
        slug=slug,
        name=name.strip(),
        owner_email=owner_email,
        language=language,
    )
    try:
        with transaction.atomic():
            company.save(verbosity=0)
            domain = Domain.objects.create(
                domain=company_host(slug), tenant=company, is_primary=True
            )
    except IntegrityError as exc:
        # Another signup took the slug (or owner email) between the checks and the insert.
        raise ValidationError(
            {"slug": [ValidationError(_("This subdomain is already taken."), code="taken")]}
        ) from exc
    with tenant_context(company):
        owner = user_create(
            email=owner_email, name=owner_name, password=owner_password, role=Role.OWNER
        )
        assistant_profile_get()
        audit_record(
            actor=actor,
            action="company.create",
            instance=company,
            changes={"slug": [None, slug], "owner_email": [None, owner_email]},
        )
    return CreatedCompany(company=company, domain=domain, owner=owner)


@transaction.atomic
def company_update(
    *,
    company: Company,
    actor: Actor,
    name: str,
    language: str,
    allowed_origins: list[str] | None = None,
) -> Company:
    """Rename the company, change its default language or the web origins allowed to call the
    API from browsers (None: unchanged), audited in its schema."""
    old: dict[str, object] = {"name": company.name, "language": company.language}
    company.name, company.language = name.strip(), language
    if allowed_origins is not None:
        old["allowed_origins"] = list(company.allowed_origins)
        company.allowed_origins = allowed_origins
    changes = audit_diff(company, old)
    if changes:
        company.full_clean(exclude=["schema_name"])
        company.save(update_fields=list(changes))
        with tenant_context(company):
            audit_record(actor=actor, action="company.update", instance=company, changes=changes)
        if "allowed_origins" in changes:
            from apps.api.cors import company_origins_forget

            company_origins_forget()
    return company


@transaction.atomic
def company_suspend(*, company: Company, actor: Actor, reason: str = "") -> Company:
    """Suspend a company: its hosts, API and widget answer with a "suspended" error."""
    if company.is_public:
        raise ValidationError(_("The platform itself cannot be suspended."))
    if company.suspended_at is None:
        company.suspended_at = timezone.now()
        company.suspended_reason = reason[:255]
        company.save(update_fields=["suspended_at", "suspended_reason"])
        with tenant_context(company):
            audit_record(
                actor=actor,
                action="company.suspend",
                instance=company,
                changes={"reason": [None, reason]},
            )
    return company


@transaction.atomic
def company_reactivate(*, company: Company, actor: Actor) -> Company:
    if company.suspended_at is not None:
        company.suspended_at = None
        company.suspended_reason = ""
        company.save(update_fields=["suspended_at", "suspended_reason"])
        with tenant_context(company):
            audit_record(actor=actor, action="company.reactivate", instance=company)
    return company


def public_company_ensure() -> Company:
    """The public tenant (the platform itself on ROOT_DOMAIN), created if missing."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        company, _ = Company.objects.get_or_create(
            schema_name=settings.PUBLIC_SCHEMA_NAME,
            defaults={"slug": "public", "name": "CHAPI"},
        )
        Domain.objects.update_or_create(
            domain=settings.ROOT_DOMAIN, defaults={"tenant": company, "is_primary": True}
        )
    return company


def companies_fan_out(task: Any, *, jitter_seconds: float = 0.0) -> int:
    """Send `task` once per active company (not suspended), each from inside its schema so
    the worker runs it there (tenant-schemas-celery), after a random delay of up to
    `jitter_seconds` so that companies do not all hit the database at once. Returns how many
    were sent. For beat's dispatchers, which run in the public schema."""
    import random

    sent = 0
    companies = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(
        suspended_at=None
    )
    for company in companies.iterator():
        with tenant_context(company):
            task.apply_async(countdown=random.uniform(0, jitter_seconds))  # noqa: S311
        sent += 1
    return sent
