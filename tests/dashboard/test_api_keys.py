"""The API keys page and personal API tokens on the dashboard."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import jwt
import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import formats, translation
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.api.models import ApiKey
from apps.api.services import api_key_authenticate, api_key_create, api_token_authenticate
from apps.audit.models import AuditLog
from apps.tenants.models import Company
from tests.conftest import host, logged_in, member, owner

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

KEYS = "/dashboard/api-keys/"
TOKEN = "/dashboard/api-token/"
FULL_KEY = re.compile(r"chapi_[0-9a-f]{12}_[A-Za-z0-9_\-]{20,}")
JWT = re.compile(r"eyJ[\w\-]+\.[\w\-]+\.[\w\-]+")


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_for(company: Company, user: User) -> Client:
    return english(logged_in(company, user))


def keys_of(company: Company) -> list[ApiKey]:
    return list(ApiKey.objects.filter(company=company).order_by("id"))


def audit_entries(company: Company, action: str | None = None) -> list[AuditLog]:
    with tenant_context(company):
        entries = AuditLog.objects.filter(action__startswith="api_key.").order_by("id")
        return list(entries.filter(action=action) if action else entries)


def flashed(response: Response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def keys_shown(response: Response) -> set[str]:
    return set(FULL_KEY.findall(response.content.decode()))


def create(client: Client, name: str = "Website", scopes: tuple[str, ...] = ("chat",)) -> Response:
    return client.post(KEYS, {"name": name, "scopes": list(scopes)})


def key_of(company: Company, name: str = "Partner", scopes: list[str] | None = None) -> str:
    return api_key_create(company=company, name=name, scopes=scopes or ["chat"]).key


# --- Creating -------------------------------------------------------------------------------


def test_an_owner_creates_a_key_shown_once_and_only_its_hash_is_stored(
    alpha: Company, caplog: pytest.LogCaptureFixture
) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)
    caplog.set_level(logging.DEBUG)

    response = create(client, "Website", ("read", "chat"))

    assert response.status_code == 200
    assert response.templates[0].name == "dashboard/api_key_issued.html"
    assert "no-store" in response["Cache-Control"]
    [key] = keys_shown(response)
    [row] = keys_of(alpha)
    prefix, secret = key.removeprefix("chapi_").split("_", 1)
    assert (row.name, row.prefix, row.scopes) == ("Website", prefix, ["chat", "read"])
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.created_by == boss.email
    assert row.revoked_at is None
    stored = [str(v) for v in ApiKey.objects.filter(pk=row.pk).values().get().values()]
    assert not any(secret in value for value in stored)
    assert (
        "Copy this key now and keep it somewhere safe. It won't be shown again: CHAPI only "
        "stores a hash of it."
    ) in response.content.decode()
    assert key not in caplog.text
    assert secret not in str(dict(client.session.items())) + str(client.cookies)
    assert api_key_authenticate(key) == (row, "")
    [entry] = audit_entries(alpha)
    assert (entry.action, entry.object_id, entry.actor_id, entry.actor_email) == (
        "api_key.create",
        str(row.pk),
        boss.pk,
        boss.email,
    )
    assert entry.changes == {"scopes": [None, ["chat", "read"]]}
    assert secret not in str(entry.changes) + entry.object_repr

    listing = client.get(KEYS)

    assert listing.status_code == 200
    assert keys_shown(listing) == set()
    assert secret not in listing.content.decode()
    assert f"<code>chapi_{prefix}_…</code>" in listing.content.decode()


def test_the_list_shows_each_keys_details(alpha: Company) -> None:
    admin = member(alpha, Role.ADMIN)
    client = client_for(alpha, admin)
    create(client, "Website", ("chat",))
    revoked = api_key_create(company=alpha, name="Old CRM", scopes=["read", "write"]).api_key
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))

    response = client.get(KEYS)

    assert response.status_code == 200
    assert [k.name for k in response.context["keys"]] == ["Old CRM", "Website"]
    html = response.content.decode()
    assert "<td>Website</td>" in html
    assert f"<td>{admin.email}</td>" in html
    assert "<td>Never</td>" in html
    assert "<code>read</code> <code>write</code>" in html
    assert '<span class="badge">Revoked 01/02/2026</span>' in html
    assert html.count('<span class="badge ok">Active</span>') == 1
    assert html.count("/rotate/") == 1  # only the active key can be rotated or revoked


def test_a_key_needs_a_name_and_a_scope(alpha: Company) -> None:
    client = client_for(alpha, owner(alpha))

    no_scope = create(client, "Website", ())
    no_name = create(client, "", ("chat",))
    bad_scope = create(client, "Website", ("admin",))

    assert (no_scope.status_code, no_name.status_code, bad_scope.status_code) == (400, 400, 400)
    assert no_scope.context["form"].errors == {"scopes": ["This field is required."]}
    assert no_name.context["form"].errors == {"name": ["This field is required."]}
    assert bad_scope.context["form"].errors == {
        "scopes": ["Select a valid choice. admin is not one of the available choices."]
    }
    assert keys_of(alpha) == []
    assert audit_entries(alpha) == []


def test_the_page_shows_a_curl_example_and_the_docs_on_the_public_host(alpha: Company) -> None:
    client = client_for(alpha, owner(alpha))
    client.defaults["HTTP_HOST"] = f"{host(alpha)}:8000"

    listing = client.get(KEYS)
    issued = create(client)

    assert listing.context["chat_url"] == f"http://{settings.ROOT_DOMAIN}:8000/v1/chat"
    assert f'href="http://{settings.ROOT_DOMAIN}:8000/v1/docs"' in listing.content.decode()
    assert f"curl -X POST http://{settings.ROOT_DOMAIN}:8000/v1/chat" in listing.content.decode()
    [key] = keys_shown(issued)
    assert f"Authorization: Bearer {key}" in issued.content.decode()


def test_the_default_port_is_left_out_of_the_public_url(alpha: Company) -> None:
    response = client_for(alpha, owner(alpha)).get(KEYS)

    assert response.context["chat_url"] == f"http://{settings.ROOT_DOMAIN}/v1/chat"
    assert response.context["docs_url"] == f"http://{settings.ROOT_DOMAIN}/v1/docs"


# --- Revoking and rotating ------------------------------------------------------------------


def test_an_owner_revokes_a_key_and_it_is_audited(alpha: Company) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)
    key = key_of(alpha, "Partner")
    [row] = keys_of(alpha)

    response = client.post(f"{KEYS}{row.pk}/revoke/")
    client.get(KEYS)  # shows (and so consumes) the flashed message
    again = client.post(f"{KEYS}{row.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == KEYS
    assert flashed(response) == [("success", "The key “Partner” was revoked.")]
    assert flashed(again) == []
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert api_key_authenticate(key) == (None, "revoked_api_key")
    [entry] = audit_entries(alpha)
    assert (entry.action, entry.object_id, entry.actor_email) == (
        "api_key.revoke",
        str(row.pk),
        boss.email,
    )


def test_revoking_needs_a_post(alpha: Company) -> None:
    key_of(alpha)
    [row] = keys_of(alpha)

    response = client_for(alpha, owner(alpha)).get(f"{KEYS}{row.pk}/revoke/")

    assert response.status_code == 405
    row.refresh_from_db()
    assert row.revoked_at is None


def test_rotating_replaces_the_key_and_shows_the_new_one_once(alpha: Company) -> None:
    admin = member(alpha, Role.ADMIN)
    client = client_for(alpha, admin)
    old_key = key_of(alpha, "Partner", ["chat", "read"])
    [old] = keys_of(alpha)

    response = client.post(f"{KEYS}{old.pk}/rotate/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [new_key] = keys_shown(response)
    old.refresh_from_db()
    [_, new] = keys_of(alpha)
    assert new_key != old_key
    assert (new.name, new.scopes, new.created_by, new.revoked_at) == (
        "Partner",
        ["chat", "read"],
        admin.email,
        None,
    )
    assert new_key.startswith(f"chapi_{new.prefix}_")
    assert old.revoked_at is not None
    assert api_key_authenticate(old_key) == (None, "revoked_api_key")
    assert api_key_authenticate(new_key) == (new, "")
    assert "The key “Partner” was revoked and replaced by this one." in response.content.decode()
    assert [(e.action, e.object_id) for e in audit_entries(alpha)] == [
        ("api_key.create", str(new.pk)),
        ("api_key.revoke", str(old.pk)),
    ]
    assert keys_shown(client.get(KEYS)) == set()


def test_a_revoked_key_cannot_be_rotated(alpha: Company) -> None:
    key_of(alpha)
    [row] = keys_of(alpha)
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=datetime(2026, 1, 2, tzinfo=UTC))

    response = client_for(alpha, owner(alpha)).post(f"{KEYS}{row.pk}/rotate/")

    assert response.status_code == 302
    assert flashed(response) == [
        ("error", "A revoked key cannot be rotated. Create a new key instead.")
    ]
    assert keys_of(alpha) == [row]
    assert audit_entries(alpha) == []


# --- Who may -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_see_or_manage_keys(alpha: Company, role: str) -> None:
    key = key_of(alpha)
    [row] = keys_of(alpha)
    client = client_for(alpha, member(alpha, role))

    responses = [
        client.get(KEYS),
        create(client),
        client.post(f"{KEYS}{row.pk}/revoke/"),
        client.post(f"{KEYS}{row.pk}/rotate/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert keys_of(alpha) == [row]
    row.refresh_from_db()
    assert row.revoked_at is None
    assert api_key_authenticate(key) == (row, "")
    assert audit_entries(alpha) == []


def test_anonymous_visitors_are_sent_to_log_in(alpha: Company) -> None:
    key_of(alpha)
    [row] = keys_of(alpha)
    client = english(Client(HTTP_HOST=host(alpha)))

    responses = {
        KEYS: client.get(KEYS),
        f"{KEYS}{row.pk}/revoke/": client.post(f"{KEYS}{row.pk}/revoke/"),
        f"{KEYS}{row.pk}/rotate/": client.post(f"{KEYS}{row.pk}/rotate/"),
        TOKEN: client.post(TOKEN),
    }

    for path, response in responses.items():
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"
    row.refresh_from_db()
    assert row.revoked_at is None
    assert keys_of(alpha) == [row]


def test_a_company_never_sees_another_companys_keys(alpha: Company, beta: Company) -> None:
    key_of(beta, "Beta secret integration")
    [beta_row] = keys_of(beta)

    response = client_for(alpha, owner(alpha)).get(KEYS)

    assert list(response.context["keys"]) == []
    assert "Beta secret integration" not in response.content.decode()
    assert beta_row.prefix not in response.content.decode()


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_a_key_of_another_company_is_not_found(alpha: Company, beta: Company, action: str) -> None:
    alpha_key = key_of(alpha)
    [alpha_row] = keys_of(alpha)
    beta_owner_client = client_for(beta, owner(beta))

    response = beta_owner_client.post(f"{KEYS}{alpha_row.pk}/{action}/")

    assert response.status_code == 404
    assert keys_of(alpha) == [alpha_row]
    assert keys_of(beta) == []
    alpha_row.refresh_from_db()
    assert alpha_row.revoked_at is None
    assert api_key_authenticate(alpha_key) == (alpha_row, "")
    assert audit_entries(alpha) == []
    assert audit_entries(beta) == []


def test_a_session_of_another_company_does_not_work_on_this_host(
    alpha: Company, beta: Company
) -> None:
    key_of(alpha)
    [alpha_row] = keys_of(alpha)
    client = client_for(beta, owner(beta))
    client.defaults["HTTP_HOST"] = host(alpha)

    listing = client.get(KEYS)
    revoke = client.post(f"{KEYS}{alpha_row.pk}/revoke/")

    assert listing.status_code == 302
    assert listing["Location"] == f"/accounts/login/?next={KEYS}"
    assert revoke.status_code == 302
    alpha_row.refresh_from_db()
    assert alpha_row.revoked_at is None
    assert audit_entries(alpha) == []


# --- Personal API tokens --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.AGENT, Role.VIEWER])
def test_every_member_can_issue_a_personal_read_token(alpha: Company, role: str) -> None:
    user = member(alpha, role)
    client = client_for(alpha, user)

    page = client.get(TOKEN)
    response = client.post(TOKEN)

    assert page.status_code == 200
    assert JWT.findall(page.content.decode()) == []
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [token] = set(JWT.findall(response.content.decode()))
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"], audience="chapi:api")
    assert (claims["sub"], claims["schema"], claims["role"], claims["scopes"]) == (
        str(user.pk),
        alpha.schema_name,
        role,
        ["read"],
    )
    assert claims["exp"] - claims["iat"] == settings.API_JWT_TTL_SECONDS
    principal, reason = api_token_authenticate(token)
    assert reason == ""
    assert principal is not None
    assert (principal.company, principal.user_id) == (alpha, user.pk)
    expires = datetime.fromtimestamp(claims["exp"], tz=UTC)
    with translation.override("en"):
        when = formats.date_format(expires, "DATETIME_FORMAT")
    assert f"Expires {when} (UTC)." in response.content.decode()
    assert f"curl http://{settings.ROOT_DOMAIN}/v1/conversations" in response.content.decode()


def test_a_personal_token_belongs_to_the_company_of_the_host(alpha: Company, beta: Company) -> None:
    response = client_for(beta, owner(beta)).post(TOKEN)

    [token] = set(JWT.findall(response.content.decode()))
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"], audience="chapi:api")
    assert claims["schema"] == beta.schema_name
    principal, _ = api_token_authenticate(token)
    assert principal is not None
    assert principal.company == beta
