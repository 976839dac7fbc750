"""The offline responder: a deterministic sales assistant built from the company's own FAQ,
business facts and industry template, in Spanish and English, with no model and no network.

It is the default assistant when no model key is configured and the fallback during a provider
outage, so it has to read like a person: it greets with the welcome message, answers from the
FAQ and facts by similarity (never inventing a price), asks the template's qualification
questions one at a time and never twice, proposes the template's next step, hands over to a
human when asked and says honestly when it does not know.

Similarity: text is normalized (lowercase, no accents or punctuation), stop words dropped, words
lightly stemmed and a few sales words folded into language-neutral concepts (price, hours,
location, shipping…), typos corrected against the vocabulary (edit distance 1 or 2). Candidates are
ranked by IDF-weighted query coverage (the share of the question's information a document
contains), then by BM25. Coverage, unlike raw BM25, is in [0, 1] whatever the size of the
company's FAQ, so one threshold works for every tenant.

All state (what was asked, what was proposed) is read back from the history, so the same
profile, history and message always give the same reply.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from apps.assistants.industry_templates import (
    TEMPLATE_KEYS,
    IndustryTemplate,
    QualificationQuestion,
    template_get,
)

# A question is answered when its best document covers at least this share of its (IDF-weighted)
# meaning. A statement ("necesito un seguro de auto") is answered only on a near-certain match.
QUESTION_THRESHOLD = 0.6
STATEMENT_THRESHOLD = 0.8
# A price is quoted only when the document also covers most of what the price is *of*: quoting
# the car insurance price to a question about pet insurance would be inventing a price.
PRICE_CONTENT_THRESHOLD = 0.75
# Concepts (price, hours, location…) are what a question asks about; they weigh more than the
# words around them ("¿cuál es el horario de la tienda?").
CONCEPT_WEIGHT = 1.5
# BM25 (Robertson/Spärck Jones), used to break ties between equally covering documents.
BM25_K1 = 1.2
BM25_B = 0.75
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Fact:
    """A business fact: a product or service with its price, hours, a location, a policy."""

    title: str
    text: str
    price: str = ""  # free text, e.g. "$1,200 MXN/mes"
    kind: str = "product"  # product | service | hours | location | policy | other


@dataclass(frozen=True)
class FaqEntry:
    question: str
    answer: str


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str


@dataclass(frozen=True)
class OfflineProfile:
    bot_name: str
    company_name: str
    welcome_message: str
    # The company's default language: the responder answers in the visitor's language when it
    # can tell it from the message (or the earlier messages), else in this one.
    language: str
    template: IndustryTemplate
    facts: tuple[Fact, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    # Qualification fields already known (filled by lead extraction): never asked.
    known_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OfflineReply:
    text: str
    # "greeting" | "faq" | "fact" | "qualify" | "next_step" | "handoff" | "unknown" | "goodbye"
    # | "thanks"
    intent: str
    asked_field: str | None = None  # the qualification field it just asked for
    matched: str | None = None  # the FAQ question / fact title it answered from
    score: float = 0.0  # similarity of the match


# --- Text normalization -----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Whitespace-separated words: long word lists read best as one block of text."""
    return text.split()


