"""A/B tests: variants of the welcome message, the system prompt or a flow's message.

A running test gives each conversation one variant, picked by traffic weight and decided once:
the pick is a hash of the test and the channel's session, and it is stored (Assignment) the
first time the variant is needed — the widget's welcome (before the conversation exists), the
assistant's reply (system prompt, and the welcome the offline responder greets with), Telegram's
/start, or a flow's message. At most one test runs per target (and per flow rule).

Results count, per variant, the conversations it was shown in and how many of their leads were
captured (an email or a phone), qualified, and booked a meeting. Each variant is compared with
the control (A) on the test's metric by a two-sided two-proportion z-test
(apps.experiments.stats), with Wilson intervals for each rate, and said in plain words.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.audit.services import SYSTEM, Actor, audit_record
from apps.conversations.models import Conversation
from apps.experiments.models import Assignment, Experiment, Variant
from apps.experiments.stats import (
    Comparison,
    Proportion,
    compare_all,
    probability_to_beat,
    wilson_interval,
)

MAX_VARIANTS = 4
MAX_TEXT = 8000
KEYS = "ABCD"


class ExperimentError(Exception):
    """The test cannot be created or changed as asked (the message says why)."""


# --- Which test runs ---------------------------------------------------------------------------


def _running_key() -> str:
    return f"experiments:running:{connection.schema_name}"  # type: ignore[attr-defined]


def _running() -> dict[str, dict[str, Any]]:
    """The running tests by target key ("welcome", "system_prompt", "flow_message:<rule>"),
    with their variants (cached; cleared when a test starts or stops)."""
    running = cache.get(_running_key())
    if running is None:
        running = {}
        for experiment in Experiment.objects.filter(
            status=Experiment.Status.RUNNING
        ).prefetch_related("variants"):
            target = experiment.target
            if target == Experiment.Target.FLOW_MESSAGE:
                target = f"{target}:{experiment.flow_rule}"
            running[target] = {
                "id": experiment.pk,
                "variants": [(v.pk, v.key, v.weight, v.text) for v in experiment.variants.all()],
            }
        cache.set(_running_key(), running, 60)
    return running


def _forget_running() -> None:
    key = _running_key()
    transaction.on_commit(lambda: cache.delete(key))


def _pick(
    experiment_id: int, variants: list[tuple[int, str, int, str]], channel: str, session_id: str
) -> int:
    """A variant id by traffic weight, the same every time for the same session."""
    digest = hashlib.sha256(f"{experiment_id}:{channel}:{session_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(weight for _id, _key, weight, _text in variants)
    for variant_id, _key, weight, _text in variants:
        if point < weight:
            return variant_id
        point -= weight
    return variants[-1][0]


def tests_running() -> bool:
    """Whether any A/B test runs (one cached read: the reply pipeline asks every reply)."""
    return bool(_running())


def variant_text(
    *,
    target: str,
    channel: str,
    session_id: str,
    conversation: Conversation | None = None,
    flow_rule: str = "",
) -> str | None:
    """The text of the running test's variant for this session (assigned now if needed), or
    None when no test runs for `target`. The dashboard's test chat takes no part."""
    if channel == "test":
        return None
    key = f"{target}:{flow_rule}" if target == Experiment.Target.FLOW_MESSAGE else target
    running = _running().get(key)
    if running is None or not running["variants"]:
        return None
    variant_id = _assign(running, channel, session_id, conversation)
    return next(text for vid, _key, _weight, text in running["variants"] if vid == variant_id)


