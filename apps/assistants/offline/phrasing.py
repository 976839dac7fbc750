"""What the responder says, in Spanish and English."""

from __future__ import annotations

import re
from collections.abc import Sequence

from apps.assistants.offline.matching import (
    _Match,
)
from apps.assistants.offline.text import (
    _words,
    normalize,
)
from apps.assistants.offline.types import (
    Fact,
    OfflineProfile,
)

# --- Phrasing -------------------------------------------------------------------------------------

_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "intro": ("Soy {bot}, asistente virtual de {company}.",),
        "intro_no_company": ("Soy {bot}, tu asistente virtual.",),
        "welcome": (
            "¡Hola! Soy {bot}, asistente virtual de {company}. ¿En qué te puedo ayudar hoy?",
        ),
        "hello": ("¡Hola!",),
        "how_help": ("¡Hola! ¿En qué te puedo ayudar?",),
        "regreet": (
            "¡Hola de nuevo! ¿En qué más te puedo ayudar?",
            "¡Hola otra vez! Cuéntame, ¿en qué te ayudo?",
        ),
        "thanks": (
            "¡Con gusto! Si tienes otra pregunta, aquí estoy.",
            "¡De nada! Si necesitas algo más de {company}, con gusto te ayudo.",
        ),
        "goodbye": (
            "¡Gracias por escribirnos a {company}! Que tengas un excelente día.",
            "¡Hasta pronto! Gracias por contactar a {company}; aquí estaré cuando me necesites.",
        ),
        "handoff": (
            "Claro, te comunico con una persona de nuestro equipo{of_company}. Te responderá lo "
            "antes posible por este mismo chat.",
        ),
        "emergency": (
            "Si se trata de una emergencia, llama de inmediato al número de emergencias de tu "
            "país o acude a urgencias. También te comunico con una persona de nuestro equipo.",
        ),
        "fallback": (
            "No tengo el precio exacto de eso y prefiero no darte un dato incorrecto. ¿Quieres "
            "que una persona de nuestro equipo te lo confirme?",
        ),
        "fallback_again": (
            "Eso tampoco lo tengo confirmado. ¿Quieres que te comunique con una persona de "
            "nuestro equipo?",
        ),
        "ack": ("Perfecto, gracias.", "Entendido, gracias por contarme.", "Muy bien, gracias."),
        "ack_need": ("¡Con gusto te ayudo con eso!",),
        "ack_help": ("¡Claro, con gusto!",),
        "ack_plain": ("Entendido.",),
        "interest": ("¡Qué gusto que te interese!",),
        "bridge": (
            "Para recomendarte la mejor opción, ",
            "Para orientarte mejor, ",
            "Y cuéntame, ",
        ),
        "anything_else": ("¿Hay algo más en lo que te pueda ayudar?",),
        "accept": (
            "¡Excelente! Para {verb} {label}, ¿me compartes tu nombre y un teléfono o correo? "
            "Una persona de nuestro equipo te contactará para confirmar.",
        ),
        "confirm": (
            "¡Gracias! Una persona de nuestro equipo te contactará muy pronto para confirmar "
            "{label}.",
        ),
        "noted": ("¡Gracias, ya lo anoté! ¿Hay algo más en lo que te pueda ayudar?",),
        "decline": (
            "Sin problema, tómate tu tiempo. Cuando quieras retomarlo, aquí estaré para ayudarte.",
        ),
        "prices": ("Estos son nuestros precios: {items}.",),
        "options": ("Tenemos estas opciones: {items}.",),
        "we_have": ("Sí, contamos con {title}.",),
        "includes": ("Incluye:",),
        "price_is": ("Su precio es de {price}.",),
        "price_from": ("Su precio es {price}.",),
    },
    "en": {
        "intro": ("I'm {bot}, the virtual assistant for {company}.",),
        "intro_no_company": ("I'm {bot}, your virtual assistant.",),
        "welcome": (
            "Hi! I'm {bot}, the virtual assistant for {company}. How can I help you today?",
        ),
        "hello": ("Hi!",),
        "how_help": ("Hi! How can I help you?",),
        "regreet": (
            "Hi again! What else can I help you with?",
            "Hello again! What can I do for you?",
        ),
        "thanks": (
            "You're welcome! If you have any other questions, I'm right here.",
            "My pleasure! If you need anything else from {company}, just ask.",
        ),
        "goodbye": (
            "Thanks for reaching out to {company}! Have a great day.",
            "Take care, and thanks for contacting {company}! I'm here whenever you need me.",
        ),
        "handoff": (
            "Of course, I'm connecting you with a person from our team{of_company}. They'll reply "
            "right here as soon as possible.",
        ),
        "emergency": (
            "If this is an emergency, please call your local emergency number or go to the "
            "nearest emergency room right away. I'm also connecting you with a person from our "
            "team.",
        ),
        "fallback": (
            "I don't have the exact price for that, and I'd rather not give you a wrong figure. "
            "Would you like someone from our team to confirm it for you?",
        ),
        "fallback_again": (
            "I don't have that confirmed either. Would you like me to connect you with a person "
            "from our team?",
        ),
        "ack": ("Perfect, thanks.", "Got it, thanks for sharing.", "Great, thank you."),
        "ack_need": ("Happy to help with that!",),
        "ack_help": ("Of course, happy to help!",),
        "ack_plain": ("Understood.",),
        "interest": ("Great to hear you're interested!",),
        "bridge": (
            "To recommend the best option, ",
            "So I can point you in the right direction, ",
            "And tell me, ",
        ),
        "anything_else": ("Is there anything else I can help you with?",),
        "accept": (
            "Excellent! To {verb} {label}, could you share your name and a phone number or email? "
            "Someone from our team will contact you to confirm.",
        ),
        "confirm": (
            "Thank you! Someone from our team will contact you very soon to confirm {label}.",
        ),
        "noted": ("Thanks, I've noted it! Is there anything else I can help you with?",),
        "decline": (
            "No problem, take your time. Whenever you're ready to pick this up again, I'm here "
            "to help.",
        ),
        "prices": ("Here are our prices: {items}.",),
        "options": ("We offer these options: {items}.",),
        "we_have": ("Yes, we offer {title}.",),
        "includes": ("It includes:",),
        "price_is": ("The price is {price}.",),
        "price_from": ("The price is {price}.",),
    },
}


