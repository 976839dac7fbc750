"""Reading flows YAML (apps.flows.spec): the product documentation's example, every trigger
and action form in English and Spanish, and problems named with their line."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from apps.flows.actions import ACTIONS
from apps.flows.spec import FlowError, flows_parse

DOC_EXAMPLE = """\
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Bienvenido! Soy tu asistente de ventas..."
      actions: ["identificar_necesidad", "calificar_presupuesto"]

  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en nuestros servicios?"
      actions: ["re_engagement", "descuento_especial"]
"""
DISCOUNT = """\
discount:
  code: VUELVE10
  text: "Usa {code} este mes"
"""


def problems(source: str) -> list[tuple[int, str]]:
    with pytest.raises(FlowError) as caught, translation.override("en"):
        flows_parse(source)
    return [(p.line, p.message) for p in caught.value.problems]


def test_the_documentation_example_reads_with_a_discount_code() -> None:
    flows = flows_parse(DOC_EXAMPLE + DISCOUNT)

    assert flows.flows == ("onboarding", "seguimiento")
    onboarding, seguimiento = flows.rules
    assert (onboarding.key, onboarding.trigger.kind, onboarding.line) == (
        "onboarding:0",
        "new_visitor",
        3,
    )
    assert onboarding.message == "¡Bienvenido! Soy tu asistente de ventas..."
    assert [(a.name, a.label) for a in onboarding.actions] == [
        ("identify_need", "identificar_necesidad"), ("qualify_budget", "calificar_presupuesto"),
    ]  # fmt: skip
    assert onboarding.once is True
    assert (seguimiento.trigger.kind, seguimiento.trigger.seconds) == ("inactive", 7 * 86400)
    assert [a.name for a in seguimiento.actions] == ["re_engagement", "discount"]
    assert flows.discount is not None
    assert (flows.discount.code, flows.discount.text) == ("VUELVE10", "Usa {code} este mes")


def test_a_bare_discount_without_a_code_anywhere_is_refused_at_its_line() -> None:
    # A discount code cannot be invented: the company has to give one.
    [(line, message)] = problems(DOC_EXAMPLE)
    assert line == 10
    assert "'descuento_especial' needs a discount code" in message


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ('"nuevo_usuario"', ("new_visitor", {})),
        ("new_visitor", ("new_visitor", {})),
        ("48_horas_sin_actividad", ("inactive", {"seconds": 48 * 3600})),
        ("3_days_inactive", ("inactive", {"seconds": 3 * 86400})),
        ("2_semanas_sin_actividad", ("inactive", {"seconds": 14 * 86400})),
        ("fuera_de_horario", ("business_hours", {"open": False})),
        ("en_horario", ("business_hours", {"open": True})),
        ("lead_calificado", ("stage", {"stage": "qualified"})),
        ("{keyword: Precio}", ("keyword", {"words": ("precio",)})),
        (
            '{palabras_clave: ["Cuánto cuesta", envío]}',
            ("keyword", {"words": ("cuanto cuesta", "envio")}),
        ),
        ("{intent: precio}", ("intent", {"intent": "price"})),
        ("{intencion: humano}", ("intent", {"intent": "person"})),
        ("{intent: booking}", ("intent", {"intent": "booking"})),
        ('{page: "/Precios*"}', ("page", {"page": "/precios*"})),
        ("{inactive: 3d}", ("inactive", {"seconds": 3 * 86400})),
        ("{inactividad: 36}", ("inactive", {"seconds": 36 * 3600})),
        ('{sin_actividad: "2 días"}', ("inactive", {"seconds": 2 * 86400})),
        ("{score: 60}", ("score", {"score": 60})),
        ("{etapa: ganado}", ("stage", {"stage": "won"})),
        ("{stage: meeting_booked}", ("stage", {"stage": "meeting_booked"})),
        ("{business_hours: false}", ("business_hours", {"open": False})),
    ],
)
def test_every_trigger_form_reads(trigger: str, expected: tuple[str, dict[str, object]]) -> None:
    [rule] = flows_parse(f"flows:\n  f:\n    - trigger: {trigger}\n      message: hola\n").rules
    kind, fields = expected
    assert rule.trigger.kind == kind
    for name, value in fields.items():
        assert getattr(rule.trigger, name) == value


def test_spanish_keys_and_every_action_form_read() -> None:
    source = """\
flujos:
  ventas:
    - disparador: {keyword: precio}
      mensaje: "Te cuento"
      una_vez: false
      plantilla: seguimiento_es
      acciones:
        - enviar_mensaje: "Otro mensaje"
        - preguntar: {pregunta: "¿Cuál es tu presupuesto?", campo: presupuesto}
        - etiquetar: [vip, precio]
        - cambiar_etapa: contactado
        - asignar: Ana@Empresa.com
        - pasar_a_humano
        - programar_seguimiento: {en: 2d, mensaje: "¿Lo pensaste?"}
        - descuento_especial: {codigo: HOY5, texto: "Código {code}"}
        - llamar_webhook: https://crm.example.com/hook
        - calificar_plazo
        - reenganchar
