"""A lead's score: 0-100 from five parts (need, budget, authority, timeline, engagement), each
worth the company's weight for it, with the reason for every part's points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

PARTS = ("need", "budget", "authority", "timeline", "engagement")

# Roles that usually decide or sign a purchase (Spanish and English).
_DECIDER = re.compile(
    r"\b(due[ñn]o|due[ñn]a|propietari[oa]|socio|socia|fundador|fundadora|director|directora|"
    r"gerente|jefe|jefa|presidente|presidenta|ceo|cto|cfo|coo|cmo|vp|owner|founder|co-?founder|"
    r"head|manager|principal|partner|president|chief|decid[oe]|decision)\b",
    re.IGNORECASE,
)

# What each reason code means, shown beside the points (templates, API).
REASONS = {
    "need_stated": _("Said what they need"),
    "need_unknown": _("Need not stated yet"),
    "budget_stated": _("Gave a budget"),
    "budget_unknown": _("No budget yet"),
    "authority_decider": _("Decides the purchase (role)"),
    "authority_role": _("Role known, may not decide alone"),
    "authority_company": _("Company known, role unknown"),
    "authority_unknown": _("Role unknown"),
    "timeline_soon": _("Wants it soon"),
    "timeline_later": _("Wants it in a few months"),
    "timeline_far": _("Wants it much later"),
    "timeline_vague": _("Gave a timeline without a date"),
    "timeline_unknown": _("No timeline yet"),
    "engagement_booked": _("Booked the next step"),
    "engagement_active": _("Left contact details and keeps talking"),
    "engagement_contact": _("Left contact details"),
    "engagement_talking": _("Talking, no contact details yet"),
    "engagement_none": _("Barely engaged"),
}


@dataclass(frozen=True)
class ScoreInput:
    need: str = ""
    budget_amount: Decimal | None = None
    role: str = ""
    company_name: str = ""
    timeline: str = ""
    timeline_date: date | None = None
    email: str = ""
    phone: str = ""
    visitor_messages: int = 0
    booked: bool = False


@dataclass(frozen=True)
class Score:
    value: int
    breakdown: dict[str, dict[str, Any]]


def _part(lead: ScoreInput, part: str, today: date, full_days: int) -> tuple[float, str]:
    """The share (0-1) of a part's weight the lead earns, and why."""
    if part == "need":
        return (1.0, "need_stated") if lead.need.strip() else (0.0, "need_unknown")
    if part == "budget":
        if lead.budget_amount is not None and lead.budget_amount > 0:
            return 1.0, "budget_stated"
        return 0.0, "budget_unknown"
    if part == "authority":
        if lead.role and _DECIDER.search(lead.role):
            return 1.0, "authority_decider"
        if lead.role:
            return 0.5, "authority_role"
        if lead.company_name:
            return 0.25, "authority_company"
        return 0.0, "authority_unknown"
    if part == "timeline":
        if lead.timeline_date is not None:
            days = (lead.timeline_date - today).days
            if days <= full_days:
                return 1.0, "timeline_soon"
            if days <= 2 * full_days:
                return 0.5, "timeline_later"
            return 0.25, "timeline_far"
        if lead.timeline:
            return 0.5, "timeline_vague"
        return 0.0, "timeline_unknown"
    # engagement
    if lead.booked:
        return 1.0, "engagement_booked"
    talking = min(lead.visitor_messages, 6) / 6
    if lead.email or lead.phone:
        share = 0.5 + 0.5 * talking
        return share, "engagement_active" if talking >= 0.5 else "engagement_contact"
    if lead.visitor_messages >= 2:
        return 0.5 * talking, "engagement_talking"
    return 0.5 * talking, "engagement_none"


def score_compute(
    lead: ScoreInput, *, weights: dict[str, int], today: date, timeline_full_days: int = 90
) -> Score:
    """The score (rounded, 0-100) and its breakdown: for each part its points, its maximum
    (the weight) and a reason code (REASONS). Weights need not add up to 100: the score is the
    share of the total weight earned."""
    total_weight = sum(weights.get(part, 0) for part in PARTS)
    breakdown: dict[str, dict[str, Any]] = {}
    earned = 0.0
    for part in PARTS:
        weight = weights.get(part, 0)
        share, reason = _part(lead, part, today, timeline_full_days)
        points = weight * share
        earned += points
        breakdown[part] = {"points": round(points, 1), "max": weight, "reason": reason}
    value = round(100 * earned / total_weight) if total_weight else 0
    return Score(value=max(0, min(100, value)), breakdown=breakdown)


def reason_text(code: str) -> str:
    return str(REASONS.get(code, code))