def normalize(text: str) -> str:
    """Lowercase, accents and punctuation removed, single spaces: "¿Cuánto cuesta?" ->
    "cuanto cuesta"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", plain).strip()


# Concepts are spelled with a "~" so they never collide with a (normalized) word.
PRICE, HOURS, LOCATION, SHIPPING, PAYMENT = "~price", "~hours", "~location", "~shipping", "~pay"
FINANCING, RETURNS, DISCOUNT, CONTACT = "~financing", "~returns", "~discount", "~contact"
WARRANTY, DURATION, AVAILABILITY = "~warranty", "~duration", "~availability"

_PHRASES: tuple[tuple[str, str], ...] = (
    (r"cuanto (me )?(cuesta|cuestan|sale|salen|vale|valen|cobran|cobras|es|seria|serian)", PRICE),
    (r"how much", PRICE),
    (r"a que hora(s)?|que horario(s)?|what time", HOURS),
    (r"como llego|how do i get there", LOCATION),
    (r"meses sin intereses|a meses", FINANCING),
    (r"cuanto tiempo|cuantos dias|how long|how many days", DURATION),
    (r"numero de telefono|phone number", CONTACT),
)
_PHRASE_RES = tuple((re.compile(rf"\b(?:{p})\b"), c) for p, c in _PHRASES)

_SYNONYMS: dict[str, str] = {}
for _concept, _wordlist in (
    (
        PRICE,
        "precio precios costo costos coste costes cuesta cuestan costar valor tarifa tarifas "
        "cobran cobro mensualidad gratis gratuito gratuita barato barata price prices pricing "
        "priced cost costs fee fees rate rates charge charges free cheap expensive",
    ),
    (
        HOURS,
        "horario horarios hora horas abren abre abierto abiertos abierta cierran cierra cerrado "
        "atienden hours hour open opens opening close closes closing closed",
    ),
    (
        LOCATION,
        "donde ubicacion ubicados ubicadas ubicada ubicado ubican direccion sucursal sucursales "
        "where location locations located address branch branches directions",
    ),
    (
        SHIPPING,
        "envio envios enviar envian envias mandan entrega entregas entregan despacho despachan "
        "paqueteria domicilio shipping ship ships shipped delivery deliver delivers deliveries",
    ),
    (
        PAYMENT,
        "pago pagos pagar tarjeta tarjetas efectivo transferencia paypal payment payments pay "
        "card cards cash",
    ),
    (
        FINANCING,
        "financiamiento financiar financiado credito creditos msi financing finance financed "
        "loan loans installments installment",
    ),
    (RETURNS, "devolucion devoluciones devolver reembolso reembolsos refund refunds"),
    (
        DISCOUNT,
        "descuento descuentos promocion promociones promo promos oferta ofertas cupon cupones "
        "discount discounts coupon coupons deal deals",
    ),
    (CONTACT, "telefono celular whatsapp correo email mail phone contacto contact"),
    (WARRANTY, "garantia garantias warranty guarantee"),
    (DURATION, "tarda tardan demora demoran dura duran duracion duration"),
    (
        AVAILABILITY,
        "disponible disponibles disponibilidad stock existencia existencias inventario "
        "available availability",
    ),
):
    for _word in _words(_wordlist):
        _SYNONYMS[_word] = _concept

# Long, distinctive synonyms that a typo may be corrected to ("presio" -> "precio"); short or
# common ones are left out ("cuenta" is one letter from "cuesta").
_FUZZY_SYNONYMS: tuple[str, ...] = tuple(
    _words(
        "precio precios horario horarios ubicacion direccion envio envios tarifa tarifas "
        "devolucion devoluciones descuento descuentos garantia financiamiento pricing location "
        "address shipping delivery discount warranty refund disponible disponibilidad"
    )
)

_STOP_WORDS: frozenset[str] = frozenset(
    _words(
        # Spanish
        """
    a al algo algun alguna algunas alguno algunos ante antes aqui asi aun bien bueno buena
    buenas buenos cada como con contra cual cuales cualquier cuando cuanto cuanta cuantos
    cuantas de del desde dia dias e el ella ellas ellos en entre era es esa esas ese eso esos
    esta estan estar estas este esto estos estoy fue gracias gustaria ha hay hola hacer hacen
    hasta incluye incluyen la las le les lo los mas me mi mis mucho muchos muy nada ni no nos
    nosotros o ofrecen otra otras otro otros para pero poco por porque puede pueden puedo pues
    que quien quienes quiero quisiera saber se sea ser si sin sobre son su sus tal tambien
    tanto te tenemos tengo tiene tienen tienes ti toda todas todo todos tu tus un una unas uno
    unos usted ustedes va vamos y ya yo favor informacion info informes detalles manejan
    cuentan cuenta mes meses mensual mensuales al dar dame podrian podria seria interesa
    interesan interesado interesada interesados necesito necesitamos necesita busco buscamos
    buscando requiero ando ayuda ayudas ayudar ayudame ayudarme ayudan apoyo apoyar incluido
    incluida incluidos incluidas
    """
        # English
        """
    about after all also am an and any anything are as at be been before being but by can
    could did do does doing for from get give got had has have having hello hey hi how i im
    in include includes information info details into is it its just know let like me more
    most much my need no not now of offer offers on or other our ours please should so some
    tell than that the their them then there these they this those to too us very want was
    we were what when which who why will with would you your yours month monthly per thanks
    thank s t ll ve re d m looking help helping assist interested interesting included whats
    wheres hows thats
    """
    )
)

# Light stemmer: one inflectional/derivational suffix, then a final vowel, then a doubled final
# consonant, so "básico", "básica" and "basic" meet at "basic", "planes" and "plan" at "plan".
_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        _words(
            "amientos imientos aciones iciones amiento imiento mente acion icion ando iendo "
            "aron ieron aban amos emos imos ados adas idos idas ado ada ido ida ar er ir an en "
            "es as os ations ation ings ing ies ied ed ly s"
        ),
        key=len,
        reverse=True,
    )
)


def stem(word: str) -> str:
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] in "aeo":
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, or limit + 1 when above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _typo_limit(word: str) -> int:
    return 0 if len(word) < 4 else 1 if len(word) < 8 else 2


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    limit = _typo_limit(word)
    if limit == 0:
        return None
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if abs(len(candidate) - len(word)) > limit or len(candidate) < 4:
            continue
        distance = _edit_distance(word, candidate, limit)
        if distance <= limit and (best is None or (distance, candidate) < best):
            best = (distance, candidate)
    return best[1] if best else None


@lru_cache(maxsize=4096)
def _word_token(word: str) -> str | None:
    """The token for one normalized word: a concept, None for a stop word, else its stem."""
    if word in _SYNONYMS:
        return _SYNONYMS[word]
    if word in _STOP_WORDS or len(word) < 3:
        return None
    if len(word) >= 5 and not word.isdigit():
        near = _closest(word, _FUZZY_SYNONYMS)
        if near is not None:
            return _SYNONYMS[near]
    return stem(word)


def tokens(text: str) -> list[str]:
    """Tokens of `text` for matching: concepts ("~price") and stems, stop words removed."""
    norm = normalize(text)
    found: list[str] = []
    for pattern, concept in _PHRASE_RES:
        if pattern.search(norm):
            found.append(concept)
            norm = pattern.sub(" ", norm)
    for word in norm.split():
        token = _word_token(word)
        if token is not None and not token.isdigit():
            found.append(token)
    return found


def _is_concept(token: str) -> bool:
    return token.startswith("~")


# --- Language detection -----------------------------------------------------------------------

_ES_MARKERS = frozenset(
    _words("""
    de la que el en y los las por para con una un es son del al se su sus lo le mas pero como
    cuanto cuanta cuesta cuestan donde hay tienen tiene tienes quiero quisiera necesito gracias
    buenas buenos dias tardes noches hola si precio precios horario puedo ustedes usted estoy
    busco tengo mi mis tu te yo esta este eso esto muy bien claro adios favor gustaria cuando
    cual nada todo hablar asesor humano persona agente alguien abren envio envios sucursal
    seguro ayuda ayudar informacion saber cotizacion quiere nosotros tambien ahora despues
    """)
)
_EN_MARKERS = frozenset(
    _words("""
    the is are what how much do does you your hi hello hey thanks thank i my can want need
    where when price prices hours open please to of and for with have has yes it this that we
    our would like could about get buy talk speak someone somebody human agent am im looking
    will be was there any cost costs bye goodbye sure great shipping deliver delivery help
    information know quote interested schedule book which who much just not don
    """)
)


def detect_language(text: str, default: str) -> str:
    """ "es" or "en" from a few marker words (and Spanish accents, ñ, ¿, ¡); `default` when the
    text says nothing either way ("ok", "5000")."""
    es = 2 * len(re.findall(r"[áéíóúñ¿¡]", text.lower()))
    en = 0
    for word in normalize(text).split():
        es += word in _ES_MARKERS
        en += word in _EN_MARKERS
    if es > en:
        return "es"
    if en > es:
        return "en"
    return default if default in ("es", "en") else "es"


# --- The index over FAQ and facts ---------------------------------------------------------------

_KIND_CONCEPT = {"hours": HOURS, "location": LOCATION}
_CURRENCY = re.compile(r"[$€£]|\b(?:mxn|usd|cop|clp|ars|pen|eur|brl|uyu|gtq|crc|dop)\b", re.I)


@dataclass(frozen=True)
class _Doc:
    source: str  # "faq" | "fact"
    position: int
    counts: dict[str, int]
    length: int
    heading: frozenset[str]  # the FAQ question's / fact title's tokens
    priced: bool


@dataclass(frozen=True)
class _Index:
    docs: tuple[_Doc, ...]
    df: dict[str, int]
    avg_length: float

    def idf(self, token: str) -> float:
        # A word no document holds weighs like a rare one: it tells the question is about
        # something the company did not describe.
        df = max(self.df.get(token, 0), 1)
        n = len(self.docs)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))


@lru_cache(maxsize=128)
def _index_build(facts: tuple[Fact, ...], faq: tuple[FaqEntry, ...]) -> _Index:
    docs: list[_Doc] = []
    for i, entry in enumerate(faq):
        heading = tokens(entry.question)
        words = heading * 2 + tokens(entry.answer)  # the question says what it is about
        priced = PRICE in words or bool(_CURRENCY.search(entry.answer))
        docs.append(_Doc("faq", i, dict(Counter(words)), len(words), frozenset(heading), priced))
    for i, fact in enumerate(facts):
        heading = tokens(fact.title)
        if fact.kind in _KIND_CONCEPT:
            heading.append(_KIND_CONCEPT[fact.kind])  # an hours fact is about hours
        words = heading * 2 + tokens(fact.text)
        if fact.price.strip():
            words.append(PRICE)
        heading_set = frozenset(heading)
        docs.append(
            _Doc("fact", i, dict(Counter(words)), len(words), heading_set, bool(fact.price.strip()))
        )
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.counts.keys())
    avg = sum(d.length for d in docs) / len(docs) if docs else 0.0
    return _Index(tuple(docs), dict(df), avg)


@dataclass(frozen=True)
class _Match:
    docs: tuple[_Doc, ...]  # one, or several equally good facts to list together
    score: float
    price_question: bool


def _bm25(index: _Index, doc: _Doc, query: Sequence[str]) -> float:
    score = 0.0
    norm = 1 - BM25_B + BM25_B * (doc.length / index.avg_length if index.avg_length else 1)
    for token in query:
        tf = doc.counts.get(token, 0)
        if tf:
            score += index.idf(token) * tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm)
    return score


def _weight(index: _Index, token: str) -> float:
    return index.idf(token) * (CONCEPT_WEIGHT if _is_concept(token) else 1.0)


def _coverage(index: _Index, doc: _Doc, query: Sequence[str]) -> float:
    """The IDF-weighted share of the query's tokens that `doc` contains, in [0, 1]."""
    total = sum(_weight(index, t) for t in query)
    if not total:
        return 0.0
    return sum(_weight(index, t) for t in query if t in doc.counts) / total


