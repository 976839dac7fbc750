"""Normalizing text (accents, stop words, stems, sales concepts, typos) and telling Spanish
from English."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

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
