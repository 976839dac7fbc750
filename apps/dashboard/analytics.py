"""Dashboard: the company's analytics for a period and a channel, and its CSV export.

Every figure comes from `apps.analytics.selectors.analytics_summary`, which reads the rollups
that `apps.analytics.rollup` keeps up to date each minute (never the messages): the page costs
the same handful of queries whatever the number of conversations. The charts are drawn in the
browser by Chart.js (vendored under static/vendor/chartjs/) from the page's JSON island
(`static/dashboard/analytics.js`); their numbers are also in server-rendered tables, and the
top pages and the busiest hours need no script at all. Every member may read it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dates import WEEKDAYS
from django.utils.formats import number_format
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts.permissions import member_required
from apps.analytics.selectors import (
    Period,
    Summary,
    analytics_series,
    analytics_summary,
    period_parse,
    summary_json,
)
from apps.conversations.models import Channel
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_results
from apps.leads.exports import BOM, csv_safe

RECENT_EXPERIMENTS = 5
VERDICT_SECONDS = 300
HEAT_LEVELS = 4  # cells are heat-0 (none) to heat-4 (the busiest hour's quarter)
NONE = "—"

FILTER_LABELS = {
    "from": gettext_lazy("From"),
    "to": gettext_lazy("To"),
    "channel": gettext_lazy("Channel"),
}
FUNNEL_LABELS = {
    "visitors": gettext_lazy("Visitors"),
    "engaged": gettext_lazy("Engaged"),
    "leads": gettext_lazy("Leads"),
    "qualified": gettext_lazy("Qualified"),
    "won": gettext_lazy("Won"),
}


@dataclass(frozen=True)
class Figure:
    key: str  # the element's id is figure-<key>
    label: str
    raw: str  # the number as data (data-value): "" when there is none
    text: str  # as shown: NONE when there is none
    detail: str = ""


def _raw(value: int | float | Decimal | None) -> str:
    return "" if value is None else str(value)


def _count(value: int) -> str:
    return number_format(value, 0, force_grouping=True)


def _percent(value: float | None) -> str:
    if value is None:
        return NONE
    return _("%(percent)s%%") % {"percent": number_format(value * 100, 1)}


def _duration(ms: float | None) -> str:
    if ms is None:
        return NONE
    if ms < 1000:
        return f"{number_format(round(ms), 0, force_grouping=True)} ms"
    return f"{number_format(ms / 1000, 1, force_grouping=True)} s"


def _money(value: Decimal) -> str:
    return f"US$ {number_format(value, 4, force_grouping=True)}"


def _of(part: int, whole: int) -> str:
    return _("%(part)s of %(whole)s") % {"part": _count(part), "whole": _count(whole)}


def _figures(summary: Summary) -> list[Figure]:
    totals, rates, ttft = summary.totals, summary.rates, summary.ttft
    leads, conversations = totals["leads"], totals["conversations"]
    tokens = totals["input_tokens"] + totals["output_tokens"]
    cost = Decimal(totals["cost"])

    def rate(key: str, label: str, name: str, part: int, whole: int) -> Figure:
        value = rates[name]
        detail = _of(part, whole) if value is not None else ""
        return Figure(key, label, _raw(value), _percent(value), detail)

    return [
        Figure("conversations", _("Conversations"), _raw(conversations), _count(conversations)),
        Figure(
            "unique-visitors",
            _("Unique visitors"),
            _raw(summary.unique_visitors),
            _count(summary.unique_visitors),
        ),
        Figure(
            "visitor-messages",
            _("Visitor messages"),
            _raw(totals["visitor_messages"]),
            _count(totals["visitor_messages"]),
        ),
        Figure("leads", _("Leads captured"), _raw(leads), _count(leads)),
        rate(
            "qualification-rate",
            _("Qualification rate"),
            "qualification",
            totals["qualified"],
            leads,
        ),
        rate("conversion-rate", _("Conversion rate"), "conversion", totals["won"], leads),
        rate("handoff-rate", _("Handoff rate"), "handoff", totals["handoffs"], conversations),
        rate(
            "resolved-rate",
            _("Resolved by the assistant"),
            "resolved_by_assistant",
            conversations - totals["handoffs"],
            conversations,
        ),
        Figure(
            "first-response",
            _("Average first response time"),
            _raw(summary.first_response_ms),
            _duration(summary.first_response_ms),
        ),
        Figure(
            "ttft-p50", _("Time to first token (p50)"), _raw(ttft["p50"]), _duration(ttft["p50"])
        ),
        Figure(
            "ttft-p95", _("Time to first token (p95)"), _raw(ttft["p95"]), _duration(ttft["p95"])
        ),
        Figure(
            "tokens",
            _("Tokens"),
            _raw(tokens),
            _count(tokens),
            _("%(input)s in, %(output)s out")
            % {"input": _count(totals["input_tokens"]), "output": _count(totals["output_tokens"])},
        ),
        Figure("cost", _("Cost"), _raw(cost), _money(cost)),
    ]


def _heatmap(summary: Summary) -> list[dict[str, Any]]:
    """The 7 x 24 grid of visitor messages by weekday and hour, each cell with its level."""
    busiest = max((count for row in summary.heatmap for count in row), default=0)
    rows = []
    for weekday, counts in enumerate(summary.heatmap):
        cells = [
            {
                "hour": hour,
                "count": count,
                "level": -(-count * HEAT_LEVELS // busiest) if count else 0,  # ceiling
            }
            for hour, count in enumerate(counts)
        ]
        rows.append({"weekday": weekday, "label": WEEKDAYS[weekday], "cells": cells})
    return rows


def _model_label(row: dict[str, Any]) -> str:
    provider, model = row["provider"], row["model"]
    if provider and model:
        return f"{provider} / {model}"
    return provider or model or NONE


def _experiments() -> list[dict[str, Any]]:
    """The running A/B tests, then the most recently ended ones, with their verdicts."""
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by(
        F("started_at").desc(nulls_last=True), "-id"
    )
    ended = Experiment.objects.filter(
        status__in=[Experiment.Status.STOPPED, Experiment.Status.PROMOTED]
    ).order_by(F("stopped_at").desc(nulls_last=True), "-id")[:RECENT_EXPERIMENTS]
    found = [
        *running.prefetch_related("variants"),
        *ended.prefetch_related("variants"),
    ]
    return [{"experiment": e, "verdict": _verdict(e)} for e in found]


def _verdict(experiment: Experiment) -> str:
    """The test's verdict, computed at most every VERDICT_SECONDS (it joins every assignment
    to its lead; the test's own page is always exact)."""
    key = (
        f"analytics:verdict:{connection.schema_name}:{experiment.pk}:{experiment.status}:"
        f"{get_language()}"
    )
    verdict = cache.get(key)
    if verdict is None:
        verdict = experiment_results(experiment).verdict
        cache.set(key, verdict, VERDICT_SECONDS)
    return verdict


