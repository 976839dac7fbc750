"""The analytics rollup: folds the event log into the tables the dashboard reads.

`rollup_run` takes the events after the last one counted, in id order, in batches: each batch
is added to the rollups and the watermark moves past it in one transaction, under a row lock,
so every event is counted exactly once even with several workers. An event is taken only once
it is ANALYTICS_ROLLUP_LAG_SECONDS old: ids are given at insert and a transaction may commit
after a later id, and the lag lets it land before the watermark moves past it.

What each event adds (HourlyStat per UTC hour and channel; day tables per day in the company's
time zone):

- conversation.started: a conversation and a visitor message; its contact's day (unique
  visitors); its page;
- message.received: a visitor message; the conversation's second one makes it "engaged";
- reply.completed: a reply, its tokens and cost (also per model), its time to first token
  (sum and histogram), an error or an offline fallback; the conversation's first reply gives
  its first response time;
- agent.message, handoff.requested (once per conversation), lead.captured (an email or phone
  became known), lead.qualified, lead.stage to meeting_booked (meetings) and to won,
  delivery.failed (an error).

Events of the dashboard's "Test your assistant" chat (channel `test`) are not counted. The
same figures per company and day also go to the public schema (CompanyDailyUsage) for the
staff's usage page. `rollup_rebuild` recounts everything from the event log.
"""

# The SQL below names only this app's tables (from model metadata); values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.analytics.models import (
    TTFT_BUCKETS,
    TTFT_EDGES_MS,
    ContactDay,
    ConversationFact,
    Event,
    HourlyStat,
    ModelDailyStat,
    PageDailyStat,
    RollupState,
)

BATCH = 5000

HOURLY_COUNTERS = (
    "conversations", "visitor_messages", "replies", "agent_messages", "engaged", "leads",
    "qualified", "meetings", "won", "handoffs", "fallbacks", "errors", "first_response_ms_sum",
    "first_responses", "ttft_ms_sum", "ttft_count", "input_tokens", "output_tokens", "cost",
)  # fmt: skip
USAGE_COUNTERS = (
    "conversations", "visitor_messages", "replies", "errors", "input_tokens", "output_tokens",
    "cost",
)  # fmt: skip


def ttft_bucket(ms: int) -> int:
    for index, edge in enumerate(TTFT_EDGES_MS):
        if ms < edge:
            return index
    return TTFT_BUCKETS - 1


def _counters() -> dict[str, Any]:
    return defaultdict(int)


@dataclass
class _Batch:
    zone: zoneinfo.ZoneInfo
    hourly: dict[tuple[datetime, str], dict[str, Any]] = field(default_factory=dict)
    histograms: dict[tuple[datetime, str], list[int]] = field(default_factory=dict)
    models: dict[tuple[date, str, str], dict[str, Any]] = field(default_factory=dict)
    pages: dict[tuple[date, str, str], int] = field(default_factory=lambda: defaultdict(int))
    contacts: set[tuple[date, str, int]] = field(default_factory=set)
    usage: dict[date, dict[str, Any]] = field(default_factory=dict)

    def hour(self, at: datetime, channel: str) -> dict[str, Any]:
        key = (at.replace(minute=0, second=0, microsecond=0), channel)
        return self.hourly.setdefault(key, _counters())

    def day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def use(self, at: datetime) -> dict[str, Any]:
        return self.usage.setdefault(at.astimezone(zoneinfo.ZoneInfo("UTC")).date(), _counters())


def _company_zone() -> zoneinfo.ZoneInfo:
    from apps.leads.services import _company_time_zone

    return zoneinfo.ZoneInfo(_company_time_zone())


def _page(context: dict[str, Any]) -> str:
    url = str(context.get("page") or context.get("url") or "")
    if not url:
        return ""
    parts = urlsplit(url)
    return (parts.path or "/")[:300] if parts.scheme or url.startswith("/") else url[:300]


