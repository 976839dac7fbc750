"""A/B tests of one company (its schema): variants of the welcome message, the system prompt or
a flow's message, with traffic weights; each conversation's variant, sticky."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Experiment(models.Model):
    class Target(models.TextChoices):
        WELCOME = "welcome", _("Welcome message")
        SYSTEM_PROMPT = "system_prompt", _("System prompt")
        FLOW_MESSAGE = "flow_message", _("A flow's message")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")
        PROMOTED = "promoted", _("Winner promoted")

    class Metric(models.TextChoices):
        LEADS = "leads", _("Leads captured")
        QUALIFIED = "qualified", _("Qualified leads")
        MEETINGS = "meetings", _("Meetings booked")

    name = models.CharField(_("name"), max_length=120)
    target = models.CharField(_("what is tested"), max_length=16, choices=Target.choices)
    # For a flow's message: the rule, as "<flow>:<index>" (apps.flows.spec.Rule.key).
    flow_rule = models.CharField(_("flow rule"), max_length=130, blank=True)
    metric = models.CharField(
        _("decides the winner"), max_length=16, choices=Metric.choices, default=Metric.QUALIFIED
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    winner = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("A/B test")
        verbose_name_plural = _("A/B tests")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.CharField(_("variant"), max_length=2)  # "A", "B", …; A is the control
    text = models.TextField(_("text"))
    weight = models.PositiveSmallIntegerField(
        _("traffic weight"), default=50, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["experiment", "key"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name} · {self.key}"

    @property
    def is_control(self) -> bool:
        return self.key == "A"


class Assignment(models.Model):
    """The variant a conversation (a channel's session, before it has a conversation) sees,
    decided once."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="assignments")
    channel = models.CharField(max_length=16)
    session_id = models.CharField(max_length=128)
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.CASCADE,
        related_name="assignments",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "channel", "session_id"], name="assignment_once"
            ),
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="assignment_variant")]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.variant_id} {self.channel}:{self.session_id}"
