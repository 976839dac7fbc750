"""REST API v1 on the public host; the company is the API key's."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from adrf.views import APIView as AsyncAPIView
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.authentication import require_scope
from apps.api.errors import ApiError, error_body
from apps.api.serializers import (
    ChatRequestSerializer,
    ChatResponseSerializer,
    ConversationDetailSerializer,
    ConversationSerializer,
    ErrorSerializer,
)
from apps.api.services import ApiPrincipal
from apps.conversations.models import Channel, Conversation, Message
from apps.conversations.services import message_receive, reply_summary
from chapi import ratelimit

FINAL_EVENTS = frozenset({"reply.completed", "reply.discarded"})

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed JSON or invalid field."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, invalid or revoked key."),
    403: OpenApiResponse(ErrorSerializer, description="Wrong scope or company suspended."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limited; see Retry-After."),
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400: malformed, too deep, huge numbers, NaN/Infinity
    and NUL characters (which PostgreSQL cannot store) are refused here."""
    try:
        payload = json.loads(
            raw or b"null", parse_constant=_reject_constant, parse_float=_finite_float
        )
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_json", "The request body is not valid JSON.") from exc
    if not isinstance(payload, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    if _has_nul(payload):
        raise ApiError("invalid_json", "Strings must not contain NUL characters.")
    return payload


def _client_ip(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _receive(
    principal: ApiPrincipal,
    data: dict[str, Any],
    reply_channel: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    with tenant_context(principal.company):
        received = message_receive(
            channel=Channel.API,
            session_id=data["session_id"],
            text=data["message"],
            external_id=f"{principal.company.pk}:{idempotency_key}" if idempotency_key else None,
            context=data.get("context") or None,
            reply_channel=reply_channel,
            reply_deltas=bool(data.get("stream")),
        )
        reply = None
        if not received.created:
            reply = (
                Message.objects.filter(reply_to=received.message)
                .exclude(status=Message.Status.GENERATING)
                .first()
            )
        return {
            "message_id": received.message.pk,
            "conversation_id": received.conversation.pk,
            "mode": received.conversation.mode,
            "created": received.created,
            "scheduled": received.scheduled,
            "reply": reply_summary(reply) if reply is not None else None,
        }


def _answer(
    session_id: str, conversation_id: int, mode: str, done: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "response": done["text"] if done else None,
        "session_id": session_id,
        "conversation_id": conversation_id,
        "message_id": done["message_id"] if done else None,
        "mode": mode,
        "fallback": bool(done and done.get("fallback")),
        "usage": done.get("usage") if done else None,
    }


class ChatView(AsyncAPIView):
    """POST /v1/chat: a visitor message in, the assistant's answer out (JSON or SSE)."""

    @extend_schema(
        operation_id="chat",
        summary="Send a message and get the assistant's answer",
        description=(
            "Stores the message, generates the answer through the reply pipeline and returns "
            'it. The same `session_id` continues the same conversation. With `"stream": '
            'true` the answer is `text/event-stream`: `delta` events ({"text"}), an optional '
            "`reset` (a retry started over), then one `done` event with the same body as the "
            "JSON answer. An `Idempotency-Key` header makes retries of the same request safe: "
            "it is answered once. Requires the `chat` scope."
        ),
        request=ChatRequestSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False
            )
        ],
        responses={
            200: ChatResponseSerializer,
            **ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="Body over 32 KB."),
            503: OpenApiResponse(ErrorSerializer, description="The assistant is unavailable."),
        },
        tags=["chat"],
    )
    async def post(self, request: Request) -> Response | StreamingHttpResponse:
        principal = require_scope(request, "chat")
        raw = request._request.body  # checked before parsing: never parse a huge body
        if len(raw) > settings.CHAT_MAX_BODY_BYTES:
            raise ApiError("payload_too_large", "The body is larger than 32 KB.", http_status=413)
        payload = _json_object(raw)
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
            raise ApiError(
                "invalid_request",
                "Idempotency-Key: use 1 to 200 characters.",
                field="Idempotency-Key",
            )
        serializer = ChatRequestSerializer(data=payload)
        if not serializer.is_valid():
            field, messages = next(iter(serializer.errors.items()))
            detail = messages[0] if isinstance(messages, list) else messages
            code = (
                "message_too_long"
                if getattr(detail, "code", "") == "too_long"
                else "invalid_request"
            )
            raise ApiError(code, f"{field}: {detail}", field=field)
        data = serializer.validated_data
        wait = await ratelimit.ahit(
            [
                (principal.rate_limit_id, settings.API_RATE_LIMIT_PER_KEY),
                (
                    f"session:{principal.company.pk}:{data['session_id']}",
                    settings.API_RATE_LIMIT_PER_SESSION,
                ),
                (f"ip:{_client_ip(request)}", settings.API_RATE_LIMIT_PER_IP),
            ]
        )
        if wait is not None:
            raise ApiError(
                "rate_limited", "Too many requests: slow down.", http_status=429,
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        layer = get_channel_layer()
        reply_channel = await layer.new_channel(prefix="api.reply")
        received = await sync_to_async(_receive)(principal, data, reply_channel, idempotency_key)
        session_id = data["session_id"]
        conversation_id = received["conversation_id"]
        if received["reply"] is not None or received["mode"] not in Conversation.BOT_ANSWERS:
            done = received["reply"]
            body = _answer(session_id, conversation_id, received["mode"], done)
            if data["stream"]:
                return _sse_once(body)
            return Response(body)
        if received["created"] and received["scheduled"] is False:
            raise ApiError(
                "assistant_unavailable",
                "The message was saved but the assistant is unavailable. Try again shortly.",
                http_status=503,
                headers={"Retry-After": "5"},
            )
        if not received["created"]:
            # The same Idempotency-Key is being answered by an earlier request: wait for its
            # stored reply (rare, so simply poll).
            done = await _poll_reply(principal, received["message_id"])
            if done is not None:
                body = _answer(session_id, conversation_id, done.get("mode", "bot"), done)
                return _sse_once(body) if data["stream"] else Response(body)
            raise ApiError(
                "assistant_unavailable",
                "The assistant did not answer in time. The message is saved; its answer will "
                "appear in the conversation.",
                http_status=503,
                headers={"Retry-After": "5"},
            )
        if data["stream"]:
            return _sse_response(layer, reply_channel, session_id, conversation_id)
        done = await _wait_done(layer, reply_channel)
        if done is None:
            raise ApiError(
                "assistant_unavailable",
                "The assistant did not answer in time. The message is saved; its answer will "
                "appear in the conversation.",
                http_status=503,
                headers={"Retry-After": "5"},
            )
        return Response(_answer(session_id, conversation_id, done.get("mode", "bot"), done))


async def _receive_within(layer: Any, channel: str, timeout: float) -> dict[str, Any]:
    """The next event of `channel`, or TimeoutError after `timeout` seconds. Unlike
    asyncio.wait_for, it does not wait for the cancelled receive to finish: channels-redis can
    hold a cancelled receive in its blocking Redis read for seconds, and the client must get
    its answer on time."""
    task = asyncio.ensure_future(layer.receive(channel))
    done, _pending = await asyncio.wait({task}, timeout=timeout)
    if task in done:
        return task.result()  # type: ignore[no-any-return]
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    raise TimeoutError


async def _events(layer: Any, channel: str) -> AsyncIterator[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + settings.CHAT_REPLY_TIMEOUT
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        try:
            event = await _receive_within(layer, channel, remaining)
        except TimeoutError:
            return
        yield event
        if event.get("type") in FINAL_EVENTS:
            return


async def _poll_reply(principal: ApiPrincipal, message_id: int) -> dict[str, Any] | None:
    def stored() -> dict[str, Any] | None:
        with tenant_context(principal.company):
            reply = (
                Message.objects.filter(reply_to_id=message_id)
                .exclude(status=Message.Status.GENERATING)
                .select_related("conversation")
                .first()
            )
            if reply is None:
                return None
            return {**reply_summary(reply), "mode": reply.conversation.mode}

    deadline = asyncio.get_running_loop().time() + settings.CHAT_REPLY_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        done = await sync_to_async(stored)()
        if done is not None:
            return done
        await asyncio.sleep(0.2)
    return None


async def _wait_done(layer: Any, channel: str) -> dict[str, Any] | None:
    async for event in _events(layer, channel):
        if event.get("type") == "reply.completed":
            return event
        if event.get("type") == "reply.discarded":
            # A person took the conversation: no bot answer.
            return {"text": None, "message_id": None, "mode": event.get("mode", "human")}
    return None


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse_once(body: dict[str, Any]) -> StreamingHttpResponse:
    async def stream() -> AsyncIterator[str]:
        yield _sse("done", body)

    return _sse_stream(stream())


def _sse_stream(iterator: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(iterator, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse_response(
    layer: Any, channel: str, session_id: str, conversation_id: int
) -> StreamingHttpResponse:
    async def stream() -> AsyncIterator[str]:
        async for event in _events(layer, channel):
            kind = event.get("type")
            if kind == "reply.delta":
                yield _sse("delta", {"message_id": event["message_id"], "text": event["text"]})
            elif kind == "reply.reset":
                yield _sse("reset", {"message_id": event["message_id"]})
            elif kind == "reply.completed":
                yield _sse(
                    "done", _answer(session_id, conversation_id, Conversation.Mode.BOT, event)
                )
                return
            elif kind == "reply.discarded":
                nothing = {"text": None, "message_id": None}
                mode = event.get("mode", Conversation.Mode.HUMAN)
                yield _sse("done", _answer(session_id, conversation_id, mode, nothing))
                return
        yield _sse(
            "error",
            error_body("assistant_unavailable", "The assistant did not answer in time."),
        )

    return _sse_stream(stream())


def _read_rate_limit(request: Request, principal: ApiPrincipal) -> None:
    wait = ratelimit.hit(
        [
            (principal.rate_limit_id, settings.API_RATE_LIMIT_PER_KEY),
            (f"ip:{_client_ip(request)}", settings.API_RATE_LIMIT_PER_IP),
        ]
    )
    if wait is not None:
        raise ApiError(
            "rate_limited", "Too many requests: slow down.", http_status=429,
            headers={"Retry-After": str(wait)},
        )  # fmt: skip


class ConversationPagination(CursorPagination):
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-id"


@extend_schema(
    tags=["conversations"],
    parameters=[
        OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values),
        OpenApiParameter("mode", OpenApiTypes.STR, enum=Conversation.Mode.values),
        OpenApiParameter("session_id", OpenApiTypes.STR),
        OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
    ],
    responses={200: ConversationSerializer(many=True), **ERRORS},
)
class ConversationListView(ListAPIView):
    """GET /v1/conversations: the key's company's conversations, newest first."""

    serializer_class = ConversationSerializer
    pagination_class = ConversationPagination

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        principal = require_scope(request, "read")
        _read_rate_limit(request, principal)
        with tenant_context(principal.company):
            response = super().list(request, *args, **kwargs)
            response.data = dict(response.data)  # evaluate inside the company's schema
        return response

    def get_queryset(self) -> QuerySet[Conversation]:
        queryset = Conversation.objects.all()
        params = self.request.query_params
        for name, choices in (("channel", Channel.values), ("mode", Conversation.Mode.values)):
            value = params.get(name)
            if value is None:
                continue
            if value not in choices:
                raise ApiError(
                    "invalid_request", f"{name}: one of {', '.join(choices)}.", field=name
                )
            queryset = queryset.filter(**{name: value})
        if "session_id" in params:
            session_id = params["session_id"]
            if not (0 < len(session_id) <= 128) or "\x00" in session_id:
                raise ApiError(
                    "invalid_request", "session_id: 1 to 128 characters.", field="session_id"
                )
            queryset = queryset.filter(session_id=session_id)
        if "updated_since" in params:
            try:
                since = parse_datetime(params["updated_since"])
            except ValueError:
                since = None
            if since is None:
                raise ApiError(
                    "invalid_request",
                    "updated_since: use an ISO 8601 date-time.",
                    field="updated_since",
                )
            queryset = queryset.filter(updated_at__gte=since)
        return queryset


@extend_schema(
    tags=["conversations"],
    responses={200: ConversationDetailSerializer, 404: OpenApiResponse(ErrorSerializer), **ERRORS},
)
class ConversationDetailView(RetrieveAPIView):
    """GET /v1/conversations/{id}: one conversation with its messages."""

    serializer_class = ConversationDetailSerializer
    queryset = Conversation.objects.all()

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        principal = require_scope(request, "read")
        _read_rate_limit(request, principal)
        with tenant_context(principal.company):
            response = super().retrieve(request, *args, **kwargs)
            response.data = dict(response.data)
        return response