def _fold(events: list[dict[str, Any]], batch: _Batch) -> dict[int, ConversationFact]:
    """Add `events` to `batch`; returns the conversations' facts, updated."""
    from apps.conversations.models import Conversation
    from apps.leads.models import Lead

    conversation_ids = {e["conversation_id"] for e in events if e["conversation_id"]}
    facts = {
        f.conversation_id: f
        for f in ConversationFact.objects.filter(conversation_id__in=conversation_ids)
    }
    missing = conversation_ids - set(facts)
    visited = {
        e["conversation_id"]
        for e in events
        if e["conversation_id"] and e["kind"] in {"conversation.started", "message.received"}
    }
    conversations = {
        row["pk"]: row
        for row in Conversation.objects.filter(pk__in=visited | missing).values(
            "pk", "contact_id", "context", "created_at", "channel"
        )
    }
    for conversation_id in missing:
        row = conversations.get(conversation_id)
        if row is not None:  # a conversation older than the rollup: its facts start now
            facts[conversation_id] = ConversationFact(
                conversation_id=conversation_id,
                channel=row["channel"],
                started_at=row["created_at"],
            )
    lead_ids = {
        e["data"].get("lead_id")
        for e in events
        if e["kind"].startswith("lead.") and not e["channel"]
    }
    lead_channels = dict(
        Lead.objects.filter(pk__in=lead_ids - {None}).values_list("pk", "source_channel")
    )

    for event in events:
        if event["channel"] == "test":
            continue  # the dashboard's "Test your assistant" chat is not traffic
        kind, at, conversation_id, data = (
            event["kind"],
            event["created_at"],
            event["conversation_id"],
            event["data"],
        )
        channel = event["channel"] or lead_channels.get(data.get("lead_id"), "")
        fact = facts.get(conversation_id) if conversation_id else None
        if kind == "conversation.started":
            row = conversations.get(conversation_id)
            counters = batch.hour(at, channel)
            counters["conversations"] += 1
            counters["visitor_messages"] += 1
            if fact is None and conversation_id:
                fact = facts[conversation_id] = ConversationFact(
                    conversation_id=conversation_id, channel=channel, started_at=at
                )
            if fact is not None:
                fact.visitor_messages += 1
            if row is not None:
                batch.contacts.add((batch.day(at), channel, row["contact_id"]))
                batch.pages[(batch.day(at), channel, _page(row["context"] or {}))] += 1
            usage = batch.use(at)
            usage["conversations"] += 1
            usage["visitor_messages"] += 1
        elif kind == "message.received":
            counters = batch.hour(at, channel)
            counters["visitor_messages"] += 1
            if fact is not None:
                fact.visitor_messages += 1
                if fact.visitor_messages == 2:
                    counters["engaged"] += 1
            row = conversations.get(conversation_id)
            if row is not None:
                batch.contacts.add((batch.day(at), channel, row["contact_id"]))
            batch.use(at)["visitor_messages"] += 1
        elif kind == "reply.completed":
            counters = batch.hour(at, channel)
            usage = batch.use(at)
            counters["replies"] += 1
            usage["replies"] += 1
            if data.get("fallback"):
                counters["fallbacks"] += 1
            if data.get("error"):
                counters["errors"] += 1
                usage["errors"] += 1
            ttft = data.get("ttft_ms")
            if isinstance(ttft, int) and ttft >= 0:
                counters["ttft_ms_sum"] += ttft
                counters["ttft_count"] += 1
                histogram = batch.histograms.setdefault(
                    (at.replace(minute=0, second=0, microsecond=0), channel), [0] * TTFT_BUCKETS
                )
                histogram[ttft_bucket(ttft)] += 1
            tokens_in, tokens_out = (
                int(data.get("input_tokens") or 0),
                int(data.get("output_tokens") or 0),
            )
            cost = Decimal(str(data.get("cost") or "0"))
            counters["input_tokens"] += tokens_in
            counters["output_tokens"] += tokens_out
            counters["cost"] += cost
            usage["input_tokens"] += tokens_in
            usage["output_tokens"] += tokens_out
            usage["cost"] += cost
            model = batch.models.setdefault(
                (
                    batch.day(at),
                    str(data.get("provider") or "")[:16],
                    str(data.get("model") or "")[:100],
                ),
                _counters(),
            )
            model["replies"] += 1
            model["input_tokens"] += tokens_in
            model["output_tokens"] += tokens_out
            model["cost"] += cost
            if fact is not None and fact.first_response_ms is None:
                fact.first_response_ms = max(0, int((at - fact.started_at).total_seconds() * 1000))
                counters["first_responses"] += 1
                counters["first_response_ms_sum"] += fact.first_response_ms
        elif kind == "agent.message":
            batch.hour(at, channel)["agent_messages"] += 1
        elif kind == "handoff.requested":
            if fact is not None and not fact.handed_off:
                fact.handed_off = True
                batch.hour(at, channel)["handoffs"] += 1
        elif kind == "lead.captured":
            batch.hour(at, channel)["leads"] += 1
        elif kind == "lead.qualified":
            batch.hour(at, channel)["qualified"] += 1
        elif kind == "lead.stage":
            if data.get("new") == "meeting_booked":
                batch.hour(at, channel)["meetings"] += 1
            elif data.get("new") == "won":
                batch.hour(at, channel)["won"] += 1
        elif kind == "delivery.failed":
            batch.hour(at, channel)["errors"] += 1
            batch.use(at)["errors"] += 1
    return facts


