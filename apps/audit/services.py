"""Writing the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import HttpRequest

from apps.audit.models import AuditLog
from chapi.crypto import mask


@dataclass(frozen=True)
class Actor:
    """Who does something: a team member, platform staff, or the system itself."""

    kind: str = AuditLog.ActorKind.SYSTEM
    user_id: int | None = None
    email: str = ""
    ip: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = request.user
        ip = request.META.get("REMOTE_ADDR") or None
        if not user.is_authenticated:
            return cls(ip=ip)
        tenant = getattr(request, "tenant", None)
        kind = (
            AuditLog.ActorKind.STAFF
            if tenant is None or tenant.schema_name == "public"
            else AuditLog.ActorKind.USER
        )
        return cls(kind=kind, user_id=user.pk, email=user.email, ip=ip)


SYSTEM = Actor()


def _printable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _printable(item) for key, item in value.items()}
    return str(value)


def audit_diff(
    instance: models.Model, old: dict[str, Any], *, secret_fields: frozenset[str] = frozenset()
) -> dict[str, list[Any]]:
    """Changed fields of `instance` against the `old` values: {field: [old, new]}, secrets
    masked (never more than their last four characters)."""
    changes: dict[str, list[Any]] = {}
    for field, before in old.items():
        after = getattr(instance, field)
        if before == after:
            continue
        if field in secret_fields:
            changes[field] = [mask(before), mask(after)]
        else:
            changes[field] = [_printable(before), _printable(after)]
    return changes


def audit_record(
    *,
    actor: Actor,
    action: str,
    instance: models.Model | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one entry to the audit log of the current schema."""
    return AuditLog.objects.create(
        actor_kind=actor.kind,
        actor_id=actor.user_id,
        actor_email=actor.email,
        ip_address=actor.ip,
        action=action,
        model=instance._meta.label if instance is not None else "",
        object_id=str(instance.pk) if instance is not None else "",
        object_repr=str(instance)[:200] if instance is not None else "",
        changes=changes or {},
    )
