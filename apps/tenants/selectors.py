"""Reading companies."""

from __future__ import annotations

from django.conf import settings

from apps.tenants.models import Company


def company_by_slug(*, slug: str) -> Company | None:
    return (
        Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(slug=slug).first()
    )


def company_is_serving(company: Company) -> bool:
    """Whether a company's hosts, API and widget may serve it (not suspended). Every entry
    point that routes to a company by key (API keys, widget keys, webhooks) checks this."""
    return company.suspended_at is None
