"""Dashboard: A/B tests of the welcome message, the system prompt or a flow's message.

Owners and admins create a test (variant A is the current text unless they write another),
start it, stop it, and promote a variant in one click; everybody reads the results: per
variant the conversations, leads captured, qualified leads and meetings booked, each rate with
its 95% interval, the difference with the control and the verdict in plain words.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import MANAGER_ROLES
from apps.accounts.permissions import member_required
from apps.audit.services import Actor
from apps.experiments.models import Experiment, Variant
from apps.experiments.services import (
    KEYS,
    ExperimentError,
    current_text,
    experiment_create,
    experiment_promote,
    experiment_results,
    experiment_start,
    experiment_stop,
)

ACTIONS = ("start", "stop", "promote")


def _flow_rules() -> list[tuple[str, str]]:
    from apps.flows.services import flows_active

    return [
        (rule.key, f"{rule.flow} #{rule.index + 1} · {rule.trigger.label}: {rule.message[:60]}")
        for rule in flows_active().rules
        if rule.message
    ]


def _weight(value: str) -> int:
    return int(value) if value.strip().isdigit() else 0


@member_required()
@require_http_methods(["GET", "POST"])
@never_cache
def experiments_home(request: HttpRequest) -> HttpResponse:
    member = request.membership  # type: ignore[attr-defined]
    can_edit = member.role in MANAGER_ROLES
    form: dict[str, Any] = {"target": "welcome", "metric": "qualified", "weights": [50, 50, 0, 0],
                            "texts": ["", "", "", ""]}  # fmt: skip
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        post = request.POST
        target, flow_rule = post.get("target", ""), post.get("flow_rule", "")
        texts = [post.get(f"text_{key.lower()}", "") for key in KEYS]
        weights = [_weight(post.get(f"weight_{key.lower()}", "")) for key in KEYS]
        form = {"name": post.get("name", ""), "target": target, "flow_rule": flow_rule,
                "metric": post.get("metric", ""), "texts": texts, "weights": weights}  # fmt: skip
        try:
            if not texts[0].strip():
                texts[0] = current_text(target, flow_rule)
            experiment = experiment_create(
                name=form["name"], target=target, metric=form["metric"], flow_rule=flow_rule,
                texts=list(zip(texts, weights, strict=True)), author=request.user,  # type: ignore[arg-type]
                actor=Actor.from_request(request),
            )  # fmt: skip
        except ExperimentError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, _("A/B test created as a draft: start it when ready."))
            return redirect("dashboard:experiment", pk=experiment.pk)
    return render(request, "dashboard/experiments.html", {
        "experiments": Experiment.objects.prefetch_related("variants")[:100],
        "can_edit": can_edit, "form": form, "keys": KEYS,
        "targets": Experiment.Target.choices, "metrics": Experiment.Metric.choices,
        "flow_rules": _flow_rules(),
    }, status=status)  # fmt: skip


@member_required()
@never_cache
def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = get_object_or_404(Experiment, pk=pk)
    return render(request, "dashboard/experiment.html", {
        "experiment": experiment, "results": experiment_results(experiment),
        "can_edit": request.membership.role in MANAGER_ROLES,  # type: ignore[attr-defined]
    })  # fmt: skip


@member_required(*MANAGER_ROLES)
@require_POST
def experiment_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404
    experiment = get_object_or_404(Experiment, pk=pk)
    actor = Actor.from_request(request)
    try:
        if action == "start":
            experiment_start(experiment=experiment, actor=actor)
            messages.success(request, _("The test is running: new conversations get a variant."))
        elif action == "stop":
            experiment_stop(experiment=experiment, actor=actor)
            messages.success(request, _("The test is stopped: everybody gets the current text."))
        else:
            variant = Variant.objects.filter(
                experiment=experiment, pk=request.POST.get("variant") or 0
            ).first()
            if variant is None:
                raise Http404
            experiment_promote(experiment=experiment, variant=variant, author=request.user,  # type: ignore[arg-type]
                               actor=actor)  # fmt: skip
            messages.success(
                request, _("Variant %(key)s is now what everybody gets.") % {"key": variant.key}
            )
    except ExperimentError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:experiment", pk=experiment.pk)
