"""The platform staff's usage page on the public host: every company's conversations,
messages, replies, tokens, cost and errors over a period, from the daily usage each company's
analytics rollup keeps in the public schema (apps.tenants.models.CompanyDailyUsage)."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.tenants.models import Company, CompanyDailyUsage

PERIODS = (1, 7, 30, 90)
FIGURES = ("conversations", "visitor_messages", "replies", "errors", "input_tokens",
           "output_tokens", "cost")  # fmt: skip


@never_cache
@require_GET
@staff_member_required
def staff_usage(request: HttpRequest) -> HttpResponse:
    days = int(request.GET["days"]) if request.GET.get("days", "").isdigit() else 7
    days = days if days in PERIODS else 7
    today = timezone.now().date()
    since: date = today - timedelta(days=days - 1)
    rows = {
        row["company_id"]: row
        for row in CompanyDailyUsage.objects.filter(day__gte=since, day__lte=today)
        .values("company_id")
        .annotate(**{name: Sum(name) for name in FIGURES}, last_day=Max("day"))
    }
    companies = []
    for company in Company.objects.exclude(schema_name="public").order_by("name"):
        row = rows.get(company.pk, {})
        figures = {name: row.get(name) or 0 for name in FIGURES}
        replies = figures["replies"]
        companies.append({
            "company": company, **figures, "last_day": row.get("last_day"),
            "error_rate": figures["errors"] / replies if replies else None,
        })  # fmt: skip
    companies.sort(key=lambda c: (-c["visitor_messages"], c["company"].name))
    totals = {name: sum(c[name] for c in companies) for name in FIGURES}
    return render(request, "tenants/staff_usage.html", {
        "companies": companies, "totals": totals, "days": days, "periods": PERIODS,
        "since": since, "today": today,
    })  # fmt: skip
