"""Conversation flows: saving versions, and running rules on conversations.

Where rules fire:
- on each visitor message the assistant answers (`flows_on_message`, a ReplyHooks.received
  hook): new visitor, keyword, intent, page, business hours — the rule's message goes out
  before the assistant's answer, then its actions run;
- when a lead's score reaches a rule's score or its stage changes (`flows_on_lead_change`,
  a task after commit), on the lead's latest conversation;
- after N hours/days without activity: apps.followups schedules the rule's message as a
  follow-up and runs its actions when it is sent.

A rule with `once` (the default) runs at most once per conversation; every run is a FlowRun
(and a LeadEvent) on the conversation. The assistant never talks over a person: a rule's
messages are not sent while a person has the conversation.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import SYSTEM, Actor, audit_record
from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_language, reply_scope
from apps.flows.actions import ActionContext, action_run
from apps.flows.intents import intents_of
from apps.flows.models import FlowRun, FlowVersion
from apps.flows.spec import FlowError, FlowSet, Rule, flows_parse, fold
from apps.leads.models import Lead, LeadEvent

logger = logging.getLogger(__name__)

# Parsed flows by (schema, version): parsing is cheap, but not for every message.
_PARSED: dict[tuple[str, int], FlowSet] = {}
_PARSED_MAX = 256


# --- Versions ----------------------------------------------------------------------------------


def _version_cache_key() -> str:
    return f"flows:version:{connection.schema_name}"  # type: ignore[attr-defined]


def flow_version_current() -> FlowVersion | None:
    return FlowVersion.objects.order_by("-number").first()


def flows_active() -> FlowSet:
    """The rules in use (the newest version), parsed once per process and version. Looked up
    once per reply (its hooks ask several times: the message's rules, each change of the
    lead, the prompt)."""
    scope = reply_scope()
    flows: FlowSet | None = scope.get("flows")
    if flows is None:
        flows = scope["flows"] = _flows_active()
    return flows


def _flows_active() -> FlowSet:
    schema = connection.schema_name  # type: ignore[attr-defined]
    latest = cache.get(_version_cache_key())
    if latest is None:
        row = FlowVersion.objects.order_by("-number").values_list("pk", "source").first()
        latest = row[0] if row else 0
        cache.set(_version_cache_key(), latest, 300)
    if not latest:
        return FlowSet()
    # Keyed by the row's id, which is never reused (numbers restart in a rolled-back test).
    parsed = _PARSED.get((schema, latest))
    if parsed is None:
        source = FlowVersion.objects.filter(pk=latest).values_list("source", flat=True).first()
        try:
            parsed = flows_parse(source or "")
        except FlowError:
            # Saved versions were valid when saved; a later change to the grammar must not
            # break conversations: no flows rather than an error on every message.
            logger.exception("flows version %s of %s no longer parses", latest, schema)
            parsed = FlowSet()
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[(schema, latest)] = parsed
    return parsed


def flows_version_number() -> int:
    current = flow_version_current()
    return current.number if current is not None else 0


def flow_version_save(
    *,
    source: str,
    author: User | None,
    actor: Actor = SYSTEM,
    note: str = "",
    restored_from: int | None = None,
) -> FlowVersion:
    """Validate and save `source` as the new version in use (FlowError lists every problem by
    line; nothing is saved then). Audited."""
    flows_parse(source)
    with transaction.atomic():
        last = FlowVersion.objects.select_for_update().order_by("-number").first()
        version = FlowVersion.objects.create(
            number=(last.number if last else 0) + 1,
            source=source,
            author=author if author is not None and author.pk else None,
            note=note[:200],
            restored_from=restored_from,
        )
        audit_record(
            actor=actor,
            action="flows.restore" if restored_from else "flows.save",
            instance=version,
            changes={"version": version.number, "restored_from": restored_from},
        )
        transaction.on_commit(lambda: cache.delete(_version_cache_key()))
    return version


def flow_version_restore(
    *, version: FlowVersion, author: User | None, actor: Actor = SYSTEM
) -> FlowVersion:
    """Make an earlier version the one in use again (as a new version: history is kept)."""
    return flow_version_save(
        source=version.source, author=author, actor=actor, note=f"restored v{version.number}",
        restored_from=version.number,
    )  # fmt: skip


# --- Running rules -----------------------------------------------------------------------------


def _sayer(conversation: Conversation, *, activity: bool = True):  # type: ignore[no-untyped-def]
    from apps.conversations.services import bot_message_send

    def say(text: str) -> Message | None:
        return bot_message_send(conversation=conversation, text=text, intent="flow",
                                activity=activity)  # fmt: skip

    return say


def rule_fire(
    *,
    conversation: Conversation,
    rule: Rule,
    flows: FlowSet,
    detail: str = "",
    key: str | None = None,
    send_message: bool = True,
    activity: bool = True,
) -> FlowRun | None:
    """Run `rule` on `conversation`: record the run (once per `key`: by default the rule's
    key when it runs once, else unique), send its message, run its actions. None when it ran
    before."""
    if key is None:
        key = rule.key if rule.once else f"{rule.key}:{timezone.now().timestamp()}"
    try:
        with transaction.atomic():
            run = FlowRun.objects.create(
                conversation=conversation, flow=rule.flow, rule_index=rule.index, key=key[:160],
                version=flows_version_number(), trigger=rule.trigger.label[:200],
                detail=detail[:200],
            )  # fmt: skip
    except IntegrityError:
        return None  # ran before (or another worker is running it now)
    say = _sayer(conversation, activity=activity)
    outcomes: list[dict[str, Any]] = []
    if rule.message and send_message:
        from apps.experiments.services import variant_text

        text = variant_text(
            target="flow_message",
            flow_rule=rule.key,
            channel=conversation.channel,
            session_id=conversation.session_id,
            conversation=conversation,
        )
        message = say(text or rule.message)
        run.message = message
        detail = "sent" if message else "not sent: a person has the conversation"
        outcomes.append(
            {"action": "message", "label": "message", "ok": message is not None, "detail": detail}
        )
    ctx = ActionContext(conversation=conversation, rule=rule, flows=flows, run_id=run.pk,
                        say=say, language=conversation_language(conversation))  # fmt: skip
    for call in rule.actions:
        try:
            outcomes.append(action_run(ctx, call))
        except Exception as exc:  # a bug in an action must not stop the conversation
            logger.exception("flow action %s failed", call.name)
            outcomes.append({"action": call.name, "label": call.label, "ok": False,
                             "detail": f"error: {exc}"[:300]})  # fmt: skip
    run.outcomes = outcomes
    run.save(update_fields=["message", "outcomes"])
    _run_recorded(conversation, run)
    return run


def _run_recorded(conversation: Conversation, run: FlowRun) -> None:
    from apps.analytics.services import event_emit
    from apps.leads.realtime import inbox_publish
    from apps.leads.services import lead_for_conversation

    event_emit(kind="flow.run", conversation_id=conversation.pk, channel=conversation.channel,
               flow=run.flow, rule=run.rule_index)  # fmt: skip
    lead = lead_for_conversation(conversation.pk)
    if lead is not None:
        LeadEvent.objects.create(
            lead=lead, kind=LeadEvent.Kind.FLOW, new=f"{run.flow} #{run.rule_index + 1}",
            conversation_id=conversation.pk,
            data={"run": run.pk, "trigger": run.trigger, "detail": run.detail,
                  "outcomes": run.outcomes},
        )  # fmt: skip
        inbox_publish("lead.changed", lead_id=lead.pk, conversation_id=conversation.pk)


def rule_actions_run(*, conversation: Conversation, rule_key: str, key: str, detail: str) -> None:
    """Run the actions of rule `rule_key` (its message went out as a follow-up)."""
    flows = flows_active()
    rule = flows.rule(rule_key)
    if rule is None or not rule.actions:
        return
    rule_fire(conversation=conversation, rule=rule, flows=flows, detail=detail, key=key,
              send_message=False, activity=False)  # fmt: skip


def _is_new_visitor(visitor: Message) -> bool:
    """The first message of a contact's first conversation."""
    return not Message.objects.filter(
        conversation__contact_id=visitor.conversation.contact_id,
        role=Message.Role.VISITOR,
        id__lt=visitor.pk,
    ).exists()