def _query_tokens(index: _Index, text: str) -> list[str]:
    """Unique tokens of the visitor's message, typos corrected against the documents' words."""
    vocabulary = sorted(t for t in index.df if not _is_concept(t))
    query: list[str] = []
    for token in tokens(text):
        if not _is_concept(token) and token not in index.df:
            token = _closest(token, vocabulary) or token
        if token not in query:
            query.append(token)
    return query


def _match(
    profile: OfflineProfile, text: str, threshold: float, *, statement: bool = False
) -> _Match | None:
    """The FAQ entry or fact that answers `text`, or None when nothing passes `threshold`.

    Besides coverage: a statement must name the document's subject (its FAQ question or fact
    title); a price question must name what the price is of (the whole title, or most of the
    question's content), never quoting one product's price for another; a question whose
    content words are missing from the document is still answered when the document is about
    all its concepts ("¿cuál es el horario de la tienda?" -> the hours fact), not when it only
    mentions one in passing ("sin tarjeta de crédito" does not answer "¿aceptan tarjeta?")."""
    index = _index_build(tuple(profile.facts), tuple(profile.faq))
    if not index.docs:
        return None
    query = _query_tokens(index, text)
    if not query:
        return None
    query_set = set(query)
    content = [t for t in query if not _is_concept(t)]
    concepts = [t for t in query if _is_concept(t)]
    price_question = PRICE in query_set

    def offer(doc: _Doc) -> bool:
        return doc.source == "fact" and profile.facts[doc.position].kind in ("product", "service")

    if price_question and not content and not statement:
        # "¿Cuánto cuesta?": the FAQ entry about prices, else the price list.
        for doc in index.docs:
            if doc.source == "faq" and doc.priced and doc.heading and doc.heading <= query_set:
                return _Match((doc,), 1.0, True)
        priced = tuple(d for d in index.docs if d.priced and offer(d))
        if priced:
            return _Match(priced[:4], 1.0, True)
    candidates = [d for d in index.docs if d.priced] if price_question else list(index.docs)
    ranked: list[tuple[float, int, int, float, int, _Doc]] = []
    for doc in candidates:
        coverage = _coverage(index, doc, query)
        if coverage < threshold:
            continue
        content_coverage = _coverage(index, doc, content) if content else 1.0
        names_it = bool(doc.heading & set(content))
        named = names_it and doc.heading <= query_set and len(doc.heading) >= 2
        if statement:
            if not names_it or content_coverage < threshold:
                continue
        elif price_question:
            if not named and content_coverage < PRICE_CONTENT_THRESHOLD:
                continue
        elif (
            not named
            and content_coverage < threshold
            and not (concepts and all(t in doc.heading for t in concepts))
        ):
            continue
        exact_faq = int(doc.source == "faq" and bool(doc.heading) and doc.heading <= query_set)
        order = doc.position if doc.source == "faq" else 10_000 + doc.position
        ranked.append((coverage, exact_faq, int(named), _bm25(index, doc, query), -order, doc))
    if not ranked:
        return None
    ranked.sort(key=lambda r: r[:5], reverse=True)
    best = ranked[0]
    if offer(best[5]) and not best[1] and not best[2]:
        # Several products equally good ("¿qué planes tienen?"): list them.
        tied = sorted(
            (r[5] for r in ranked if offer(r[5]) and abs(r[0] - best[0]) < 1e-9),
            key=lambda d: d.position,
        )
        if len(tied) > 1:
            return _Match(tuple(tied[:4]), best[0], price_question)
    return _Match((best[5],), best[0], price_question)


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


