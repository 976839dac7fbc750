"""Channel webhook routes: a public-schema table from a channel's public webhook id to its
company (the channel itself, with its credentials, is in the company's schema)."""

from __future__ import annotations

from django.db import models


class WebhookRoute(models.Model):
    webhook_id = models.CharField(max_length=40, unique=True)
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="webhook_routes"
    )
    kind = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "webhook route"

    def __str__(self) -> str:
        return f"{self.kind} {self.webhook_id}"