def _page_matches(pattern: str, context: dict[str, Any]) -> str:
    page = str(context.get("page") or context.get("url") or "")
    if not page:
        return ""
    folded = fold(page)
    parts = urlsplit(folded)
    candidates = [folded, parts.path or "/", f"{parts.path}?{parts.query}" if parts.query else ""]
    wildcard = any(c in pattern for c in "*?[")
    for candidate in filter(None, candidates):
        if fnmatch.fnmatchcase(candidate, pattern) if wildcard else pattern in candidate:
            return page[:200]
    return ""


def _keyword(words: tuple[str, ...], text: str) -> str:
    folded = fold(text)
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return word
    return ""


def _matches(rule: Rule, visitor: Message, cache_: dict[str, Any]) -> str | None:
    """What in `visitor` triggers `rule` (a short description), or None."""
    trigger = rule.trigger
    if trigger.kind == "new_visitor":
        if "new" not in cache_:
            cache_["new"] = _is_new_visitor(visitor)
        return "first message" if cache_["new"] else None
    if trigger.kind == "keyword":
        word = _keyword(trigger.words, visitor.text)
        return f"keyword '{word}'" if word else None
    if trigger.kind == "intent":
        if "intents" not in cache_:
            cache_["intents"] = intents_of(visitor.text)
        return f"intent {trigger.intent}" if trigger.intent in cache_["intents"] else None
    if trigger.kind == "page":
        page = _page_matches(trigger.page, visitor.conversation.context or {})
        return f"page {page}" if page else None
    if trigger.kind == "business_hours":
        if "open" not in cache_:
            from apps.leads.handoff import _business_open

            cache_["open"] = _business_open()
        if cache_["open"] == trigger.open:
            return "during business hours" if trigger.open else "outside business hours"
    return None


