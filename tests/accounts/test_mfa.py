"""Two-factor authentication with an authenticator app (allauth.mfa TOTP)."""

from __future__ import annotations

import io
import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.tenants.models import Company
from tests.conftest import PASSWORD, host, logged_in, member

LOGIN = "/accounts/login/"
MFA_AUTHENTICATE = "/accounts/2fa/authenticate/"
ACTIVATE = "/accounts/2fa/totp/activate/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def anonymous(company: Company) -> Client:
    return english(Client(HTTP_HOST=host(company)))


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now; waits for the next period when this one is
    about to end, so the server checks it within the same period (no tolerance is allowed)."""
    period = mfa_settings.TOTP_PERIOD
    left = period - time.time() % period
    if left < 3:
        time.sleep(left + 0.2)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))


def wrong_code(secret: str) -> str:
    right = int(totp_code(secret))
    return format_hotp_value((right + 1) % 10**mfa_settings.TOTP_DIGITS)


def with_totp(company: Company, user: User) -> str:
    """Activate TOTP for `user` (as the activation flow does); returns the secret."""
    secret = generate_totp_secret()
    with tenant_context(company):
        TOTP.activate(user, secret)
    return secret


def stored_totp_data(company: Company, user: User) -> str:
    with tenant_context(company), connection.cursor() as cursor:
        cursor.execute(
            "SELECT data::text FROM mfa_authenticator WHERE user_id = %s AND type = 'totp'",
            [user.pk],
        )
        [(stored,)] = cursor.fetchall()
    return stored


def log_in_with_password(client: Client, user: User) -> None:
    response = client.post(LOGIN, {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content


def test_the_two_factor_page_is_reachable_for_a_member(alpha: Company) -> None:
    client = english(logged_in(alpha, member(alpha, Role.AGENT)))

    response = client.get("/accounts/2fa/")

    assert response.status_code == 200
    assert b"/accounts/2fa/totp/activate/" in response.content


def test_the_two_factor_page_needs_a_login(alpha: Company) -> None:
    response = anonymous(alpha).get("/accounts/2fa/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/2fa/"


def test_a_member_activates_totp_with_a_code_from_the_shown_secret(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    client = english(logged_in(alpha, user))
    assert client.get(ACTIVATE)["Location"] == (
        "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    )
    confirmed = client.post(
        "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F",
        {"password": PASSWORD},
    )
    assert confirmed.status_code == 302
    assert confirmed["Location"] == ACTIVATE

    page = client.get(ACTIVATE)
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret.encode() in page.content

    refused = client.post(ACTIVATE, {"code": wrong_code(secret)})
    assert refused.status_code == 200
    assert b"Incorrect code." in refused.content
    with tenant_context(alpha):
        assert not Authenticator.objects.filter(user=user).exists()

    response = client.post(ACTIVATE, {"code": totp_code(secret)})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/recovery-codes/"
    with tenant_context(alpha):
        types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}


def test_activating_totp_needs_the_password_again(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    client = english(logged_in(alpha, user))  # a session that never typed the password

    response = client.get(ACTIVATE)

    assert response.status_code == 302
    assert response["Location"] == (
        "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    )
    with tenant_context(alpha):
        assert not Authenticator.objects.filter(user=user).exists()


def test_with_totp_the_password_alone_does_not_log_in(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    with_totp(alpha, user)
    client = anonymous(alpha)

    response = client.post(LOGIN, {"login": user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == MFA_AUTHENTICATE
    assert "_auth_user_id" not in client.session
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 302
    assert dashboard["Location"] == "/accounts/login/?next=/dashboard/"


def test_a_correct_totp_code_completes_the_login(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    secret = with_totp(alpha, user)
    client = anonymous(alpha)
    log_in_with_password(client, user)
    assert client.get(MFA_AUTHENTICATE).status_code == 200

    response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.get("/dashboard/").status_code == 200


def test_a_wrong_totp_code_is_refused(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    secret = with_totp(alpha, user)
    client = anonymous(alpha)
    log_in_with_password(client, user)

    response = client.post(MFA_AUTHENTICATE, {"code": wrong_code(secret)})

    assert response.status_code == 200
    assert b"Incorrect code." in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/dashboard/").status_code == 302


def test_a_totp_code_cannot_be_used_twice(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    secret = with_totp(alpha, user)
    code = totp_code(secret)
    first = anonymous(alpha)
    log_in_with_password(first, user)
    assert first.post(MFA_AUTHENTICATE, {"code": code}).status_code == 302
    second = anonymous(alpha)
    log_in_with_password(second, user)

    response = second.post(MFA_AUTHENTICATE, {"code": code})

    assert response.status_code == 200
    assert b"Incorrect code." in response.content
    assert "_auth_user_id" not in second.session


def test_the_totp_of_one_company_does_not_exist_on_another(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    alpha_user = member(alpha, Role.AGENT, email="twin@example.com")
    beta_user = member(beta, Role.AGENT, email="twin@example.com")
    with_totp(alpha, alpha_user)

    client = anonymous(beta)
    response = client.post(LOGIN, {"login": beta_user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(beta_user.pk)


def test_the_totp_secret_is_not_stored_in_the_clear(alpha: Company) -> None:
    user = member(alpha, Role.AGENT)
    secret = with_totp(alpha, user)

    stored = stored_totp_data(alpha, user)

    assert secret not in stored
    assert '"secret": "gAAAAA' in stored


def test_totp_keeps_working_after_the_encryption_keys_are_rotated(alpha: Company, settings) -> None:  # type: ignore[no-untyped-def]
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    configured = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [old_key, *configured]
    user = member(alpha, Role.AGENT)
    secret = with_totp(alpha, user)
    before = stored_totp_data(alpha, user)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key, *configured]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [new_key]

    after = stored_totp_data(alpha, user)
    assert after != before
    assert secret not in after
    client = anonymous(alpha)
    log_in_with_password(client, user)
    response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(user.pk)