# --- Reading the visitor's message --------------------------------------------------------------


def _compile(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(rf"(?:\b(?:{p})\b)" for p in patterns))


_GREETING = re.compile(
    r"^(?:hola+|holi+|ola|buenas tardes|buenas noches|buenos dias|buen dia|buenas|saludos|"
    r"que tal|hi+|hello+|hey+|hiya|howdy|good morning|good afternoon|good evening)\b"
)
_SMALL_TALK = _compile(
    r"que tal|como estas?|como les va|how are you( doing)?|how s it going",
    r"buenas tardes|buenas noches|buenos dias|buen dia|buenas|good (morning|afternoon|evening)",
)
_HANDOFF = _compile(
    r"(hablar|platicar|comunicarme|chatear|contactar(me)?)( con)? (un |una |algun |alguna |el |"
    r"la )?(persona|humano|humana|asesor|asesora|agente|ejecutivo|ejecutiva|vendedor|vendedora|"
    r"representante|operador|operadora|alguien|gente)",
    r"(quiero|necesito|prefiero) (un |una |a un |a una )?(asesor|asesora|agente|humano|persona|"
    r"ejecutivo|ejecutiva|vendedor|vendedora)",
    r"persona real|ser humano|atencion humana|asesor humano|agente humano|agente real",
    r"pasame|pasenme|comunicame|comuniquenme|conectame|transfiereme",
    r"(talk|speak|chat) (to|with) (a |an |the |your |some )?(real |live |human )?(person|human|"
    r"agent|someone|somebody|representative|rep|salesperson|operator|advisor|manager|people)",
    r"real person|live agent|human agent|live person|customer service rep|(connect|transfer) me",
)
_EMERGENCY = _compile(
    r"emergencia|urgencia medica|dolor (fuerte )?(de|en el) pecho|no puedo respirar|sangrado",
    r"emergency|chest pain|can ?t breathe|bleeding",
)
_THANKS = _compile(r"gracias|te agradezco|se agradece|thanks?|thank you|thx|ty")
_GOODBYE = _compile(
    r"adios|chao|chau|hasta (luego|pronto|manana|la proxima)|nos vemos|eso es todo|es todo",
    r"que tengas? (un )?(buen|excelente|lindo) dia",
    r"bye|goodbye|see (you|ya)|that s all|thats all|have a (good|great|nice) (day|one)",
)
_BUYING = _compile(
    r"quiero (comprar|contratar|agendar|reservar|apartar|inscribirme|cotizar|adquirir)",
    r"me interesan?|contratar(lo|la)?|agendar(la|lo)?|demo|cotizacion|cotizar(me)?",
    r"comprar(lo|la)?|reservar(lo|la)?|inscribirme|me (lo|la) llevo|lo quiero|la quiero",
    r"prueba de manejo",
    r"sign (me )?up|signup|buy( it)?|purchase|interested|book (a|an|it|the)|enroll|subscribe",
    r"schedule (a|an|it|the)|test drive|get a quote|place (an|my) order|i ll take",
)
_NEED = _compile(
    r"necesito|necesitamos|busco|buscamos|estoy buscando|ando buscando|quiero|quisiera",
    r"me gustaria|requiero",
    r"i need|we need|looking for|looking to|i want|we want|i would like|i d like|we d like",
)
_AFFIRMATIVE = _compile(
    r"si+|claro|dale|va|sale|perfecto|ok(ay|ey)?|listo|excelente|genial|de acuerdo",
    r"por supuesto|me parece( bien)?|porfa(vor)?|por favor|me gustaria",
    r"yes|yeah|yep|sure|great|perfect|absolutely|definitely|sounds good|let s do it|please",
    r"of course|i d like|i would like",
)
_NEGATIVE = _compile(
    r"no+|nop|nel|todavia no|aun no|ahorita no|ahora no|mas adelante|despues|luego",
    r"lo (voy a )?pens(o|are|ar)",
    r"nah|nope|not (now|yet|really|interested)|maybe later|later|no thanks|i ll think",
    r"think about it",
)
# First words that make a message a question even without "?" (chat rarely has one). Ambiguous
# openers ("es para mi hijo", "como 5 mil", "que sea rápido") are left out.
_QUESTION_CUES = frozenset(
    _words("""
    cual cuales cuanto cuanta cuantos cuantas donde tienen tienes hay pueden aceptan hacen
    manejan venden ofrecen incluye incluyen what how where when which who do does is are can
    could will would have has any
    """)
)
_INFO_WORDS = frozenset(_words("saber informacion info informes detalles know information details"))
_FILLER = frozenset(
    _words("""
    muchas mil muy amable te lo agradezco ok okay vale perfecto genial excelente listo bien
    bueno super no so much very you a lot again de nuevo todo por tu su ayuda for your help the
    y and igualmente tambien too there all everyone folks amigo amiga amigos equipo team
    """)
)


