"""Leads of one company (its schema): what the sales team works, with the events that explain
every change, the company's scoring and routing settings, in-dashboard notifications and the
outbound CRM webhook's delivery log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from chapi.fields import EncryptedTextField

# The fields the assistant qualifies a lead on, in the order it asks for them.
QUALIFICATION_FIELDS = ("need", "budget", "timeline", "authority", "contact")


class Stage(models.TextChoices):
    NEW = "new", _("New")
    QUALIFIED = "qualified", _("Qualified")
    CONTACTED = "contacted", _("Contacted")
    MEETING_BOOKED = "meeting_booked", _("Meeting booked")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Source(models.TextChoices):
    """Where a field's value came from, strongest last: a value is only replaced by one from
    an equal or stronger source, so a model's guess never overwrites what the visitor said."""

    MODEL = "model", _("Assistant's reading")  # a guess from the model's structured output
    EXTRACTOR = "extractor", _("Read from the visitor's words")  # exact: email, phone, amounts
    VISITOR = "visitor", _("Confirmed by the visitor")  # a form (pre-chat), an answer confirmed
    AGENT = "agent", _("Set by a team member")


SOURCE_RANK = {Source.MODEL: 1, Source.EXTRACTOR: 2, Source.VISITOR: 3, Source.AGENT: 4}


class Lead(models.Model):
    """One prospect of the company. A lead can gather several contacts (the same person on the
    widget and on WhatsApp, joined by email or phone)."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True, db_index=True)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    role = models.CharField(_("role"), max_length=120, blank=True)
    need = models.TextField(_("need / interest"), blank=True)
    budget_amount = models.DecimalField(
        _("budget"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    budget_currency = models.CharField(_("currency"), max_length=3, blank=True)
    timeline = models.CharField(_("timeline"), max_length=200, blank=True)
    timeline_date = models.DateField(_("timeline date"), null=True, blank=True)
    preferred_channel = models.CharField(_("preferred contact channel"), max_length=40, blank=True)
    preferred_time = models.CharField(_("preferred contact time"), max_length=120, blank=True)
    source_channel = models.CharField(_("source channel"), max_length=16, blank=True)
    first_page = models.CharField(_("first page"), max_length=1000, blank=True)
    context = models.JSONField(_("UTM and context"), default=dict, blank=True)

    stage = models.CharField(
        _("stage"), max_length=16, choices=Stage.choices, default=Stage.NEW, db_index=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
    )
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    score = models.PositiveSmallIntegerField(_("score"), default=0, db_index=True)
    # {"need": {"points": 25, "max": 25, "why": "..."}, ...} — see apps.leads.scoring.
    score_breakdown = models.JSONField(_("score breakdown"), default=dict, blank=True)
    # {"email": "extractor", ...}: the source of each field's current value.
    field_sources = models.JSONField(default=dict, blank=True)
    # Qualification questions the assistant has asked (never asked twice).
    asked = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    qualified_at = models.DateTimeField(_("qualified at"), null=True, blank=True)

    # The booked next step (demo, visit, call).
    booking_kind = models.CharField(_("next step"), max_length=20, blank=True)
    booking_at = models.DateTimeField(_("booked for"), null=True, blank=True)
    booking_link = models.URLField(_("booking link sent"), blank=True)
    # Slots offered in the last booking proposal (ISO datetimes), to read the visitor's choice.
    booking_offer = models.JSONField(default=list, blank=True)

    visitor_messages = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    last_activity_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-updated_at", "-id"]
        indexes = [
            GinIndex(fields=["tags"], name="lead_tags"),
            models.Index(fields=["owner", "-updated_at"], name="lead_owner_updated"),
            models.Index(fields=["stage", "-score"], name="lead_stage_score"),
            models.Index(fields=["source_channel", "-updated_at"], name="lead_channel_updated"),
            models.Index(fields=["name", "id"], name="lead_name"),
            # Where PostgreSQL has pg_trgm, migration 0002 also adds trigram indexes for the
            # inbox's search (name, email, phone, company).
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or _("Lead #%(id)s") % {"id": self.pk}

    @property
    def budget_display(self) -> str:
        if self.budget_amount is None:
            return ""
        amount = f"{self.budget_amount:,.2f}".removesuffix(".00")
        return f"{amount} {self.budget_currency}".strip()


class LeadEvent(models.Model):
    """Something that happened to a lead: a field changed (with its source), the score or the
    stage changed, a note, an assignment, a notification, a booking. Append-only."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        FIELD = "field", _("Field changed")
        SCORE = "score", _("Score changed")
        STAGE = "stage", _("Stage changed")
        QUALIFIED = "qualified", _("Qualified")
        OWNER = "owner", _("Owner changed")
        NOTE = "note", _("Note")
        TAGS = "tags", _("Tags changed")
        BOOKED = "booked", _("Next step booked")
        NOTIFIED = "notified", _("Team notified")
        HANDOFF = "handoff", _("Handoff")
        MERGED = "merged", _("Merged")
        FLOW = "flow", _("Flow")
        FOLLOWUP = "followup", _("Follow-up")
        OPTED_OUT = "opted_out", _("Opted out of follow-ups")

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    field = models.CharField(max_length=40, blank=True)
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    source = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lead event")
        verbose_name_plural = _("lead events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"], name="leadevent_lead_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.field}".strip()


