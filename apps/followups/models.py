"""Follow-ups of one company (its schema): messages the assistant sends later on a
conversation's channel, and the company's rules for them (quiet hours, limits)."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FollowUpSettings(models.Model):
    """The company's follow-up rules (one row, pk=1)."""

    enabled = models.BooleanField(_("send follow-ups"), default=True)
    quiet_start = models.TimeField(_("quiet hours start"), default=time(21, 0))
    quiet_end = models.TimeField(_("quiet hours end"), default=time(8, 0))
    # Blank: the time zone of the business hours (web widget settings).
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    email = models.BooleanField(
        _("also email web visitors"),
        default=True,
        help_text=_("A web visitor sees a follow-up at their next visit; with their email known "
                    "it is emailed too."),
    )  # fmt: skip
    whatsapp_template = models.CharField(
        _("WhatsApp template"),
        max_length=200,
        blank=True,
        help_text=_("The approved template sent instead of a follow-up outside WhatsApp's "
                    "24-hour window (its name as connected in Channels)."),
    )  # fmt: skip
    max_unanswered = models.PositiveSmallIntegerField(
        _("follow-ups in a row without an answer"),
        default=2,
        help_text=_("No more follow-ups are scheduled for a conversation after this many went "
                    "unanswered."),
    )  # fmt: skip

    class Meta:
        verbose_name = _("follow-up settings")
        verbose_name_plural = _("follow-up settings")

    def __str__(self) -> str:
        return str(_("Follow-up settings"))


class FollowUp(models.Model):
    """A message to send later on a conversation. Sent at most once: it is claimed
    (`sending`) in a committed transaction before anything goes out, so a worker that dies
    mid-send leaves it `unknown`, never sent twice."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    OPEN = (Status.SCHEDULED,)

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="followups"
    )
    key = models.CharField(max_length=200, unique=True)  # what scheduled it, once
    source = models.CharField(_("source"), max_length=16)  # "inactivity" | "flow" | "agent"
    rule_key = models.CharField(_("flow rule"), max_length=130, blank=True)
    # An inactivity follow-up: the conversation's last activity it follows (one per silence).
    silence_from = models.DateTimeField(null=True, blank=True)
    text = models.TextField(_("message"))
    template = models.CharField(_("WhatsApp template"), max_length=200, blank=True)
    due_at = models.DateTimeField(_("due"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    reason = models.CharField(_("why"), max_length=300, blank=True)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    emailed_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="followup_due"),
            models.Index(fields=["conversation", "status"], name="followup_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} {self.due_at:%Y-%m-%d %H:%M}"