# Words that ask for the template's next step itself ("quiero agendar una demo"): taken at once.
_STEP_REQUEST = {
    "demo": _compile(r"demo|demostracion|agendar|agenda|schedule|book"),
    "visit": _compile(
        r"visita|visitar|conocer la propiedad|ver la propiedad|agendar|agenda",
        r"visit|see the property|schedule|book|tour",
    ),
    "quote": _compile(r"cotizacion|cotizar|cotizame|quote"),
    "call": _compile(r"llamada|llamen(me)?|llamar(me)?|agendar|call me|a call|schedule"),
    "purchase": _compile(r"comprar(lo|la)?|compra|pedido|ordenar|buy|order|purchase|checkout"),
    "appointment": _compile(
        r"cita|agendar|agenda|reservar|prueba de manejo",
        r"appointment|book|schedule|test drive",
    ),
}

# An email address or a phone number (7+ digits, however they are grouped).
_CONTACT_DETAILS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|(?:\+?\d[\s().-]*){7,}")


def _starts_with(pattern: re.Pattern[str], norm: str) -> bool:
    match = pattern.search(norm)
    return match is not None and match.start() == 0


def _only(norm: str, pattern: re.Pattern[str], *extra: re.Pattern[str]) -> bool:
    """True when `norm` says nothing but `pattern` (and `extra` patterns, and filler words)."""
    if not pattern.search(norm):
        return False
    rest = pattern.sub(" ", norm)
    for other in extra:
        rest = other.sub(" ", rest)
    return all(word in _FILLER for word in rest.split())


