"""The offline responder: answers by similarity from the company's FAQ and facts, never invents a
price, qualifies one question at a time and never twice, proposes the next step, hands over to a
person, and reads naturally in Spanish and English. Pure Python: no database, no network."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from apps.assistants.industry_templates import TEMPLATE_KEYS, template_get
from apps.assistants.offline import (
    QUESTION_THRESHOLD,
    Fact,
    FaqEntry,
    OfflineProfile,
    OfflineReply,
    Turn,
    detect_language,
    offline_reply,
)

# --- Helpers ------------------------------------------------------------------------------------


def profile_for(
    key: str = "software",
    language: str = "es",
    *,
    facts: Sequence[Fact] = (),
    faq: Sequence[FaqEntry] = (),
    known: frozenset[str] = frozenset(),
    bot: str = "Chapi",
    company: str = "Acme",
    welcome: str = "¡Hola! ¿Cómo puedo ayudarte?",
) -> OfflineProfile:
    return OfflineProfile(
        bot_name=bot,
        company_name=company,
        welcome_message=welcome,
        language=language,
        template=template_get(key, language),
        facts=tuple(facts),
        faq=tuple(faq),
        known_fields=known,
    )


PLANS = (
    Fact(
        "Plan Básico",
        "Incluye un canal, 1,000 conversaciones al mes y soporte por correo.",
        "$1,200 MXN/mes",
        "service",
    ),
    Fact(
        "Plan Pro",
        "Incluye WhatsApp, Telegram y web, conversaciones ilimitadas y soporte prioritario.",
        "$2,900 MXN/mes",
        "service",
    ),
    Fact("Horario de atención", "Lunes a viernes de 9:00 a 18:00", kind="hours"),
    Fact("Oficinas", "Av. Reforma 222, piso 5, Ciudad de México", kind="location"),
)
PLANS_FAQ = (
    FaqEntry(
        "Precio del plan básico",
        "El plan básico cuesta $1,200 MXN al mes e incluye un canal y 1,000 conversaciones.",
    ),
    FaqEntry(
        "¿Tienen prueba gratis?",
        "Sí, todos los planes tienen 14 días de prueba sin tarjeta de crédito.",
    ),
    FaqEntry(
        "¿Se integra con HubSpot?",
        "Sí, sincronizamos contactos y negocios con HubSpot en ambos sentidos.",
    ),
)
CURRENCY = re.compile(r"\$[\d,.]+")


def ask(profile: OfflineProfile, message: str, history: Sequence[Turn] = ()) -> OfflineReply:
    return offline_reply(profile, list(history), message)


def talk(profile: OfflineProfile, *messages: str) -> tuple[list[OfflineReply], list[Turn]]:
    """Send `messages` in order; the replies and the resulting history."""
    history: list[Turn] = []
    replies = []
    for message in messages:
        reply = offline_reply(profile, history, message)
        replies.append(reply)
        history += [Turn("user", message), Turn("assistant", reply.text)]
    return replies, history


def sentence_count(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+(?=[¿¡A-Z0-9])", text) if s.strip()])


def assert_reads_naturally(reply: OfflineReply, profile: OfflineProfile, lang: str) -> None:
    text = reply.text
    assert text == text.strip()
    assert text[-1] in ".!?", text
    assert text[0].isupper() or text[0] in "¿¡", text
    for bad in ("None", "{", "}", "<", ">", "**", "__", "  ", " .", " ,", "..", "?.", "!."):
        assert bad not in text, (bad, text)
    assert sentence_count(text) <= 5, text
    assert len(text) <= 480, text
    other = "en" if lang == "es" else "es"
    assert detect_language(text, other) == lang, text
    # Every price quoted is one the company wrote down.
    written = " ".join(
        [f.price + " " + f.text for f in profile.facts] + [f.answer for f in profile.faq]
    )
    for amount in CURRENCY.findall(text):
        assert amount.rstrip(".,") in written, (amount, text)


@dataclass(frozen=True)
class Step:
    message: str
    intent: str
    says: tuple[str, ...] = ()
    field: str | None = None


def run_script(profile: OfflineProfile, steps: Sequence[Step]) -> list[OfflineReply]:
    history: list[Turn] = []
    replies: list[OfflineReply] = []
    lang = profile.language
    for step in steps:
        reply = offline_reply(profile, history, step.message)
        assert (reply.intent, reply.asked_field) == (step.intent, step.field), (step, reply)
        for phrase in step.says:
            assert phrase in reply.text, (phrase, reply.text)
        assert_reads_naturally(reply, profile, lang)
        if replies:
            assert reply.text != replies[-1].text
        replies.append(reply)
        history += [Turn("user", step.message), Turn("assistant", reply.text)]
    asked = [r.asked_field for r in replies if r.asked_field]
    assert len(asked) == len(set(asked)), asked  # never the same question twice
    questions = [q.text for q in profile.template.qualification_questions]
    for question in questions:
        assert sum(question.lower()[1:] in r.text.lower() for r in replies) <= 1
    return replies


# --- Similarity ---------------------------------------------------------------------------------


def test_a_paraphrased_price_question_matches_the_faq_entry() -> None:
    profile = profile_for(facts=PLANS, faq=PLANS_FAQ)
    reply = ask(profile, "¿Cuánto cuesta el plan básico?", [Turn("user", "hola")])
    assert reply.intent == "faq"
    assert reply.matched == "Precio del plan básico"
    assert reply.text.startswith("El plan básico cuesta $1,200 MXN al mes")
    assert reply.score >= QUESTION_THRESHOLD


def test_a_price_question_quotes_the_facts_price_in_words() -> None:
    profile = profile_for(facts=PLANS)
    reply = ask(profile, "¿cuánto cuesta el plan básico?", [Turn("user", "hola")])
    assert reply.intent == "fact"
    assert reply.matched == "Plan Básico"
    assert reply.score == 1.0
    assert reply.text.startswith("El Plan Básico cuesta $1,200 MXN al mes.")


def test_opening_hours_in_english_match_an_hours_fact() -> None:
    profile = profile_for(facts=PLANS, language="en")
    reply = ask(profile, "what are your opening hours", [Turn("user", "hi")])
    assert reply.intent == "fact"
    assert reply.matched == "Horario de atención"
    assert "9:00 a 18:00" in reply.text


@pytest.mark.parametrize(
    ("message", "matched"),
    [
        ("cuanto cuesta el plan basico", "Plan Básico"),  # no accents
        ("CUÁNTO CUESTA EL PLAN BÁSICO!!!", "Plan Básico"),  # shouting, punctuation
        ("cuanto cuesta el plan vasico", "Plan Básico"),  # typo in the product
        ("presio del plan basico", "Plan Básico"),  # typo in the sales word
        ("que horarios manejan", "Horario de atención"),
        ("a que hora abren?", "Horario de atención"),
        ("orario de atencion", "Horario de atención"),
        ("¿Dónde están ubicados?", "Oficinas"),
        ("where are you located?", "Oficinas"),
        ("¿cuál es su dirección?", "Oficinas"),
        ("¿qué incluye el plan pro?", "Plan Pro"),
        ("how much is the pro plan", "Plan Pro"),
    ],
)
def test_paraphrases_typos_and_accents_match_the_right_fact(message: str, matched: str) -> None:
    profile = profile_for(facts=PLANS)
    reply = ask(profile, message, [Turn("user", "hola"), Turn("assistant", "¡Hola!")])
    assert (reply.intent, reply.matched) == ("fact", matched), reply


def test_faq_questions_match_by_meaning_not_by_exact_text() -> None:
    profile = profile_for(facts=PLANS, faq=PLANS_FAQ)
    history = [Turn("user", "hola")]
    trial = ask(profile, "hay periodo de prueba gratuita?", history)
    assert (trial.intent, trial.matched) == ("faq", "¿Tienen prueba gratis?")
    hubspot = ask(profile, "does it integrate with hubspot", history)
    assert (hubspot.intent, hubspot.matched) == ("faq", "¿Se integra con HubSpot?")


def test_a_question_about_something_else_is_not_answered_with_a_near_miss() -> None:
    profile = profile_for(facts=PLANS, faq=PLANS_FAQ)
    reply = ask(profile, "¿se integra con Salesforce?", [Turn("user", "hola")])
    assert reply.intent == "unknown"
    assert "HubSpot" not in reply.text
    assert reply.text == profile.template.fallback


def test_a_question_about_a_concept_matches_the_fact_about_it_despite_filler_words() -> None:
    profile = profile_for(facts=PLANS)
    reply = ask(profile, "¿cuál es el horario de la tienda?", [Turn("user", "hola")])
    assert (reply.intent, reply.matched) == ("fact", "Horario de atención")


def test_a_word_mentioned_in_passing_does_not_make_an_answer() -> None:
    # The trial FAQ says "sin tarjeta de crédito": that does not answer whether cards are taken.
    profile = profile_for(facts=PLANS, faq=PLANS_FAQ)
    reply = ask(profile, "¿aceptan pagos con tarjeta?", [Turn("user", "hola")])
    assert reply.intent == "unknown"
    assert "prueba" not in reply.text


def test_a_generic_price_question_lists_the_prices() -> None:
    profile = profile_for(facts=PLANS)
    reply = ask(profile, "¿cuánto cuesta?", [Turn("user", "hola")])
    assert reply.intent == "fact"
    assert reply.text.startswith(
        "Estos son nuestros precios: Plan Básico, $1,200 MXN al mes; Plan Pro, $2,900 MXN al mes."
    )


def test_asking_which_plans_there_are_lists_the_options() -> None:
    profile = profile_for(facts=PLANS, language="en")
    reply = ask(profile, "what plans do you have?", [Turn("user", "hi")])
    assert reply.text.startswith(
        "We offer these options: Plan Básico ($1,200 MXN per month) and Plan Pro "
        "($2,900 MXN per month)."
    )


# --- Never inventing prices ---------------------------------------------------------------------


def test_a_price_question_without_a_priced_fact_gets_the_honest_fallback() -> None:
    profile = profile_for(facts=(Fact("Plan Básico", "Un canal y soporte por correo."),))
    reply = ask(profile, "¿Cuánto cuesta el plan básico?", [Turn("user", "hola")])
    assert reply.intent == "unknown"
    assert reply.matched is None
    assert "$" not in reply.text
    assert "No tengo el precio exacto" in reply.text
    assert reply.text.endswith("¿Quieres que una persona de nuestro equipo te lo confirme?")


def test_the_price_of_one_product_is_never_quoted_for_another() -> None:
    profile = profile_for(
        "seguros", facts=(Fact("Seguro de auto", "Cobertura amplia.", "$450 MXN/mes"),)
    )
    reply = ask(profile, "¿cuánto cuesta el seguro de mascotas?", [Turn("user", "hola")])
    assert reply.intent == "unknown"
    assert "$450" not in reply.text


def test_with_no_facts_at_all_every_price_question_is_honest() -> None:
    profile = profile_for(language="en")
    reply = ask(profile, "How much does it cost?", [Turn("user", "hi")])
    assert reply.intent == "unknown"
    assert "$" not in reply.text
    assert "I don't have the exact price" in reply.text


# --- Qualification ------------------------------------------------------------------------------


def test_qualification_follows_the_template_order_one_question_at_a_time() -> None:
    profile = profile_for("software")
    replies, _ = talk(
        profile, "hola", "necesito automatizar mi atención", "unos 3 mil", "este mes", "yo"
    )
    assert [r.intent for r in replies] == ["greeting", "qualify", "qualify", "qualify", "next_step"]
    # The need was stated, so the first question is the budget.
    assert [r.asked_field for r in replies] == [None, "budget", "timeline", "authority", None]
    for reply in replies[1:4]:
        assert reply.text.count("?") == 1


def test_a_question_already_asked_in_the_history_is_never_asked_again() -> None:
    profile = profile_for("generico")
    budget = template_get("generico", "es").qualification_questions[1].text
    history = [
        Turn("user", "hola"),
        Turn("assistant", f"Perfecto. {budget}"),
        Turn("user", "no sé todavía"),
    ]
    reply = ask(profile, "la verdad no tengo idea", history)
    assert reply.asked_field == "need"
    later = [*history, Turn("user", "la verdad no tengo idea"), Turn("assistant", reply.text)]
    following = ask(profile, "flores para un evento", later)
    assert following.asked_field == "timeline"
    assert budget not in following.text


def test_a_question_asked_in_the_other_language_counts_as_asked() -> None:
    profile = profile_for("software", "es")
    need_en = template_get("software", "en").qualification_questions[0].text
    history = [Turn("user", "hi"), Turn("assistant", f"Great! {need_en}")]
    reply = ask(profile, "bueno, la verdad prefiero español", history)
    assert reply.asked_field == "budget"


def test_known_fields_are_never_asked() -> None:
    profile = profile_for("software", known=frozenset({"need", "budget"}))
    replies, _ = talk(profile, "hola", "ok", "este trimestre", "yo decido")
    asked = [r.asked_field for r in replies if r.asked_field]
    assert asked == ["timeline", "authority"]
    assert replies[-1].intent == "next_step"


def test_after_an_answer_the_next_question_follows_with_a_lead_in() -> None:
    profile = profile_for("software", facts=PLANS)
    reply = ask(profile, "¿qué horario tienen?", [Turn("user", "hola")])
    assert reply.intent == "fact"
    assert reply.asked_field == "need"
    assert reply.text.endswith(
        "¿qué proceso te gustaría mejorar en tu empresa y cuántas personas lo usarían?"
    )
    assert re.search(r"[a-z], ¿qué proceso", reply.text)


def test_asking_about_a_product_tells_the_need() -> None:
    profile = profile_for("software", facts=PLANS)
    reply = ask(profile, "¿Cuánto cuesta el plan pro?", [Turn("user", "hola")])
    assert reply.asked_field == "budget"


# --- Next step ----------------------------------------------------------------------------------


def test_once_everything_is_asked_it_proposes_the_next_step() -> None:
    profile = profile_for("inmobiliaria")
    replies, _ = talk(profile, "hola", "busco rentar", "unos 20 mil", "en un mes", "solo yo")
    assert replies[-1].intent == "next_step"
    assert replies[-1].text.endswith("¿Te gustaría agendar una visita a la propiedad esta semana?")


def test_buying_intent_proposes_the_next_step_at_once() -> None:
    profile = profile_for("software")
    reply = ask(profile, "me interesa", [Turn("user", "hola"), Turn("assistant", "¡Hola!")])
    assert reply.intent == "next_step"
    assert reply.text == (
        "¡Qué gusto que te interese! ¿Te gustaría agendar una demo personalizada esta semana?"
    )


def test_asking_for_the_next_step_itself_takes_it() -> None:
    profile = profile_for("software", "en", welcome="Hi! How can I help?")
    reply = ask(profile, "I'd like to book a demo", [Turn("user", "hi")])
    assert reply.intent == "next_step"
    assert reply.text.startswith("Excellent! To set up the demo, could you share your name")


def test_the_same_proposal_is_never_made_in_consecutive_turns() -> None:
    profile = profile_for("software")
    proposal = profile.template.next_step.text
    history = [Turn("user", "hola"), Turn("assistant", f"Muy bien. {proposal}")]
    for message in ("me interesa", "sí, quiero comprar", "¿se integra con HubSpot?", "ok"):
        reply = ask(profile, message, history)
        assert proposal not in reply.text, (message, reply.text)


def test_accepting_asks_for_contact_details_and_then_confirms() -> None:
    profile = profile_for("automotriz")
    replies, _ = talk(
        profile, "hola", "me interesa", "sí, el sábado", "Soy Ana, 55 1234 5678", "ana@correo.com"
    )
    assert [r.intent for r in replies] == [
        "greeting",
        "next_step",
        "next_step",
        "next_step",
        "thanks",
    ]
    assert replies[2].text == (
        "¡Excelente! Para agendar la prueba de manejo, ¿me compartes tu nombre y un teléfono o "
        "correo? Una persona de nuestro equipo te contactará para confirmar."
    )
    assert replies[3].text == (
        "¡Gracias! Una persona de nuestro equipo te contactará muy pronto para confirmar la "
        "prueba de manejo."
    )


def test_declining_is_accepted_gracefully_and_not_pushed_again() -> None:
    profile = profile_for("generico")
    replies, _ = talk(profile, "hola", "me interesa", "no, lo voy a pensar", "ok")
    assert replies[2].intent == "next_step"
    assert "tómate tu tiempo" in replies[2].text
    proposal = profile.template.next_step.text
    assert proposal not in replies[3].text


# --- Handoff, thanks, goodbye, unknown ----------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "lang"),
    [
        ("quiero hablar con una persona", "es"),
        ("¿Puedo hablar con un humano?", "es"),
        ("necesito un asesor", "es"),
        ("comunícame con un agente por favor", "es"),
        ("pásame con alguien de ventas", "es"),
        ("I want to talk to a person", "en"),
        ("can I speak with a human?", "en"),
        ("talk to an agent please", "en"),
        ("let me talk to someone", "en"),
        ("is there a real person there?", "en"),
    ],
)
def test_asking_for_a_person_hands_over(message: str, lang: str) -> None:
    profile = profile_for("seguros", company="Seguros Confianza")
    reply = ask(profile, message, [Turn("user", "hola"), Turn("assistant", "¡Hola!")])
    assert reply.intent == "handoff"
    expected = (
        "Claro, te comunico con una persona de nuestro equipo de Seguros Confianza."
        if lang == "es"
        else "Of course, I'm connecting you with a person from our team at Seguros Confianza."
    )
    assert reply.text.startswith(expected)


def test_an_emergency_at_a_clinic_is_sent_to_emergency_services_and_a_person() -> None:
    profile = profile_for("salud")
    reply = ask(profile, "tengo un dolor de pecho muy fuerte", [])
    assert reply.intent == "handoff"
    assert "número de emergencias" in reply.text


def test_after_not_knowing_a_yes_hands_over_and_a_no_moves_on() -> None:
    profile = profile_for("software")
    history = [Turn("user", "hola"), Turn("assistant", "¡Hola!")]
    unknown = ask(profile, "¿tienen app para relojes inteligentes?", history)
    assert unknown.intent == "unknown"
    history += [Turn("user", "¿tienen app para relojes?"), Turn("assistant", unknown.text)]
    assert ask(profile, "sí, por favor", history).intent == "handoff"
    moved_on = ask(profile, "no, gracias", history)
    assert moved_on.intent == "qualify"
    assert moved_on.text.startswith("Entendido.")


def test_not_knowing_twice_in_a_row_is_said_differently() -> None:
    profile = profile_for("software")
    replies, _ = talk(profile, "hola", "¿tienen app para relojes?", "¿y para televisiones?")
    assert replies[1].intent == replies[2].intent == "unknown"
    assert replies[1].text != replies[2].text


@pytest.mark.parametrize(
    ("message", "intent", "text"),
    [
        ("gracias", "thanks", "¡De nada!"),
        ("¡Muchas gracias!", "thanks", "¡De nada!"),
        ("adiós", "goodbye", "¡Hasta pronto! Gracias por contactar a Acme"),
        ("gracias, hasta luego", "goodbye", "¡Hasta pronto! Gracias por contactar a Acme"),
        ("thanks!", "thanks", "My pleasure!"),
        ("bye", "goodbye", "Take care, and thanks for contacting Acme!"),
    ],
)
def test_thanks_and_goodbye_get_short_polite_replies(message: str, intent: str, text: str) -> None:
    profile = profile_for()
    reply = ask(profile, message, [Turn("user", "hola"), Turn("assistant", "¡Hola!")])
    assert reply.intent == intent
    assert reply.text.startswith(text)
    assert sentence_count(reply.text) <= 2


# --- Greeting and welcome -----------------------------------------------------------------------


def test_a_greeting_gets_the_welcome_message_naming_the_assistant() -> None:
    profile = profile_for(bot="Sofía", company="Seguros Confianza")
    reply = ask(profile, "Hola")
    assert reply.intent == "greeting"
    assert reply.text == (
        "¡Hola! Soy Sofía, asistente virtual de Seguros Confianza. ¿Cómo puedo ayudarte?"
    )


def test_a_welcome_that_names_the_assistant_is_used_as_written() -> None:
    profile = profile_for(welcome="¡Hola! Soy {bot_name} de {company_name}. ¿Qué buscas hoy?")
    assert ask(profile, "buenas").text == "¡Hola! Soy Chapi de Acme. ¿Qué buscas hoy?"


def test_a_first_message_with_a_question_gets_the_welcome_and_the_answer() -> None:
    profile = profile_for(facts=PLANS)
    reply = ask(profile, "Hola, ¿cuánto cuesta el plan básico?")
    assert reply.intent == "fact"
    assert reply.text.startswith(
        "¡Hola! Soy Chapi, asistente virtual de Acme. El Plan Básico cuesta $1,200 MXN al mes."
    )
    assert "¿Cómo puedo ayudarte?" not in reply.text


def test_a_second_greeting_does_not_repeat_the_welcome() -> None:
    profile = profile_for()
    replies, _ = talk(profile, "hola", "hola de nuevo")
    assert replies[1].intent == "greeting"
    assert replies[1].text != replies[0].text
    assert replies[1].text.startswith("¡Hola")


def test_an_english_visitor_is_welcomed_in_english() -> None:
    profile = profile_for(welcome="¡Hola! ¿Cómo puedo ayudarte?")
    reply = ask(profile, "Hello there")
    assert reply.text == "Hi! I'm Chapi, the virtual assistant for Acme. How can I help you today?"


def test_when_the_channel_already_showed_the_welcome_a_greeting_is_short() -> None:
    profile = profile_for()
    reply = ask(profile, "hola", [Turn("assistant", "¡Hola! ¿Cómo puedo ayudarte?")])
    assert (reply.intent, reply.text) == ("greeting", "¡Hola! ¿En qué te puedo ayudar?")


def test_a_request_for_help_without_a_subject_starts_qualifying() -> None:
    reply = ask(profile_for("generico"), "¿me ayudas?", [Turn("user", "hola")])
    assert reply.intent == "qualify"
    assert reply.text.startswith("¡Claro, con gusto! ¿Qué te gustaría resolver")


def test_a_thumbs_up_after_a_proposal_takes_it() -> None:
    profile = profile_for("salud")
    proposal = profile.template.next_step.text
    reply = ask(profile, "👍", [Turn("user", "hola"), Turn("assistant", proposal)])
    assert reply.intent == "next_step"
    assert reply.text.startswith("¡Excelente! Para agendar tu cita")


def test_an_empty_message_is_treated_as_a_greeting() -> None:
    assert ask(profile_for(), "   ").intent == "greeting"


# --- Language -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("Hola, ¿cuánto cuesta?", "en", "es"),
        ("necesito informacion del plan", "en", "es"),
        ("¿precio?", "en", "es"),
        ("How much is it?", "es", "en"),
        ("hi", "es", "en"),
        ("I want to talk to someone", "es", "en"),
        ("ok", "en", "en"),
        ("ok", "es", "es"),
        ("5000", "en", "en"),
        ("", "es", "es"),
        ("demo", "fr", "es"),
    ],
)
def test_language_detection(text: str, default: str, expected: str) -> None:
    assert detect_language(text, default) == expected


def test_it_answers_in_the_visitors_language_and_remembers_it() -> None:
    profile = profile_for("software", "es")
    replies, _ = talk(profile, "hello", "we need a chatbot for support", "ok")
    assert replies[1].text.startswith("Happy to help with that!")
    # "ok" says nothing about the language: the conversation's language is kept.
    assert replies[2].text.startswith(("Perfect", "Got it", "Great"))


# --- Robustness ---------------------------------------------------------------------------------


def test_markup_in_the_companys_answers_is_removed() -> None:
    faq = (
        FaqEntry(
            "¿Hacen envíos?",
            "**Sí**, enviamos a <b>todo México</b>. Más info en [envíos](https://acme.mx/envios)",
        ),
    )
    profile = profile_for("ecommerce", faq=faq)
    reply = ask(profile, "¿hacen envíos a Monterrey?", [Turn("user", "hola")])
    assert reply.intent == "faq"
    assert reply.text.startswith(
        "Sí, enviamos a todo México. Más info en envíos (https://acme.mx/envios)."
    )


def test_the_same_inputs_always_give_the_same_reply() -> None:
    profile = profile_for("turismo", facts=PLANS, faq=PLANS_FAQ)
    history = [Turn("user", "hola"), Turn("assistant", "¡Hola!"), Turn("user", "playa")]
    for message in ("¿cuánto cuesta?", "hola", "me interesa", "quiero hablar con alguien", "x"):
        first = ask(profile, message, history)
        assert all(ask(profile, message, history) == first for _ in range(3))


def test_a_very_long_message_is_answered() -> None:
    reply = ask(profile_for(facts=PLANS), "precio del plan pro " * 500, [Turn("user", "hola")])
    assert reply.matched == "Plan Pro"


def test_every_template_runs_with_an_empty_company_profile() -> None:
    for key in TEMPLATE_KEYS:
        for lang in ("es", "en"):
            profile = profile_for(key, lang, bot="", company="", welcome="")
            for message in ("hola", "hi", "¿precio?", "gracias", "quiero hablar con alguien"):
                reply = ask(profile, message)
                assert reply.text
                assert "{" not in reply.text
                assert "None" not in reply.text


# --- A scripted conversation per built-in template ------------------------------------------------

TRANSCRIPTS: dict[tuple[str, str], tuple[OfflineProfile, list[Step]]] = {
    ("seguros", "es"): (
        profile_for(
            "seguros",
            bot="Sofía",
            company="Seguros Confianza",
            facts=(
                Fact(
                    "Seguro de auto",
                    "Incluye responsabilidad civil, asistencia vial 24/7 y robo total.",
                    "$450 MXN/mes",
                ),
                Fact("Horario", "Lunes a viernes de 9:00 a 18:00", kind="hours"),
            ),
            faq=(
                FaqEntry(
                    "¿Cómo reporto un siniestro?",
                    "Llama a nuestra línea 800 123 4567, disponible las 24 horas.",
                ),
            ),
        ),
        [
            Step("Hola", "greeting", ("Soy Sofía", "Seguros Confianza")),
            Step(
                "¿Cuánto cuesta el seguro de auto?",
                "fact",
                ("El Seguro de auto cuesta $450 MXN al mes.", "¿cuánto te gustaría invertir"),
                "budget",
            ),
            Step("Unos 500 pesos al mes", "qualify", ("¿Para cuándo",), "timeline"),
            Step("Este mes, lo antes posible", "qualify", ("¿La decisión",), "authority"),
            Step("Lo decido yo", "next_step", ("cotización personalizada",)),
            Step("Sí, por favor", "next_step", ("¿me compartes tu nombre",)),
            Step("Me llamo Laura, 55 1234 5678", "next_step", ("te contactará muy pronto",)),
            Step("¡Muchas gracias!", "thanks"),
        ],
    ),
    ("inmobiliaria", "es"): (
        profile_for(
            "inmobiliaria",
            bot="Ana",
            company="Inmobiliaria Sol",
            welcome="",
            facts=(
                Fact(
                    "Casa en Coyoacán",
                    "3 recámaras, jardín y cuarto de servicio.",
                    "$6,500,000 MXN",
                ),
                Fact(
                    "Departamento en Polanco",
                    "2 recámaras, 95 m² y gimnasio.",
                    "$28,000 MXN/mes",
                ),
            ),
        ),
        [
            Step("Hola, buenas tardes", "greeting", ("Soy Ana", "Inmobiliaria Sol")),
            Step(
                "¿La casa en Coyoacán tiene jardín?",
                "fact",
                ("Casa en Coyoacán: 3 recámaras, jardín", "$6,500,000 MXN"),
                "budget",
            ),
            Step("Unos 7 millones", "qualify", ("¿En cuánto tiempo",), "timeline"),
            Step("En tres meses", "qualify", ("¿Alguien más",), "authority"),
            Step("Con mi esposo", "next_step", ("agendar una visita",)),
            Step("El sábado en la mañana", "next_step", ("Para agendar la visita",)),
            Step("Carlos Pérez, carlos@correo.com", "next_step", ("confirmar la visita",)),
        ],
    ),
    ("ecommerce", "es"): (
        profile_for(
            "ecommerce",
            bot="Lúa",
            company="Tienda Lúa",
            facts=(
                Fact(
                    "Tenis Runner Pro",
                    "Tenis para correr con amortiguación de espuma y suela antiderrapante.",
                    "$1,899 MXN",
                ),
            ),
            faq=(
                FaqEntry(
                    "¿Hacen envíos a todo el país?",
                    "Sí, enviamos a todo México; el envío es gratis en compras mayores a $999 MXN "
                    "y tarda de 2 a 5 días hábiles.",
                ),
            ),
        ),
        [
            Step("hola!", "greeting", ("Lúa",)),
            Step(
                "¿hacen envíos a Monterrey?",
                "faq",
                ("enviamos a todo México", "¿qué producto estás buscando"),
                "need",
            ),
            Step(
                "Unos tenis para correr, son para mí",
                "fact",
                ("amortiguación", "$1,899 MXN", "¿cuánto te gustaría gastar"),
                "budget",
            ),
            Step("Como 2 mil pesos", "qualify", ("¿Para qué fecha",), "timeline"),
            Step("Para el próximo viernes", "next_step", ("hacer tu pedido",)),
            Step("Sí", "next_step", ("Para completar tu pedido",)),
        ],
    ),
    ("educacion", "es"): (
        profile_for(
            "educacion",
            bot="Leo",
            company="Instituto Avanza",
            facts=(
                Fact(
                    "Curso de inglés intensivo",
                    "Clases en línea en vivo de lunes a jueves, con grupos de máximo 8 alumnos.",
                    "$2,400 MXN/mes",
                ),
            ),
            faq=(
                FaqEntry(
                    "¿Tienen becas?",
                    "Sí, ofrecemos becas de hasta 30% según tu promedio y situación económica.",
                ),
            ),
        ),
        [
            Step("Buenos días", "greeting", ("Leo", "Instituto Avanza")),
            Step(
                "¿tienen becas?", "faq", ("becas de hasta 30%", "¿qué te gustaría estudiar"), "need"
            ),
            Step(
                "Quiero aprender inglés para mi trabajo",
                "qualify",
                ("¡Con gusto te ayudo con eso!", "¿Cuánto tienes contemplado"),
                "budget",
            ),
            Step("Unos 2,500 al mes", "qualify", ("¿Cuándo te gustaría empezar?",), "timeline"),
            Step("El próximo mes", "qualify", ("¿La decisión de inscripción",), "authority"),
            Step("Yo decido", "next_step", ("llamada con un asesor académico",)),
        ],
    ),
    ("salud", "es"): (
        profile_for(
            "salud",
            bot="Clara",
            company="Clínica Dental Sonrisa",
            facts=(
                Fact(
                    "Limpieza dental",
                    "Limpieza con ultrasonido y pulido; dura unos 40 minutos.",
                    "$650 MXN",
                    "service",
                ),
                Fact("Horario", "Lunes a sábado de 9:00 a 19:00", kind="hours"),
            ),
        ),
        [
            Step("hola", "greeting", ("Clara",)),
            Step(
                "¿Cuál es su horario?",
                "fact",
                ("Horario: lunes a sábado de 9:00 a 19:00.", "¿qué servicio o especialidad"),
                "need",
            ),
            Step(
                "Necesito una limpieza dental",
                "fact",
                ("ultrasonido", "Su precio es de $650 MXN.", "¿tu consulta sería con seguro"),
                "budget",
            ),
            Step("Sería particular", "qualify", ("¿Para qué día",), "timeline"),
            Step("El jueves", "next_step", ("agendemos tu cita",)),
            Step("Sí, en la tarde", "next_step", ("Para agendar tu cita",)),
        ],
    ),
    ("software", "es"): (
        profile_for(
            "software",
            bot="Chapi",
            company="CHAPI",
            facts=(
                Fact(
                    "Plan Pro",
                    "Hasta 5 canales (web, WhatsApp y Telegram), 10,000 conversaciones al mes y "
                    "analíticas.",
                    "$2,490 MXN/mes",
                    "service",
                ),
            ),
            faq=(
                FaqEntry(
                    "¿Se integra con WhatsApp?",
                    "Sí, con WhatsApp Business por Twilio o por la API de Meta.",
                ),
            ),
        ),
        [
            Step(
                "Hola, necesito un chatbot para mi empresa de seguros",
                "qualify",
                ("¡Hola! Soy Chapi", "¡Con gusto te ayudo con eso!", "¿Tienen un presupuesto"),
                "budget",
            ),
            Step(
                "Como 3 mil pesos al mes. ¿Cuánto cuesta el plan Pro?",
                "fact",
                ("El Plan Pro cuesta $2,490 MXN al mes.", "¿en qué plazo"),
                "timeline",
            ),
            Step("Lo queremos este mes", "qualify", ("¿Quién más participa",), "authority"),
            Step("Mi socio y yo", "next_step", ("demo personalizada",)),
            Step(
                "¿Se integra con WhatsApp?",
                "faq",
                ("WhatsApp Business", "¿Hay algo más en lo que te pueda ayudar?"),
            ),
            Step("Perfecto, quiero agendar la demo", "next_step", ("Para agendar la demo",)),
        ],
    ),
    ("automotriz", "es"): (
        profile_for(
            "automotriz",
            bot="Diego",
            company="Autos del Valle",
            facts=(
                Fact(
                    "Sedán Aria 2025",
                    "Motor 1.6 L, 6 bolsas de aire y pantalla de 8 pulgadas.",
                    "desde $389,900 MXN",
                ),
            ),
            faq=(
                FaqEntry(
                    "¿Manejan financiamiento?",
                    "Sí, con enganche desde 10% y plazos de 12 a 60 meses, sujeto a aprobación.",
                ),
            ),
        ),
        [
            Step("Hola", "greeting", ("Diego", "Autos del Valle")),
            Step(
                "¿Manejan financiamiento?",
                "faq",
                ("enganche desde 10%", "¿qué tipo de vehículo buscas"),
                "need",
            ),
            Step(
                "Busco un sedán para ir al trabajo",
                "qualify",
                ("¡Con gusto te ayudo con eso!", "¿Qué presupuesto"),
                "budget",
            ),
            Step(
                "¿Cuánto cuesta el Aria?",
                "fact",
                ("El Sedán Aria 2025 cuesta desde $389,900 MXN.", "¿cuándo te gustaría estrenar"),
                "timeline",
            ),
            Step("En un mes", "qualify", ("¿La decisión la tomas tú",), "authority"),
            Step("Lo decido con mi esposa", "next_step", ("prueba de manejo",)),
            Step("Va, el sábado", "next_step", ("Para agendar la prueba de manejo",)),
        ],
    ),
    ("turismo", "es"): (
        profile_for(
            "turismo",
            bot="Marina",
            company="Viajes Caribe Azul",
            facts=(
                Fact(
                    "Paquete Cancún 5 días",
                    "Vuelo redondo desde CDMX, 4 noches en hotel todo incluido y traslados.",
                    "$12,500 MXN/persona",
                ),
            ),
            faq=(
                FaqEntry(
                    "¿Qué documentos necesito para viajar a Cancún?",
                    "Para vuelos nacionales solo necesitas una identificación oficial vigente.",
                ),
            ),
        ),
        [
            Step("hola", "greeting", ("Marina",)),
            Step(
                "¿cuánto cuesta el paquete a Cancún?",
                "fact",
                ("cuesta $12,500 MXN por persona. Vuelo redondo", "¿qué presupuesto"),
                "budget",
            ),
            Step("Somos dos, unos 13 mil por persona", "qualify", ("¿En qué fechas",), "timeline"),
            Step("En diciembre", "next_step", ("cotización con opciones",)),
            Step("¿Qué documentos necesito?", "faq", ("identificación oficial",)),
            Step("Sí, prepárame la cotización", "next_step", ("Para preparar tu cotización",)),
        ],
    ),
    ("generico", "es"): (
        profile_for(
            "generico",
            bot="Mía",
            company="Flores Bonitas",
            facts=(
                Fact(
                    "Arreglo Primavera",
                    "Arreglo de 12 rosas y flores de temporada con base de cerámica.",
                    "$850 MXN",
                ),
                Fact("Sucursal Centro", "Av. Juárez 45, Centro, Guadalajara", kind="location"),
            ),
        ),
        [
            Step("Buenas tardes", "greeting", ("Mía", "Flores Bonitas")),
            Step(
                "¿dónde están?",
                "fact",
                ("Sucursal Centro: Av. Juárez 45", "¿qué te gustaría resolver"),
                "need",
            ),
            Step(
                "Quiero un arreglo para el cumpleaños de mi mamá",
                "qualify",
                ("¡Con gusto te ayudo con eso!", "¿Tienes un presupuesto"),
                "budget",
            ),
            Step("Unos 900 pesos", "qualify", ("¿Para cuándo lo necesitas?",), "timeline"),
            Step("Para el viernes", "next_step", ("te llame",)),
            Step("No, gracias", "next_step", ("tómate tu tiempo",)),
            Step("Adiós", "goodbye", ("Flores Bonitas",)),
        ],
    ),
    ("seguros", "en"): (
        profile_for(
            "seguros",
            "en",
            bot="Sam",
            company="SafeHarbor",
            welcome="Hi! I'm Sam from SafeHarbor. How can I help?",
            facts=(
                Fact(
                    "Auto Insurance",
                    "Liability, roadside assistance and theft coverage.",
                    "$45/month",
                ),
            ),
            faq=(
                FaqEntry(
                    "How do I file a claim?",
                    "Call our 24/7 claims line at 800-555-0199 or file it in our app.",
                ),
            ),
        ),
        [
            Step("Hello", "greeting", ("Sam from SafeHarbor",)),
            Step(
                "How do I file a claim?",
                "faq",
                ("claims line", "what would you like to protect"),
                "need",
            ),
            Step(
                "I need insurance for my new car",
                "qualify",
                ("Happy to help with that!", "how much would you like to spend"),
                "budget",
            ),
            Step(
                "How much is the auto insurance?",
                "fact",
                ("The Auto Insurance costs $45 per month.", "when do you need your policy"),
                "timeline",
            ),
            Step("Next week", "qualify", ("Are you making this decision",), "authority"),
            Step("Just me", "next_step", ("no-obligation quote",)),
            Step("not now", "next_step", ("take your time",)),
            Step("thanks, bye", "goodbye", ("SafeHarbor",)),
        ],
    ),
    ("software", "en"): (
        profile_for(
            "software",
            "en",
            bot="Max",
            company="Flowly",
            welcome="Hi there! How can I help?",
            facts=(
                Fact(
                    "Basic Plan",
                    "Up to 3 users, 1,000 conversations a month and email support.",
                    "$49/mo",
                    "service",
                ),
                Fact("Support hours", "Monday to Friday, 8 am to 6 pm CST", kind="hours"),
            ),
        ),
        [
            Step("hi", "greeting", ("I'm Max, the virtual assistant for Flowly",)),
            Step(
                "how much is the basic plan?",
                "fact",
                ("The Basic Plan costs $49 per month. Up to 3 users",),
                "budget",
            ),
            Step("around 200 dollars a month", "qualify", ("How soon",), "timeline"),
            Step("next month", "qualify", ("Who else is involved",), "authority"),
            Step("me and my cofounder", "next_step", ("personalized demo",)),
            Step("yes", "next_step", ("To set up the demo, could you share your name",)),
            Step("jane@acme.com", "next_step", ("will contact you very soon to confirm the demo",)),
        ],
    ),
    ("inmobiliaria", "en"): (
        profile_for(
            "inmobiliaria",
            "en",
            bot="Ava",
            company="Sunset Realty",
            welcome="",
            facts=(
                Fact("Downtown Loft", "One bedroom, rooftop pool and gym.", "$2,400/month"),
                Fact("Office hours", "Monday to Saturday, 9 am to 6 pm", kind="hours"),
            ),
        ),
        [
            Step("hey there", "greeting", ("Ava", "Sunset Realty")),
            Step(
                "what are your opening hours?",
                "fact",
                ("Office hours: Monday to Saturday", "are you looking to buy or rent"),
                "need",
            ),
            Step(
                "We're looking to rent something close to work",
                "qualify",
                ("Happy to help with that!", "What budget"),
                "budget",
            ),
            Step("Around 2,500 a month", "qualify", ("How soon",), "timeline"),
            Step("In two months", "qualify", ("Will anyone else",), "authority"),
            Step("Just me and my partner", "next_step", ("schedule a visit",)),
            Step("Saturday morning works", "next_step", ("To schedule the visit",)),
            Step("Actually, can I talk to an agent?", "handoff", ("Sunset Realty",)),
        ],
    ),
}


def test_every_built_in_template_has_a_spanish_transcript() -> None:
    assert {key for key, lang in TRANSCRIPTS if lang == "es"} == set(TEMPLATE_KEYS)
    assert len([1 for _, lang in TRANSCRIPTS if lang == "en"]) >= 3


@pytest.mark.parametrize("case", list(TRANSCRIPTS), ids=lambda case: f"{case[0]}-{case[1]}")
def test_scripted_conversation(case: tuple[str, str]) -> None:
    profile, steps = TRANSCRIPTS[case]
    replies = run_script(profile, steps)
    assert replies[0].intent in ("greeting", "qualify")
    assert any(r.intent in ("fact", "faq") for r in replies)
    assert any(r.intent == "next_step" for r in replies)
