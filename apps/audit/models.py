"""The company's audit log: who changed what, when, from where."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    """One change. Written by services, never by signals; never edited afterwards.

    The actor is stored by value (id, email, kind) rather than as a foreign key so entries
    survive the user's removal and can name platform staff, whose accounts live in the public
    schema.
    """

    class ActorKind(models.TextChoices):
        USER = "user", _("Team member")
        STAFF = "staff", _("Platform staff")
        SYSTEM = "system", _("System")

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_email = models.CharField(_("who"), max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    action = models.CharField(_("action"), max_length=64)
    model = models.CharField(_("model"), max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or self.actor_kind} {self.action}"
        )
