"""Widget keys: a public-schema routing table from a public key (`pk_…`) to its company."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class WidgetKey(models.Model):
    """A public identifier that puts a company's assistant on websites. Not a secret: its
    allowed origins say which websites may use it."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="widget_keys"
    )
    key = models.CharField(max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    allowed_origins = models.JSONField(_("allowed origins"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=254, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("widget key")
        verbose_name_plural = _("widget keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