# --- The conversation so far, read back from the history ----------------------------------------

# Phrases of our own replies that tell where the conversation is.
_MARKERS = {
    "accept": ("me compartes tu nombre", "share your name"),
    "confirm": ("te contactara muy pronto", "will contact you very soon"),
    "decline": ("tomate tu tiempo", "take your time"),
    "fallback": ("no tengo el precio exacto", "exact price for that"),
    "fallback_again": ("tampoco lo tengo confirmado", "have that confirmed either"),
}


@dataclass(frozen=True)
class _State:
    asked: frozenset[str] = frozenset()  # qualification fields asked in any assistant turn
    last_asked: str | None = None  # the field the last assistant turn asked for
    last_text: str = ""  # the last assistant turn, normalized
    proposed_last: bool = False  # the last assistant turn proposed the next step
    fallback_last: bool = False  # the last assistant turn did not know and offered a person
    accepted: bool = False  # the visitor took the next step (we asked for their details)
    confirmed: bool = False  # and we told them someone will confirm
    declined: bool = False  # the visitor declined the last proposal
    welcomed: bool = False  # an assistant turn already holds the welcome message
    need_stated: bool = False  # a visitor turn said what they need
    user_turns: int = 0


def _variants(template: IndustryTemplate) -> list[IndustryTemplate]:
    """The template in every language: a visitor may switch languages mid-conversation."""
    if template.key not in TEMPLATE_KEYS:
        return [template]
    others = [template_get(template.key, lang) for lang in ("es", "en")]
    return [template, *(t for t in others if t.language != template.language)]


def _contains(haystack: str, needle: str) -> bool:
    needle = normalize(needle)
    return bool(needle) and needle in haystack


def _marked(text: str, key: str) -> bool:
    return any(marker in text for marker in _MARKERS[key])


def _states_need(profile: OfflineProfile, text: str) -> bool:
    """Whether a visitor message says what they need: "necesito un seguro para mi casa", or
    names one of the company's products or services ("¿cuánto cuesta el seguro de auto?")."""
    norm = normalize(text)
    words = set(tokens(norm))
    if _NEED.search(norm) and any(not _is_concept(t) for t in words):
        return True
    index = _index_build(tuple(profile.facts), tuple(profile.faq))
    return any(
        doc.source == "fact"
        and profile.facts[doc.position].kind in ("product", "service")
        and bool(doc.heading)
        and doc.heading <= words
        for doc in index.docs
    )


def _state_read(
    profile: OfflineProfile, template: IndustryTemplate, history: Sequence[Turn], welcome: str
) -> _State:
    variants = _variants(template)
    state = _State()
    for turn in history:
        if turn.role != "assistant":
            state = replace(
                state,
                user_turns=state.user_turns + 1,
                need_stated=state.need_stated or _states_need(profile, turn.text),
            )
            continue
        text = normalize(turn.text)
        asked = [
            q.field for t in variants for q in t.qualification_questions if _contains(text, q.text)
        ]
        proposed = any(_contains(text, t.next_step.text) for t in variants)
        state = replace(
            state,
            asked=state.asked | set(asked),
            last_asked=asked[-1] if asked else None,
            last_text=text,
            proposed_last=proposed,
            fallback_last=any(_contains(text, t.fallback) for t in variants)
            or _marked(text, "fallback")
            or _marked(text, "fallback_again"),
            accepted=state.accepted or _marked(text, "accept"),
            confirmed=state.confirmed or _marked(text, "confirm"),
            declined=(state.declined and not proposed) or _marked(text, "decline"),
            welcomed=state.welcomed
            or _contains(text, welcome)
            or _contains(text, _fill(profile.welcome_message, profile)),
        )
    return state


# --- The responder ------------------------------------------------------------------------------

_VERBS = {
    "es": {"quote": "preparar", "purchase": "completar"},
    "en": {"demo": "set up", "quote": "prepare", "purchase": "complete", "appointment": "book"},
}
_DEFAULT_VERB = {"es": "agendar", "en": "schedule"}


def _language_for(profile: OfflineProfile, history: Sequence[Turn], message: str) -> str:
    default = profile.language if profile.language in ("es", "en") else "es"
    earlier = " ".join(t.text for t in history[-6:] if t.role == "user")
    return detect_language(message, detect_language(earlier, default))


