"""The assistant profile: changing it, and the configuration replies read from it."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from apps.assistants.models import AssistantProfile
from apps.assistants.prompting import AssistantConfig, assistant_config_load
from apps.audit.services import Actor, audit_diff, audit_record

logger = logging.getLogger(__name__)

# Per process and company: (what the configuration was loaded for, when, the configuration).
_CONFIGS: dict[str, tuple[tuple[Any, ...], float, AssistantConfig]] = {}
# Kept at most this long whatever happens (e.g. a change announced while Redis was down).
CONFIG_KEEP_SECONDS = 300


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


def _config_version_key(schema: str) -> str:
    return f"assistant-config-version:{schema}"


def assistant_config_get(*, company_name: str) -> AssistantConfig:
    """The current company's assistant configuration (profile, industry template, facts and
    FAQ), kept in this process until any of them changes: every reply and every lead reading
    needs it, and loading it costs three queries and the key's decryption. A version in the
    cache, replaced on every change (`assistant_config_changed`), tells the processes. Never
    kept from inside a transaction (what it changed may yet be rolled back), nor when the
    cache cannot be reached. The decrypted key stays in this process's memory, as during a
    reply; only the version goes to the cache. Kept at most CONFIG_KEEP_SECONDS anyway."""
    schema = connection.schema_name  # type: ignore[attr-defined]
    version = _config_version(schema) if _may_keep() else None
    if version is None:
        return _config_load(company_name)
    loaded_for = (
        version, company_name, settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL,
        settings.OPENAI_MODEL, settings.OPENAI_MAX_TOKENS,
    )  # fmt: skip
    now = time.monotonic()
    kept = _CONFIGS.get(schema)
    if kept is not None and kept[0] == loaded_for and now - kept[1] < CONFIG_KEEP_SECONDS:
        return kept[2]
    config = _config_load(company_name)
    _CONFIGS[schema] = (loaded_for, now, config)
    return config


def _config_load(company_name: str) -> AssistantConfig:
    return assistant_config_load(profile=assistant_profile_get(), company_name=company_name)


def _config_version(schema: str) -> str | None:
    """The company's configuration version in the cache (set on first use); None when the
    cache cannot be reached."""
    key = _config_version_key(schema)
    try:
        version = cache.get(key)
        if version is None:
            cache.add(key, uuid.uuid4().hex, timeout=None)
            version = cache.get(key)
        return version
    except Exception:
        logger.warning("assistant configuration version unavailable: loaded without keeping it")
        return None


def _may_keep() -> bool:
    return not connection.in_atomic_block


def assistant_config_changed() -> None:
    """The profile, a fact or a FAQ entry of the current company changed: every process
    loads the configuration again. Now, and once more after commit (a process that reloaded
    in between read what was committed before)."""
    key = _config_version_key(connection.schema_name)  # type: ignore[attr-defined]

    def bump() -> None:
        try:
            cache.set(key, uuid.uuid4().hex, timeout=None)
        except Exception:
            # Kept configurations would outlive the change: say so loudly.
            logger.exception("could not announce an assistant configuration change")

    bump()
    transaction.on_commit(bump)