def _assign(
    running: dict[str, Any], channel: str, session_id: str, conversation: Conversation | None
) -> int:
    experiment_id = running["id"]
    found = (
        Assignment.objects.filter(
            experiment_id=experiment_id, channel=channel, session_id=session_id
        )
        .values_list("pk", "variant_id", "conversation_id")
        .first()
    )
    if found is not None:
        pk, variant_id, conversation_id = found
        if conversation is not None and conversation_id is None:
            Assignment.objects.filter(pk=pk).update(conversation=conversation)
        return variant_id
    variant_id = _pick(experiment_id, running["variants"], channel, session_id)
    try:
        with transaction.atomic():
            Assignment.objects.create(
                experiment_id=experiment_id, variant_id=variant_id, channel=channel,
                session_id=session_id[:128], conversation=conversation,
            )  # fmt: skip
    except IntegrityError:
        # Another request assigned it first: that one stands.
        return Assignment.objects.get(
            experiment_id=experiment_id, channel=channel, session_id=session_id[:128]
        ).variant_id
    return variant_id


# --- Creating, starting, stopping, promoting ---------------------------------------------------


def _flow_rule_message(rule_key: str) -> str:
    from apps.flows.services import flows_active

    rule = flows_active().rule(rule_key)
    if rule is None or not rule.message:
        raise ExperimentError(_("Choose a flow rule that sends a message."))
    return rule.message


def current_text(target: str, flow_rule: str = "") -> str:
    """What the assistant says today for `target` (the control's text by default)."""
    from apps.assistants.services import assistant_profile_get

    if target == Experiment.Target.FLOW_MESSAGE:
        return _flow_rule_message(flow_rule)
    profile = assistant_profile_get()
    return profile.welcome_message if target == Experiment.Target.WELCOME else profile.system_prompt


def experiment_create(
    *,
    name: str,
    target: str,
    metric: str,
    texts: list[tuple[str, int]],
    flow_rule: str = "",
    author: User | None = None,
    actor: Actor = SYSTEM,
) -> Experiment:
    """A draft test with variants A (the control), B… from `texts` [(text, weight)]."""
    name = name.strip()
    if not name:
        raise ExperimentError(_("Give the test a name."))
    if target not in Experiment.Target.values:
        raise ExperimentError(_("Choose what to test."))
    if metric not in Experiment.Metric.values:
        raise ExperimentError(_("Choose the result that decides the winner."))
    if target == Experiment.Target.FLOW_MESSAGE:
        _flow_rule_message(flow_rule)
    else:
        flow_rule = ""
    texts = [(text.strip(), weight) for text, weight in texts if text.strip()]
    if not 2 <= len(texts) <= MAX_VARIANTS:
        raise ExperimentError(_("A test has 2 to 4 variants, each with a text."))
    if len({text for text, _w in texts}) != len(texts):
        raise ExperimentError(_("Each variant needs a different text."))
    limit = 500 if target == Experiment.Target.WELCOME else MAX_TEXT  # the profile's field
    for text, weight in texts:
        if len(text) > limit:
            raise ExperimentError(_("A variant's text is too long."))
        if not 1 <= weight <= 100:
            raise ExperimentError(_("Traffic weights go from 1 to 100."))
    with transaction.atomic():
        experiment = Experiment.objects.create(
            name=name[:120], target=target, flow_rule=flow_rule, metric=metric,
            created_by=author if author is not None and author.pk else None,
        )  # fmt: skip
        Variant.objects.bulk_create(
            [Variant(experiment=experiment, key=KEYS[i], text=text, weight=weight)
             for i, (text, weight) in enumerate(texts)]
        )  # fmt: skip
        audit_record(actor=actor, action="experiment.create", instance=experiment,
                     changes={"target": target, "variants": len(texts)})  # fmt: skip
    return experiment


