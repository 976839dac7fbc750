"""Reads for the sales inbox: which leads and conversations a team member may see, the leads
list's filters, sorting and pagination, a lead's timeline and its transcript across channels,
and the handoff queue. Every query here has a fixed number of statements whatever the number
of rows it shows (the pages' query counts are tested)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import MANAGER_ROLES, Membership, Role
from apps.conversations.models import Channel, Conversation, Message
from apps.leads.models import Lead, LeadEvent, Notification, Stage

PAGE_SIZE = 50
# The list counts at most this many matches ("10,000+"): an exact count of a large filtered
# set costs a full scan on every page view.
COUNT_LIMIT = 10_000
# A lead's page shows at most this many of its latest messages and events.
TRANSCRIPT_LIMIT = 2000
TIMELINE_LIMIT = 300
QUEUE_LIMIT = 100

SORTS = {
    "updated": "updated_at",
    "created": "created_at",
    "score": "score",
    "name": "name",
}
# Columns the list shows: big JSON columns (breakdown, context) stay in the database.
LIST_COLUMNS = (
    "id", "name", "email", "phone", "company_name", "stage", "score", "owner", "source_channel",
    "tags", "created_at", "updated_at",
    "owner__id", "owner__name", "owner__email",
)  # fmt: skip


# --- Who sees what ----------------------------------------------------------------------


def is_manager(member: Membership) -> bool:
    return member.role in MANAGER_ROLES


def can_edit(member: Membership) -> bool:
    return member.role != Role.VIEWER


def leads_visible(*, member: Membership) -> QuerySet[Lead]:
    """Agents see the leads they own; owners, admins and viewers see every lead."""
    leads = Lead.objects.all()
    if member.role == Role.AGENT:
        leads = leads.filter(owner_id=member.user_id)
    return leads


def conversations_visible(*, member: Membership) -> QuerySet[Conversation]:
    """Agents see the queue (waiting for a person), the conversations they have, and those of
    the leads they own; everybody else sees every conversation."""
    conversations = Conversation.objects.all()
    if member.role == Role.AGENT:
        conversations = conversations.filter(
            Q(mode=Conversation.Mode.PENDING_HUMAN)
            | Q(agent_id=member.user_id)
            | Q(contact__lead__owner_id=member.user_id)
        )
    return conversations


def conversation_can_see(*, member: Membership, conversation_id: int) -> bool:
    return conversations_visible(member=member).filter(pk=conversation_id).exists()


def members_assignable() -> list[Membership]:
    """Team members a lead can be assigned to (viewers cannot work leads)."""
    return list(
        Membership.objects.exclude(role=Role.VIEWER)
        .filter(user__is_active=True)
        .select_related("user")
        .order_by("user__name", "user__email")
    )


# --- The leads list ------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadFilters:
    stages: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    channel: str = ""
    owner: str = ""  # "", "unassigned", "mine" or a user id
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    tag: str = ""
    q: str = ""
    sort: str = "updated"
    descending: bool = True
    page: int = 1
    errors: tuple[str, ...] = field(default=(), compare=False)

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (sorting and the page do not)."""
        return self != LeadFilters(sort=self.sort, descending=self.descending, page=self.page)


def _int(value: str | None, low: int, high: int) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(value) from None
    return max(low, min(high, number))


def _date(value: str | None) -> date | None:
    if not value:
        return None
    return date.fromisoformat(value)


def lead_filters_parse(params: Mapping[str, Any]) -> LeadFilters:
    """The list's filters from a query string (a QueryDict or a dict of lists); values that
    do not parse are dropped and named in `errors`."""

    def get(name: str) -> str:
        getter = getattr(params, "get", None)
        value = getter(name) if getter else None
        return str(value or "").strip()

    def getlist(name: str) -> list[str]:
        if hasattr(params, "getlist"):
            return [str(v) for v in params.getlist(name)]
        value = params.get(name) or []
        return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]

    errors: list[str] = []
    values: dict[str, Any] = {}
    values["stages"] = tuple(s for s in getlist("stage") if s in Stage.values)
    for name in ("score_min", "score_max"):
        try:
            values[name] = _int(get(name), 0, 100)
        except ValueError:
            errors.append(name)
    for name in ("created_from", "created_to", "updated_from", "updated_to"):
        try:
            values[name] = _date(get(name))
        except ValueError:
            errors.append(name)
    channel = get("channel")
    values["channel"] = channel if channel in Channel.values else ""
    owner = get("owner")
    values["owner"] = owner if owner in {"unassigned", "mine"} or owner.isdigit() else ""
    values["tag"] = get("tag").lower()[:50]
    values["q"] = get("q")[:100]
    sort = get("sort") or "updated"
    descending = sort.startswith("-") or (sort == "updated" and not get("sort"))
    sort = sort.lstrip("-")
    if sort not in SORTS:
        sort, descending = "updated", True
    values["sort"], values["descending"] = sort, descending
    try:
        values["page"] = max(1, min(100_000, int(get("page") or 1)))
    except ValueError:
        values["page"] = 1
    return LeadFilters(**values, errors=tuple(errors))


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _search(q: str) -> Q:
    """Name, email, phone or company containing every word of `q` (case-insensitive). A word
    of digits also matches phones written with spaces, dashes or dots between them."""
    condition = Q()
    for word in q.split()[:5]:
        term = (
            Q(name__icontains=word)
            | Q(email__icontains=word)
            | Q(phone__icontains=word)
            | Q(company_name__icontains=word)
        )
        digits = "".join(c for c in word if c.isdigit())
        if len(digits) >= 4:
            # Phones are stored as written ("+57 300 111 2233"): digits in order, anything
            # but a digit between them.
            term |= Q(phone__regex="[^0-9]*".join(digits))
        condition &= term
    return condition


