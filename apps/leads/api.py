"""REST API v1 for leads: list, read and update them (stage, owner, notes) with an API key.

The company is the key's; every read and write happens inside its schema, as for
conversations (`apps.api.views`). Changes go through `apps.leads.services`.
"""

from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Membership, Role, User
from apps.api.authentication import require_scope
from apps.api.errors import ApiError
from apps.api.serializers import ErrorSerializer

# The read endpoints' rate limit (per key and per IP) applies to these endpoints too.
from apps.api.views import _read_rate_limit as rate_limit
from apps.conversations.models import Conversation
from apps.leads.models import Lead, Stage
from apps.leads.scoring import PARTS, reason_text
from apps.leads.services import lead_notes_set, lead_owner_set, lead_stage_set

TAGS = ["Leads"]
PATCH_FIELDS = ("stage", "owner", "notes")
NOTES_MAX_CHARS = 20_000
_MIN_SCORE = re.compile(r"[0-9]{1,3}")
_MAX_ID = 2**63 - 1


# --- Serializers ---------------------------------------------------------------------------


class LeadOwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class BudgetSerializer(serializers.Serializer):
    amount = serializers.CharField(help_text='A decimal string with two decimals: "1500.00".')
    currency = serializers.CharField(help_text="ISO 4217 code; empty when not stated.")


class TimelineSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="What the visitor said (empty when unknown).")
    date = serializers.DateField(allow_null=True, help_text="The date it was read as, if any.")


class BookingSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="demo, visit, call…")
    at = serializers.DateTimeField(allow_null=True)
    link = serializers.CharField(help_text="The booking link sent, if any.")


class ScorePartSerializer(serializers.Serializer):
    part = serializers.ChoiceField(choices=PARTS)
    points = serializers.FloatField()
    max = serializers.IntegerField(help_text="The company's weight for this part.")
    reason = serializers.CharField(help_text="A stable reason code.")
    explanation = serializers.CharField(help_text="The reason in words.")


class LeadSerializer(serializers.ModelSerializer):
    budget = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    context = serializers.DictField(help_text="UTM parameters and the referrer.")
    score_breakdown = serializers.SerializerMethodField()
    field_sources = serializers.DictField(
        child=serializers.CharField(),
        help_text="Where each field's value came from: model, extractor, visitor or agent.",
    )
    booking = serializers.SerializerMethodField()
    conversation_ids = serializers.ListField(child=serializers.IntegerField())

    class Meta:
        model = Lead
        fields = [
            "id", "name", "email", "phone", "company_name", "role", "need", "budget",
            "timeline", "preferred_channel", "preferred_time", "source_channel", "first_page",
            "context", "stage", "owner", "tags", "notes", "score", "score_breakdown",
            "field_sources", "qualified_at", "booking", "conversation_ids", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(BudgetSerializer(allow_null=True))
    def get_budget(self, lead: Lead) -> dict[str, str] | None:
        if lead.budget_amount is None:
            return None
        amount = Decimal(lead.budget_amount).quantize(Decimal("0.01"))
        return {"amount": str(amount), "currency": lead.budget_currency}

    @extend_schema_field(TimelineSerializer)
    def get_timeline(self, lead: Lead) -> dict[str, Any]:
        date = lead.timeline_date
        return {"text": lead.timeline, "date": date.isoformat() if date else None}

    @extend_schema_field(LeadOwnerSerializer(allow_null=True))
    def get_owner(self, lead: Lead) -> dict[str, Any] | None:
        owner = lead.owner
        if owner is None:
            return None
        return {"id": owner.pk, "email": owner.email, "name": owner.name}

    @extend_schema_field(ScorePartSerializer(many=True))
    def get_score_breakdown(self, lead: Lead) -> list[dict[str, Any]]:
        stored = lead.score_breakdown if isinstance(lead.score_breakdown, dict) else {}
        order = [part for part in PARTS if part in stored]
        order += sorted(part for part in stored if part not in PARTS)
        parts = []
        for part in order:
            item = stored[part] if isinstance(stored[part], dict) else {}
            reason = str(item.get("reason", ""))
            parts.append(
                {
                    "part": part,
                    "points": float(item.get("points", 0)),
                    "max": int(item.get("max", 0)),
                    "reason": reason,
                    "explanation": reason_text(reason) if reason else "",
                }
            )
        return parts

    @extend_schema_field(BookingSerializer(allow_null=True))
    def get_booking(self, lead: Lead) -> dict[str, Any] | None:
        if not (lead.booking_kind or lead.booking_at or lead.booking_link):
            return None
        at = lead.booking_at
        return {
            "kind": lead.booking_kind,
            "at": serializers.DateTimeField().to_representation(at) if at else None,
            "link": lead.booking_link,
        }


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "format": "email"},
        ],
        "nullable": True,
        "description": "The new owner's user id or email; null to unassign.",
    }
)
class OwnerReferenceField(serializers.Field):
    """A team member named by user id or email (the lookup happens in the company's schema)."""

    default_error_messages = {"invalid": "Use the owner's email or user id, or null."}

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            if not 0 < data <= _MAX_ID:
                self.fail("invalid")
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        value = data.strip()
        try:
            validate_email(value)
        except DjangoValidationError:
            self.fail("invalid")
        return value.lower()

    def to_representation(self, value: Any) -> Any:
        return value


