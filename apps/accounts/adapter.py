"""allauth adaptations: accounts are created by company signup and invitations only."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Companies sign up on the public site; people join a company by invitation.
        return False
