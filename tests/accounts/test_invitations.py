"""Inviting teammates from the Team page and accepting the emailed link."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Invitation, Membership, Role, User
from apps.accounts.services import invitation_create, membership_remove
from apps.audit.models import AuditLog
from apps.audit.services import SYSTEM
from apps.tenants.models import Company
from tests.conftest import host, logged_in, member, owner

NEW_PASSWORD = "plum-orchard-lantern-42"
TEAM = "/dashboard/team/"


def english(client: Client) -> Client:
    """Pin the UI language so messages can be compared (the companies default to Spanish)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def anonymous(company: Company) -> Client:
    return english(Client(HTTP_HOST=host(company)))


def manager_client(company: Company, role: str) -> Client:
    user = owner(company) if role == Role.OWNER else member(company, role)
    return english(logged_in(company, user))


def invite(company: Company, email: str, role: str = Role.AGENT) -> tuple[Invitation, str]:
    """An invitation issued by the company's owner through the service; returns the token."""
    with tenant_context(company):
        issued = invitation_create(
            email=email,
            role=role,
            invited_by=owner(company),
            actor=SYSTEM,
            link_for=lambda token: f"http://{host(company)}/invite/{token}/",
        )
    return issued.invitation, issued.token


def link_token(body: str, company: Company) -> str:
    found = re.search(rf"http://{re.escape(host(company))}/invite/([A-Za-z0-9_\-]+)/", body)
    assert found is not None, body
    return found.group(1)


def invitations(company: Company) -> list[Invitation]:
    with tenant_context(company):
        return list(Invitation.objects.order_by("pk"))


def audit_actions(company: Company) -> list[str]:
    with tenant_context(company):
        return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_a_manager_invites_by_email_and_only_the_token_hash_is_stored(
    alpha: Company, role: str, django_capture_on_commit_callbacks
) -> None:
    client = manager_client(alpha, role)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(TEAM, {"email": "New.Person@Example.com", "role": Role.AGENT})

    assert response.status_code == 302
    assert response["Location"] == TEAM
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert message.subject == "You are invited to join your team on CHAPI"
    token = link_token(message.body, alpha)
    assert f"http://{host(alpha)}/invite/{token}/" in message.body

    [invitation] = invitations(alpha)
    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.AGENT
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {invitation.email, invitation.token_hash}
    assert invitation.accepted_at is None
    assert invitation.revoked_at is None
    remaining = invitation.expires_at - timezone.now()
    assert timedelta(days=6, hours=23) < remaining <= timedelta(days=7)
    with tenant_context(alpha):
        entry = AuditLog.objects.get(action="invitation.create")
        inviter = User.objects.get(pk=invitation.invited_by_id)
    assert entry.object_id == str(invitation.pk)
    assert entry.actor_email == inviter.email
    assert entry.actor_kind == "user"
    assert entry.changes == {"role": [None, "agent"]}
    assert token not in str(entry.changes)


def test_the_invitation_email_is_sent_only_on_commit(
    alpha: Company, django_capture_on_commit_callbacks
) -> None:
    client = manager_client(alpha, Role.OWNER)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(TEAM, {"email": "later@example.com", "role": Role.VIEWER})

    assert mail.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [m.to for m in mail.outbox] == [["later@example.com"]]


