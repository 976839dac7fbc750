"""REST API v1: the key's company's analytics for a period (`read` scope), the figures of the
dashboard's analytics page (apps.analytics.selectors), from the rollups."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics.selectors import (
    MAX_DAYS,
    analytics_summary,
    company_zone,
    period_parse,
    summary_json,
)
from apps.api.authentication import require_scope
from apps.api.errors import ApiError
from apps.api.serializers import ErrorSerializer
from apps.api.views import _read_rate_limit as rate_limit
from apps.conversations.models import Channel

CHANNELS = [c for c in Channel.values if c != Channel.TEST]  # the test chat is not traffic


class DayFiguresSerializer(serializers.Serializer):
    day = serializers.DateField()
    conversations = serializers.IntegerField()
    visitor_messages = serializers.IntegerField()
    leads = serializers.IntegerField()
    qualified = serializers.IntegerField()
    won = serializers.IntegerField()
    cost = serializers.FloatField()


class ChannelFiguresSerializer(serializers.Serializer):
    channel = serializers.CharField()
    conversations = serializers.IntegerField()
    visitor_messages = serializers.IntegerField()
    leads = serializers.IntegerField()
    qualified = serializers.IntegerField()
    won = serializers.IntegerField()


class FunnelStepSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=["visitors", "engaged", "leads", "qualified", "won"])
    count = serializers.IntegerField()


class PageFiguresSerializer(serializers.Serializer):
    page = serializers.CharField()
    conversations = serializers.IntegerField()


class ModelFiguresSerializer(serializers.Serializer):
    day = serializers.DateField()
    provider = serializers.CharField()
    model = serializers.CharField()
    replies = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField()


class AnalyticsSerializer(serializers.Serializer):
    from_ = serializers.DateField(help_text="First day (the company's time zone).")
    to = serializers.DateField(help_text="Last day, included.")
    channel = serializers.CharField(allow_null=True)
    totals = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Sums over the period: conversations, visitor_messages, replies, "
        "agent_messages, engaged, leads, qualified, meetings, won, handoffs, fallbacks, errors, "
        "first_response_ms_sum, first_responses, ttft_ms_sum, ttft_count, input_tokens, "
        "output_tokens, cost.",
    )
    unique_visitors = serializers.IntegerField()
    rates = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="qualification, conversion, lead_capture, handoff, resolved_by_assistant, "
        "engagement (0-1, null without data).",
    )
    first_response_ms = serializers.FloatField(allow_null=True)
    ttft_ms = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="p50, p95, mean, count."
    )
    series = DayFiguresSerializer(many=True)
    channels = ChannelFiguresSerializer(many=True)
    funnel = FunnelStepSerializer(many=True)
    top_pages = PageFiguresSerializer(many=True)
    heatmap = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Visitor messages by weekday (0 = Monday) and hour (0-23, company time).",
    )
    models = ModelFiguresSerializer(many=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # "from" is a Python keyword
        return fields


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


@extend_schema(
    summary="Analytics for a period",
    description=(
        "The figures of the dashboard's analytics page for the key's company: totals, rates, "
        "time to first token, the funnel, daily series, channels, top pages, busiest hours and "
        "tokens/cost per model. Updated every minute from incremental rollups. Requires the "
        "`read` scope."
    ),
    tags=["Analytics"],
    parameters=[
        OpenApiParameter(
            "from", OpenApiTypes.DATE, description="First day (default: 29 days before `to`)."
        ),
        OpenApiParameter(
            "to", OpenApiTypes.DATE, description="Last day, included (default: today)."
        ),
        OpenApiParameter("channel", OpenApiTypes.STR, enum=CHANNELS),
    ],
    responses={
        200: AnalyticsSerializer,
        400: _error("An invalid parameter (named in `field`)."),
        401: _error("Missing, invalid or revoked key."),
        403: _error("Wrong scope or company suspended."),
        429: _error("Rate limited; see Retry-After."),
    },
)
class AnalyticsView(APIView):
    """GET /v1/analytics"""

    def get(self, request: Request) -> Response:
        principal = require_scope(request, "read")
        rate_limit(request, principal)
        params = request.query_params
        for name in ("from", "to"):
            if name in params:
                try:
                    date.fromisoformat(params[name])
                except ValueError:
                    raise ApiError(
                        "invalid_request", f"{name}: use a date, YYYY-MM-DD.", field=name
                    ) from None
        with tenant_context(principal.company):
            period, problems = period_parse(
                params, today=timezone.now().astimezone(company_zone()).date()
            )
            if problems:
                field = problems[0]
                message = {
                    "from": f"from: on or before `to`, for a period of at most {MAX_DAYS} days.",
                    "channel": f"channel: one of {', '.join(CHANNELS)}.",
                }.get(field, f"{field}: invalid.")
                raise ApiError("invalid_request", message, field=field)
            return Response(summary_json(analytics_summary(period)))