def leads_filter(
    leads: QuerySet[Lead], filters: LeadFilters, *, user: AbstractBaseUser
) -> QuerySet[Lead]:
    if filters.stages:
        leads = leads.filter(stage__in=filters.stages)
    if filters.score_min is not None:
        leads = leads.filter(score__gte=filters.score_min)
    if filters.score_max is not None:
        leads = leads.filter(score__lte=filters.score_max)
    if filters.channel:
        leads = leads.filter(source_channel=filters.channel)
    if filters.owner == "unassigned":
        leads = leads.filter(owner__isnull=True)
    elif filters.owner == "mine":
        leads = leads.filter(owner_id=user.pk)
    elif filters.owner:
        leads = leads.filter(owner_id=int(filters.owner))
    # Dates are whole days in the current time zone, both ends included.
    if filters.created_from:
        leads = leads.filter(created_at__gte=_day_start(filters.created_from))
    if filters.created_to:
        leads = leads.filter(created_at__lt=_day_start(filters.created_to + timedelta(days=1)))
    if filters.updated_from:
        leads = leads.filter(updated_at__gte=_day_start(filters.updated_from))
    if filters.updated_to:
        leads = leads.filter(updated_at__lt=_day_start(filters.updated_to + timedelta(days=1)))
    if filters.tag:
        leads = leads.filter(tags__contains=[filters.tag])
    if filters.q:
        leads = leads.filter(_search(filters.q))
    return leads


def leads_order(leads: QuerySet[Lead], filters: LeadFilters) -> QuerySet[Lead]:
    column = SORTS[filters.sort]
    sign = "-" if filters.descending else ""
    # The id breaks ties, so pages never repeat or skip a row.
    return leads.order_by(f"{sign}{column}", f"{sign}id")


