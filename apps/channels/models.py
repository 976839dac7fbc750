"""Per-company settings of the channels. The web widget's look, pre-chat fields and business
hours live here (one row per company); widget keys are in the public schema (apps.widget)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
