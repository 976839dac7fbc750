"""Reading the analytics rollups for a date range and channel (apps.analytics.rollup keeps them
up to date). Every figure here comes from the rollup tables: hourly counts summed over the
range, distinct contacts per day for unique visitors, the time-to-first-token histograms merged
for percentiles. Dates are days in the company's time zone, both ends included."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate

from apps.analytics.models import (
    TTFT_BUCKETS,
    TTFT_EDGES_MS,
    ContactDay,
    HourlyStat,
    ModelDailyStat,
    PageDailyStat,
    RollupState,
)
from apps.analytics.rollup import HOURLY_COUNTERS

MAX_DAYS = 366
TOP_PAGES = 10


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included
    channel: str  # "" for every channel
    zone: zoneinfo.ZoneInfo

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=self.zone)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=self.zone)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def company_zone() -> zoneinfo.ZoneInfo:
    from apps.leads.services import _company_time_zone

    return zoneinfo.ZoneInfo(_company_time_zone())


def period_parse(params: dict[str, Any], *, today: date | None = None) -> tuple[Period, list[str]]:
    """The period from `from`, `to` (YYYY-MM-DD) and `channel`; the last 30 days by default.
    Returns the period and the problems with what was given (dropped)."""
    from apps.conversations.models import Channel

    zone = company_zone()
    today = today or datetime.now(zone).date()
    problems: list[str] = []

    def day(name: str) -> date | None:
        raw = str(params.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            problems.append(name)
            return None

    end = day("to") or today
    start = day("from") or end - timedelta(days=29)
    if start > end:
        problems.append("from")
        start = end - timedelta(days=29)
    if (end - start).days >= MAX_DAYS:
        problems.append("from")
        start = end - timedelta(days=MAX_DAYS - 1)
    channel = str(params.get("channel") or "")
    if channel and (channel not in Channel.values or channel == Channel.TEST):
        problems.append("channel")
        channel = ""
    return Period(start=start, end=end, channel=channel, zone=zone), problems


def _hourly(period: Period) -> Any:
    rows = HourlyStat.objects.filter(hour__gte=period.since, hour__lt=period.until)
    return rows.filter(channel=period.channel) if period.channel else rows


def percentile(histogram: list[int], fraction: float) -> int | None:
    """The time (ms) under which `fraction` of the histogram's samples fall: the upper edge
    of the bucket holding that rank (the open last bucket reports its lower edge)."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return TTFT_EDGES_MS[index] if index < len(TTFT_EDGES_MS) else TTFT_EDGES_MS[-1]
    return TTFT_EDGES_MS[-1]


def _rate(part: int, whole: int) -> float | None:
    """part / whole, kept within 0 and 1: leads, handoffs and wins are counted when they happen,
    conversations when they start, so over a short period the ratio can run past 1."""
    return min(1.0, part / whole) if whole else None


@dataclass
class Summary:
    period: Period
    totals: dict[str, Any]
    unique_visitors: int
    rates: dict[str, float | None]
    first_response_ms: float | None
    ttft: dict[str, float | int | None]
    series: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    funnel: list[dict[str, Any]]
    pages: list[dict[str, Any]]
    heatmap: list[list[int]]  # [weekday 0=Monday][hour 0-23]: visitor messages
    models: list[dict[str, Any]]  # per day, provider and model
    model_totals: list[dict[str, Any]] = field(default_factory=list)  # per provider and model
    rolled_up_to: int = 0


def _series(period: Period, hourly: Any) -> list[dict[str, Any]]:
    empty = {"conversations": 0, "visitor_messages": 0, "leads": 0, "qualified": 0, "won": 0}
    by_day: dict[date, dict[str, Any]] = {
        d: {"day": d.isoformat(), **empty, "cost": Decimal(0)} for d in period.days
    }
    for row in (
        hourly.annotate(day=TruncDate("hour", tzinfo=period.zone))
        .values("day")
        .annotate(
            conversations=Sum("conversations"), visitor_messages=Sum("visitor_messages"),
            leads=Sum("leads"), qualified=Sum("qualified"), won=Sum("won"), cost=Sum("cost"),
        )
    ):  # fmt: skip
        if row["day"] in by_day:
            by_day[row["day"]].update({k: v for k, v in row.items() if k != "day"})
    return list(by_day.values())


def analytics_series(period: Period) -> list[dict[str, Any]]:
    """The period's figures per day (the CSV export): one query over the hourly rollup."""
    return _series(period, _hourly(period))


