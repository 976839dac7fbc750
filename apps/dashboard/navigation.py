"""The dashboard's navigation. Features add their entry here."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import MANAGER_ROLES, Role

# Who may try the assistant from the dashboard (it spends the company's tokens).
ASSISTANT_TEST_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.AGENT})


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url: str  # a path on the company host
    roles: frozenset[str] = frozenset(Role.values)


NAVIGATION: list[NavItem] = [
    NavItem(_("Home"), "/dashboard/"),
    NavItem(_("Team"), "/dashboard/team/"),
    NavItem(_("Leads"), "/dashboard/leads/"),
    NavItem(_("Inbox"), "/dashboard/inbox/"),
    NavItem(_("Analytics"), "/dashboard/analytics/"),
    NavItem(_("Flows"), "/dashboard/flows/"),
    NavItem(_("A/B tests"), "/dashboard/experiments/"),
    NavItem(_("Assistant"), "/dashboard/assistant/test/", roles=ASSISTANT_TEST_ROLES),
    NavItem(_("Web widget"), "/dashboard/widget/", roles=MANAGER_ROLES),
    NavItem(_("Channels"), "/dashboard/channels/", roles=MANAGER_ROLES),
    NavItem(_("Lead settings"), "/dashboard/leads/settings/", roles=MANAGER_ROLES),
    NavItem(_("API"), "/dashboard/api-keys/", roles=MANAGER_ROLES),
    NavItem(_("Settings"), "/admin/", roles=MANAGER_ROLES),
]


def navigation_for(role: str | None) -> list[NavItem]:
    return [item for item in NAVIGATION if role in item.roles]
