"""Secrets stored encrypted at rest (chapi.crypto, chapi.fields) and their key rotation."""

from __future__ import annotations

import io
import json

import pytest
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from apps.assistants.models import AssistantProfile
from apps.assistants.services import assistant_profile_get, assistant_profile_update
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.tenants.models import Company
from chapi.crypto import DecryptionError, decrypt, encrypt, mask
from tests.conftest import assistant_profile_form, logged_in, owner

SECRET = "sk-test-" + "Q7vX2mN9pL4rT8wY1zB6cH3jK5dF0gS2aE7uI9oP"  # 48 characters, fake
OTHER_SECRET = "sk-test-" + "Z1yX2wV3uT4sR5qP6oN7mL8kJ9iH0gF1eD2cB3aA"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_UNRELATED = Fernet.generate_key().decode()


def stored_ciphertext(company: Company) -> str:
    with tenant_context(company), connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM assistants_assistantprofile")
        [(value,)] = cursor.fetchall()
    return value


def store_secret(company: Company, secret: str) -> None:
    with tenant_context(company):
        assistant_profile_update(
            profile=assistant_profile_get(), actor=SYSTEM, data={"api_key": secret}
        )


def read_secret(company: Company) -> str:
    with tenant_context(company):
        return AssistantProfile.objects.get().api_key


def rows_holding_secrets() -> int:
    """What `rotate_encryption_keys` re-saves: every assistant profile and every second-factor
    authenticator, in every schema."""
    count = 0
    with schema_context("public"):
        count += Authenticator.objects.count()
    for company in Company.objects.exclude(schema_name="public"):
        with tenant_context(company):
            count += AssistantProfile.objects.count() + Authenticator.objects.count()
    return count


def profile_admin_url(company: Company) -> str:
    with tenant_context(company):
        return f"/admin/assistants/assistantprofile/{assistant_profile_get().pk}/change/"


def owner_client(company: Company) -> Client:
    client = logged_in(company, owner(company))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def profile_form(**overrides: str) -> dict[str, str]:
    return assistant_profile_form(**overrides)


def profile_audit(company: Company) -> list[AuditLog]:
    with tenant_context(company):
        return list(AuditLog.objects.filter(action="assistant_profile.update").order_by("id"))


def test_the_column_holds_only_ciphertext_and_the_orm_returns_the_plaintext(
    alpha: Company,
) -> None:
    store_secret(alpha, SECRET)

    raw = stored_ciphertext(alpha)

    assert raw.startswith("gAAAAA")
    assert SECRET not in raw
    assert SECRET[-12:] not in raw
    assert decrypt(raw) == SECRET
    assert read_secret(alpha) == SECRET


def test_each_encryption_of_the_same_secret_differs() -> None:
    assert encrypt(SECRET) != encrypt(SECRET)


def test_the_secret_of_one_company_is_not_in_another(alpha: Company, beta: Company) -> None:
    store_secret(alpha, SECRET)

    assert read_secret(beta) == ""
    assert stored_ciphertext(beta) == ""


def test_an_unchanged_secret_writes_no_audit_entry(alpha: Company) -> None:
    store_secret(alpha, SECRET)

    store_secret(alpha, SECRET)

    assert len(profile_audit(alpha)) == 1


def test_the_audit_entry_masks_the_old_and_new_secret(alpha: Company) -> None:
    store_secret(alpha, SECRET)
    store_secret(alpha, OTHER_SECRET)

    first, second = profile_audit(alpha)

    assert first.changes == {"api_key": ["", "••••" + SECRET[-4:]]}
    assert second.changes == {"api_key": ["••••" + SECRET[-4:], "••••" + OTHER_SECRET[-4:]]}
    dumped = json.dumps([first.changes, second.changes])
    assert SECRET[:-4] not in dumped
    assert OTHER_SECRET[:-4] not in dumped


def test_mask_shows_at_most_the_last_four_characters() -> None:
    assert mask(SECRET) == "••••" + SECRET[-4:]
    assert mask("short-key") == "••••"
    assert mask("") == ""
    assert mask(None) == ""


def test_rotation_re_encrypts_under_the_newest_key(alpha: Company, beta: Company, settings) -> None:  # type: ignore[no-untyped-def]
    # The configured keys stay last, for secrets other tests' companies may hold.
    configured = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A, *configured]
    store_secret(alpha, SECRET)
    before = stored_ciphertext(alpha)
    assert Fernet(KEY_A.encode()).decrypt(before.encode()).decode() == SECRET
    expected_rows = rows_holding_secrets()

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A, *configured]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    after = stored_ciphertext(alpha)
    assert out.getvalue().strip() == f"Re-encrypted {expected_rows} rows under the newest key."
    assert after != before
    assert after.startswith("gAAAAA")
    assert Fernet(KEY_B.encode()).decrypt(after.encode()).decode() == SECRET
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    assert read_secret(alpha) == SECRET
    assert read_secret(beta) == ""