def analytics_summary(period: Period) -> Summary:
    """Every figure of the analytics page for `period` (a handful of queries over the
    rollups, whatever the number of messages)."""
    hourly = _hourly(period)
    # The histogram's buckets are summed by the database (`ttft_histogram__3`: the 4th).
    buckets = {f"ttft_{i}": Sum(f"ttft_histogram__{i}") for i in range(TTFT_BUCKETS)}
    sums = hourly.aggregate(**{name: Sum(name) for name in HOURLY_COUNTERS}, **buckets)
    totals = {name: (sums[name] or 0) for name in HOURLY_COUNTERS}
    histogram = [sums[f"ttft_{i}"] or 0 for i in range(TTFT_BUCKETS)]
    contacts = ContactDay.objects.filter(day__gte=period.start, day__lte=period.end)
    if period.channel:
        contacts = contacts.filter(channel=period.channel)
    unique_visitors = contacts.aggregate(n=Count("contact_id", distinct=True))["n"]

    zone = period.zone
    heatmap = [[0] * 24 for _ in range(7)]
    for row in (
        hourly.filter(visitor_messages__gt=0)
        .annotate(
            weekday=ExtractIsoWeekDay("hour", tzinfo=zone), at=ExtractHour("hour", tzinfo=zone)
        )
        .values("weekday", "at")
        .annotate(messages=Sum("visitor_messages"))
    ):  # fmt: skip
        heatmap[row["weekday"] - 1][row["at"]] += row["messages"]
    channels = list(
        _hourly(Period(period.start, period.end, "", zone))
        .values("channel")
        .annotate(
            conversations=Sum("conversations"), visitor_messages=Sum("visitor_messages"),
            leads=Sum("leads"), qualified=Sum("qualified"), won=Sum("won"),
        )
        .order_by("-conversations", "channel")
    )  # fmt: skip
    pages = PageDailyStat.objects.filter(day__gte=period.start, day__lte=period.end).exclude(
        page=""
    )
    if period.channel:
        pages = pages.filter(channel=period.channel)
    top_pages = list(
        pages.values("page").annotate(conversations=Sum("conversations"))
        .order_by("-conversations", "page")[:TOP_PAGES]
    )  # fmt: skip
    per_day_models = ModelDailyStat.objects.filter(day__gte=period.start, day__lte=period.end)
    usage = {"replies": Sum("replies"), "input_tokens": Sum("input_tokens"),
             "output_tokens": Sum("output_tokens"), "cost": Sum("cost")}  # fmt: skip
    models = list(
        per_day_models.values("day", "provider", "model").annotate(**usage)
        .order_by("day", "provider", "model")
    )  # fmt: skip
    model_totals = list(
        per_day_models.values("provider", "model").annotate(**usage)
        .order_by("-cost", "provider", "model")
    )  # fmt: skip
    conversations = totals["conversations"]
    funnel = [
        {"step": "visitors", "count": unique_visitors},
        {"step": "engaged", "count": totals["engaged"]},
        {"step": "leads", "count": totals["leads"]},
        {"step": "qualified", "count": totals["qualified"]},
        {"step": "won", "count": totals["won"]},
    ]
    state = RollupState.objects.filter(pk=1).values_list("last_event_id", flat=True).first()
    return Summary(
        period=period,
        totals=totals,
        unique_visitors=unique_visitors,
        rates={
            "qualification": _rate(totals["qualified"], totals["leads"]),
            "conversion": _rate(totals["won"], totals["leads"]),
            "lead_capture": _rate(totals["leads"], conversations),
            "handoff": _rate(totals["handoffs"], conversations),
            "resolved_by_assistant": (
                max(0.0, 1 - totals["handoffs"] / conversations) if conversations else None
            ),
            "engagement": _rate(totals["engaged"], conversations),
        },
        first_response_ms=(
            totals["first_response_ms_sum"] / totals["first_responses"]
            if totals["first_responses"]
            else None
        ),
        ttft={
            "p50": percentile(histogram, 0.5),
            "p95": percentile(histogram, 0.95),
            "mean": totals["ttft_ms_sum"] / totals["ttft_count"] if totals["ttft_count"] else None,
            "count": totals["ttft_count"],
        },
        series=_series(period, hourly),
        channels=channels,
        funnel=funnel,
        pages=top_pages,
        heatmap=heatmap,
        models=models,
        model_totals=model_totals,
        rolled_up_to=state or 0,
    )


def summary_json(summary: Summary) -> dict[str, Any]:
    """The summary as JSON-ready data (the page's charts, the API, the CSV)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain({
        "from": summary.period.start, "to": summary.period.end,
        "channel": summary.period.channel or None,
        "totals": summary.totals, "unique_visitors": summary.unique_visitors,
        "rates": summary.rates, "first_response_ms": summary.first_response_ms,
        "ttft_ms": summary.ttft, "series": summary.series, "channels": summary.channels,
        "funnel": summary.funnel, "top_pages": summary.pages, "heatmap": summary.heatmap,
        "models": summary.models,
    })  # fmt: skip
