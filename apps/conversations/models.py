"""Contacts, conversations and messages of one company (its schema)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WEB = "web", _("Web widget")
    API = "api", _("REST API")
    TELEGRAM = "telegram", _("Telegram")
    WHATSAPP = "whatsapp", _("WhatsApp")
    TEST = "test", _("Dashboard test chat")


class Contact(models.Model):
    """Someone who talks to the assistant, identified per channel."""

    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    external_id = models.CharField(_("external id"), max_length=255)
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    unreachable = models.BooleanField(_("unreachable"), default=False)
    # The contact asked for no more follow-ups ("STOP", "BAJA"): the assistant still answers
    # when they write, but never writes first again.
    opted_out_at = models.DateTimeField(_("opted out of follow-ups"), null=True, blank=True)
    # The lead this contact is part of (several contacts of one person share a lead).
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="contact_per_channel")
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"{self.channel}:{self.external_id}"


class Conversation(models.Model):
    class Mode(models.TextChoices):
        BOT = "bot", _("Assistant")
        PENDING_HUMAN = "pending_human", _("Waiting for a person")
        HUMAN = "human", _("Person")
        CLOSED = "closed", _("Closed")

    # The assistant answers while nobody has taken the conversation (also while the visitor
    # waits for a person); never when a person has it or it is closed.
    BOT_ANSWERS = frozenset({Mode.BOT, Mode.PENDING_HUMAN})

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    session_id = models.CharField(_("session id"), max_length=128)
    mode = models.CharField(
        _("mode"), max_length=16, choices=Mode.choices, default=Mode.BOT, db_index=True
    )
    # The team member who has taken the conversation (mode `human`).
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("agent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    handoff_requested_at = models.DateTimeField(null=True, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "session_id"], name="conversation_session")
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} · {self.session_id}"


class Message(models.Model):
    class Role(models.TextChoices):
        VISITOR = "visitor", _("Visitor")
        ASSISTANT = "assistant", _("Assistant")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        GENERATING = "generating", _("Generating")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        DISCARDED = "discarded", _("Discarded")
        REFUSED = "refused", _("Refused by moderation")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    text = models.TextField(_("text"), blank=True)
    # What came with the text (channels): [{"type": "photo"|"document"|"voice"|"location"|
    # "contact", ...provider's ids, mime type, coordinates...}].
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    # NULL, not "": messages without an external id stay out of the uniqueness constraint.
    external_id = models.CharField(_("external id"), max_length=255, null=True, blank=True)  # noqa: DJ001
    # The team member who wrote an agent message.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply"
    )
    provider = models.CharField(max_length=16, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    ttft_ms = models.PositiveIntegerField(_("time to first token (ms)"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("total latency (ms)"), null=True, blank=True)
    fallback = models.BooleanField(_("offline fallback"), default=False)
    # What the offline responder did ("faq", "qualify", "unknown"…; "decided": a reply decided
    # without the model, e.g. a booking): shown to the team, and "unknown" twice in a row
    # hands the conversation to a person.
    intent = models.CharField(_("intent"), max_length=16, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=Q(external_id__isnull=False),
                name="message_external_id_per_channel",
            )
        ]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class UsageMonth(models.Model):
    """Tokens and cost per calendar month, kept up to date with F() on every reply."""

    month = models.DateField(unique=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    replies = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("monthly usage")
        verbose_name_plural = _("monthly usage")
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
