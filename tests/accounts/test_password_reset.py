"""Password reset and email verification run on the company's host, through allauth."""

from __future__ import annotations

import re

from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django_tenants.utils import tenant_context

from apps.tenants.models import Company
from tests.conftest import host, member


def _link(body: str, company: Company) -> str:
    match = re.search(rf"http://{re.escape(host(company))}(/accounts/\S+)", body)
    assert match, body
    return match.group(1)


def test_a_member_resets_their_password_on_the_company_host(alpha: Company) -> None:
    user = member(alpha, "agent", email="forgetful@alpha.example.com")
    client = Client(HTTP_HOST=host(alpha))

    response = client.post("/accounts/password/reset/", {"email": "forgetful@alpha.example.com"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["forgetful@alpha.example.com"]
    link = _link(mail.outbox[0].body, alpha)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    done = client.post(
        set_url, {"password1": "brand-new-secret-42", "password2": "brand-new-secret-42"}
    )
    assert done.status_code == 302
    with tenant_context(alpha):
        user.refresh_from_db()
        assert user.check_password("brand-new-secret-42")


def test_a_reset_request_for_another_companys_member_sends_no_link(
    alpha: Company, beta: Company
) -> None:
    member(beta, "agent", email="only-in-beta@example.com")

    Client(HTTP_HOST=host(alpha)).post(
        "/accounts/password/reset/", {"email": "only-in-beta@example.com"}
    )

    # allauth does not reveal whether the account exists; no reset link leaves alpha's host.
    assert all("/accounts/password/reset/key/" not in m.body for m in mail.outbox)


def test_the_verification_link_confirms_the_address(alpha: Company) -> None:
    user = member(alpha, "viewer", email="unverified@alpha.example.com")
    with tenant_context(alpha):
        EmailAddress.objects.filter(user=user).update(verified=False)
    client = Client(HTTP_HOST=host(alpha))
    with tenant_context(alpha):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    client.post("/accounts/email/", {"action_send": "", "email": "unverified@alpha.example.com"})
    assert len(mail.outbox) == 1
    link = _link(mail.outbox[0].body, alpha)
    client.post(link)

    with tenant_context(alpha):
        assert EmailAddress.objects.get(user=user).verified is True
