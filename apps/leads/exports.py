"""CSV exports of leads and of conversation transcripts, streamed.

Rows are read in chunks by id (keyset: `id > last`), each chunk one short query inside the
company's schema. Unlike a server-side cursor (`QuerySet.iterator()` on PostgreSQL), a chunk
query does not need to run on the same thread or connection as the previous one, which the
ASGI server does not promise across the awaits of a streamed response. Memory stays at one
chunk whatever the export's size.

Enumerations (stage, channel, role, status) are written as their codes, the same in every
language. Cells are made safe for spreadsheets (CSV injection): text starting with = + - @ (or
a tab or carriage return) gets a leading apostrophe. The file starts with a UTF-8 byte order mark so
that Excel reads accents right.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from apps.conversations.models import Conversation, Message
from apps.leads.models import Lead

CHUNK = 2000
CONVERSATION_CHUNK = 200
BOM = "\ufeff"
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """A cell as text a spreadsheet shows rather than evaluates."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_DANGEROUS):
        return "'" + text
    return text


class _Line:
    """A file-like object whose write returns what was written (csv.writer into a string)."""

    def write(self, value: str) -> str:
        return value


def _encode(rows: Iterable[list[Any]]) -> str:
    writer = csv.writer(_Line())
    return "".join(writer.writerow([csv_safe(cell) for cell in row]) for row in rows)


def _when(value: Any) -> str:
    return timezone.localtime(value).isoformat() if value else ""


# --- Leads -------------------------------------------------------------------------------


def lead_headers() -> list[str]:
    return [
        _("ID"), _("Name"), _("Email"), _("Phone"), _("Company"), _("Role"), _("Need"),
        _("Stage"), _("Score"), _("Owner"), _("Channel"), _("Tags"), _("Budget"),
        _("Currency"), _("Timeline"), _("Timeline date"), _("Preferred channel"),
        _("Preferred time"), _("Created"), _("Updated"),
    ]  # fmt: skip


LEAD_COLUMNS = (
    "pk", "name", "email", "phone", "company_name", "role", "need", "stage", "score",
    "owner__email", "source_channel", "tags", "budget_amount", "budget_currency", "timeline",
    "timeline_date", "preferred_channel", "preferred_time", "created_at", "updated_at",
)  # fmt: skip


def lead_row(values: dict[str, Any]) -> list[Any]:
    """One lead's cells from its LEAD_COLUMNS values (plain values: no model instances, which
    cost more than the CSV itself)."""
    row = []
    for column in LEAD_COLUMNS:
        value = values[column]
        if column == "tags":
            value = ", ".join(value)
        elif column in {"created_at", "updated_at"}:
            value = _when(value)
        elif column == "timeline_date":
            value = value.isoformat() if value else ""
        row.append("" if value is None else value)
    return row


def _lead_chunks(leads: QuerySet[Lead]) -> Iterator[list[list[Any]]]:
    last = 0
    while True:
        chunk = list(leads.filter(pk__gt=last).order_by("pk").values(*LEAD_COLUMNS)[:CHUNK])
        if not chunk:
            return
        last = chunk[-1]["pk"]
        yield [lead_row(values) for values in chunk]


# --- Conversations ----------------------------------------------------------------------


def message_headers() -> list[str]:
    return [
        _("Conversation"), _("Channel"), _("Lead"), _("Contact"), _("Message"), _("Role"),
        _("Author"), _("Status"), _("Text"), _("Time"),
    ]  # fmt: skip


def message_row(conversation: Conversation, message: Message) -> list[Any]:
    author = ""
    if message.author_id and message.author:
        author = message.author.email
    return [
        conversation.pk,
        conversation.channel,
        conversation.contact.lead_id or "",
        str(conversation.contact),
        message.pk,
        message.role,
        author,
        message.status,
        message.text,
        _when(message.created_at),
    ]


def _message_chunks(conversations: QuerySet[Conversation]) -> Iterator[list[list[Any]]]:
    """Per chunk of conversations (by id), their messages in order: one query for the
    conversations and one for their messages."""
    last = 0
    while True:
        block = list(
            conversations.filter(pk__gt=last)
            .select_related("contact")
            .order_by("pk")[:CONVERSATION_CHUNK]
        )
        if not block:
            return
        last = block[-1].pk
        by_id = {c.pk: c for c in block}
        messages = (
            Message.objects.filter(conversation_id__in=by_id)
            .select_related("author")
            .order_by("conversation_id", "created_at", "id")
        )
        rows = [message_row(by_id[m.conversation_id], m) for m in messages]
        if rows:
            yield rows


def messages_count(conversations: QuerySet[Conversation]) -> int:
    return Message.objects.filter(conversation__in=conversations.values("pk")).count()


# --- The response --------------------------------------------------------------------------


def csv_response(
    *,
    request: HttpRequest,
    filename: str,
    headers: list[str],
    chunks: Callable[[], Iterator[list[list[Any]]]],
    total: int,
) -> StreamingHttpResponse:
    """Stream `headers` then every chunk of rows as CSV. Served by the ASGI server the content
    is an async iterator (a sync one would be read whole before the first byte is sent); each
    chunk is read in a worker thread inside the current company's schema."""
    company = request.tenant  # type: ignore[attr-defined]
    language = translation.get_language()
    head = BOM + _encode([headers])

    def sync_content() -> Iterator[bytes]:
        yield head.encode()
        rows = chunks()
        while True:
            with tenant_context(company), translation.override(language):
                chunk = next(rows, None)
            if chunk is None:
                return
            yield _encode(chunk).encode()

    async def async_content() -> AsyncIterator[bytes]:
        content = sync_content()
        while True:
            part = await sync_to_async(_next, thread_sensitive=True)(content)
            if part is None:
                return
            yield part

    asgi = request.__class__.__name__ == "ASGIRequest"
    response = StreamingHttpResponse(
        async_content() if asgi else sync_content(), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Total-Count"] = str(total)
    response["Cache-Control"] = "no-store"
    return response


def _next(parts: Iterator[bytes]) -> bytes | None:
    return next(parts, None)


def leads_csv(*, request: HttpRequest, leads: QuerySet[Lead]) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_response(
        request=request,
        filename=f"leads-{stamp}.csv",
        headers=lead_headers(),
        chunks=lambda: _lead_chunks(leads),
        total=leads.count(),
    )


def conversations_csv(
    *, request: HttpRequest, conversations: QuerySet[Conversation]
) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_response(
        request=request,
        filename=f"conversations-{stamp}.csv",
        headers=message_headers(),
        chunks=lambda: _message_chunks(conversations),
        total=messages_count(conversations),
    )
