"""What a flow's rule can do: a registry of actions, each with the names a company may write
(English and Spanish), a parser that checks its parameters when the flows are saved, and a
runner. A developer adds an action with `@action(...)` (docs/flows.md, "Adding an action").

An action runs inside the company's schema, on one conversation, after the rule's message (if
any) was sent. It returns a short outcome for the run's record; raising ActionFailed records a
failure and the rule's other actions still run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.flows.spec import (
    ActionCall,
    FlowSet,
    Problem,
    Rule,
    _line,
    _scalar,
    duration_seconds,
    fold,
    suggest,
)

if TYPE_CHECKING:
    from apps.conversations.models import Conversation, Message
    from apps.leads.models import Lead

MAX_TEXT = 2000


class ActionFailed(Exception):
    """The action could not do its work (recorded on the run; nothing is raised further)."""


@dataclass
class ActionContext:
    """What an action runs with. `say(text)` sends a message from the assistant on the
    conversation's channel (None when it cannot: a person has the conversation)."""

    conversation: Conversation
    rule: Rule
    flows: FlowSet
    run_id: int
    say: Callable[[str], Message | None]
    language: str = "es"
    _lead: Lead | None = field(default=None, repr=False)

    def lead(self) -> Lead:
        """The conversation's lead (created for its contact if there is none yet)."""
        if self._lead is None:
            from apps.leads.services import lead_for_contact

            self._lead = lead_for_contact(
                contact=self.conversation.contact, conversation=self.conversation
            )
        return self._lead


Parser = Callable[[Any, int], dict[str, Any]]
Runner = Callable[[ActionContext, dict[str, Any]], str]


@dataclass(frozen=True)
class ActionType:
    name: str
    names: tuple[str, ...]  # every name a company may write, folded
    parse: Parser
    run: Runner
    description: str


ACTIONS: dict[str, ActionType] = {}
_BY_NAME: dict[str, ActionType] = {}


def action(
    name: str, *aliases: str, parse: Parser | None = None, description: str = ""
) -> Callable[[Runner], Runner]:
    """Register an action's runner under `name` and its aliases. `parse(value, line)` turns
    what the YAML gives (None for a bare name) into the runner's parameters, raising
    Problem(line, ...) when it cannot."""

    def register(run: Runner) -> Runner:
        names = tuple(fold(n) for n in (name, *aliases))
        kind = ActionType(
            name=name, names=names, parse=parse or no_parameters, run=run,
            description=description or (run.__doc__ or "").strip().splitlines()[0],
        )  # fmt: skip
        for n in names:
            if n in _BY_NAME and _BY_NAME[n].name != name:
                raise ValueError(f"action name {n!r} is taken by {_BY_NAME[n].name!r}")
            _BY_NAME[n] = kind
        ACTIONS[name] = kind
        return run

    return register


