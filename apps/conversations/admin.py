from __future__ import annotations

from django.contrib import admin

from apps.conversations.models import Conversation, Message, UsageMonth
from chapi.admin_sites import ReadOnlyCompanyModelAdmin, company_admin_site


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "conversation"
    extra = 0
    can_delete = False
    fields = ("created_at", "role", "text", "status", "model", "input_tokens", "output_tokens",
              "latency_ms", "fallback", "error")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Conversation, site=company_admin_site)
class ConversationAdmin(ReadOnlyCompanyModelAdmin):
    list_display = ("id", "channel", "session_id", "mode", "last_message_at", "created_at")
    list_filter = ("channel", "mode")
    search_fields = ("session_id",)
    inlines = [MessageInline]


@admin.register(UsageMonth, site=company_admin_site)
class UsageMonthAdmin(ReadOnlyCompanyModelAdmin):
    list_display = ("month", "input_tokens", "output_tokens", "cost", "replies")
