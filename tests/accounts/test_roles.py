"""Changing roles and removing members from the Team page."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, Role, User
from apps.audit.models import AuditLog
from apps.tenants.models import Company
from tests.conftest import PASSWORD, logged_in, member, owner

TEAM = "/dashboard/team/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_for(company: Company, user: User) -> Client:
    return english(logged_in(company, user))


def membership_of(company: Company, user: User) -> Membership:
    with tenant_context(company):
        return Membership.objects.get(user_id=user.pk)


def role_of(company: Company, user: User) -> str:
    return membership_of(company, user).role


def change_role(client: Client, company: Company, user: User, role: str) -> HttpResponse:
    pk = membership_of(company, user).pk
    return client.post(f"/dashboard/team/members/{pk}/role/", {"role": role})


def remove(client: Client, company: Company, user: User) -> HttpResponse:
    pk = membership_of(company, user).pk
    return client.post(f"/dashboard/team/members/{pk}/remove/")


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def audit_entries(company: Company, action: str) -> list[AuditLog]:
    with tenant_context(company):
        return list(AuditLog.objects.filter(action=action).order_by("id"))


def test_an_owner_changes_a_members_role_and_it_is_audited(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    boss = owner(alpha)

    response = change_role(client_for(alpha, boss), alpha, agent, Role.ADMIN)

    assert response.status_code == 302
    assert response["Location"] == TEAM
    assert flashed(response) == [("success", "Role updated.")]
    assert role_of(alpha, agent) == Role.ADMIN
    [entry] = audit_entries(alpha, "membership.role_change")
    assert entry.changes == {"role": ["agent", "admin"]}
    assert entry.object_id == str(membership_of(alpha, agent).pk)
    assert (entry.actor_id, entry.actor_email) == (boss.pk, boss.email)


def test_an_admin_changes_an_agent_to_viewer(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)

    response = change_role(client_for(alpha, member(alpha, Role.ADMIN)), alpha, agent, "viewer")

    assert flashed(response) == [("success", "Role updated.")]
    assert role_of(alpha, agent) == Role.VIEWER


def test_setting_the_same_role_writes_no_audit_entry(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)

    change_role(client_for(alpha, owner(alpha)), alpha, agent, Role.AGENT)

    assert role_of(alpha, agent) == Role.AGENT
    assert audit_entries(alpha, "membership.role_change") == []


def test_an_unknown_role_is_refused(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)

    response = change_role(client_for(alpha, owner(alpha)), alpha, agent, "emperor")

    assert flashed(response) == [("error", "Unknown role.")]
    assert role_of(alpha, agent) == Role.AGENT


def test_an_admin_cannot_change_an_owners_role(alpha: Company) -> None:
    boss = owner(alpha)
    member(alpha, Role.OWNER)  # a second owner, so only the admin's rank is in the way

    response = change_role(client_for(alpha, member(alpha, Role.ADMIN)), alpha, boss, Role.AGENT)

    assert response.status_code == 302
    assert flashed(response) == [("error", "Only owners can change another owner's role.")]
    assert role_of(alpha, boss) == Role.OWNER
    assert audit_entries(alpha, "membership.role_change") == []


def test_an_admin_cannot_make_anyone_an_owner(alpha: Company) -> None:
    admin = member(alpha, Role.ADMIN)
    agent = member(alpha, Role.AGENT)

    response = change_role(client_for(alpha, admin), alpha, agent, Role.OWNER)
    promote_self = change_role(client_for(alpha, admin), alpha, admin, Role.OWNER)

    assert flashed(response) == [("error", "Only owners can make someone an owner.")]
    assert flashed(promote_self) == [("error", "Only owners can make someone an owner.")]
    assert role_of(alpha, agent) == Role.AGENT
    assert role_of(alpha, admin) == Role.ADMIN
    assert audit_entries(alpha, "membership.role_change") == []


def test_the_last_owner_cannot_be_demoted(alpha: Company) -> None:
    boss = owner(alpha)

    response = change_role(client_for(alpha, boss), alpha, boss, Role.ADMIN)

    assert flashed(response) == [("error", "The company needs at least one owner.")]
    assert role_of(alpha, boss) == Role.OWNER
    assert audit_entries(alpha, "membership.role_change") == []


def test_the_last_owner_cannot_be_removed(alpha: Company) -> None:
    boss = owner(alpha)

    response = remove(client_for(alpha, boss), alpha, boss)

    assert flashed(response) == [("error", "The company needs at least one owner.")]
    assert role_of(alpha, boss) == Role.OWNER
    with tenant_context(alpha):
        assert User.objects.get(pk=boss.pk).is_active is True
    assert audit_entries(alpha, "membership.remove") == []


def test_an_inactive_owner_does_not_count_towards_keeping_one(alpha: Company) -> None:
    boss = owner(alpha)
    ghost = member(alpha, Role.OWNER)
    with tenant_context(alpha):
        User.objects.filter(pk=ghost.pk).update(is_active=False)

    response = change_role(client_for(alpha, boss), alpha, boss, Role.ADMIN)

    assert flashed(response) == [("error", "The company needs at least one owner.")]
    assert role_of(alpha, boss) == Role.OWNER


def test_with_two_owners_one_can_be_demoted(alpha: Company) -> None:
    boss = owner(alpha)
    co_owner = member(alpha, Role.OWNER)

    response = change_role(client_for(alpha, co_owner), alpha, boss, Role.ADMIN)

    assert flashed(response) == [("success", "Role updated.")]
    assert role_of(alpha, boss) == Role.ADMIN
    assert role_of(alpha, co_owner) == Role.OWNER
    [entry] = audit_entries(alpha, "membership.role_change")
    assert entry.changes == {"role": ["owner", "admin"]}
    # co_owner is now the last owner
    last = change_role(client_for(alpha, co_owner), alpha, co_owner, Role.AGENT)
    assert flashed(last) == [("error", "The company needs at least one owner.")]
    assert role_of(alpha, co_owner) == Role.OWNER


def test_removing_a_member_deactivates_them_and_ends_their_session(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    agent_client = client_for(alpha, agent)
    assert agent_client.get("/dashboard/").status_code == 200
    membership_pk = membership_of(alpha, agent).pk
    boss = owner(alpha)

    response = remove(client_for(alpha, boss), alpha, agent)

    assert response.status_code == 302
    assert response["Location"] == TEAM
    assert flashed(response) == [("success", "Agent Member was removed from the team.")]
    with tenant_context(alpha):
        assert User.objects.get(pk=agent.pk).is_active is False
        assert not Membership.objects.filter(user_id=agent.pk).exists()
    [entry] = audit_entries(alpha, "membership.remove")
    assert entry.changes == {"role": ["agent", None]}
    assert entry.object_id == str(membership_pk)
    assert (entry.actor_id, entry.actor_email) == (boss.pk, boss.email)
    after = agent_client.get("/dashboard/")
    assert after.status_code == 302
    assert after["Location"] == "/accounts/login/?next=/dashboard/"
    assert not after.wsgi_request.user.is_authenticated


def test_a_removed_member_cannot_log_in_again(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    remove(client_for(alpha, owner(alpha)), alpha, agent)
    client = english(Client(HTTP_HOST="alpha.localhost"))

    response = client.post("/accounts/login/", {"login": agent.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/inactive/"
    assert "_auth_user_id" not in client.session
    assert client.get("/dashboard/").status_code == 302


def test_a_removed_member_disappears_from_the_team_page(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT, email="leaving@example.com")
    client = client_for(alpha, owner(alpha))

    remove(client, alpha, agent)

    assert b"leaving@example.com" not in client.get(TEAM).content


def test_an_admin_cannot_remove_an_owner(alpha: Company) -> None:
    boss = owner(alpha)
    member(alpha, Role.OWNER)

    response = remove(client_for(alpha, member(alpha, Role.ADMIN)), alpha, boss)

    assert flashed(response) == [("error", "Only owners can remove an owner.")]
    assert role_of(alpha, boss) == Role.OWNER
    with tenant_context(alpha):
        assert User.objects.get(pk=boss.pk).is_active is True


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_change_roles(alpha: Company, role: str) -> None:
    actor = member(alpha, role)
    target = member(alpha, Role.VIEWER if role == Role.AGENT else Role.AGENT)
    client = client_for(alpha, actor)

    on_other = change_role(client, alpha, target, Role.ADMIN)
    on_self = change_role(client, alpha, actor, Role.OWNER)

    assert on_other.status_code == 403
    assert on_self.status_code == 403
    assert role_of(alpha, target) != Role.ADMIN
    assert role_of(alpha, actor) == role
    assert audit_entries(alpha, "membership.role_change") == []


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_cannot_remove_members(alpha: Company, role: str) -> None:
    boss = owner(alpha)
    colleague = member(alpha, Role.AGENT)
    client = client_for(alpha, member(alpha, role))

    assert remove(client, alpha, colleague).status_code == 403
    assert remove(client, alpha, boss).status_code == 403

    with tenant_context(alpha):
        assert User.objects.get(pk=colleague.pk).is_active is True
        assert Membership.objects.filter(user_id__in=[boss.pk, colleague.pk]).count() == 2
    assert audit_entries(alpha, "membership.remove") == []


def test_role_changes_only_accept_post(alpha: Company) -> None:
    agent = member(alpha, Role.AGENT)
    pk = membership_of(alpha, agent).pk

    response = client_for(alpha, owner(alpha)).get(f"/dashboard/team/members/{pk}/role/")

    assert response.status_code == 405
    assert role_of(alpha, agent) == Role.AGENT