def experiment_start(*, experiment: Experiment, actor: Actor = SYSTEM) -> Experiment:
    """Start a draft test; another test already running on the same target refuses."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != Experiment.Status.DRAFT:
            raise ExperimentError(_("Only a draft test can start."))
        clash = Experiment.objects.filter(
            status=Experiment.Status.RUNNING,
            target=experiment.target,
            flow_rule=experiment.flow_rule,
        ).first()
        if clash is not None:
            raise ExperimentError(
                _("“%(name)s” already tests this: stop it first.") % {"name": clash.name}
            )
        experiment.status = Experiment.Status.RUNNING
        experiment.started_at = timezone.now()
        experiment.save(update_fields=["status", "started_at"])
        audit_record(actor=actor, action="experiment.start", instance=experiment)
        _forget_running()
    return experiment


def experiment_stop(*, experiment: Experiment, actor: Actor = SYSTEM) -> Experiment:
    """Stop a running test: every conversation gets the current text again; results stay."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != Experiment.Status.RUNNING:
            raise ExperimentError(_("Only a running test can stop."))
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.save(update_fields=["status", "stopped_at"])
        audit_record(actor=actor, action="experiment.stop", instance=experiment)
        _forget_running()
    return experiment


def experiment_promote(
    *, experiment: Experiment, variant: Variant, author: User | None = None, actor: Actor = SYSTEM
) -> Experiment:
    """Make `variant`'s text the one everybody gets (the welcome message, the system prompt,
    or the flow rule's message in a new flows version) and end the test."""
    from apps.assistants.services import assistant_profile_get

    if variant.experiment_id != experiment.pk:
        raise ExperimentError(_("That variant belongs to another test."))
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status == Experiment.Status.PROMOTED:
            raise ExperimentError(_("This test's winner was already promoted."))
        if experiment.status == Experiment.Status.DRAFT:
            raise ExperimentError(_("Start the test first: a variant is promoted on its results."))
        if experiment.target == Experiment.Target.FLOW_MESSAGE:
            _promote_flow_message(
                experiment.flow_rule, variant.text, author, actor, experiment.name
            )
        else:
            profile = assistant_profile_get()
            field = (
                "welcome_message"
                if experiment.target == Experiment.Target.WELCOME
                else "system_prompt"
            )
            old = getattr(profile, field)
            setattr(profile, field, variant.text)
            profile.save(update_fields=[field])
            audit_record(actor=actor, action="assistant_profile.update", instance=profile,
                         changes={field: [old[:200], variant.text[:200]]})  # fmt: skip
        experiment.status = Experiment.Status.PROMOTED
        experiment.winner = variant
        experiment.stopped_at = experiment.stopped_at or timezone.now()
        experiment.save(update_fields=["status", "winner", "stopped_at"])
        audit_record(actor=actor, action="experiment.promote", instance=experiment,
                     changes={"winner": variant.key})  # fmt: skip
        _forget_running()
    return experiment


def _promote_flow_message(
    rule_key: str, text: str, author: User | None, actor: Actor, name: str
) -> None:
    from apps.flows.services import flow_version_current, flow_version_save
    from apps.flows.spec import message_replaced

    current = flow_version_current()
    if current is None:
        raise ExperimentError(_("There are no flows to change."))
    try:
        source = message_replaced(current.source, rule_key, text)
    except KeyError:
        raise ExperimentError(_("The flow rule no longer exists: promote by hand.")) from None
    flow_version_save(source=source, author=author, actor=actor,
                      note=_("A/B test “%(name)s”: winner promoted") % {"name": name})  # fmt: skip


# --- Results -----------------------------------------------------------------------------------

_METRICS = ("leads", "qualified", "meetings")


@dataclass(frozen=True)
class VariantResult:
    variant: Variant
    conversations: int
    leads: int
    qualified: int
    meetings: int
    rate: float  # on the test's metric
    low: float
    high: float
    comparison: Comparison | None  # None for the control
    chance_better: float | None


@dataclass(frozen=True)
class Results:
    experiment: Experiment
    variants: list[VariantResult]
    verdict: str