def flows_on_message(visitor: Message) -> list[FlowRun]:
    """Store the answer to a flow's pending question, then run the rules this message
    triggers, in the order they are written."""
    conversation = visitor.conversation
    _pending_answer_store(visitor)
    flows = flows_active()
    if not flows.rules or visitor.role != Message.Role.VISITOR:
        return []
    runs: list[FlowRun] = []
    seen: dict[str, Any] = {}
    done = set(FlowRun.objects.filter(conversation=conversation).values_list("key", flat=True))
    for rule in flows.rules:
        if not rule.trigger.on_message or (rule.once and rule.key in done):
            continue
        detail = _matches(rule, visitor, seen)
        if detail is None:
            continue
        run = rule_fire(conversation=conversation, rule=rule, flows=flows, detail=detail)
        if run is not None:
            runs.append(run)
        conversation.refresh_from_db(fields=["mode", "context"])
    return runs


def _pending_answer_store(visitor: Message) -> None:
    """A flow asked a question (`ask`): this message is its answer, stored in the lead field
    as the visitor's own word (typed fields are read with the lead extractors)."""
    from apps.leads.models import Source
    from apps.leads.services import lead_for_contact, lead_update, text_values

    conversation = visitor.conversation
    pending = (conversation.context or {}).get("flow_ask")
    if not pending or visitor.role != Message.Role.VISITOR:
        return
    field = str(pending.get("field") or "")
    context = {k: v for k, v in conversation.context.items() if k != "flow_ask"}
    Conversation.objects.filter(pk=conversation.pk).update(context=context)
    conversation.context = context
    text = visitor.text.strip()
    if not field or not text:
        return
    values = text_values(text)
    if field in {"budget", "timeline", "email", "phone"}:
        value = values.get(field)  # exact readings only
    else:
        # "Me llamo Ana" -> "Ana"; an answer the extractors cannot read is kept as written.
        value = values.get(field) or text[:2000]
    if value in (None, ""):
        return
    lead = lead_for_contact(contact=conversation.contact, conversation=conversation)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        lead_update(lead=lead, values={field: value}, source=Source.VISITOR,
                    conversation_id=conversation.pk, message_id=visitor.pk)  # fmt: skip


def lead_change_rules(flows: FlowSet, *, kind: str, old: Any, new: Any) -> list[Rule]:
    """The rules a lead's change triggers: its score reaching a rule's score, its stage
    becoming a rule's stage."""
    if kind == "score":
        return [
            rule for rule in flows.with_trigger("score")
            if int(old or 0) < rule.trigger.score <= int(new or 0)
        ]  # fmt: skip
    if kind == "stage":
        return [rule for rule in flows.with_trigger("stage") if rule.trigger.stage == new]
    return []


def flows_on_lead_change(*, lead_id: int, kind: str, old: Any, new: Any) -> list[FlowRun]:
    """Run the rules a lead's change triggers (its score reaching a rule's score, its stage
    becoming a rule's stage) on the lead's latest conversation."""
    flows = flows_active()
    rules = lead_change_rules(flows, kind=kind, old=old, new=new)
    if not rules:
        return []
    conversation = (
        Conversation.objects.filter(contact__lead_id=lead_id)
        .exclude(channel="test")
        .select_related("contact")
        .order_by("-last_message_at", "-id")
        .first()
    )
    if conversation is None:
        return []
    detail = f"score {old} → {new}" if kind == "score" else f"stage {old} → {new}"
    runs = []
    for rule in rules:
        run = rule_fire(conversation=conversation, rule=rule, flows=flows, detail=detail)
        if run is not None:
            runs.append(run)
    return runs
