from __future__ import annotations

from django.contrib import admin

from apps.audit.models import AuditLog
from chapi.admin_sites import ReadOnlyCompanyModelAdmin, company_admin_site


@admin.register(AuditLog, site=company_admin_site)
class AuditLogAdmin(ReadOnlyCompanyModelAdmin):
    list_display = (
        "created_at",
        "actor_email",
        "actor_kind",
        "ip_address",
        "action",
        "object_repr",
    )
    list_filter = ("action", "actor_kind")
    search_fields = ("actor_email", "action", "object_repr")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at", "actor_kind", "actor_id", "actor_email", "ip_address", "action", "model",
        "object_id", "object_repr", "changes",
    )  # fmt: skip