class LeadSettings(models.Model):
    """The company's scoring weights and thresholds, who is told about qualified leads, its
    CRM webhook, booking and handoff rules (one row per company)."""

    weight_need = models.PositiveSmallIntegerField(_("need weight"), default=25)
    weight_budget = models.PositiveSmallIntegerField(_("budget weight"), default=25)
    weight_authority = models.PositiveSmallIntegerField(_("authority weight"), default=15)
    weight_timeline = models.PositiveSmallIntegerField(_("timeline weight"), default=20)
    weight_engagement = models.PositiveSmallIntegerField(_("engagement weight"), default=15)
    qualify_threshold = models.PositiveSmallIntegerField(
        _("qualification threshold"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("A lead whose score reaches this value becomes qualified."),
    )
    # A timeline this close (days) earns the full timeline points; up to twice as far, half.
    timeline_full_days = models.PositiveSmallIntegerField(_("urgent timeline (days)"), default=90)

    model_reading = models.BooleanField(
        _("let the model read lead details"),
        default=True,
        help_text=_(
            "With a model configured, one short extra request after a visitor's "
            "message reads what exact rules cannot (the need, a role, a loose "
            "timeline). It counts toward the token budget."
        ),
    )
    notify_emails = ArrayField(
        models.EmailField(),
        default=list,
        blank=True,
        verbose_name=_("notify by email"),
        help_text=_("Empty: the owners and admins, and the lead's owner."),
    )
    crm_webhook_url = models.URLField(_("CRM webhook URL"), blank=True)
    crm_webhook_secret = EncryptedTextField(_("CRM webhook signing secret"))

    booking_link = models.URLField(
        _("booking link"),
        blank=True,
        help_text=_("e.g. your Calendly page; offered instead of slots."),
    )
    # Weekly slots in the company's time zone: [{"weekday": 0-6, "time": "10:00"}, ...].
    booking_slots = models.JSONField(_("weekly time slots"), default=list, blank=True)
    booking_minutes = models.PositiveSmallIntegerField(_("meeting length (minutes)"), default=30)
    booking_notice_hours = models.PositiveSmallIntegerField(_("minimum notice (hours)"), default=2)

    handoff_wait_minutes = models.PositiveSmallIntegerField(
        _("handoff wait (minutes)"),
        default=5,
        help_text=_(
            "If nobody takes a conversation in this time, the assistant says so and "
            "collects how to call back."
        ),
    )
    handoff_on_price_when_qualified = models.BooleanField(
        _("hand off qualified leads who ask for a price"), default=True
    )
    handoff_when_unanswered = models.BooleanField(
        _("hand off when the assistant cannot answer twice"), default=True
    )

    class Meta:
        verbose_name = _("lead settings")
        verbose_name_plural = _("lead settings")

    def __str__(self) -> str:
        return str(_("Lead settings"))

    @property
    def weights(self) -> dict[str, int]:
        return {
            "need": self.weight_need,
            "budget": self.weight_budget,
            "authority": self.weight_authority,
            "timeline": self.weight_timeline,
            "engagement": self.weight_engagement,
        }


class Notification(models.Model):
    """An in-dashboard notification for one team member."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32)
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notif_user")]

    def __str__(self) -> str:
        return self.text


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to the company's CRM webhook, with every attempt's
    outcome. A manual re-send is a new delivery of the same payload."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.CharField(max_length=40)
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.URLField()
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # [{"at": iso, "code": int|None, "error": str, "ms": int}, ...]
    log = models.JSONField(default=list, blank=True)
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"