def _python(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {str(_scalar(k)): _python(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_python(item) for item in node.value]
    return _scalar(node)


def action_parse(node: yaml.Node) -> ActionCall:
    """One entry of a rule's `actions` list: a bare name, or `name: parameters`."""
    line = _line(node)
    if isinstance(node, yaml.MappingNode):
        if len(node.value) != 1:
            raise Problem(line, _("an action is a name, or one 'name: parameters' pair"))
        key_node, value_node = node.value[0]
        label, value = str(_scalar(key_node)), _python(value_node)
    else:
        label, value = str(_scalar(node)), None
    kind = _BY_NAME.get(fold(label).replace(" ", "_"))
    if kind is None:
        hint = suggest(fold(label), list(_BY_NAME))
        raise Problem(line, _("unknown action '%(name)s'") % {"name": label} + hint)
    return ActionCall(name=kind.name, params=kind.parse(value, line), line=line, label=label)


def action_run(ctx: ActionContext, call: ActionCall) -> dict[str, Any]:
    """Run one action; its outcome for the run's record (never raises for the action's own
    failures)."""
    kind = ACTIONS[call.name]
    try:
        detail = kind.run(ctx, call.params)
        ok = True
    except ActionFailed as exc:
        detail, ok = str(exc), False
    return {"action": call.name, "label": call.label, "ok": ok, "detail": detail[:300]}


# --- Parameter parsers -------------------------------------------------------------------------


def no_parameters(value: Any, line: int) -> dict[str, Any]:
    if value not in (None, True):
        raise Problem(line, _("this action takes no parameters"))
    return {}


def _text(value: Any, line: int, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise Problem(line, _("%(what)s must be text") % {"what": what})
    text = str(value).strip()
    if not text:
        raise Problem(line, _("%(what)s is empty") % {"what": what})
    if len(text) > limit:
        raise Problem(
            line, _("%(what)s is longer than %(limit)s characters") % {"what": what, "limit": limit}
        )
    return text


def _options(value: Any, line: int, what: str, keys: dict[str, str]) -> dict[str, Any]:
    """A mapping whose keys (folded, with aliases) are in `keys` (alias -> canonical)."""
    if not isinstance(value, dict):
        example = "{" + ", ".join(sorted(set(keys.values()))) + "}"
        raise Problem(
            line,
            _("%(what)s takes a mapping, e.g. %(example)s") % {"what": what, "example": example},
        )
    options: dict[str, Any] = {}
    for raw, item in value.items():
        canonical = keys.get(fold(raw))
        if canonical is None:
            hint = suggest(fold(raw), list(keys))
            raise Problem(
                line, _("%(what)s: unknown key '%(key)s'") % {"what": what, "key": raw} + hint
            )
        options[canonical] = item
    return options


# Lead fields an `ask` may fill, by the names a company may write.
ASK_FIELDS = {
    "name": "name",
    "nombre": "name",
    "email": "email",
    "correo": "email",
    "phone": "phone",
    "telefono": "phone",
    "company": "company_name",
    "empresa": "company_name",
    "role": "role",
    "cargo": "role",
    "rol": "role",
    "need": "need",
    "necesidad": "need",
    "budget": "budget",
    "presupuesto": "budget",
    "timeline": "timeline",
    "plazo": "timeline",
    "preferred_time": "preferred_time",
    "horario_preferido": "preferred_time",
    "preferred_channel": "preferred_channel",
    "canal_preferido": "preferred_channel",
}


def _parse_ask(value: Any, line: int) -> dict[str, Any]:
    options = _options(value, line, "ask", {
        "question": "question", "pregunta": "question", "field": "field", "campo": "field",
    })  # fmt: skip
    if "question" not in options or "field" not in options:
        raise Problem(line, _("ask needs a question and the lead field for the answer"))
    field_name = fold(str(options["field"])).replace(" ", "_")
    if field_name not in ASK_FIELDS:
        hint = suggest(field_name, list(ASK_FIELDS))
        raise Problem(
            line, _("unknown lead field '%(field)s'") % {"field": options["field"]} + hint
        )
    return {
        "question": _text(options["question"], line, _("the question")),
        "field": ASK_FIELDS[field_name],
    }


def _parse_optional_question(value: Any, line: int) -> dict[str, Any]:
    if value in (None, True):
        return {}
    if isinstance(value, str):
        return {"question": _text(value, line, _("the question"))}
    options = _options(value, line, "this action", {"question": "question", "pregunta": "question"})
    return {"question": _text(options.get("question"), line, _("the question"))}


def _parse_tags(value: Any, line: int) -> dict[str, Any]:
    from apps.leads.services import tags_clean

    items = value if isinstance(value, list) else [value]
    tags = tags_clean([_text(item, line, _("a tag"), limit=50) for item in items])
    if not tags:
        raise Problem(line, _("give at least one tag"))
    return {"tags": tags}


def _parse_stage(value: Any, line: int) -> dict[str, Any]:
    from apps.flows.spec import _stage

    if value in (None, True):
        raise Problem(line, _("name the stage, e.g. set_stage: contacted"))
    return {"stage": _stage(value, line)}


def _parse_owner(value: Any, line: int) -> dict[str, Any]:
    email = _text(value, line, _("the owner's email"), limit=254).lower()
    try:
        EmailValidator()(email)
    except ValidationError:
        raise Problem(
            line, _("'%(email)s' is not an email address of a team member") % {"email": email}
        ) from None
    return {"email": email}


def _parse_follow_up(value: Any, line: int) -> dict[str, Any]:
    options = _options(value, line, "follow_up", {
        "after": "after", "en": "after", "despues_de": "after", "tras": "after",
        "message": "message", "mensaje": "message", "template": "template",
        "plantilla": "template",
    })  # fmt: skip
    if "after" not in options or "message" not in options:
        raise Problem(line, _("follow_up needs after (e.g. 2d) and a message"))
    seconds = duration_seconds(str(options["after"]), line, _("follow_up after"))
    if not 3600 <= seconds <= 90 * 86400:
        raise Problem(line, _("a follow-up goes out between 1 hour and 90 days later"))
    params: dict[str, Any] = {
        "seconds": seconds, "message": _text(options["message"], line, _("the follow-up message")),
    }  # fmt: skip
    if "template" in options:
        params["template"] = _text(options["template"], line, _("the template"), limit=200)
    return params


def _parse_discount(value: Any, line: int) -> dict[str, Any]:
    if value in (None, True):
        return {}  # the top-level `discount:` (checked when the whole file is read)
    if isinstance(value, str):
        return {"code": _text(value, line, _("the discount code"), limit=64)}
    options = _options(value, line, "discount", {
        "code": "code", "codigo": "code", "text": "text", "texto": "text",
    })  # fmt: skip
    params = {"code": _text(options.get("code"), line, _("the discount code"), limit=64)}
    if "text" in options:
        params["text"] = _text(options["text"], line, _("the discount text"))
    return params


def _parse_webhook(value: Any, line: int) -> dict[str, Any]:
    from apps.leads.crm import WebhookURLError, webhook_url_validate

    if isinstance(value, dict):
        value = _options(value, line, "webhook", {"url": "url"}).get("url")
    url = _text(value, line, _("the webhook URL"), limit=500)
    try:
        webhook_url_validate(url)
    except WebhookURLError as exc:
        raise Problem(line, " ".join(exc.messages)) from None
    return {"url": url}


def _parse_message(value: Any, line: int) -> dict[str, Any]:
    return {"text": _text(value, line, _("the message"))}


# --- The actions -------------------------------------------------------------------------------


@action("send_message", "enviar_mensaje", "mensaje", "say", parse=_parse_message)
def send_message(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Send another message to the visitor."""
    return _said(ctx, params["text"])


def _said(ctx: ActionContext, text: str) -> str:
    message = ctx.say(text)
    if message is None:
        raise ActionFailed("not sent: a person has the conversation")
    return f"sent message {message.pk}"


def _ask(ctx: ActionContext, field_name: str, question: str) -> str:
    """Send `question` and keep the visitor's next message for the lead's `field_name`."""
    from apps.conversations.models import Conversation
    from apps.leads.services import lead_asked_record

    said = _said(ctx, question)
    conversation = ctx.conversation
    conversation.context = {
        **conversation.context,
        "flow_ask": {"field": field_name, "rule": ctx.rule.key, "run": ctx.run_id},
    }
    Conversation.objects.filter(pk=conversation.pk).update(context=conversation.context)
    if field_name in {"need", "budget", "timeline"}:
        lead_asked_record(lead=ctx.lead(), field=field_name)
    return f"asked for {field_name}; {said}"


@action("ask", "preguntar", "pregunta", parse=_parse_ask)
def ask(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Ask a question and store the visitor's answer in a lead field."""
    return _ask(ctx, params["field"], params["question"])


def _qualify(ctx: ActionContext, field_name: str, params: dict[str, Any]) -> str:
    from apps.assistants.industry_templates import template_get
    from apps.assistants.services import assistant_profile_get
    from apps.leads.services import lead_known_fields

    lead = ctx.lead()
    if field_name in lead_known_fields(lead):
        return f"{field_name} already known"
    if field_name in lead.asked and "question" not in params:
        return f"{field_name} already asked"
    question = params.get("question")
    if not question:
        template = template_get(
            assistant_profile_get().industry_template or "generico", ctx.language
        )
        question = next(
            (q.text for q in template.qualification_questions if q.field == field_name), ""
        )
    if not question:
        raise ActionFailed(f"no question for {field_name} in the industry template")
    return _ask(ctx, field_name, question)


@action("identify_need", "identificar_necesidad", parse=_parse_optional_question)
def identify_need(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Ask what the visitor needs (the industry template's question) unless it is known."""
    return _qualify(ctx, "need", params)


@action("qualify_budget", "calificar_presupuesto", parse=_parse_optional_question)
def qualify_budget(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Ask for the visitor's budget (the industry template's question) unless it is known."""
    return _qualify(ctx, "budget", params)


@action("qualify_timeline", "calificar_plazo", parse=_parse_optional_question)
def qualify_timeline(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Ask when the visitor needs it (the industry template's question) unless it is known."""
    return _qualify(ctx, "timeline", params)


@action("tag", "etiquetar", "etiqueta", parse=_parse_tags)
def tag(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Add tags to the lead."""
    from apps.leads.services import lead_tags_set

    lead = ctx.lead()
    changed = lead_tags_set(lead=lead, tags=[*lead.tags, *params["tags"]])
    return ("tagged " if changed else "already tagged ") + ", ".join(params["tags"])


@action("set_stage", "cambiar_etapa", "etapa", parse=_parse_stage)
def set_stage(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Move the lead to a stage."""
    from apps.leads.services import lead_stage_set

    changed = lead_stage_set(lead=ctx.lead(), stage=params["stage"])
    return ("stage set to " if changed else "already in stage ") + params["stage"]


@action("assign_owner", "asignar", "asignar_responsable", parse=_parse_owner)
def assign_owner(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Give the lead to a team member (by email)."""
    from apps.accounts.models import Membership, Role
    from apps.leads.services import lead_owner_set

    member = (
        Membership.objects.select_related("user")
        .filter(user__email__iexact=params["email"], user__is_active=True)
        .exclude(role=Role.VIEWER)
        .first()
    )
    if member is None:
        raise ActionFailed(f"{params['email']} is not an active team member who can own leads")
    changed = lead_owner_set(lead=ctx.lead(), owner=member.user)
    return ("assigned to " if changed else "already owned by ") + params["email"]


@action("handoff", "pasar_a_humano", "transferir", "humano", "hand_off")
def handoff(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Put the conversation in the team's queue (the visitor is told)."""
    from apps.leads.handoff import conversation_handoff_request

    result = conversation_handoff_request(conversation=ctx.conversation, reason="flow")
    return (
        "handed to the team"
        if result.changed
        else f"not handed off (mode {result.conversation.mode})"
    )


@action("follow_up", "programar_seguimiento", "seguimiento", parse=_parse_follow_up)
def follow_up(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Schedule a message for later (it is not sent if the visitor writes first)."""
    from apps.followups.services import followup_schedule, followup_settings_get

    if not followup_settings_get().enabled:
        raise ActionFailed("not scheduled: follow-ups are turned off")
    due = timezone.now() + timedelta(seconds=params["seconds"])
    followup = followup_schedule(
        conversation=ctx.conversation,
        text=params["message"],
        due_at=due,
        key=f"run:{ctx.run_id}:{ctx.rule.key}:{params['seconds']}",
        source="flow",
        template=params.get("template", ""),
        rule_key=ctx.rule.key,
    )
    if followup is None:
        raise ActionFailed("not scheduled: the contact opted out of follow-ups")
    return f"follow-up {followup.pk} scheduled for {followup.due_at.isoformat()}"


_CODE = re.compile(r"\{code\}|\{codigo\}|\{código\}")


@action("discount", "descuento_especial", "descuento", "offer_discount", parse=_parse_discount)
def discount(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Offer a discount code (this action's, or the flows' `discount:`)."""
    from apps.leads.models import LeadEvent

    default = ctx.flows.discount
    code = params.get("code") or (default.code if default else "")
    if not code:
        raise ActionFailed("no discount code configured")
    text = params.get("text") or (default.text if default and not params.get("code") else "")
    if not text:
        text = (
            "Tengo un descuento especial para ti: usa el código {code}."
            if ctx.language == "es"
            else "I have a special discount for you: use the code {code}."
        )
    if not _CODE.search(text):
        text = f"{text} ({code})"
    said = _said(ctx, _CODE.sub(code, text))
    LeadEvent.objects.create(
        lead=ctx.lead(), kind=LeadEvent.Kind.FLOW, new=f"discount {code}",
        conversation_id=ctx.conversation.pk, data={"rule": ctx.rule.key, "code": code},
    )  # fmt: skip
    return f"offered {code}; {said}"


@action("re_engagement", "reenganchar", "reenganche")
def re_engagement(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Mark the lead as re-engaged after a pause (tag `re_engagement`)."""
    from apps.leads.services import lead_tags_set

    lead = ctx.lead()
    lead_tags_set(lead=lead, tags=[*lead.tags, "re_engagement"])
    return "tagged re_engagement"


@action("webhook", "llamar_webhook", "call_webhook", parse=_parse_webhook)
def webhook(ctx: ActionContext, params: dict[str, Any]) -> str:
    """POST the conversation and its lead to a URL (signed like the CRM webhook, retried,
    logged in the lead settings' delivery log)."""
    from apps.leads.crm import webhook_delivery_create
    from apps.leads.notify import lead_payload

    lead = ctx.lead()
    payload = {
        "event": "flow.action",
        "flow": ctx.rule.flow,
        "rule": ctx.rule.index + 1,
        "trigger": ctx.rule.trigger.label,
        "conversation_id": ctx.conversation.pk,
        "channel": ctx.conversation.channel,
        "lead": lead_payload(lead, event="flow.action")["lead"],
    }
    delivery = webhook_delivery_create(
        event="flow.action", payload=payload, url=params["url"], lead=lead
    )
    return f"webhook delivery {delivery.pk} queued"
