"""Conversation flows as a company writes them: YAML, read into typed rules.

```yaml
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Bienvenido! Soy tu asistente de ventas..."
      actions: ["identificar_necesidad", "calificar_presupuesto"]
  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en nuestros servicios?"
      actions: ["re_engagement", "descuento_especial"]
discount:
  code: "VUELVE10"
  text: "Usa el código {code} y obtén 10% de descuento este mes."
```

Each flow is a list of rules; a rule has a trigger, an optional message sent to the visitor and
optional actions (the registry in `apps.flows.actions`). Keys and names are accepted in English
and Spanish (`disparador`, `mensaje`, `acciones`, `una_vez`). Every problem is reported with its
line (`flows_parse` raises FlowError with all of them), so the editor can point at it. The
grammar of triggers and actions is documented in docs/flows.md.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.utils.translation import gettext as _

MAX_SOURCE_BYTES = 64 * 1024
MAX_FLOWS = 50
MAX_RULES = 200
MAX_MESSAGE = 2000
MAX_KEYWORDS = 50
MIN_INACTIVE_SECONDS = 3600
MAX_INACTIVE_SECONDS = 365 * 86400

STAGES = ("new", "qualified", "contacted", "meeting_booked", "won", "lost")
STAGE_ALIASES = {
    "nuevo": "new",
    "calificado": "qualified",
    "contactado": "contacted",
    "reunion_agendada": "meeting_booked",
    "cita_agendada": "meeting_booked",
    "ganado": "won",
    "perdido": "lost",
}
# What a visitor's message can be about (apps.flows.intents recognises them, es and en).
INTENTS = ("price", "person", "booking", "purchase", "complaint", "greeting", "goodbye")
INTENT_ALIASES = {
    "precio": "price",
    "precios": "price",
    "cotizacion": "price",
    "humano": "person",
    "persona": "person",
    "asesor": "person",
    "agendar": "booking",
    "cita": "booking",
    "reserva": "booking",
    "compra": "purchase",
    "comprar": "purchase",
    "queja": "complaint",
    "reclamo": "complaint",
    "saludo": "greeting",
    "despedida": "goodbye",
}


class Problem(Exception):
    """One problem with the YAML, at `line` (1-based; 0 when it has no place)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class FlowError(Exception):
    """The YAML cannot be used; `problems` lists every problem found, by line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Trigger:
    """When a rule fires. `kind` is one of new_visitor, keyword, intent, page, inactive,
    score, stage, business_hours."""

    kind: str
    label: str  # as written, for people
    words: tuple[str, ...] = ()  # keyword: folded (no accents, lower case)
    intent: str = ""
    page: str = ""  # a glob over the page URL or path, folded
    seconds: int = 0  # inactive
    score: int = 0  # score: fires when the lead's score reaches it
    stage: str = ""  # stage: fires when the lead moves to it
    open: bool = True  # business_hours: True while open, False outside hours

    @property
    def on_message(self) -> bool:
        """Checked on each visitor message (the others fire on time or on lead changes)."""
        return self.kind in {"new_visitor", "keyword", "intent", "page", "business_hours"}


@dataclass(frozen=True)
class ActionCall:
    name: str  # the registry's canonical name
    params: dict[str, Any]
    line: int
    label: str  # as written


@dataclass(frozen=True)
class Rule:
    flow: str
    index: int  # 0-based position in its flow
    trigger: Trigger
    message: str
    actions: tuple[ActionCall, ...]
    once: bool  # at most once per conversation (inactivity: once per quiet period)
    template: str  # WhatsApp template for a message outside the 24-hour window
    line: int

    @property
    def key(self) -> str:
        return f"{self.flow}:{self.index}"


@dataclass(frozen=True)
class Discount:
    code: str
    text: str


@dataclass(frozen=True)
class FlowSet:
    rules: tuple[Rule, ...] = ()
    discount: Discount | None = None
    flows: tuple[str, ...] = field(default=())

    def rule(self, key: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.key == key), None)

    def with_trigger(self, *kinds: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.trigger.kind in kinds]


def fold(text: str) -> str:
    """Lower case without accents: how triggers compare words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- YAML nodes --------------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node (str, int, float, bool or None)."""
    if not isinstance(node, yaml.ScalarNode):
        raise Problem(_line(node), _("expected a single value here, not a list or a mapping"))
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "int":
        return int(node.value.replace("_", ""), 0)
    if tag == "float":
        return float(node.value)
    if tag == "bool":
        return node.value.lower() in {"true", "yes", "on", "y"}
    if tag == "null":
        return None
    return node.value


def _text(node: yaml.Node, what: str, *, limit: int = MAX_MESSAGE) -> str:
    value = _scalar(node)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise Problem(_line(node), _("%(what)s must be text") % {"what": what})
    text = str(value).strip()
    if not text:
        raise Problem(_line(node), _("%(what)s is empty") % {"what": what})
    if len(text) > limit:
        raise Problem(
            _line(node),
            _("%(what)s is longer than %(limit)s characters") % {"what": what, "limit": limit},
        )
    return text


def _mapping(node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, int]]:
    """(key, value node, key line) of a mapping node, keys checked for duplicates."""
    if not isinstance(node, yaml.MappingNode):
        raise Problem(_line(node), _("%(what)s must be a mapping (key: value)") % {"what": what})
    seen: set[str] = set()
    items = []
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if not isinstance(key, str):
            raise Problem(
                _line(key_node),
                _("%(what)s: a key must be a name, not %(key)r") % {"what": what, "key": key},
            )
        if key in seen:
            raise Problem(
                _line(key_node),
                _("%(what)s: '%(key)s' is given twice") % {"what": what, "key": key},
            )
        seen.add(key)
        items.append((key, value_node, _line(key_node)))
    return items


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return _(" (did you mean '%(word)s'?)") % {"word": close[0]} if close else ""


# --- Triggers ----------------------------------------------------------------------------------

_NEW_VISITOR = {"nuevo_usuario", "nuevo_visitante", "new_visitor", "new_user", "primer_mensaje"}
_OUTSIDE_HOURS = {"fuera_de_horario", "outside_business_hours", "after_hours"}
_DURING_HOURS = {"en_horario", "dentro_de_horario", "business_hours", "during_business_hours"}
_QUALIFIED = {"lead_calificado", "lead_qualified"}
_UNITS = {
    "m": 60,
    "min": 60,
    "minuto": 60,
    "minutos": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hora": 3600,
    "horas": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "dia": 86400,
    "dias": 86400,
    "day": 86400,
    "days": 86400,
    "semana": 604800,
    "semanas": 604800,
    "week": 604800,
    "weeks": 604800,
}
_INACTIVE_NAME = re.compile(
    r"^(\d+)_([a-z]+)_(sin_actividad|inactivo|inactive|without_activity|of_inactivity)$"
)
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
_TRIGGER_NAMES = sorted(
    _NEW_VISITOR | _OUTSIDE_HOURS | _DURING_HOURS | _QUALIFIED | {"7_dias_sin_actividad"}
)
_TRIGGER_KEYS = {
    "keyword": "keyword",
    "keywords": "keyword",
    "palabra_clave": "keyword",
    "palabras_clave": "keyword",
    "intent": "intent",
    "intencion": "intent",
    "page": "page",
    "pagina": "page",
    "url": "page",
    "inactive": "inactive",
    "inactividad": "inactive",
    "sin_actividad": "inactive",
    "score": "score",
    "puntaje": "score",
    "puntuacion": "score",
    "stage": "stage",
    "etapa": "stage",
    "business_hours": "business_hours",
    "horario": "business_hours",
}


def duration_seconds(text: str, line: int, what: str) -> int:
    """'7d', '48h', '2 días', '30 minutes' -> seconds."""
    match = _DURATION.match(fold(text).replace("_", " "))
    unit = _UNITS.get(match.group(2)) if match else None
    if match is None or unit is None:
        raise Problem(
            line,
            _("%(what)s: '%(text)s' is not a duration such as 7d, 48h or '2 días'")
            % {"what": what, "text": text},
        )
    return int(match.group(1)) * unit


def _inactive(seconds: int, line: int) -> int:
    if seconds < MIN_INACTIVE_SECONDS:
        raise Problem(line, _("inactivity must be at least 1 hour"))
    if seconds > MAX_INACTIVE_SECONDS:
        raise Problem(line, _("inactivity must be at most 365 days"))
    return seconds


def _stage(value: Any, line: int) -> str:
    name = fold(str(value)).replace(" ", "_")
    stage = STAGE_ALIASES.get(name, name)
    if stage not in STAGES:
        hint = suggest(name, [*STAGES, *STAGE_ALIASES])
        raise Problem(line, _("unknown stage '%(value)s'") % {"value": value} + hint)
    return stage


def trigger_parse(node: yaml.Node) -> Trigger:
    line = _line(node)
    if isinstance(node, yaml.MappingNode):
        items = _mapping(node, _("the trigger"))
        if len(items) != 1:
            raise Problem(line, _("a trigger is one name or one 'kind: value' pair"))
        key, value, key_line = items[0]
        kind = _TRIGGER_KEYS.get(fold(key))
        if kind is None:
            hint = suggest(fold(key), list(_TRIGGER_KEYS))
            raise Problem(key_line, _("unknown trigger '%(name)s'") % {"name": key} + hint)
        return _trigger_of(kind, key, value)
    name = fold(_text(node, _("the trigger"), limit=100)).replace(" ", "_")
    label = str(_scalar(node))
    if name in _NEW_VISITOR:
        return Trigger(kind="new_visitor", label=label)
    if name in _OUTSIDE_HOURS:
        return Trigger(kind="business_hours", label=label, open=False)
    if name in _DURING_HOURS:
        return Trigger(kind="business_hours", label=label, open=True)
    if name in _QUALIFIED:
        return Trigger(kind="stage", label=label, stage="qualified")
    match = _INACTIVE_NAME.match(name)
    if match:
        unit = _UNITS.get(match.group(2))
        if unit is None or unit < 3600:
            raise Problem(
                line,
                _("'%(name)s': write the time in hours or days, e.g. 48_horas_sin_actividad")
                % {"name": label},
            )
        seconds = _inactive(int(match.group(1)) * unit, line)
        return Trigger(kind="inactive", label=label, seconds=seconds)
    hint = suggest(name, _TRIGGER_NAMES)
    raise Problem(line, _("unknown trigger '%(name)s'") % {"name": label} + hint)


def _trigger_of(kind: str, key: str, node: yaml.Node) -> Trigger:
    line = _line(node)
    if kind == "keyword":
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        words = tuple(fold(_text(n, _("a keyword"), limit=100)) for n in nodes)
        if not words:
            raise Problem(line, _("give at least one keyword"))
        if len(words) > MAX_KEYWORDS:
            raise Problem(
                line, _("at most %(count)s keywords per trigger") % {"count": MAX_KEYWORDS}
            )
        return Trigger(kind="keyword", label=f"{key}: {', '.join(words)}", words=words)
    value = _scalar(node)
    if kind == "intent":
        name = fold(str(value)).replace(" ", "_")
        intent = INTENT_ALIASES.get(name, name)
        if intent not in INTENTS:
            options = [*INTENTS, *INTENT_ALIASES]
            hint = suggest(name, options)
            raise Problem(line, _("unknown intent '%(value)s'") % {"value": value} + hint)
        return Trigger(kind="intent", label=f"{key}: {value}", intent=intent)
    if kind == "page":
        page = _text(node, _("the page"), limit=500)
        return Trigger(kind="page", label=f"{key}: {page}", page=fold(page))
    if kind == "inactive":
        seconds = value * 3600 if isinstance(value, int) and not isinstance(value, bool) else None
        if seconds is None:
            seconds = duration_seconds(str(value), line, _("inactivity"))
        return Trigger(kind="inactive", label=f"{key}: {value}", seconds=_inactive(seconds, line))
    if kind == "score":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
            raise Problem(line, _("the score is a whole number from 1 to 100"))
        return Trigger(kind="score", label=f"{key}: {value}", score=value)
    if kind == "stage":
        return Trigger(kind="stage", label=f"{key}: {value}", stage=_stage(value, line))
    if not isinstance(value, bool):
        raise Problem(line, _("business_hours is true (while open) or false (outside hours)"))
    return Trigger(kind="business_hours", label=f"{key}: {value}", open=value)


# --- Rules and the whole file ----------------------------------------------------------------

_RULE_KEYS = {
    "trigger": "trigger",
    "disparador": "trigger",
    "cuando": "trigger",
    "message": "message",
    "mensaje": "message",
    "actions": "actions",
    "acciones": "actions",
    "once": "once",
    "una_vez": "once",
    "template": "template",
    "plantilla": "template",
}
_FLOW_NAME = re.compile(r"^[\w-]{1,60}$")


def _rule(flow: str, index: int, node: yaml.Node, problems: list[Problem]) -> Rule | None:
    from apps.flows.actions import action_parse

    line = _line(node)
    try:
        items = _mapping(
            node, _("rule %(number)s of '%(flow)s'") % {"number": index + 1, "flow": flow}
        )
    except Problem as problem:
        problems.append(problem)
        return None
    values: dict[str, tuple[yaml.Node, int]] = {}
    for key, value, key_line in items:
        canonical = _RULE_KEYS.get(fold(key))
        if canonical is None:
            hint = suggest(fold(key), list(_RULE_KEYS))
            problems.append(Problem(key_line, _("unknown key '%(key)s'") % {"key": key} + hint))
        elif canonical in values:
            problems.append(
                Problem(
                    key_line, _("'%(key)s' repeats '%(same)s'") % {"key": key, "same": canonical}
                )
            )
        else:
            values[canonical] = (value, key_line)
    if "trigger" not in values:
        problems.append(
            Problem(
                line,
                _("rule %(number)s of '%(flow)s' has no trigger")
                % {"number": index + 1, "flow": flow},
            )
        )
        return None
    before = len(problems)
    trigger = message = template = None
    once = True
    actions: list[ActionCall] = []
    try:
        trigger = trigger_parse(values["trigger"][0])
    except Problem as problem:
        problems.append(problem)
    if "message" in values:
        try:
            message = _text(values["message"][0], _("the message"))
        except Problem as problem:
            problems.append(problem)
    if "template" in values:
        try:
            template = _text(values["template"][0], _("the template"), limit=200)
        except Problem as problem:
            problems.append(problem)
    if "once" in values:
        value = _scalar(values["once"][0])
        if not isinstance(value, bool):
            problems.append(Problem(values["once"][1], _("once is true or false")))
        else:
            once = value
    if "actions" in values:
        node_actions = values["actions"][0]
        if not isinstance(node_actions, yaml.SequenceNode):
            problems.append(
                Problem(_line(node_actions), _("actions must be a list, e.g. [tag: vip]"))
            )
        else:
            for action_node in node_actions.value:
                try:
                    actions.append(action_parse(action_node))
                except Problem as problem:
                    problems.append(problem)
    if len(problems) > before or trigger is None:
        return None
    if trigger.kind == "inactive" and not message:
        problems.append(
            Problem(
                line,
                _(
                    "rule %(number)s of '%(flow)s': an inactivity rule needs a message (it is "
                    "sent as the follow-up)"
                )
                % {"number": index + 1, "flow": flow},
            )
        )
        return None
    if not message and not actions:
        problems.append(
            Problem(
                line,
                _("rule %(number)s of '%(flow)s' has neither a message nor actions")
                % {"number": index + 1, "flow": flow},
            )
        )
        return None
    return Rule(
        flow=flow,
        index=index,
        trigger=trigger,
        message=message or "",
        actions=tuple(actions),
        once=once,
        template=template or "",
        line=line,
    )


def _discount(node: yaml.Node, problems: list[Problem]) -> Discount | None:
    try:
        items = {fold(k): (v, line) for k, v, line in _mapping(node, _("discount"))}
        unknown = set(items) - {"code", "codigo", "text", "texto"}
        for key in sorted(unknown):
            problems.append(
                Problem(
                    items[key][1],
                    _("discount: unknown key '%(key)s' (use code and text)") % {"key": key},
                )
            )
        code_node = items.get("code") or items.get("codigo")
        if code_node is None:
            raise Problem(_line(node), _("discount needs a code"))
        code = _text(code_node[0], _("the discount code"), limit=64)
        text_node = items.get("text") or items.get("texto")
        text = _text(text_node[0], _("the discount text")) if text_node else ""
        return Discount(code=code, text=text)
    except Problem as problem:
        problems.append(problem)
        return None


def flows_parse(source: str) -> FlowSet:
    """Read the YAML into a FlowSet, or raise FlowError listing every problem by line."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise FlowError(
            [
                Problem(
                    0, _("the flows are larger than %(kb)s KB") % {"kb": MAX_SOURCE_BYTES // 1024}
                )
            ]
        )
    if not source.strip():
        return FlowSet()
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        message = _("YAML syntax: %(problem)s") % {"problem": exc.problem or exc.context}
        raise FlowError([Problem(line, message)]) from None
    except yaml.YAMLError as exc:
        raise FlowError([Problem(0, _("YAML syntax: %(problem)s") % {"problem": exc})]) from None
    if root is None:
        return FlowSet()
    problems: list[Problem] = []
    rules: list[Rule] = []
    discount: Discount | None = None
    names: list[str] = []
    try:
        top = _mapping(root, _("the file"))
    except Problem as problem:
        raise FlowError([problem]) from None
    flows_node = None
    for key, value, line in top:
        name = fold(key)
        if name in {"flows", "flujos"}:
            flows_node = value
        elif name in {"discount", "descuento"}:
            discount = _discount(value, problems)
        else:
            problems.append(
                Problem(
                    line,
                    _("unknown key '%(key)s' at the top (use flows and discount)") % {"key": key},
                )
            )
    if flows_node is None:
        problems.append(Problem(_line(root), _("the file needs a 'flows:' section")))
        raise FlowError(problems)
    try:
        flow_items = _mapping(flows_node, "flows")
    except Problem as problem:
        raise FlowError([*problems, problem]) from None
    if len(flow_items) > MAX_FLOWS:
        problems.append(
            Problem(_line(flows_node), _("at most %(count)s flows") % {"count": MAX_FLOWS})
        )
    for flow, body, line in flow_items:
        if not _FLOW_NAME.match(flow):
            problems.append(
                Problem(
                    line,
                    _("'%(flow)s': a flow name is letters, digits, _ or - (60 at most)")
                    % {"flow": flow},
                )
            )
            continue
        names.append(flow)
        if not isinstance(body, yaml.SequenceNode):
            problems.append(
                Problem(
                    _line(body),
                    _("flow '%(flow)s' must be a list of rules (- trigger: ...)") % {"flow": flow},
                )
            )
            continue
        if not body.value:
            problems.append(Problem(line, _("flow '%(flow)s' has no rules") % {"flow": flow}))
        for index, rule_node in enumerate(body.value):
            rule = _rule(flow, index, rule_node, problems)
            if rule is not None:
                rules.append(rule)
    if len(rules) > MAX_RULES:
        problems.append(Problem(0, _("at most %(count)s rules in all") % {"count": MAX_RULES}))
    for rule in rules:
        for call in rule.actions:
            if call.name == "discount" and not call.params.get("code") and discount is None:
                problems.append(
                    Problem(
                        call.line,
                        _(
                            "'%(action)s' needs a discount code: add 'discount: {code: ...}' at "
                            "the top, or write it here as {descuento_especial: {code: ...}}"
                        )
                        % {"action": call.label},
                    )
                )
    if problems:
        problems.sort(key=lambda p: p.line)
        raise FlowError(problems)
    return FlowSet(rules=tuple(rules), discount=discount, flows=tuple(names))


