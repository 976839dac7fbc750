"""allauth adaptations: accounts are created by company signup and invitations only, and
second-factor secrets are encrypted at rest."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from allauth.mfa.adapter import DefaultMFAAdapter
from django.http import HttpRequest

from chapi.crypto import decrypt, encrypt


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Companies sign up on the public site; people join a company by invitation.
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # Without django.contrib.sites allauth names the host in its emails; name the company.
        request = allauth_context.request
        company = getattr(request, "tenant", None)
        if request is not None and company is not None and not company.is_public:
            context = {
                "current_site": SimpleNamespace(name=company.name, domain=request.get_host()),
                **context,
            }
        super().send_mail(template_prefix, email, context)


class MFAAdapter(DefaultMFAAdapter):
    """TOTP secrets and recovery-code seeds are encrypted at rest like every other secret."""

    def encrypt(self, text: str) -> str:
        return encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt(encrypted_text)