def test_an_invitee_opens_the_link_accepts_and_is_logged_in_with_the_invited_role(
    alpha: Company, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        manager_client(alpha, Role.OWNER).post(
            TEAM, {"email": "nina@example.com", "role": Role.VIEWER}
        )
    token = link_token(mail.outbox[0].body, alpha)
    path = f"/invite/{token}/"
    invitee = anonymous(alpha)

    form_page = invitee.get(path)
    assert form_page.status_code == 200
    assert b"nina@example.com" in form_page.content
    assert b'name="name"' in form_page.content
    assert b'name="password"' in form_page.content

    response = invitee.post(path, {"name": "Nina Paz", "password": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    with tenant_context(alpha):
        user = User.objects.get(email="nina@example.com")
        assert user.name == "Nina Paz"
        assert user.is_active is True
        assert user.check_password(NEW_PASSWORD) is True
        assert Membership.objects.get(user=user).role == Role.VIEWER
        address = EmailAddress.objects.get(user=user)
        assert (address.email, address.verified, address.primary) == (
            "nina@example.com",
            True,
            True,
        )
        invitation = Invitation.objects.get(email="nina@example.com")
        assert invitation.accepted_at is not None
        entry = AuditLog.objects.get(action="invitation.accept")
    assert entry.actor_id == user.pk
    assert entry.actor_email == "nina@example.com"
    assert entry.object_id == str(invitation.pk)
    assert invitee.session["_auth_user_id"] == str(user.pk)
    assert invitee.get("/dashboard/").status_code == 200

    reused = anonymous(alpha).get(path)
    assert reused.status_code == 404
    assert b"This invitation is no longer valid" in reused.content


def test_an_accepted_link_cannot_create_a_second_account(alpha: Company) -> None:
    _, token = invite(alpha, "once@example.com")
    anonymous(alpha).post(f"/invite/{token}/", {"name": "Once", "password": NEW_PASSWORD})

    response = anonymous(alpha).post(
        f"/invite/{token}/", {"name": "Twice", "password": "another-" + NEW_PASSWORD}
    )

    assert response.status_code == 404
    with tenant_context(alpha):
        user = User.objects.get(email="once@example.com")
        assert user.name == "Once"
        assert user.check_password(NEW_PASSWORD) is True
    assert audit_actions(alpha).count("invitation.accept") == 1


def test_an_unknown_token_shows_the_invalid_invitation_page(alpha: Company) -> None:
    response = anonymous(alpha).get("/invite/not-a-real-token/")

    assert response.status_code == 404
    assert b"This invitation is no longer valid" in response.content


def test_an_expired_invitation_is_refused(alpha: Company) -> None:
    invitation, token = invite(alpha, "late@example.com")
    with tenant_context(alpha):
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
    client = anonymous(alpha)

    assert client.get(f"/invite/{token}/").status_code == 404
    response = client.post(f"/invite/{token}/", {"name": "Late", "password": NEW_PASSWORD})

    assert response.status_code == 404
    with tenant_context(alpha):
        assert not User.objects.filter(email="late@example.com").exists()
        assert Invitation.objects.get(pk=invitation.pk).accepted_at is None
    assert "_auth_user_id" not in client.session


def test_a_revoked_invitation_is_refused_and_the_revocation_is_audited(alpha: Company) -> None:
    invitation, token = invite(alpha, "gone@example.com")
    owner_client = manager_client(alpha, Role.OWNER)

    response = owner_client.post(f"/dashboard/team/invitations/{invitation.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == TEAM
    with tenant_context(alpha):
        invitation.refresh_from_db()
        entry = AuditLog.objects.get(action="invitation.revoke")
    assert invitation.revoked_at is not None
    assert entry.object_id == str(invitation.pk)
    assert entry.actor_email == owner(alpha).email
    client = anonymous(alpha)
    assert client.get(f"/invite/{token}/").status_code == 404
    assert (
        client.post(f"/invite/{token}/", {"name": "Gone", "password": NEW_PASSWORD}).status_code
        == 404
    )
    with tenant_context(alpha):
        assert not User.objects.filter(email="gone@example.com").exists()


def test_inviting_again_revokes_the_previous_link(alpha: Company) -> None:
    first, old_token = invite(alpha, "twice@example.com", Role.AGENT)
    second, new_token = invite(alpha, "twice@example.com", Role.ADMIN)

    with tenant_context(alpha):
        first.refresh_from_db()
        second.refresh_from_db()
    assert first.revoked_at is not None
    assert second.revoked_at is None
    client = anonymous(alpha)
    assert client.get(f"/invite/{old_token}/").status_code == 404
    assert client.get(f"/invite/{new_token}/").status_code == 200

    client.post(f"/invite/{new_token}/", {"name": "Twice", "password": NEW_PASSWORD})

    with tenant_context(alpha):
        assert Membership.objects.get(user__email="twice@example.com").role == Role.ADMIN


def test_an_invitation_of_one_company_does_not_open_on_another(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    _, token = invite(alpha, "visitor@example.com")

    response = anonymous(beta).post(
        f"/invite/{token}/", {"name": "Visitor", "password": NEW_PASSWORD}
    )

    assert response.status_code == 404
    with tenant_context(beta):
        assert not User.objects.filter(email="visitor@example.com").exists()
    with tenant_context(alpha):
        assert not User.objects.filter(email="visitor@example.com").exists()


def test_a_weak_password_is_refused_and_the_invitation_stays_open(alpha: Company) -> None:
    invitation, token = invite(alpha, "weak@example.com")

    response = anonymous(alpha).post(f"/invite/{token}/", {"name": "Weak", "password": "12345"})

    assert response.status_code == 200
    assert b"This password is too short" in response.content
    with tenant_context(alpha):
        assert not User.objects.filter(email="weak@example.com").exists()
        invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert "invitation.accept" not in audit_actions(alpha)


def test_a_removed_member_can_be_invited_back_and_is_reactivated(alpha: Company) -> None:
    former = member(alpha, Role.ADMIN, email="former@example.com")
    with tenant_context(alpha):
        membership_remove(
            membership=Membership.objects.get(user=former),
            by=Membership.objects.get(user=owner(alpha)),
            actor=SYSTEM,
        )
    _, token = invite(alpha, "former@example.com", Role.VIEWER)

    response = anonymous(alpha).post(
        f"/invite/{token}/", {"name": "Former Again", "password": NEW_PASSWORD}
    )

    assert response.status_code == 302
    with tenant_context(alpha):
        user = User.objects.get(email="former@example.com")
        assert user.pk == former.pk
        assert user.is_active is True
        assert user.name == "Former Again"
        assert user.check_password(NEW_PASSWORD) is True
        assert Membership.objects.get(user=user).role == Role.VIEWER


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_invite(
    alpha: Company, role: str, django_capture_on_commit_callbacks
) -> None:
    client = manager_client(alpha, role)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(TEAM, {"email": "sneaky@example.com", "role": Role.AGENT})

    assert response.status_code == 403
    assert invitations(alpha) == []
    assert mail.outbox == []
    assert "invitation.create" not in audit_actions(alpha)


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_do_not_see_the_invite_form(alpha: Company, role: str) -> None:
    response = manager_client(alpha, role).get(TEAM)

    assert response.status_code == 200
    assert b"Invite a teammate" not in response.content


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_revoke_an_invitation(alpha: Company, role: str) -> None:
    invitation, token = invite(alpha, "kept@example.com")

    response = manager_client(alpha, role).post(
        f"/dashboard/team/invitations/{invitation.pk}/revoke/"
    )

    assert response.status_code == 403
    with tenant_context(alpha):
        invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert anonymous(alpha).get(f"/invite/{token}/").status_code == 200


def test_an_admin_cannot_invite_an_owner(
    alpha: Company, django_capture_on_commit_callbacks
) -> None:
    client = manager_client(alpha, Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(TEAM, {"email": "boss@example.com", "role": Role.OWNER})

    assert response.status_code == 400
    assert b"Only owners can make someone an owner." in response.content
    assert invitations(alpha) == []
    assert mail.outbox == []


def test_an_owner_can_invite_another_owner(alpha: Company) -> None:
    response = manager_client(alpha, Role.OWNER).post(
        TEAM, {"email": "coowner@example.com", "role": Role.OWNER}
    )

    assert response.status_code == 302
    assert [(i.email, i.role) for i in invitations(alpha)] == [("coowner@example.com", "owner")]


def test_an_active_members_email_is_refused(
    alpha: Company, django_capture_on_commit_callbacks
) -> None:
    existing = member(alpha, Role.AGENT, email="already@example.com")
    client = manager_client(alpha, Role.OWNER)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(TEAM, {"email": "Already@Example.com", "role": Role.ADMIN})

    assert response.status_code == 400
    assert b"This person is already a team member." in response.content
    assert invitations(alpha) == []
    assert mail.outbox == []
    with tenant_context(alpha):
        assert Membership.objects.get(user=existing).role == Role.AGENT


def test_an_anonymous_visitor_is_sent_to_login_from_the_team_page(alpha: Company) -> None:
    response = anonymous(alpha).post(TEAM, {"email": "x@example.com", "role": Role.AGENT})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/team/"
    assert invitations(alpha) == []


def test_pending_invitations_are_listed_for_managers(alpha: Company) -> None:
    invite(alpha, "pending@example.com")

    response = manager_client(alpha, Role.ADMIN).get(TEAM)

    assert response.status_code == 200
    assert b"pending@example.com" in response.content