def message_replaced(source: str, rule_key: str, text: str) -> str:
    """`source` with the message of rule `rule_key` ("<flow>:<index>") replaced by `text`,
    the rest of the file untouched (comments, order, formatting). KeyError when the rule or its
    message is not there."""
    import json

    flow, _sep, index = rule_key.rpartition(":")
    root = yaml.compose(source, Loader=yaml.SafeLoader)
    node = None
    for key_node, value in root.value if isinstance(root, yaml.MappingNode) else []:
        if fold(str(key_node.value)) in {"flows", "flujos"} and isinstance(value, yaml.MappingNode):
            for flow_key, rules in value.value:
                if flow_key.value == flow and isinstance(rules, yaml.SequenceNode):
                    position = int(index)
                    if 0 <= position < len(rules.value) and isinstance(
                        rules.value[position], yaml.MappingNode
                    ):
                        for rule_key_node, rule_value in rules.value[position].value:
                            if _RULE_KEYS.get(fold(str(rule_key_node.value))) == "message":
                                node = rule_value
    if node is None:
        raise KeyError(rule_key)
    # A JSON string is a valid YAML double-quoted scalar.
    quoted = json.dumps(text, ensure_ascii=False)
    return source[: node.start_mark.index] + quoted + source[node.end_mark.index :]