class StrictCharField(serializers.CharField):
    """A string, never a number turned into one (DRF's CharField accepts 5 as "5")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class LeadUpdateSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=Stage.choices,
        required=False,
        error_messages={"invalid_choice": f"use one of {', '.join(Stage.values)}."},
    )
    owner = OwnerReferenceField(required=False, allow_null=True)
    notes = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=NOTES_MAX_CHARS,
        help_text="Replaces the lead's notes.",
    )  # fmt: skip


# --- Reading -------------------------------------------------------------------------------


def _leads() -> QuerySet[Lead]:
    """Leads with everything the serializer reads, in one query: the owner joined, the
    conversation ids aggregated by a subquery."""
    conversation_ids = (
        Conversation.objects.filter(contact__lead=OuterRef("pk")).order_by("id").values("id")
    )
    return Lead.objects.select_related("owner").annotate(
        conversation_ids=ArraySubquery(conversation_ids)
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError("invalid_request", f"{field}: {message}", field=field)


class LeadPagination(CursorPagination):
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = ("-updated_at", "-id")


LEAD_EXAMPLE = {
    "id": 42,
    "name": "Ana Pérez",
    "email": "ana@example.com",
    "phone": "+5215512345678",
    "company_name": "Ferretería Pérez",
    "role": "Dueña",
    "need": "Un asistente para WhatsApp",
    "budget": {"amount": "1500.00", "currency": "USD"},
    "timeline": {"text": "el próximo mes", "date": "2025-07-01"},
    "preferred_channel": "whatsapp",
    "preferred_time": "por la mañana",
    "source_channel": "web",
    "first_page": "https://shop.example.com/precios",
    "context": {"utm_source": "google"},
    "stage": "qualified",
    "owner": {"id": 3, "email": "sales@example.com", "name": "Sales Rep"},
    "tags": ["vip"],
    "notes": "Call after 10am.",
    "score": 85,
    "score_breakdown": [
        {"part": "need", "points": 25.0, "max": 25, "reason": "need_stated",
         "explanation": "Said what they need"},
        {"part": "budget", "points": 25.0, "max": 25, "reason": "budget_stated",
         "explanation": "Gave a budget"},
        {"part": "authority", "points": 15.0, "max": 15, "reason": "authority_decider",
         "explanation": "Decides the purchase (role)"},
        {"part": "timeline", "points": 20.0, "max": 20, "reason": "timeline_soon",
         "explanation": "Wants it soon"},
        {"part": "engagement", "points": 0.0, "max": 15, "reason": "engagement_none",
         "explanation": "Barely engaged"},
    ],
    "field_sources": {"email": "extractor", "need": "model"},
    "qualified_at": "2025-06-02T15:04:05Z",
    "booking": {"kind": "demo", "at": "2025-06-05T16:00:00Z", "link": ""},
    "conversation_ids": [7, 9],
    "created_at": "2025-06-02T14:00:00Z",
    "updated_at": "2025-06-02T15:04:05Z",
}  # fmt: skip


def _error(description: str, code: str, message: str, field: str | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"error": body})],
    )


UNAUTHORIZED = _error(
    "Missing, invalid or revoked key.", "invalid_api_key", "The API key is not valid."
)
RATE_LIMITED = _error(
    "Rate limited; see Retry-After.", "rate_limited", "Too many requests: slow down."
)
NOT_FOUND = _error("No such lead in the key's company.", "not_found", "Not found.")


def _forbidden(scope: str) -> Any:
    return _error(
        "Wrong scope or company suspended.",
        "forbidden_scope",
        f"This key lacks the '{scope}' scope.",
    )


@extend_schema(
    summary="List leads",
    description=(
        "The key's company's leads, most recently updated first, a page at a time: follow "
        "`next` (a cursor) until it is null. Requires the `read` scope."
    ),
    tags=TAGS,
    parameters=[
        OpenApiParameter(
            "stage",
            OpenApiTypes.STR,
            enum=Stage.values,
            many=True,
            explode=True,
            description="Only these stages: repeat the parameter or separate them by commas.",
        ),
        OpenApiParameter(
            "min_score",
            OpenApiTypes.INT,
            description="Only leads scoring at least this (0-100).",
        ),
        OpenApiParameter(
            "updated_since",
            OpenApiTypes.DATETIME,
            description="Only leads updated at or after this ISO 8601 date-time (UTC without "
            "an offset).",
        ),
    ],
    responses={
        200: LeadSerializer(many=True),
        400: _error(
            "An invalid filter.",
            "invalid_request",
            "min_score: a whole number from 0 to 100.",
            "min_score",
        ),
        401: UNAUTHORIZED,
        403: _forbidden("read"),
        429: RATE_LIMITED,
    },
    examples=[OpenApiExample("A lead", value=LEAD_EXAMPLE, response_only=True)],
)
class LeadListView(ListAPIView):
    """GET /v1/leads: the key's company's leads, most recently updated first."""

    serializer_class = LeadSerializer
    pagination_class = LeadPagination

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        principal = require_scope(request, "read")
        rate_limit(request, principal)
        with tenant_context(principal.company):
            response = super().list(request, *args, **kwargs)
            response.data = dict(response.data)  # evaluate inside the company's schema
        return response

    def get_queryset(self) -> QuerySet[Lead]:
        queryset = _leads()
        params = self.request.query_params
        if "stage" in params:
            stages = [
                part.strip() for value in params.getlist("stage") for part in value.split(",")
            ]
            stages = [stage for stage in stages if stage]
            if not stages or any(stage not in Stage.values for stage in stages):
                raise _invalid("stage", f"use one of {', '.join(Stage.values)}.")
            queryset = queryset.filter(stage__in=stages)
        if "min_score" in params:
            raw = params["min_score"].strip()
            if not _MIN_SCORE.fullmatch(raw) or int(raw) > 100:
                raise _invalid("min_score", "a whole number from 0 to 100.")
            queryset = queryset.filter(score__gte=int(raw))
        if "updated_since" in params:
            try:
                since = parse_datetime(params["updated_since"])
            except ValueError:
                since = None
            if since is None:
                raise _invalid("updated_since", "use an ISO 8601 date-time.")
            if timezone.is_naive(since):
                since = since.replace(tzinfo=UTC)
            queryset = queryset.filter(updated_at__gte=since)
        return queryset


# --- Reading one and updating --------------------------------------------------------------


def _owner_resolve(reference: int | str) -> User:
    """The team member `reference` names (id or email), who must be able to work leads:
    an active member of this company who is not a viewer."""
    lookup = (
        {"user_id": reference} if isinstance(reference, int) else {"user__email__iexact": reference}
    )
    membership = (
        Membership.objects.select_related("user").filter(user__is_active=True, **lookup).first()
    )
    if membership is None:
        raise _invalid("owner", "no active team member of this company has that email or id.")
    if membership.role == Role.VIEWER:
        raise _invalid("owner", "viewers cannot own leads.")
    return membership.user


def _patch_payload(request: Request) -> dict[str, Any]:
    """The PATCH body, validated for shape (not yet against the company's data)."""
    payload = request.data
    if not isinstance(payload, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    unknown = sorted(str(key) for key in payload if key not in PATCH_FIELDS)
    if unknown:
        raise ApiError(
            "invalid_request",
            f"Unknown fields: {', '.join(unknown)}. Only stage, owner and notes can be changed.",
            field=unknown[0],
        )
    if not payload:
        raise ApiError("invalid_request", "Send at least one of stage, owner and notes.")
    serializer = LeadUpdateSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _lead_data(pk: int) -> dict[str, Any]:
    return dict(LeadSerializer(get_object_or_404(_leads(), pk=pk)).data)


@extend_schema(tags=TAGS)
class LeadDetailView(GenericAPIView):
    """GET and PATCH /v1/leads/{id}: one lead of the key's company."""

    serializer_class = LeadSerializer
    queryset = Lead.objects.all()

    @extend_schema(
        operation_id="leads_retrieve",
        summary="Read a lead",
        description="Every field of one lead of the key's company. Requires the `read` scope.",
        responses={
            200: OpenApiResponse(
                LeadSerializer,
                examples=[OpenApiExample("A lead", value=LEAD_EXAMPLE)],
            ),
            401: UNAUTHORIZED,
            403: _forbidden("read"),
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        principal = require_scope(request, "read")
        rate_limit(request, principal)
        with tenant_context(principal.company):
            return Response(_lead_data(pk))

    @extend_schema(
        operation_id="leads_partial_update",
        summary="Update a lead's stage, owner or notes",
        description=(
            "Changes only the fields sent: `stage`, `owner` (a team member's user id or "
            "email, not a viewer; null to unassign) and `notes` (replaces them). Any other "
            "field is refused. Every change is recorded in the lead's history. Answers the "
            "lead as `GET` does. Requires the `write` scope."
        ),
        request=LeadUpdateSerializer,
        examples=[
            OpenApiExample(
                "Move and assign",
                value={"stage": "contacted", "owner": "sales@example.com"},
                request_only=True,
            ),
            OpenApiExample("Unassign", value={"owner": None}, request_only=True),
        ],
        responses={
            200: OpenApiResponse(
                LeadSerializer,
                examples=[OpenApiExample("The updated lead", value=LEAD_EXAMPLE)],
            ),
            400: _error(
                "Unknown field, invalid value, or an owner who cannot own leads.",
                "invalid_request",
                "Unknown fields: score. Only stage, owner and notes can be changed.",
                "score",
            ),
            401: UNAUTHORIZED,
            403: _forbidden("write"),
            404: NOT_FOUND,
            415: _error(
                "The body is not JSON.",
                "unsupported_media_type",
                "Send JSON (Content-Type: application/json).",
            ),
            429: RATE_LIMITED,
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        principal = require_scope(request, "write")
        rate_limit(request, principal)
        changes = _patch_payload(request)
        with tenant_context(principal.company):
            with transaction.atomic():
                lead = get_object_or_404(Lead.objects.select_for_update(), pk=pk)
                # The services take a user as actor; an API key is none, so actor=None.
                if "owner" in changes:
                    reference = changes["owner"]
                    owner = _owner_resolve(reference) if reference is not None else None
                    lead_owner_set(lead=lead, owner=owner, actor=None)
                if "stage" in changes:
                    lead_stage_set(lead=lead, stage=changes["stage"], actor=None)
                if "notes" in changes:
                    lead_notes_set(lead=lead, notes=changes["notes"], actor=None)
            return Response(_lead_data(pk))
