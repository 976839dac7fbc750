"""Analytics of one company (its schema): the append-only event log, and the rollups the
dashboard reads, kept up to date incrementally from the events by `analytics.rollup`
(apps.analytics.rollup) — never computed by scanning messages."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

# Upper edges (ms) of the time-to-first-token histogram's buckets; the last is open-ended.
TTFT_EDGES_MS = (
    50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000,
    20000, 30000, 60000,
)  # fmt: skip
TTFT_BUCKETS = len(TTFT_EDGES_MS) + 1


def _empty_histogram() -> list[int]:
    return [0] * TTFT_BUCKETS


class Event(models.Model):
    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    conversation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class RollupState(models.Model):
    """Where the rollup is in the event log (one row, pk=1): every event up to `last_event_id`
    is counted in the rollups, once."""

    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"events up to {self.last_event_id}"


class HourlyStat(models.Model):
    """Counts per hour (UTC) and channel. Each field adds up the events of its hour."""

    hour = models.DateTimeField()
    channel = models.CharField(max_length=16)
    conversations = models.PositiveIntegerField(default=0)  # started
    visitor_messages = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)  # assistant replies stored
    agent_messages = models.PositiveIntegerField(default=0)
    engaged = models.PositiveIntegerField(default=0)  # conversations reaching 2 visitor messages
    leads = models.PositiveIntegerField(default=0)  # leads captured (an email or a phone)
    qualified = models.PositiveIntegerField(default=0)
    meetings = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)  # conversations handed to a person
    fallbacks = models.PositiveIntegerField(default=0)  # replies by the offline responder on error
    errors = models.PositiveIntegerField(default=0)  # failed replies and deliveries
    first_response_ms_sum = models.BigIntegerField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    ttft_ms_sum = models.BigIntegerField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    ttft_histogram = ArrayField(models.PositiveIntegerField(), default=_empty_histogram)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "channel"], name="hourlystat_key")]
        indexes = [models.Index(fields=["hour"], name="hourlystat_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.channel}"


class ModelDailyStat(models.Model):
    """Tokens and cost per day (in the company's time zone), provider and model (every channel)."""

    day = models.DateField()
    provider = models.CharField(max_length=16)
    model = models.CharField(max_length=100)
    replies = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "provider", "model"], name="modeldailystat_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}"


class PageDailyStat(models.Model):
    """Conversations started per day (in the company's time zone), channel and page (the path
    of the context's URL)."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    page = models.CharField(max_length=300)
    conversations = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "channel", "page"], name="pagedailystat_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.page}"


class ContactDay(models.Model):
    """A contact wrote on that day (in the company's time zone): unique visitors over any
    range."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    contact_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "contact_id"], name="contactday_key")]
        indexes = [models.Index(fields=["day", "channel"], name="contactday_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.contact_id}"


class ConversationFact(models.Model):
    """What the rollup remembers of a conversation to count transitions once: its second
    visitor message (engaged), its first reply (first response time), its first handoff."""

    conversation_id = models.BigIntegerField(primary_key=True)
    channel = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    visitor_messages = models.PositiveIntegerField(default=0)
    first_response_ms = models.PositiveIntegerField(null=True, blank=True)
    handed_off = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"conversation {self.conversation_id}"
