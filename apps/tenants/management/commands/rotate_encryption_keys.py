"""Re-encrypt every stored secret, in every schema, under the newest key: encrypted model
fields and allauth's second-factor secrets."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django_tenants.utils import get_tenant_model, schema_context

from chapi.crypto import rotate
from chapi.fields import EncryptedTextField


def encrypted_fields() -> dict[type[models.Model], list[str]]:
    found: dict[type[models.Model], list[str]] = {}
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found[model] = names
    return found


def rotate_schema(schema_name: str, is_public: bool) -> int:
    """Re-save each row holding a secret, so it is encrypted with the first key."""
    count = 0
    shared = set(settings.SHARED_APPS)
    tenant_apps = set(settings.TENANT_APPS)
    with schema_context(schema_name), transaction.atomic():
        for model, names in encrypted_fields().items():
            app = model._meta.app_config.name
            if (is_public and app not in shared) or (not is_public and app not in tenant_apps):
                continue
            for obj in model._default_manager.select_for_update().iterator():
                obj.save(update_fields=names)
                count += 1
        count += _rotate_mfa_secrets()
    return count


def _rotate_mfa_secrets() -> int:
    """allauth's second-factor secrets (TOTP key, recovery-code seed) sit encrypted inside a
    JSON column (apps.accounts.adapter.MFAAdapter)."""
    from allauth.mfa.models import Authenticator

    count = 0
    for authenticator in Authenticator.objects.select_for_update().iterator():
        data = dict(authenticator.data)
        keys = [key for key in ("secret", "seed") if isinstance(data.get(key), str)]
        for key in keys:
            data[key] = rotate(data[key])
        if keys:
            authenticator.data = data
            authenticator.save(update_fields=["data"])
            count += 1
    return count


class Command(BaseCommand):
    help = "Re-encrypt all stored secrets under the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        total = rotate_schema(settings.PUBLIC_SCHEMA_NAME, is_public=True)
        companies = get_tenant_model().objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        for company in companies:
            total += rotate_schema(company.schema_name, is_public=False)
        self.stdout.write(f"Re-encrypted {total} rows under the newest key.")
