"""The dashboard (company hosts): home, API keys, personal API tokens, the assistant test chat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES, Invitation, Membership
from apps.accounts.permissions import member_required
from apps.api.models import ApiKey, Scope
from apps.api.services import (
    IssuedKey,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_token_issue,
)
from apps.assistants.prompting import AssistantConfig, assistant_config_load, system_prompt_compose
from apps.assistants.services import assistant_profile_get
from apps.audit.services import Actor
from apps.conversations.models import Channel, Conversation, Message, UsageMonth
from apps.conversations.services import conversation_delete, message_receive, reply_generate
from apps.dashboard.navigation import ASSISTANT_TEST_ROLES
from chapi.hosts import url_on_host

BUDGET_WARNING_PERCENT = 80


def root(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:home" if request.user.is_authenticated else "account_login")


# --- Home ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    """The month's token use against the company's budget, when it is worth a notice."""

    used: int
    budget: int

    @property
    def percent(self) -> int:
        return self.used * 100 // self.budget

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget


def budget_status(monthly_token_budget: int) -> BudgetStatus | None:
    """The budget notice to show, or None under BUDGET_WARNING_PERCENT (or with no budget)."""
    if monthly_token_budget <= 0:
        return None
    # The same month key the reply pipeline counts usage in (apps.conversations.services).
    usage = UsageMonth.objects.filter(month=timezone.now().date().replace(day=1)).first()
    status = BudgetStatus(used=usage.total_tokens if usage else 0, budget=monthly_token_budget)
    return status if status.percent >= BUDGET_WARNING_PERCENT else None


def _assistant_config(request: HttpRequest) -> AssistantConfig:
    return assistant_config_load(
        profile=assistant_profile_get(),
        company_name=request.tenant.name,  # type: ignore[attr-defined]
    )


@member_required()
def home(request: HttpRequest) -> HttpResponse:
    profile = assistant_profile_get()
    member: Membership = request.membership  # type: ignore[attr-defined]
    context = {
        "profile": profile,
        "member_count": Membership.objects.filter(user__is_active=True).count(),
        "open_invitations": sum(
            1 for i in Invitation.objects.filter(accepted_at=None, revoked_at=None) if i.is_open
        ),
        "budget": budget_status(profile.monthly_token_budget),
        "assistant": _assistant_config(request),
        "can_test": member.role in ASSISTANT_TEST_ROLES,
    }
    return render(request, "dashboard/home.html", context)


# --- API keys and personal tokens ----------------------------------------------------------


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=Scope.choices,
        initial=[Scope.CHAT],
        widget=forms.CheckboxSelectMultiple,
    )


def public_base_url(request: HttpRequest) -> str:
    """The public host's URL as this visitor reaches it: the API lives on ROOT_DOMAIN, not on
    the company host, but behind the same scheme and port."""
    return url_on_host(request, settings.ROOT_DOMAIN)


def _api_context(request: HttpRequest) -> dict[str, str]:
    base = public_base_url(request)
    return {"api_base": base, "chat_url": f"{base}/v1/chat", "docs_url": f"{base}/v1/docs"}


def _company_key(request: HttpRequest, pk: int) -> ApiKey:
    # API keys live in the public schema: only the company filter keeps them apart.
    return get_object_or_404(ApiKey, pk=pk, company=request.tenant)  # type: ignore[attr-defined]


def _key_issued(
    request: HttpRequest, issued: IssuedKey, *, replaced: ApiKey | None
) -> HttpResponse:
    # The full key is only ever in this response: not in the session, a message or a log.
    return render(
        request,
        "dashboard/api_key_issued.html",
        {"issued": issued, "replaced": replaced, **_api_context(request)},
    )


@member_required(*MANAGER_ROLES)
@require_http_methods(["GET", "POST"])
@never_cache
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        issued = api_key_create(
            company=request.tenant,  # type: ignore[attr-defined]
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            actor=Actor.from_request(request),
        )
        return _key_issued(request, issued, replaced=None)
    keys = ApiKey.objects.filter(company=request.tenant)  # type: ignore[attr-defined]
    return render(
        request,
        "dashboard/api_keys.html",
        {"keys": keys, "form": form, **_api_context(request)},
        status=400 if request.method == "POST" else 200,
    )


@member_required(*MANAGER_ROLES)
@require_POST
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = _company_key(request, pk)
    if api_key.revoked_at is None:
        api_key_revoke(api_key=api_key, actor=Actor.from_request(request))
        messages.success(request, _("The key “%(name)s” was revoked.") % {"name": api_key.name})
    return redirect("dashboard:api_keys")


@member_required(*MANAGER_ROLES)
@require_POST
@never_cache
def api_key_rotate_view(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = _company_key(request, pk)
    if api_key.revoked_at is not None:
        messages.error(request, _("A revoked key cannot be rotated. Create a new key instead."))
        return redirect("dashboard:api_keys")
    issued = api_key_rotate(api_key=api_key, actor=Actor.from_request(request))
    return _key_issued(request, issued, replaced=api_key)


@member_required()
@require_http_methods(["GET", "POST"])
@never_cache
def api_token(request: HttpRequest) -> HttpResponse:
    """A short-lived JWT for the read endpoints, for any team member; shown once."""
    member: Membership = request.membership  # type: ignore[attr-defined]
    token = expires_at = None
    if request.method == "POST":
        token = api_token_issue(
            company=request.tenant,  # type: ignore[attr-defined]
            user_id=member.user_id,
            role=member.role,
        )
        # Read back rather than recomputed, so the page shows the expiry the token carries.
        claims = jwt.decode(token, options={"verify_signature": False})
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
    return render(
        request,
        "dashboard/api_token.html",
        {
            "token": token,
            "expires_at": expires_at,
            "ttl_minutes": settings.API_JWT_TTL_SECONDS // 60,
            **_api_context(request),
        },
    )


# --- Test your assistant -------------------------------------------------------------------


class TestChatForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Your message"),
        max_length=settings.CHAT_MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "autofocus": True}),
    )


def chat_session_id(request: HttpRequest) -> str:
    return f"dashboard-{request.user.pk}"


@member_required(*ASSISTANT_TEST_ROLES)
@require_http_methods(["GET", "POST"])
def assistant_test(request: HttpRequest) -> HttpResponse:
    """Talk to the company's assistant through the real reply pipeline (its model, or the
    offline responder), one conversation per team member on the `test` channel."""
    session_id = chat_session_id(request)
    form = TestChatForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        received = message_receive(
            channel=Channel.TEST,
            session_id=session_id,
            text=form.cleaned_data["text"],
            generate=False,
            caller_replies=True,
        )
        if reply_generate(message_id=received.message.pk) is None:
            messages.error(request, _("The assistant did not answer this message."))
        return redirect("dashboard:assistant_test")
    conversation = Conversation.objects.filter(channel=Channel.TEST, session_id=session_id).first()
    history = (
        list(conversation.messages.exclude(role=Message.Role.SYSTEM).order_by("created_at", "id"))
        if conversation
        else []
    )
    last_answer = next((m for m in reversed(history) if m.role == Message.Role.ASSISTANT), None)
    config = _assistant_config(request)
    system_prompt = system_prompt_compose(config, conversation.pk if conversation else None)
    return render(
        request,
        "dashboard/assistant_test.html",
        {
            "form": form,
            "history": history,
            "last_answer": last_answer,
            "config": config,
            "system_prompt": system_prompt,
        },
        status=400 if request.method == "POST" else 200,
    )


@member_required(*ASSISTANT_TEST_ROLES)
@require_POST
def assistant_test_reset(request: HttpRequest) -> HttpResponse:
    """Delete this member's test conversation (its messages cascade) and its test contact."""
    session_id = chat_session_id(request)
    conversation = Conversation.objects.filter(channel=Channel.TEST, session_id=session_id).first()
    if conversation is not None:
        conversation_delete(conversation=conversation)
    messages.success(request, _("The test conversation was deleted."))
    return redirect("dashboard:assistant_test")