@dataclass(frozen=True)
class LeadPage:
    rows: list[Lead]
    number: int
    page_size: int
    total: int  # at most COUNT_LIMIT + 1
    has_next: bool

    @property
    def count_limit(self) -> int:
        return COUNT_LIMIT

    @property
    def total_capped(self) -> bool:
        return self.total > COUNT_LIMIT

    @property
    def start(self) -> int:
        return (self.number - 1) * self.page_size + 1 if self.rows else 0

    @property
    def end(self) -> int:
        return self.start + len(self.rows) - 1 if self.rows else 0

    @property
    def last_number(self) -> int | None:
        if self.total_capped:
            return None
        return max(1, -(-self.total // self.page_size))


def bounded_count(queryset: QuerySet[Any], limit: int | None = None) -> int:
    """The number of rows, counting no further than `limit` (COUNT_LIMIT) + 1."""
    limit = COUNT_LIMIT if limit is None else limit
    return queryset.order_by()[: limit + 1].count()


def leads_page(
    *,
    member: Membership,
    filters: LeadFilters,
    page_size: int = PAGE_SIZE,
) -> LeadPage:
    """One page of the leads `member` may see, filtered and sorted. Two queries: the rows
    (one more than a page, to know whether another follows) and a bounded count."""
    leads = leads_filter(leads_visible(member=member), filters, user=member.user)
    ordered = leads_order(leads, filters).select_related("owner").only(*LIST_COLUMNS)
    offset = (filters.page - 1) * page_size
    rows = list(ordered[offset : offset + page_size + 1])
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    # A first page that is not full already tells the total: no count query.
    total = len(rows) if filters.page == 1 and not has_next else bounded_count(leads)
    return LeadPage(rows=rows, number=filters.page, page_size=page_size, total=total,
                    has_next=has_next)  # fmt: skip


def leads_for_export(*, member: Membership, filters: LeadFilters) -> QuerySet[Lead]:
    leads = leads_filter(leads_visible(member=member), filters, user=member.user)
    return leads.select_related("owner")


def lead_filters_query(filters: LeadFilters, **changes: Any) -> str:
    """The query string of `filters` with `changes` (for sort links and pages)."""
    from urllib.parse import urlencode

    filters = replace(filters, **changes)
    pairs: list[tuple[str, str]] = [("stage", s) for s in filters.stages]
    for name in ("score_min", "score_max", "created_from", "created_to", "updated_from",
                 "updated_to"):  # fmt: skip
        value = getattr(filters, name)
        if value is not None:
            pairs.append((name, str(value)))
    for name in ("channel", "owner", "tag", "q"):
        if getattr(filters, name):
            pairs.append((name, getattr(filters, name)))
    if (filters.sort, filters.descending) != ("updated", True):
        pairs.append(("sort", f"{'-' if filters.descending else ''}{filters.sort}"))
    if filters.page > 1:
        pairs.append(("page", str(filters.page)))
    return urlencode(pairs)


# --- One lead ------------------------------------------------------------------------------


def lead_get(*, member: Membership, pk: int) -> Lead | None:
    return leads_visible(member=member).select_related("owner").filter(pk=pk).first()


def lead_events(lead: Lead, limit: int = TIMELINE_LIMIT) -> list[LeadEvent]:
    return list(
        LeadEvent.objects.filter(lead=lead)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass
class TranscriptPart:
    """One conversation of a lead with its messages, oldest first."""

    conversation: Conversation
    messages: list[Message]


def lead_transcript(lead: Lead, limit: int = TRANSCRIPT_LIMIT) -> tuple[list[TranscriptPart], bool]:
    """Every conversation of the lead (all its contacts, all channels), oldest first, with
    the latest `limit` messages across them. Two queries. Returns (parts, truncated)."""
    conversations = list(
        Conversation.objects.filter(contact__lead=lead)
        .select_related("contact", "agent")
        .order_by("created_at", "id")
    )
    messages = list(
        Message.objects.filter(conversation__contact__lead=lead)
        .select_related("author")
        .order_by("-created_at", "-id")[: limit + 1]
    )
    truncated = len(messages) > limit
    messages = messages[:limit]
    messages.reverse()
    by_conversation: dict[int, list[Message]] = {}
    for message in messages:
        by_conversation.setdefault(message.conversation_id, []).append(message)
    parts = [TranscriptPart(c, by_conversation.get(c.pk, [])) for c in conversations]
    return parts, truncated


# --- Conversations and the queue -------------------------------------------------------------


def conversation_get(*, member: Membership, pk: int) -> Conversation | None:
    return (
        conversations_visible(member=member)
        .select_related("contact", "contact__lead", "agent")
        .filter(pk=pk)
        .first()
    )


def conversation_messages(
    conversation: Conversation, *, after: int = 0, limit: int = 500
) -> list[Message]:
    """The conversation's messages after id `after` (the latest `limit` when 0), oldest
    first, every status included (the team sees what was not delivered too)."""
    rows = Message.objects.filter(conversation=conversation).select_related("author")
    if after:
        return list(rows.filter(id__gt=after).order_by("id")[:limit])
    latest = list(rows.order_by("-created_at", "-id")[:limit])
    latest.reverse()
    return latest


@dataclass(frozen=True)
class Queue:
    waiting: list[Conversation]
    mine: list[Conversation]
    others: list[Conversation]  # managers only: taken by someone else


def queue_get(*, member: Membership) -> Queue:
    """The handoff queue: conversations waiting for a person (oldest request first), those
    `member` has, and for managers those the rest of the team has."""
    base = Conversation.objects.select_related("contact", "contact__lead", "agent")
    waiting = list(
        base.filter(mode=Conversation.Mode.PENDING_HUMAN).order_by("handoff_requested_at", "id")[
            :QUEUE_LIMIT
        ]
    )
    human = base.filter(mode=Conversation.Mode.HUMAN).order_by("-last_message_at", "-id")
    mine = list(human.filter(agent_id=member.user_id)[:QUEUE_LIMIT])
    others: list[Conversation] = []
    if is_manager(member) or member.role == Role.VIEWER:
        others = list(human.exclude(agent_id=member.user_id)[:QUEUE_LIMIT])
    return Queue(waiting=waiting, mine=mine, others=others)


def conversations_for_export(
    *, member: Membership, leads: QuerySet[Lead] | None
) -> QuerySet[Conversation]:
    """Conversations to export: those of `leads` (the list's filters), or every conversation
    `member` sees when the list is not filtered."""
    conversations = conversations_visible(member=member)
    if leads is not None:
        conversations = conversations.filter(contact__lead__in=leads.values("pk"))
    return conversations


NOTIFICATIONS_LIMIT = 50


def notifications_unread_count(*, user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def notifications_for(*, user_id: int, limit: int = NOTIFICATIONS_LIMIT) -> list[Notification]:
    """A member's latest notifications, newest first (their own only)."""
    return list(Notification.objects.filter(user_id=user_id)[:limit])