class _Responder:
    """One reply: reads the message against the conversation so far and composes a lead-in, an
    answer and one follow-up (a qualification question, the next step or an offer to help)."""

    def __init__(self, profile: OfflineProfile, history: Sequence[Turn], message: str) -> None:
        self.profile = profile
        self.raw = (message or "")[:MAX_MESSAGE_CHARS].strip()
        self.lang = _language_for(profile, history, self.raw)
        template = profile.template
        if template.key in TEMPLATE_KEYS and template.language != self.lang:
            template = template_get(template.key, self.lang)
        self.template = template
        company = profile.company_name.strip()
        self.names = {
            "bot": profile.bot_name.strip(),
            "company": company or ("nuestra empresa" if self.lang == "es" else "our company"),
            "of_company": (f" de {company}" if self.lang == "es" else f" at {company}")
            if company
            else "",
        }
        self.welcome = self._welcome()
        self.state = _state_read(profile, template, history, self.welcome)
        self.turn = self.state.user_turns
        self.parts: list[str] = []
        self.intent = ""
        self.asked_field: str | None = None
        self.matched: str | None = None
        self.score = 0.0

    # Phrasing helpers

    def say(self, key: str, **extra: str) -> str:
        return _pick(self.lang, key, self.turn).format(**{**self.names, **extra})

    def reply(self, intent: str | None = None) -> OfflineReply:
        text = re.sub(r"\s+", " ", " ".join(p.strip() for p in self.parts if p.strip()))
        return OfflineReply(
            text=text.strip(),
            intent=intent or self.intent,
            asked_field=self.asked_field,
            matched=self.matched,
            score=round(self.score, 4),
        )

    def _welcome(self) -> str:
        """The welcome message in the visitor's language, naming the assistant."""
        profile, lang = self.profile, self.lang
        welcome = _clean(_fill(profile.welcome_message, profile))
        if not welcome or detect_language(welcome, profile.language) != lang:
            if not self.names["bot"]:
                return f"{_pick(lang, 'hello', 0)} {_pick(lang, 'anything_else', 0)}"
            return _pick(lang, "welcome", 0).format(**self.names)
        welcome = _end(welcome)
        norm = normalize(welcome)
        named = any(
            normalize(name) and f" {normalize(name)} " in f" {norm} "
            for name in (profile.bot_name, profile.company_name)
        )
        if named or not self.names["bot"]:
            return welcome
        # "¡Hola! ¿Cómo puedo ayudarte?" -> "¡Hola! Soy Ana, asistente virtual de Acme. ¿Cómo…?"
        intro_key = "intro" if profile.company_name.strip() else "intro_no_company"
        intro = _pick(lang, intro_key, 0).format(**self.names)
        parts = _sentences(welcome)
        if parts[0].endswith("!") and len(parts[0]) <= 30:
            return " ".join([parts[0], intro, *parts[1:]])
        return f"{intro} {welcome}"

    def _welcome_lead(self) -> str:
        """The welcome without its closing question, to lead into an answer."""
        parts = _sentences(self.welcome)
        while parts and parts[-1].endswith("?"):
            parts.pop()
        return " ".join(parts) if parts else _pick(self.lang, "hello", 0)

    # The conversation

    def respond(self) -> OfflineReply:
        profile, state = self.profile, self.state
        norm = normalize(self.raw)
        if self.template.key == "salud" and _EMERGENCY.search(norm):
            self.parts.append(self.say("emergency"))
            return self.reply("handoff")
        if _HANDOFF.search(norm):
            self.parts.append(self.say("handoff"))
            return self.reply("handoff")

        greeting = _starts_with(_GREETING, norm)
        rest = _GREETING.sub(" ", norm, count=1) if greeting else norm
        rest = _SMALL_TALK.sub(" ", rest)
        for name in (profile.bot_name, profile.company_name):
            if normalize(name):
                rest = re.sub(rf"\b{re.escape(normalize(name))}\b", " ", rest)
        rest = " ".join(rest.split())
        first_turn = state.user_turns == 0
        if not norm and self.raw and not first_turn:
            rest = "ok"  # "👍", "!!" mid-conversation: an acknowledgement

        if not rest or (greeting and all(w in _FILLER for w in rest.split())):
            if not first_turn:
                self.parts.append(self.say("regreet"))
            elif state.welcomed:  # the channel showed the welcome already
                self.parts.append(self.say("how_help"))
            else:
                self.parts.append(self.welcome)
            return self.reply("greeting")

        query = tokens(rest)
        content = [t for t in query if not _is_concept(t)]
        words = rest.split()
        explicit = (
            "?" in self.raw or words[0] in _QUESTION_CUES or any(w in _INFO_WORDS for w in words)
        )
        # A message naming a concept (price, hours…) asks about it, unless it answers the
        # question we just asked ("puedo pagar unos 500 al mes").
        asks = bool(query) and (
            explicit or (len(content) < len(query) and state.last_asked is None)
        )
        gave_contact = bool(_CONTACT_DETAILS.search(self.raw))
        if gave_contact and "?" not in self.raw:
            asks = False  # "ana@correo.com" names a concept (email) but asks nothing
        buying = bool(_BUYING.search(rest))
        step_pattern = _STEP_REQUEST.get(self.template.next_step.kind)
        requests_step = buying and step_pattern is not None and bool(step_pattern.search(rest))
        negative = _starts_with(_NEGATIVE, rest) and not asks and len(words) <= 8
        affirmative = _starts_with(_AFFIRMATIVE, rest) and not asks

        if first_turn and not state.welcomed:
            self.parts.append(self._welcome_lead())
        elif greeting:
            self.parts.append(_pick(self.lang, "hello", 0))

        # Answers to our own offers: the next step, or a person after "I don't know".
        if state.proposed_last and negative and not buying:
            self.parts.append(self.say("decline"))
            return self.reply("next_step")
        if state.fallback_last and not buying and (affirmative or negative):
            if affirmative:
                self.parts.append(self.say("handoff"))
                return self.reply("handoff")
            self.parts.append(self.say("ack_plain"))
            return self.follow_up(buying=False)
        if _only(rest, _GOODBYE, _THANKS):
            self.parts.append(self.say("goodbye"))
            return self.reply("goodbye")
        if _only(rest, _THANKS):
            self.parts.append(self.say("thanks"))
            return self.reply("thanks")
        if state.confirmed and gave_contact and not asks:
            self.parts.append(self.say("noted"))
            return self.reply("thanks")
        if state.proposed_last and not asks and not gave_contact:
            # Anything but a question or a no ("sí", "el martes en la tarde") takes the offer.
            return self.accept()
        if (
            not asks
            and not state.confirmed
            and (
                (gave_contact and (state.proposed_last or state.accepted))
                or _marked(state.last_text, "accept")
            )
        ):
            self.parts.append(self.say("confirm", label=self.template.next_step.label))
            return self.reply("next_step")

        match = None
        if query:
            threshold = QUESTION_THRESHOLD if asks else STATEMENT_THRESHOLD
            match = _match(profile, rest, threshold, statement=not asks)
        if match is not None and not asks:
            answer, _, _ = _answer_text(profile, match, self.lang)
            if normalize(answer) in state.last_text:
                match = None  # a statement matching what we just said adds nothing
        need_now = _states_need(profile, rest)
        if match is not None:
            answer, intent, matched = _answer_text(profile, match, self.lang)
            self.parts.append(answer)
            self.intent, self.matched, self.score = intent, matched, match.score
        elif asks and not buying:
            fallback = (
                self.say("fallback") if PRICE in query else _fill(self.template.fallback, profile)
            )
            if state.fallback_last and normalize(fallback) in state.last_text:
                fallback = self.say("fallback_again")
            self.parts.append(fallback)
            return self.reply("unknown")
        elif buying:
            if not state.proposed_last and not requests_step:
                self.parts.append(self.say("interest"))
        elif need_now and state.last_asked in (None, "need"):
            self.parts.append(self.say("ack_need"))
        elif state.last_asked is not None:
            self.parts.append(self.say("ack"))
        elif not content:
            self.parts.append(self.say("ack_help"))
        else:
            self.parts.append(self.say("ack_plain"))
        if need_now:
            self.state = replace(self.state, need_stated=True)
        return self.follow_up(buying=buying, requests_step=requests_step)

    def accept(self) -> OfflineReply:
        step = self.template.next_step
        verb = _VERBS[self.lang].get(step.kind, _DEFAULT_VERB[self.lang])
        self.parts.append(self.say("accept", verb=verb, label=step.label))
        return self.reply(self.intent or "next_step")

    def follow_up(self, *, buying: bool, requests_step: bool = False) -> OfflineReply:
        """End with one thing: a qualification question, the next step, or an offer to help."""
        state = self.state
        answered = bool(self.intent)
        if state.accepted or state.confirmed:
            if buying and not state.confirmed:
                self.parts.append(self.say("confirm", label=self.template.next_step.label))
                return self.reply(self.intent or "next_step")
            if not answered:
                self.parts.append(self.say("anything_else"))
            return self.reply(self.intent or "thanks")
        if buying:
            if state.proposed_last or requests_step:
                return self.accept()
            self.parts.append(self.template.next_step.text)
            return self.reply(self.intent or "next_step")
        skip = set(self.profile.known_fields) | state.asked
        if state.need_stated:
            skip.add("need")
        question = _next_question(self.template, frozenset(skip))
        if question is not None:
            if answered:
                lead = self.say("bridge")
                self.parts.append(lead + _lower_first(question.text))
            else:
                self.parts.append(question.text)
            self.asked_field = question.field
            return self.reply(self.intent or "qualify")
        if not state.proposed_last and not state.declined:
            self.parts.append(self.template.next_step.text)
            return self.reply(self.intent or "next_step")
        self.parts.append(self.say("anything_else"))
        return self.reply(self.intent or "thanks")


def _next_question(
    template: IndustryTemplate, skip: frozenset[str]
) -> QualificationQuestion | None:
    for question in template.qualification_questions:
        if question.field not in skip:
            return question
    return None


def offline_reply(profile: OfflineProfile, history: Sequence[Turn], message: str) -> OfflineReply:
    """The offline assistant's reply to `message`, given the conversation so far (`history`,
    oldest first, without `message`).

    Pure and deterministic: no network, no database, no randomness (where phrasing varies, it
    varies with the number of visitor turns). The intent says what the reply does: "greeting",
    "faq"/"fact" (answered from the company's FAQ or facts, `matched` and `score` say which and
    how well), "qualify" (asked `asked_field`), "next_step" (proposed the template's next step,
    or handled the visitor's answer to it), "handoff" (a person takes over), "unknown" (did not
    know; offered a person), "thanks", "goodbye"."""
    return _Responder(profile, history, message).respond()