"""
    [rule] = flows_parse(source).rules

    assert (rule.once, rule.template, rule.message) == (False, "seguimiento_es", "Te cuento")
    assert [(a.name, a.params) for a in rule.actions] == [
        ("send_message", {"text": "Otro mensaje"}),
        ("ask", {"question": "¿Cuál es tu presupuesto?", "field": "budget"}),
        ("tag", {"tags": ["precio", "vip"]}),
        ("set_stage", {"stage": "contacted"}),
        ("assign_owner", {"email": "ana@empresa.com"}),
        ("handoff", {}),
        ("follow_up", {"seconds": 2 * 86400, "message": "¿Lo pensaste?"}),
        ("discount", {"code": "HOY5", "text": "Código {code}"}),
        ("webhook", {"url": "https://crm.example.com/hook"}),
        ("qualify_timeline", {}),
        ("re_engagement", {}),
    ]
    assert [a.line for a in rule.actions] == list(range(8, 19))


def test_every_registered_action_has_a_description() -> None:
    expected = {"send_message", "ask", "identify_need", "qualify_budget", "tag", "set_stage",
                "assign_owner", "handoff", "follow_up", "discount", "webhook"}  # fmt: skip
    assert expected <= set(ACTIONS)
    assert all(kind.description for kind in ACTIONS.values())


def test_problems_are_all_listed_by_line_with_a_suggestion() -> None:
    source = """\
flows:
  a:
    - trigger: nuevo_usuari
      mesage: hola
    - trigger: {keyword: precio}
      actions: [{set_stage: ganadoo}, {follow_up: {after: 2x, message: hi}}]
    - trigger: 2_minutos_sin_actividad
      message: y
    - trigger: {intent: chisme}
      message: z
    - message: sin disparador
    - trigger: {page: /x}
      actions: [{ask: {question: "?", field: salario}}, hacer_magia]
  b: []
"""
    assert problems(source) == [
        (3, "unknown trigger 'nuevo_usuari' (did you mean 'nuevo_usuario'?)"),
        (4, "unknown key 'mesage' (did you mean 'message'?)"),
        (6, "unknown stage 'ganadoo' (did you mean 'ganado'?)"),
        (6, "follow_up after: '2x' is not a duration such as 7d, 48h or '2 días'"),
        (
            7,
            "'2_minutos_sin_actividad': write the time in hours or days, "
            "e.g. 48_horas_sin_actividad",
        ),
        (9, "unknown intent 'chisme'"),
        (11, "rule 5 of 'a' has no trigger"),
        (13, "unknown lead field 'salario'"),
        (13, "unknown action 'hacer_magia'"),
        (14, "flow 'b' has no rules"),
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "flows:\n  a:\n    - trigger: [\n",
            [(4, "YAML syntax: expected the node content, but found '<stream end>'")],
        ),
        ("- just a list\n", [(1, "the file must be a mapping (key: value)")]),
        (
            "other: 1\n",
            [
                (1, "unknown key 'other' at the top (use flows and discount)"),
                (1, "the file needs a 'flows:' section"),
            ],
        ),
        (
            "flows:\n  a:\n    trigger: x\n",
            [(3, "flow 'a' must be a list of rules (- trigger: ...)")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n",
            [(3, "rule 1 of 'a' has neither a message nor actions")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n      message: ''\n",
            [(4, "the message is empty")],
        ),
        (
            "flows:\n  a:\n    - trigger: {score: 101}\n      message: x\n",
            [(3, "the score is a whole number from 1 to 100")],
        ),
        (
            "flows:\n  a:\n    - trigger: {inactive: 30m}\n      message: x\n",
            [(3, "inactivity must be at least 1 hour")],
        ),
        (
            "flows:\n  a:\n    - trigger: x\n      trigger: y\n      message: z\n",
            [(4, "rule 1 of 'a': 'trigger' is given twice")],
        ),
        (
            "flows:\n  a b:\n    - trigger: nuevo_usuario\n      message: z\n",
            [(2, "'a b': a flow name is letters, digits, _ or - (60 at most)")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n      actions: [{webhook: 'http://10.0.0.1/x'}]\n",
            [(4, "The webhook URL must start with https://.")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n      actions: [{webhook: 'https://127.0.0.1/x'}]\n",
            [(4, "The webhook URL cannot point at a private or local address.")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n      actions: [{assign_owner: nadie}]\n",
            [(4, "'nadie' is not an email address of a team member")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n"
            "      actions: [{follow_up: {after: 10m, message: x}}]\n",
            [(4, "a follow-up goes out between 1 hour and 90 days later")],
        ),
        (
            "flows:\n  a:\n    - trigger: nuevo_usuario\n      actions: [{tag: vip, extra: 1}]\n",
            [(4, "an action is a name, or one 'name: parameters' pair")],
        ),
    ],
)
def test_each_problem_names_its_line(
    source: str, expected: list[tuple[int, str]], settings: Any
) -> None:
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False  # as in production
    assert problems(source) == expected


def test_empty_flows_are_no_rules_and_a_huge_file_is_refused() -> None:
    assert flows_parse("").rules == ()
    assert flows_parse("# nothing yet\n").rules == ()
    big = "flows:\n  a:\n" + "    - trigger: nuevo_usuario\n      message: " + "x" * 70_000 + "\n"
    assert problems(big) == [(0, "the flows are larger than 64 KB")]
