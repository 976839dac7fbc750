"""Companies (tenants) and their hosts, in the public schema."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin


class Company(TenantMixin):
    """A customer company. Its data lives in its own PostgreSQL schema."""

    slug = models.SlugField(_("subdomain"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    owner_email = models.EmailField(_("owner email"), blank=True)
    language = models.CharField(
        _("default language"), max_length=8, choices=settings.LANGUAGES, default="es"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=255, blank=True)
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        blank=True,
        help_text=_("Web origins allowed to call the API from a browser (CORS)."),
    )

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        constraints = [
            models.UniqueConstraint(
                Lower("owner_email"),
                condition=~models.Q(owner_email=""),
                name="company_owner_email_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Domain(DomainMixin):
    """A host that routes to a company: `<slug>.ROOT_DOMAIN` or a custom domain."""

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")

    def __str__(self) -> str:
        return self.domain


class CompanySettings(Company):
    """The current company's own settings, as its admins see them in the company admin."""

    class Meta:
        proxy = True
        verbose_name = _("company settings")
        verbose_name_plural = _("company settings")


class CompanyDailyUsage(models.Model):
    """Usage of one company per day (UTC), in the public schema for the platform's staff:
    kept up to date by each company's analytics rollup (apps.analytics.rollup)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    conversations = models.PositiveIntegerField(default=0)
    visitor_messages = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        verbose_name = _("daily usage")
        verbose_name_plural = _("daily usage")
        constraints = [
            models.UniqueConstraint(fields=["company", "day"], name="companydailyusage_key")
        ]
        indexes = [models.Index(fields=["day"], name="companydailyusage_day")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day}"