def test_without_rotation_the_old_key_is_still_needed(alpha: Company, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    store_secret(alpha, SECRET)

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert read_secret(alpha) == SECRET
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(DecryptionError):
        read_secret(alpha)


def test_an_unrelated_key_cannot_decrypt(alpha: Company, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    store_secret(alpha, SECRET)

    settings.FIELD_ENCRYPTION_KEYS = [KEY_UNRELATED]

    with pytest.raises(DecryptionError) as excinfo:
        read_secret(alpha)
    assert SECRET not in str(excinfo.value)
    assert "FIELD_ENCRYPTION_KEYS" in str(excinfo.value)


@pytest.mark.parametrize("keys", [["not-a-fernet-key"], [KEY_A, "too-short"], []])
def test_an_invalid_or_missing_key_is_a_configuration_error(settings, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = keys

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        encrypt(SECRET)


def test_the_admin_page_never_shows_the_secret(alpha: Company) -> None:
    store_secret(alpha, SECRET)
    raw = stored_ciphertext(alpha)

    response = owner_client(alpha).get(profile_admin_url(alpha))

    assert response.status_code == 200
    body = response.content.decode()
    assert SECRET not in body
    assert SECRET[:-4] not in body
    assert raw not in body
    assert "••••" + SECRET[-4:] in body
    assert 'name="api_key_0"' in body
    assert 'name="api_key_1"' in body  # the "remove" checkbox


def test_the_admin_page_shows_no_hint_when_no_secret_is_set(alpha: Company) -> None:
    response = owner_client(alpha).get(profile_admin_url(alpha))

    assert response.status_code == 200
    assert "••••" not in response.content.decode()
    assert 'name="api_key_1"' not in response.content.decode()


def test_a_blank_secret_input_keeps_the_stored_value(alpha: Company) -> None:
    store_secret(alpha, SECRET)

    response = owner_client(alpha).post(profile_admin_url(alpha), profile_form(bot_name="Alba"))

    assert response.status_code == 302
    assert read_secret(alpha) == SECRET
    with tenant_context(alpha):
        assert AssistantProfile.objects.get().bot_name == "Alba"
    assert [e.changes for e in profile_audit(alpha)][-1] == {"bot_name": ["CHAPI", "Alba"]}


def test_typing_a_new_secret_replaces_it_and_the_audit_masks_both(alpha: Company) -> None:
    store_secret(alpha, SECRET)

    response = owner_client(alpha).post(
        profile_admin_url(alpha), profile_form(api_key_0=OTHER_SECRET)
    )

    assert response.status_code == 302
    assert read_secret(alpha) == OTHER_SECRET
    raw = stored_ciphertext(alpha)
    assert raw.startswith("gAAAAA")
    assert OTHER_SECRET not in raw
    last = profile_audit(alpha)[-1]
    assert last.changes == {"api_key": ["••••" + SECRET[-4:], "••••" + OTHER_SECRET[-4:]]}
    assert last.actor_kind == "user"
    assert OTHER_SECRET[:-4] not in json.dumps(last.changes)


def test_ticking_remove_clears_the_secret(alpha: Company) -> None:
    store_secret(alpha, SECRET)

    response = owner_client(alpha).post(profile_admin_url(alpha), profile_form(api_key_1="on"))

    assert response.status_code == 302
    assert read_secret(alpha) == ""
    assert stored_ciphertext(alpha) == ""
    assert profile_audit(alpha)[-1].changes == {"api_key": ["••••" + SECRET[-4:], ""]}


def test_the_admin_history_never_records_the_secret(alpha: Company) -> None:
    store_secret(alpha, SECRET)
    client = owner_client(alpha)
    client.post(profile_admin_url(alpha), profile_form(api_key_0=OTHER_SECRET))

    history = client.get(profile_admin_url(alpha).replace("change/", "history/"))

    assert history.status_code == 200
    assert OTHER_SECRET not in history.content.decode()
    with tenant_context(alpha):
        logged = json.dumps(list(AuditLog.objects.values_list("changes", flat=True)))
    assert SECRET[:-4] not in logged
    assert OTHER_SECRET[:-4] not in logged


def test_a_form_error_does_not_echo_a_newly_typed_secret(alpha: Company) -> None:
    store_secret(alpha, SECRET)

    response = owner_client(alpha).post(
        profile_admin_url(alpha), profile_form(api_key_0=OTHER_SECRET, api_base_url="not a url")
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter a valid URL." in body
    assert OTHER_SECRET not in body
    assert SECRET not in body
    assert read_secret(alpha) == SECRET
    assert len(profile_audit(alpha)) == 1
