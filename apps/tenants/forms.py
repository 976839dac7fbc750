"""Signup on the public site; the web-origins field shared by the admin and dashboard."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.tenants.services import company_owner_email_check, company_slug_check
from apps.tenants.validators import SLUG_MAX_LENGTH


class SignupForm(forms.Form):
    company_name = forms.CharField(label=_("Company name"), max_length=120)
    subdomain = forms.CharField(
        label=_("Subdomain"),
        max_length=SLUG_MAX_LENGTH,
        help_text=_("Your team's address: <subdomain>.%(domain)s")
        % {"domain": settings.ROOT_DOMAIN},
    )
    name = forms.CharField(label=_("Your name"), max_length=150)
    email = forms.EmailField(label=_("Work email"))
    language = forms.ChoiceField(
        label=_("Default language of your assistant and team"),
        choices=settings.LANGUAGES,
        initial="es",
    )
    password = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 10 characters, not only digits, not a common password."),
    )

    def clean_subdomain(self) -> str:
        slug = self.cleaned_data["subdomain"].strip().lower()
        company_slug_check(slug=slug)
        return slug

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        company_owner_email_check(email=email)
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            # Checked here too (not only by company_create) so every error shows at once.
            probe = User(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
            try:
                validate_password(password, probe)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned

    def add_service_errors(self, error: ValidationError) -> None:
        """Show the errors of `company_create` on the matching fields."""
        field_for = {
            "slug": "subdomain",
            "owner_email": "email",
            "owner_password": "password",
            "name": "company_name",
        }
        if hasattr(error, "error_dict"):
            for key, errors in error.error_dict.items():
                self.add_error(field_for.get(key), errors)
        else:
            self.add_error(None, error)


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


class OriginsField(forms.Field):
    """One web origin per line (scheme://host[:port]) ↔ a list."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": "https://www.example.com"})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        origins = []
        for line in (value or "").splitlines():
            origin = line.strip().rstrip("/").lower()
            if not origin:
                continue
            if not _ORIGIN.match(origin):
                raise forms.ValidationError(
                    _("%(origin)s is not an origin like https://www.example.com (no path).")
                    % {"origin": origin}
                )
            origins.append(origin)
        if len(origins) > 20:
            raise forms.ValidationError(_("At most 20 origins."))
        return list(dict.fromkeys(origins))