def _pick(lang: str, key: str, turn: int) -> str:
    options = _TEXTS[lang][key]
    return options[turn % len(options)]


def _lower_first(question: str) -> str:
    """ "¿Qué buscas?" -> "¿qué buscas?", for a question that follows a lead-in."""
    i = 1 if question.startswith(("¿", "¡")) else 0
    if len(question) > i + 1 and question[i + 1].isupper():
        return question  # an acronym or a name
    return question[:i] + question[i : i + 1].lower() + question[i + 1 :]


_ABBREVIATIONS = frozenset(
    _words(
        "av. avda. blvd. calz. col. no. núm. num. tel. dr. dra. sr. sra. srta. lic. ing. mtro. "
        "mtra. prof. int. ext. depto. dpto. aprox. etc. st. ave. mr. mrs. ms. jr. approx. vs. "
        "p.ej. e.g. i.e. ej."
    )
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'¿¡(]?[A-ZÁÉÍÓÚÑ0-9])")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def _clean(text: str) -> str:
    """The company's text as plain chat text: no HTML tags, no Markdown markers."""
    text = re.sub(r"<[^>]+>", " ", text)
    text = _MARKDOWN_LINK.sub(r"\1 (\2)", text)
    text = re.sub(r"(\*\*|__|`+|~~)", "", text)
    text = re.sub(r"(?m)^\s*(#+|[-*•]|\d+[.)])\s+", "", text)
    text = re.sub(r"(?<!\w)\*(\S[^*]*\S|\S)\*(?!\w)", r"\1", text)
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", text).strip()


def _sentences(text: str) -> list[str]:
    """Split into sentences, not after an abbreviation ("Av. Reforma", "Dr. Ruiz")."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        last_word = sentences[-1].rsplit(" ", 1)[-1].lower() if sentences else ""
        if sentences and (last_word in _ABBREVIATIONS or re.fullmatch(r"(\w\.)+", last_word)):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def _end(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    if text[-1] in ".!?…":
        return text
    if text[-1] in ",;:":
        text = text[:-1].rstrip()
    return text + "."


def _shorten(text: str, sentences: int = 2, chars: int = 360) -> str:
    parts = _sentences(_clean(text))
    kept = " ".join(parts[:sentences]) if parts else ""
    if len(kept) > chars:
        cut = kept[:chars].rsplit(" ", 1)[0].rstrip(",;: ")
        kept = cut + "…"
    return _end(kept)


def _fill(text: str, profile: OfflineProfile) -> str:
    return text.replace("{bot_name}", profile.bot_name).replace(
        "{company_name}", profile.company_name
    )


# Price units ("$1,200 MXN/mes") read as words in either language.
_UNITS = {
    "mes": ("al mes", "per month"),
    "mensual": ("al mes", "per month"),
    "mo": ("al mes", "per month"),
    "month": ("al mes", "per month"),
    "ano": ("al año", "per year"),
    "anual": ("al año", "per year"),
    "yr": ("al año", "per year"),
    "year": ("al año", "per year"),
    "dia": ("al día", "per day"),
    "day": ("al día", "per day"),
    "semana": ("a la semana", "per week"),
    "week": ("a la semana", "per week"),
    "wk": ("a la semana", "per week"),
    "noche": ("por noche", "per night"),
    "night": ("por noche", "per night"),
    "persona": ("por persona", "per person"),
    "person": ("por persona", "per person"),
    "pax": ("por persona", "per person"),
    "hora": ("por hora", "per hour"),
    "hr": ("por hora", "per hour"),
    "hour": ("por hora", "per hour"),
    "usuario": ("por usuario", "per user"),
    "user": ("por usuario", "per user"),
    "clase": ("por clase", "per class"),
    "class": ("por clase", "per class"),
    "sesion": ("por sesión", "per session"),
    "session": ("por sesión", "per session"),
    "consulta": ("por consulta", "per visit"),
}
_FREE = {"gratis", "gratuito", "gratuita", "sin costo", "free", "free of charge", "0", "$0"}


def _price_words(price: str, lang: str) -> str:
    price = _clean(price).rstrip(".")
    match = re.search(r"\s*/\s*([A-Za-zÁÉÍÓÚáéíóúñÑ]+)\.?$", price)
    if match:
        unit = normalize(match.group(1))
        words = _UNITS.get(unit) or _UNITS.get(unit.rstrip("s"))
        if words is None:
            words = (f"por {match.group(1)}", f"per {match.group(1)}")
        price = f"{price[: match.start()].rstrip()} {words[0] if lang == 'es' else words[1]}"
    return price


_ARTICLES_ES = ("el ", "la ", "los ", "las ", "un ", "una ", "nuestro ", "nuestra ", "nuestros ")
_ARTICLES_EN = ("the ", "a ", "an ", "our ")
_MASCULINE_A = {"plan", "sistema", "programa", "problema", "tema", "dia", "mapa", "idioma", "clima"}
_FEMININE = {"clase", "noche", "tarde", "llave", "gente", "sede", "torre", "base", "parte", "calle"}
_FEMININE_ENDINGS = ("a", "cion", "sion", "dad", "tad", "tud", "umbre", "ie")
_SINGULAR_S = {"plus", "lunes", "martes", "miercoles", "jueves", "viernes", "mes", "gas", "virus"}


def _spanish_subject(title: str) -> tuple[str, bool]:
    """ "Plan Básico" -> ("El Plan Básico", False); "Clases de yoga" -> ("Las Clases…", True)."""
    if title.lower().startswith(_ARTICLES_ES):
        first = normalize(title).split()[0]
        return title[0].upper() + title[1:], first in ("los", "las", "nuestros")
    words = normalize(title).split()
    head = words[0] if words else ""
    plural = len(head) > 3 and head.endswith("s") and head not in _SINGULAR_S and head[-2:] != "is"
    singular = head
    if plural:
        singular = head[:-2] if head.endswith("es") and head[:-2] + "es" == head else head[:-1]
        if head.endswith("es") and (head[:-1] in _FEMININE or head[-3] in "aeiou"):
            singular = head[:-1]
    if singular in _MASCULINE_A:
        feminine = False
    elif singular in _FEMININE or head in _FEMININE:
        feminine = True
    else:
        feminine = singular.endswith(_FEMININE_ENDINGS)
    article = ("Las" if feminine else "Los") if plural else ("La" if feminine else "El")
    if head and not head.isalpha():
        return title, plural  # a model number or a code reads best bare
    return f"{article} {title}", plural


def _english_subject(title: str) -> tuple[str, bool]:
    words = normalize(title).split()
    last = words[-1] if words else ""
    plural = len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is"))
    if title.lower().startswith(_ARTICLES_EN):
        return title[0].upper() + title[1:], plural
    return f"The {title}", plural


def _price_sentence(fact: Fact, lang: str) -> str:
    price = _price_words(fact.price, lang)
    title = _clean(fact.title)
    free = normalize(fact.price) in {normalize(f) for f in _FREE}
    if lang == "es":
        subject, plural = _spanish_subject(title)
        if free:
            return f"{subject} {'son' if plural else 'es'} gratis."
        return f"{subject} {'cuestan' if plural else 'cuesta'} {price}."
    subject, plural = _english_subject(title)
    if free:
        return f"{subject} {'are' if plural else 'is'} free."
    return f"{subject} {'cost' if plural else 'costs'} {price}."


# Spanish writes days and months in lowercase, also after a colon.
_LOWERCASE_STARTS = frozenset(
    _words(
        "lunes martes miercoles jueves viernes sabado sabados domingo domingos todos diario de "
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    )
)


def _is_fragment(text: str) -> bool:
    """ "Lunes a viernes, 9 a 18 h", "3 recámaras, jardín": not a sentence of its own."""
    return text[-1] not in ".!?" or len(text.split()) < 5 or text[0].isdigit()


def _fragment(text: str) -> str:
    fragment = _shorten(text, sentences=1, chars=300).rstrip(".")
    if normalize(fragment).split()[0] in _LOWERCASE_STARTS:
        fragment = fragment[0].lower() + fragment[1:]  # "Horario: lunes a viernes…"
    return fragment


def _fact_answer(fact: Fact, lang: str, price_question: bool) -> str:
    """A fact as an answer: its price sentence first when the price was asked, its text (a
    fragment led by the title, or by "Incluye:"), and the price when it has one."""
    text, title = _clean(fact.text), _clean(fact.title)
    priced = bool(fact.price.strip())
    if not text:
        if priced:
            return _price_sentence(fact, lang)
        return _pick(lang, "we_have", 0).format(title=title)
    fragment = _is_fragment(text)
    if priced and price_question:
        sentence = _price_sentence(fact, lang)
        if fragment:
            includes = _pick(lang, "includes", 0)
            return f"{sentence} {includes} {_fragment(text)}."
        first = _shorten(text, sentences=1)
        return f"{sentence} {first}" if len(first) < 200 else sentence
    body = _end(f"{title}: {_fragment(text)}") if fragment else _shorten(text, 1 if priced else 2)
    if not priced:
        return body
    price = _price_words(fact.price, lang)
    starts_with_from = normalize(price).startswith(("desde", "a partir", "from", "starting"))
    key = "price_from" if starts_with_from else "price_is"
    return f"{body} {_pick(lang, key, 0).format(price=price)}"


def _list_answer(facts: Sequence[Fact], lang: str, price_question: bool) -> str:
    and_word = " y " if lang == "es" else " and "
    if price_question:
        items = [f"{_clean(f.title)}, {_price_words(f.price, lang)}" for f in facts]
        return _pick(lang, "prices", 0).format(items="; ".join(items))
    names = [
        f"{_clean(f.title)} ({_price_words(f.price, lang)})" if f.price.strip() else _clean(f.title)
        for f in facts
    ]
    joined = ", ".join(names[:-1]) + and_word + names[-1] if len(names) > 1 else names[0]
    return _pick(lang, "options", 0).format(items=joined)


def _answer_text(profile: OfflineProfile, match: _Match, lang: str) -> tuple[str, str, str]:
    """(text, intent, matched) for a match."""
    if len(match.docs) > 1:
        facts = [profile.facts[d.position] for d in match.docs]
        matched = "; ".join(f.title for f in facts)
        return _list_answer(facts, lang, match.price_question), "fact", matched
    doc = match.docs[0]
    if doc.source == "faq":
        entry = profile.faq[doc.position]
        return _shorten(_fill(entry.answer, profile)), "faq", entry.question
    fact = profile.facts[doc.position]
    return _fill(_fact_answer(fact, lang, match.price_question), profile), "fact", fact.title
