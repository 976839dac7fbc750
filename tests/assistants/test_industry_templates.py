"""The built-in industry templates: complete, in natural Spanish and English, safe to format."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest

from apps.assistants.industry_templates import (
    NEXT_STEP_KINDS,
    QUALIFICATION_FIELDS,
    TEMPLATE_KEYS,
    IndustryTemplate,
    template_choices,
    template_get,
)

KEYS = (
    "seguros",
    "inmobiliaria",
    "ecommerce",
    "educacion",
    "salud",
    "software",
    "automotriz",
    "turismo",
    "generico",
)
ALL = [template_get(key, lang) for key in KEYS for lang in ("es", "en")]
SPANISH = [t for t in ALL if t.language == "es"]
ENGLISH = [t for t in ALL if t.language == "en"]


def ids(template: IndustryTemplate) -> str:
    return f"{template.key}-{template.language}"


def texts(template: IndustryTemplate) -> list[str]:
    """Every text a visitor or the model may read."""
    return [
        template.name,
        template.system,
        template.tone,
        *template.goals,
        *(q.text for q in template.qualification_questions),
        template.next_step.text,
        template.next_step.label,
        template.fallback,
    ]


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def test_the_keys_are_the_nine_built_in_industries_in_order() -> None:
    assert TEMPLATE_KEYS == KEYS


@pytest.mark.parametrize("template", ALL, ids=ids)
def test_every_key_and_language_has_a_complete_template(template: IndustryTemplate) -> None:
    assert template.key in KEYS
    assert template.language in ("es", "en")
    for text in texts(template):
        assert text.strip() == text
        assert text
    assert 3 <= len(template.goals) <= 4
    assert len(set(template.goals)) == len(template.goals)
    assert 4 <= len(sentences(template.system)) <= 8
    assert template.next_step.kind in NEXT_STEP_KINDS


@pytest.mark.parametrize("template", ALL, ids=ids)
def test_only_the_system_prompt_has_placeholders_and_only_the_two_known(
    template: IndustryTemplate,
) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template.system) if name}
    assert fields == {"bot_name", "company_name"}
    formatted = template.system.format(bot_name="Ana", company_name="Acme")
    assert "{" not in formatted
    assert "}" not in formatted
    assert "Ana" in formatted
    assert "Acme" in formatted
    for text in texts(template):
        if text is not template.system:
            assert "{" not in text
            assert "}" not in text


@pytest.mark.parametrize("template", ALL, ids=ids)
def test_qualification_questions_cover_need_budget_and_timeline_in_order(
    template: IndustryTemplate,
) -> None:
    questions = template.qualification_questions
    fields = [q.field for q in questions]
    assert 3 <= len(questions) <= 4
    assert set(fields) <= set(QUALIFICATION_FIELDS)
    assert len(set(fields)) == len(fields)
    assert fields[:3] == ["need", "budget", "timeline"]
    for question in questions:
        assert question.text.endswith("?")
        assert not question.text.startswith(("I ", "I'"))  # a lead-in lowercases the first letter


@pytest.mark.parametrize("template", ALL, ids=ids)
def test_next_step_and_fallback_are_questions_offering_something(
    template: IndustryTemplate,
) -> None:
    assert template.next_step.text.endswith("?")
    assert template.fallback.endswith("?")
    people = (
        r"equipo|asesor|agente|persona"
        if template.language == "es"
        else r"team|advisor|agent|person"
    )
    assert re.search(people, template.fallback)


@pytest.mark.parametrize("key", KEYS)
def test_both_languages_ask_the_same_fields_and_offer_the_same_step(key: str) -> None:
    es, en = template_get(key, "es"), template_get(key, "en")
    assert [q.field for q in es.qualification_questions] == [
        q.field for q in en.qualification_questions
    ]
    assert es.next_step.kind == en.next_step.kind
    assert len(es.goals) == len(en.goals)
    assert es.name != en.name


@pytest.mark.parametrize("template", SPANISH, ids=ids)
def test_spanish_is_accented_latin_american_tu_and_has_no_english(
    template: IndustryTemplate,
) -> None:
    joined = " ".join(texts(template))
    assert re.search(r"[áéíóúñ¿]", joined)
    for question in template.qualification_questions:
        assert question.text.startswith("¿")
    assert template.next_step.text.startswith("¿")
    lowered = f" {joined.lower()} "
    for english in (" the ", " you ", " your ", " and ", " with ", " please ", " would "):
        assert english not in lowered
    # tú, not vos/vosotros nor usted
    assert not re.search(r"\b(vos|vosotros|vosotras|vuestro|vuestra|usted|ustedes)\b", lowered)
    assert not re.search(r"\w(áis|éis)\b", lowered)


@pytest.mark.parametrize("template", ENGLISH, ids=ids)
def test_english_has_no_spanish(template: IndustryTemplate) -> None:
    joined = " ".join(texts(template))
    assert not re.search(r"[áéíóúñ¿¡]", joined)
    lowered = f" {joined.lower()} "
    for spanish in (" de ", " que ", " para ", " con ", " tu ", " el ", " los "):
        assert spanish not in lowered


def test_the_examples_of_the_product_documentation_are_kept() -> None:
    seguros = template_get("seguros", "es")
    assert seguros.tone == "profesional y confiable"
    assert seguros.goals == ("calificar leads", "educar sobre productos", "agendar citas")
    inmobiliaria = template_get("inmobiliaria", "es")
    assert inmobiliaria.tone == "entusiasta y conocedor"
    assert inmobiliaria.goals == ("mostrar propiedades", "calificar presupuesto", "agendar visitas")
    assert inmobiliaria.next_step.kind == "visit"
    assert template_get("software", "es").next_step.text == (
        "¿Te gustaría agendar una demo personalizada esta semana?"
    )


def test_an_unknown_key_gives_the_generic_template() -> None:
    assert template_get("panaderia", "es") == template_get("generico", "es")
    assert template_get("", "en") == template_get("generico", "en")
    assert template_get("  Seguros ", "es").key == "seguros"


def test_an_unknown_language_gives_spanish_and_regional_codes_are_understood() -> None:
    assert template_get("salud", "pt") == template_get("salud", "es")
    assert template_get("salud", "") == template_get("salud", "es")
    assert template_get("salud", "es-MX").language == "es"
    assert template_get("salud", "EN_us").language == "en"


def test_choices_list_every_key_with_its_localized_name() -> None:
    spanish = template_choices()
    assert [key for key, _ in spanish] == list(KEYS)
    assert dict(spanish)["educacion"] == "Educación"
    assert dict(spanish)["ecommerce"] == "Comercio electrónico"
    english = dict(template_choices("en"))
    assert english["educacion"] == "Education"
    assert english["inmobiliaria"] == "Real estate"
    assert template_choices("fr") == spanish


def test_templates_are_immutable() -> None:
    template = template_get("software", "en")
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.tone = "pushy"  # type: ignore[misc]