def experiment_results(experiment: Experiment) -> Results:
    lead = "conversation__contact__lead__"
    counts = {
        row["variant_id"]: row
        for row in Assignment.objects.filter(experiment=experiment, conversation__isnull=False)
        .values("variant_id")
        .annotate(
            conversations=Count("id"),
            leads=Count("id", filter=Q(**{f"{lead}email__gt": ""}) | Q(**{f"{lead}phone__gt": ""})),
            qualified=Count("id", filter=Q(**{f"{lead}qualified_at__isnull": False})),
            meetings=Count(
                "id",
                filter=Q(**{f"{lead}booking_at__isnull": False})
                | Q(**{f"{lead}stage__in": ["meeting_booked", "won"]}),
            ),
        )
    }
    variants = list(experiment.variants.all())
    zero = {"conversations": 0, "leads": 0, "qualified": 0, "meetings": 0}
    arms = {
        v.key: Proportion(
            counts.get(v.pk, zero)[experiment.metric], counts.get(v.pk, zero)["conversations"]
        )
        for v in variants
    }
    control = arms.get("A")
    comparisons = (
        compare_all(control, {k: p for k, p in arms.items() if k != "A"}) if control else {}
    )
    rows = []
    for v in variants:
        row = counts.get(v.pk, zero)
        arm = arms[v.key]
        low, high = wilson_interval(arm.successes, arm.trials)
        comparison = comparisons.get(v.key)
        rows.append(
            VariantResult(
                variant=v, conversations=row["conversations"], leads=row["leads"],
                qualified=row["qualified"], meetings=row["meetings"], rate=arm.rate, low=low,
                high=high, comparison=comparison,
                chance_better=probability_to_beat(control, arm) if comparison and control else None,
            )
        )  # fmt: skip
    return Results(experiment=experiment, variants=rows, verdict=verdict_text(experiment, rows))


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def verdict_text(experiment: Experiment, rows: list[VariantResult]) -> str:
    """The result in plain words, for the metric that decides the winner."""
    metric = str(Experiment.Metric(experiment.metric).label).lower()
    control = next((r for r in rows if r.variant.is_control), None)
    others = [r for r in rows if r.comparison is not None]
    if control is None or not others:
        return _("No results yet.")
    if any(r.comparison.verdict == "not_enough_data" for r in others):  # type: ignore[union-attr]
        least = min(rows, key=lambda r: r.conversations)
        return _(
            "Not enough data yet to tell: each variant needs at least 30 conversations and a "
            "few %(metric)s (variant %(key)s has %(count)s conversations). Keep the test running."
        ) % {"metric": metric, "key": least.variant.key, "count": least.conversations}
    better = [r for r in others if r.comparison.verdict == "better"]  # type: ignore[union-attr]
    if better:
        best = max(better, key=lambda r: r.rate)
        c = best.comparison
        assert c is not None
        # With several variants each is tested at alpha / k (Bonferroni): so is its interval.
        level = 100 * (1 - 0.05 / len(others))
        return _(
            "Variant %(key)s wins on %(metric)s: %(rate)s against %(control)s for A "
            "(%(diff)+.1f points, %(level)s%% interval %(low)+.1f to %(high)+.1f; p = %(p).3f). "
            "You can promote it."
        ) % {
            "key": best.variant.key, "metric": metric, "rate": _pct(best.rate),
            "control": _pct(control.rate), "diff": c.difference * 100, "low": c.ci_low * 100,
            "high": c.ci_high * 100, "p": c.p_value, "level": f"{level:g}",
        }  # fmt: skip
    worse = [r for r in others if r.comparison.verdict == "worse"]  # type: ignore[union-attr]
    if len(worse) == len(others):
        return _(
            "The control (A) does better on %(metric)s than every other variant (%(rate)s): keep "
            "the current text."
        ) % {"metric": metric, "rate": _pct(control.rate)}
    p = min(r.comparison.p_value for r in others)  # type: ignore[union-attr]
    return _(
        "No clear difference on %(metric)s yet (lowest p = %(p).2f): the variants may be "
        "equally good, or the test needs more conversations."
    ) % {"metric": metric, "p": p}
