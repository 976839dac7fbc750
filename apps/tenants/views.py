"""The public site: landing page, signup, and "log in to your company"."""

from __future__ import annotations

from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from apps.accounts.handoff import handoff_token_issue
from apps.audit.services import Actor
from apps.tenants.forms import SignupForm
from apps.tenants.selectors import company_by_slug
from apps.tenants.services import company_create, company_host
from chapi.hosts import url_on_host

SIGNUPS_PER_IP_PER_HOUR = 10


def company_url(request: HttpRequest, slug: str, path: str = "/") -> str:
    """Absolute URL on a company's host, keeping the scheme and port the visitor uses."""
    return url_on_host(request, company_host(slug), path)


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/landing.html")


def _signup_allowed(request: HttpRequest) -> bool:
    key = f"signup-rate:{request.META.get('REMOTE_ADDR', '')}"
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) <= SIGNUPS_PER_IP_PER_HOUR
    except ValueError:  # the key expired between add and incr
        return True


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if not _signup_allowed(request):
            form.add_error(None, _("Too many signups from your network. Try again in an hour."))
            return render(request, "tenants/signup.html", {"form": form}, status=429)
        data = form.cleaned_data
        try:
            created = company_create(
                name=data["company_name"],
                slug=data["subdomain"],
                owner_email=data["email"],
                owner_name=data["name"],
                owner_password=data["password"],
                language=data["language"],
                actor=Actor(ip=request.META.get("REMOTE_ADDR")),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            token = handoff_token_issue(
                schema_name=created.company.schema_name, user_id=created.owner.pk
            )
            return HttpResponseRedirect(
                company_url(request, created.company.slug, f"/auth/handoff/?token={token}")
            )
    status = 400 if request.method == "POST" else 200
    return render(request, "tenants/signup.html", {"form": form}, status=status)


class FindCompanyForm(forms.Form):
    subdomain = forms.CharField(label=gettext_lazy("Your company's subdomain"), max_length=40)

    def clean_subdomain(self) -> str:
        slug = self.cleaned_data["subdomain"].strip().lower()
        if company_by_slug(slug=slug) is None:
            raise ValidationError(_("There is no company with this subdomain."))
        return slug


@require_http_methods(["GET", "POST"])
def find_company(request: HttpRequest) -> HttpResponse:
    """Users log in on their company's host: ask which one and send them there."""
    form = FindCompanyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        return HttpResponseRedirect(
            company_url(request, form.cleaned_data["subdomain"], "/accounts/login/")
        )
    return render(request, "tenants/find_company.html", {"form": form})
