"""Per-company channels: the web widget's settings (one row per company; widget keys are in
the public schema, apps.widget) and the messaging channels (Telegram bots, WhatsApp numbers)
with what they received and sent."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chapi.fields import EncryptedTextField

DEFAULT_COLOR = "#4f46e5"
DEFAULT_TIME_ZONE = "America/Bogota"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone.") % {"value": value})


class WidgetSettings(models.Model):
    class Position(models.TextChoices):
        RIGHT = "right", _("Bottom right")
        LEFT = "left", _("Bottom left")

    class Theme(models.TextChoices):
        AUTO = "auto", _("Follow the visitor's system")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    class Field(models.TextChoices):
        OFF = "off", _("Not asked")
        OPTIONAL = "optional", _("Optional")
        REQUIRED = "required", _("Required")

    primary_color = models.CharField(
        _("primary colour"),
        max_length=7,
        default=DEFAULT_COLOR,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour like #4f46e5."))],
    )
    position = models.CharField(
        _("position"), max_length=8, choices=Position.choices, default=Position.RIGHT
    )
    theme = models.CharField(_("theme"), max_length=8, choices=Theme.choices, default=Theme.AUTO)
    launcher_text = models.CharField(_("launcher text"), max_length=40, blank=True)
    avatar_url = models.URLField(
        _("avatar URL"), blank=True, help_text=_("An https image shown beside the bot's name.")
    )
    prechat_name = models.CharField(
        _("ask for the name"), max_length=8, choices=Field.choices, default=Field.OFF
    )
    prechat_email = models.CharField(
        _("ask for the email"), max_length=8, choices=Field.choices, default=Field.OFF
    )
    prechat_phone = models.CharField(
        _("ask for the phone"), max_length=8, choices=Field.choices, default=Field.OFF
    )
    hours_enabled = models.BooleanField(_("business hours"), default=False)
    hours_days = models.JSONField(
        _("open days"), default=list, blank=True, help_text=_("0 = Monday … 6 = Sunday.")
    )
    hours_start = models.TimeField(_("opens at"), null=True, blank=True)
    hours_end = models.TimeField(_("closes at"), null=True, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone]
    )
    offline_message = models.CharField(_("offline message"), max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("web widget settings")
        verbose_name_plural = _("web widget settings")

    def __str__(self) -> str:
        return str(_("Web widget settings"))

    def clean(self) -> None:
        if self.hours_enabled and (self.hours_start is None or self.hours_end is None):
            raise ValidationError(_("Business hours need an opening and a closing time."))
        if self.hours_enabled and self.hours_start == self.hours_end:
            raise ValidationError(_("The opening and closing times must differ."))
        if any(not isinstance(d, int) or not 0 <= d <= 6 for d in self.hours_days or []):
            raise ValidationError({"hours_days": _("Days are numbers from 0 to 6.")})

    def is_open(self, at: datetime | None = None) -> bool:
        """Whether `at` (default now) falls in business hours; always True when they are off.
        A closing time before the opening time spans midnight."""
        if not self.hours_enabled or self.hours_start is None or self.hours_end is None:
            return True
        local = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(self.time_zone))
        start, end, now = self.hours_start, self.hours_end, local.time()
        if start <= end:
            return local.weekday() in self.hours_days and start <= now < end
        # Overnight: open from `start` on an open day until `end` the next morning.
        if now >= start:
            return local.weekday() in self.hours_days
        return now < end and (local.weekday() - 1) % 7 in self.hours_days


class ChannelConnection(models.Model):
    """A company's messaging channel: its own Telegram bot or WhatsApp number. Credentials are
    encrypted at rest; `webhook_id` (public, in the webhook URL) routes inbound requests here
    through the public schema's `apps.webhooks.WebhookRoute`."""

    class Kind(models.TextChoices):
        TELEGRAM = "telegram", _("Telegram")
        WHATSAPP_TWILIO = "whatsapp_twilio", _("WhatsApp (Twilio)")
        WHATSAPP_META = "whatsapp_meta", _("WhatsApp (Meta Cloud API)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Connected")
        DISCONNECTED = "disconnected", _("Disconnected")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    webhook_id = models.CharField(max_length=40, unique=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    # Telegram
    bot_token = EncryptedTextField(_("bot token"))
    secret_token = EncryptedTextField(_("webhook secret token"))
    bot_username = models.CharField(_("bot username"), max_length=64, blank=True)
    # WhatsApp through Twilio
    account_sid = models.CharField(_("account SID"), max_length=64, blank=True)
    auth_token = EncryptedTextField(_("auth token"))
    sender = models.CharField(
        _("WhatsApp sender"), max_length=40, blank=True, help_text=_("e.g. whatsapp:+14155238886")
    )
    # WhatsApp through Meta's Cloud API
    phone_number_id = models.CharField(_("phone number id"), max_length=40, blank=True)
    access_token = EncryptedTextField(_("access token"))
    app_secret = EncryptedTextField(_("app secret"))
    verify_token = EncryptedTextField(_("verify token"))
    display_phone_number = models.CharField(_("phone number"), max_length=40, blank=True)
    # WhatsApp message templates approved by Meta, the only messages allowed outside the
    # 24-hour window: [{"name": "...", "language": "es", "body": "..."}].
    templates = models.JSONField(_("approved templates"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=254, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_update_at = models.DateTimeField(_("last update received"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.name}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def conversation_channel(self) -> str:
        """The conversations' channel of this connection (Message.channel)."""
        return "telegram" if self.kind == self.Kind.TELEGRAM else "whatsapp"


class InboundEvent(models.Model):
    """Every request a channel's webhook accepted, handled or not: the deduplication record
    (one row per provider id: Telegram's update_id, Twilio's MessageSid, Meta's message id)
    and the trace of what the product did with it."""

    class Outcome(models.TextChoices):
        MESSAGE = "message", _("Message")
        STATUS = "status", _("Delivery status")
        IGNORED = "ignored", _("Not handled")

    connection = models.ForeignKey(
        ChannelConnection, on_delete=models.CASCADE, related_name="inbound_events"
    )
    provider_id = models.CharField(max_length=128)
    kind = models.CharField(max_length=40)  # e.g. message.text, message.photo, status.delivered
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "provider_id"], name="inbound_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.provider_id}"


class OutboundMessage(models.Model):
    """One message sent (or to send) on a channel: a part of a reply split at the platform's
    limit, with its provider id and delivery status."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    connection = models.ForeignKey(
        ChannelConnection, on_delete=models.CASCADE, related_name="outbound_messages"
    )
    message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, related_name="outbound_parts"
    )
    part = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    template = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    provider_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        ordering = ["message_id", "part"]
        constraints = [
            models.UniqueConstraint(fields=["message", "part"], name="outbound_part_once")
        ]

    def __str__(self) -> str:
        return f"{self.connection} #{self.message_id}.{self.part} {self.status}"
