from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.conversations.models import Conversation, Message


class ChatRequestSerializer(serializers.Serializer):
    message = serializers.CharField(trim_whitespace=True, allow_blank=False)
    session_id = serializers.RegexField(
        r"^[A-Za-z0-9_.:@\-]{1,128}$",
        error_messages={"invalid": "Use 1-128 letters, digits or _ . : @ -"},
    )
    context = serializers.DictField(required=False, default=dict)
    stream = serializers.BooleanField(required=False, default=False)

    def validate_message(self, value: str) -> str:
        if len(value) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise serializers.ValidationError(
                f"At most {settings.CHAT_MAX_MESSAGE_CHARS} characters.", code="too_long"
            )
        return value

    def validate_context(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 30:
            raise serializers.ValidationError("At most 30 keys.")
        for key, item in value.items():
            if not isinstance(item, str | int | float | bool) and item is not None:
                raise serializers.ValidationError(f"'{key}' must be a string, number or boolean.")
            if isinstance(item, str) and len(item) > 1000:
                raise serializers.ValidationError(f"'{key}' is longer than 1000 characters.")
        return value


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.CharField(help_text="US dollars, as a decimal string.")
    model = serializers.CharField()
    provider = serializers.CharField()


class ChatResponseSerializer(serializers.Serializer):
    response = serializers.CharField(allow_null=True)
    session_id = serializers.CharField()
    conversation_id = serializers.IntegerField()
    message_id = serializers.IntegerField(allow_null=True)
    mode = serializers.CharField()
    fallback = serializers.BooleanField()
    usage = UsageSerializer(allow_null=True)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id", "role", "text", "status", "created_at", "completed_at", "model",
            "input_tokens", "output_tokens", "cost", "ttft_ms", "latency_ms", "fallback",
        ]  # fmt: skip


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = [
            "id", "channel", "session_id", "mode", "context", "language", "created_at",
            "updated_at", "last_message_at",
        ]  # fmt: skip


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]

    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        rows = conversation.messages.exclude(status=Message.Status.DISCARDED).order_by("id")
        return MessageSerializer(rows, many=True).data  # type: ignore[return-value]