def _channel_choices() -> list[tuple[str, Any]]:
    # The dashboard's own test chat is not a channel customers write on.
    return [(value, label) for value, label in Channel.choices if value != Channel.TEST]


def _query(period: Period) -> str:
    """The period as a query string: what the export covers is what the page shows."""
    params = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if period.channel:
        params["channel"] = period.channel
    return urlencode(params)


def _chart_data(summary: Summary) -> dict[str, Any]:
    """The charts' data (the JSON island): the summary plus every label the script shows."""
    channel_labels = dict(Channel.choices)
    data = summary_json(summary)
    for row in data["models"]:
        row["label"] = _model_label(row)
    data["labels"] = {
        "series": {
            "conversations": _("Conversations"),
            "visitor_messages": _("Visitor messages"),
            "leads": _("Leads captured"),
        },
        "funnel": {key: str(label) for key, label in FUNNEL_LABELS.items()},
        "channels": {row["channel"]: str(channel_labels.get(row["channel"], row["channel"]))
                     for row in data["channels"]},
        "tokens": _("Tokens"),
        "cost": _("Cost (US$)"),
        "model_tokens": _("%(model)s · tokens"),
        "model_cost": _("%(model)s · cost"),
        "count": _("Count"),
    }  # fmt: skip
    return data


@never_cache
@require_GET
@member_required()
def analytics_home(request: HttpRequest) -> HttpResponse:
    """The figures, charts and tables of the period (`from`, `to`, `channel`; the last 30 days
    of every channel by default), naming the filters that were not valid and were dropped."""
    period, problems = period_parse(request.GET)
    summary = analytics_summary(period)
    channel_labels = dict(Channel.choices)
    dropped = [str(FILTER_LABELS.get(name, name)) for name in dict.fromkeys(problems)]
    context = {
        "period": period,
        "summary": summary,
        "figures": _figures(summary),
        "dropped": dropped,
        "channels": _channel_choices(),
        "query": _query(period),
        "data": _chart_data(summary),
        "funnel": [
            {"label": FUNNEL_LABELS.get(row["step"], row["step"]), "count": row["count"]}
            for row in summary.funnel
        ],
        "channel_rows": [
            {**row, "label": channel_labels.get(row["channel"], row["channel"])}
            for row in summary.channels
        ],
        "model_rows": [{**row, "label": _model_label(row)} for row in summary.model_totals],
        "heatmap": _heatmap(summary),
        "hours": range(24),
        "experiments": _experiments(),
    }
    return render(request, "dashboard/analytics.html", context)


def export_headers() -> list[str]:
    return [
        _("Day"), _("Conversations"), _("Visitor messages"), _("Leads"), _("Qualified"),
        _("Won"), _("Cost (US$)"),
    ]  # fmt: skip


@never_cache
@require_GET
@member_required()
def analytics_export(request: HttpRequest) -> HttpResponse:
    """The period's figures per day as CSV: one row per day, for a spreadsheet (UTF-8 with a
    byte order mark; cells a spreadsheet would evaluate are quoted)."""
    period, _problems = period_parse(request.GET)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_safe(cell) for cell in export_headers()])
    for row in analytics_series(period):
        cells = [
            row["day"], row["conversations"], row["visitor_messages"], row["leads"],
            row["qualified"], row["won"], f"{Decimal(row['cost']):.6f}",
        ]  # fmt: skip
        writer.writerow([csv_safe(cell) for cell in cells])
    response = HttpResponse(BOM + out.getvalue(), content_type="text/csv; charset=utf-8")
    filename = f"analytics-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
