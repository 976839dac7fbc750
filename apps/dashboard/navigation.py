"""The dashboard's navigation. Features add their entry here."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import MANAGER_ROLES, Role


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url: str  # a path on the company host
    roles: frozenset[str] = frozenset(Role.values)


NAVIGATION: list[NavItem] = [
    NavItem(_("Home"), "/dashboard/"),
    NavItem(_("Team"), "/dashboard/team/"),
    NavItem(_("Settings"), "/admin/", roles=MANAGER_ROLES),
]


def navigation_for(role: str | None) -> list[NavItem]:
    return [item for item in NAVIGATION if role in item.roles]
