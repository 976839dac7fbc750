"""Conversation flows of one company (its schema): the YAML versions it wrote, and each time a
rule ran on a conversation."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FlowVersion(models.Model):
    """One saved version of the company's flows (YAML). Versions are never edited: saving or
    restoring makes a new one, and the newest is the one in use."""

    number = models.PositiveIntegerField(_("version"), unique=True)
    source = models.TextField(_("flows (YAML)"), blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("saved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    restored_from = models.PositiveIntegerField(_("restored from version"), null=True, blank=True)
    created_at = models.DateTimeField(_("saved at"), auto_now_add=True)

    class Meta:
        verbose_name = _("flows version")
        verbose_name_plural = _("flows versions")
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"v{self.number}"


class FlowRun(models.Model):
    """A rule of a flow ran on a conversation: what triggered it, the message it sent and what
    each action did. `key` makes a rule that runs once per conversation (or once per quiet
    period) run once, even when two workers see the same trigger."""

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="flow_runs"
    )
    flow = models.CharField(_("flow"), max_length=60)
    rule_index = models.PositiveSmallIntegerField(_("rule"))
    key = models.CharField(max_length=160)
    version = models.PositiveIntegerField(_("flows version"))
    trigger = models.CharField(_("trigger"), max_length=200)
    detail = models.CharField(_("what matched"), max_length=200, blank=True)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # [{"action": canonical name, "label": as written, "ok": bool, "detail": text}]
    outcomes = models.JSONField(_("actions"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("flow run")
        verbose_name_plural = _("flow runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "key"], name="flowrun_once"),
        ]

    def __str__(self) -> str:
        return f"{self.flow}#{self.rule_index + 1} on {self.conversation_id}"
