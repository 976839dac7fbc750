"""API keys: a public-schema routing table from a key to its company."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    CHAT = "chat", _("Chat: send messages")
    READ = "read", _("Read: conversations and leads")
    WRITE = "write", _("Write: update leads")


class ApiKey(models.Model):
    """A company's API key. Only a SHA-256 of the secret part is stored; the key is shown once.

    Keys look like `chapi_<prefix>_<secret>`: the prefix (public, unique) finds the row, the
    secret is checked against the hash in constant time.
    """

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=254, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (chapi_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