def _execute(sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Run `sql` for each row (the SQL names only our own tables; values are parameters)."""
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def _write(batch: _Batch, facts: dict[int, ConversationFact]) -> None:
    hourly = HourlyStat._meta.db_table
    columns = ", ".join(HOURLY_COUNTERS)
    updates = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in HOURLY_COUNTERS)
    _execute(
        f"INSERT INTO {hourly} AS t (hour, channel, {columns}, ttft_histogram) "
        f"VALUES (%s, %s, {', '.join(['%s'] * len(HOURLY_COUNTERS))}, %s) "
        f"ON CONFLICT (hour, channel) DO UPDATE SET {updates}, ttft_histogram = "
        "ARRAY(SELECT a + b FROM unnest(t.ttft_histogram, EXCLUDED.ttft_histogram) AS u(a, b))",
        [
            (hour, channel, *(counters[c] for c in HOURLY_COUNTERS),
             batch.histograms.get((hour, channel), [0] * TTFT_BUCKETS))
            for (hour, channel), counters in batch.hourly.items()
        ],
    )  # fmt: skip
    _execute(
        f"INSERT INTO {ModelDailyStat._meta.db_table} AS t "
        "(day, provider, model, replies, input_tokens, output_tokens, cost) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (day, provider, model) DO UPDATE SET "
        "replies = t.replies + EXCLUDED.replies, "
        "input_tokens = t.input_tokens + EXCLUDED.input_tokens, "
        "output_tokens = t.output_tokens + EXCLUDED.output_tokens, cost = t.cost + EXCLUDED.cost",
        [(day, provider, model, c["replies"], c["input_tokens"], c["output_tokens"], c["cost"])
         for (day, provider, model), c in batch.models.items()],
    )  # fmt: skip
    _execute(
        f"INSERT INTO {PageDailyStat._meta.db_table} AS t (day, channel, page, conversations) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (day, channel, page) DO UPDATE SET "
        "conversations = t.conversations + EXCLUDED.conversations",
        [(day, channel, page, n) for (day, channel, page), n in batch.pages.items()],
    )
    _execute(
        f"INSERT INTO {ContactDay._meta.db_table} (day, channel, contact_id) VALUES (%s, %s, %s) "
        "ON CONFLICT (day, contact_id) DO NOTHING",
        sorted(batch.contacts),
    )
    _execute(
        f"INSERT INTO {ConversationFact._meta.db_table} "
        "(conversation_id, channel, started_at, visitor_messages, first_response_ms, handed_off) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (conversation_id) DO UPDATE SET "
        "visitor_messages = EXCLUDED.visitor_messages, "
        "first_response_ms = EXCLUDED.first_response_ms, handed_off = EXCLUDED.handed_off",
        [(f.conversation_id, f.channel, f.started_at, f.visitor_messages, f.first_response_ms,
          f.handed_off) for f in facts.values()],
    )  # fmt: skip
    _usage_write(batch)


def _usage_write(batch: _Batch) -> None:
    from apps.tenants.models import CompanyDailyUsage

    company = connection.tenant  # type: ignore[attr-defined]
    columns = ", ".join(USAGE_COUNTERS)
    updates = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c in USAGE_COUNTERS)
    # Schema-qualified: the staff's table lives in the public schema.
    _execute(
        f'INSERT INTO "{settings.PUBLIC_SCHEMA_NAME}"."{CompanyDailyUsage._meta.db_table}" AS t '
        f"(company_id, day, {columns}) VALUES (%s, %s, {', '.join(['%s'] * len(USAGE_COUNTERS))}) "
        f"ON CONFLICT (company_id, day) DO UPDATE SET {updates}",
        [
            (company.pk, day, *(c[name] for name in USAGE_COUNTERS))
            for day, c in batch.usage.items()
        ],
    )


def _settled(events: list[dict[str, Any]], cutoff: datetime) -> list[dict[str, Any]]:
    """The events up to the first one younger than `cutoff` (ids may commit out of order)."""
    for index, event in enumerate(events):
        if event["created_at"] > cutoff:
            return events[:index]
    return events


def rollup_batch(*, now: datetime | None = None, lag: timedelta | None = None) -> int:
    """Count the next batch of settled events; how many were counted."""
    now = now or timezone.now()
    lag = timedelta(seconds=settings.ANALYTICS_ROLLUP_LAG_SECONDS) if lag is None else lag
    RollupState.objects.get_or_create(pk=1)
    with transaction.atomic():
        state = RollupState.objects.select_for_update().get(pk=1)
        events = list(
            Event.objects.filter(id__gt=state.last_event_id)
            .order_by("id")
            .values("id", "kind", "conversation_id", "channel", "data", "created_at")[:BATCH]
        )
        events = _settled(events, now - lag)
        if not events:
            return 0
        batch = _Batch(zone=_company_zone())
        facts = _fold(events, batch)
        _write(batch, facts)
        state.last_event_id = events[-1]["id"]
        state.save(update_fields=["last_event_id", "updated_at"])
    return len(events)


def rollup_run(
    *, now: datetime | None = None, lag: timedelta | None = None, max_batches: int = 50
) -> int:
    """Count every settled event not counted yet (at most `max_batches` batches per run)."""
    total = 0
    for _ in range(max_batches):
        counted = rollup_batch(now=now, lag=lag)
        total += counted
        if counted < BATCH:
            break
    return total


def rollup_rebuild() -> int:
    """Forget the rollups of the current company and count the whole event log again."""
    from apps.tenants.models import CompanyDailyUsage

    with transaction.atomic():
        RollupState.objects.select_for_update().get_or_create(pk=1)
        for model in (HourlyStat, ModelDailyStat, PageDailyStat, ContactDay, ConversationFact):
            model.objects.all().delete()
        CompanyDailyUsage.objects.filter(company_id=connection.tenant.pk).delete()  # type: ignore[attr-defined]
        RollupState.objects.filter(pk=1).update(last_event_id=0)
    total = 0
    while True:
        counted = rollup_batch(lag=timedelta(0))
        total += counted
        if not counted:
            return total
