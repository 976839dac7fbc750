"""Changing the assistant profile."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.assistants.models import AssistantProfile
from apps.audit.services import Actor, audit_diff, audit_record


def assistant_profile_get() -> AssistantProfile:
    """The profile of the current company, created with defaults on first use."""
    profile, _ = AssistantProfile.objects.get_or_create(pk=1)
    return profile


@transaction.atomic
def assistant_profile_update(
    *, profile: AssistantProfile, actor: Actor, data: dict[str, Any]
) -> AssistantProfile:
    """Apply `data` (field -> new value) to the profile and audit what changed."""
    old = {field: getattr(profile, field) for field in data}
    for field, value in data.items():
        setattr(profile, field, value)
    changes = audit_diff(profile, old, secret_fields=AssistantProfile.SECRET_FIELDS)
    if changes:
        profile.full_clean()
        profile.save()
        audit_record(
            actor=actor, action="assistant_profile.update", instance=profile, changes=changes
        )
    return profile
