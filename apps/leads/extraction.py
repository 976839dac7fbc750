"""Deterministic extraction of lead data from a visitor's chat message.

`extract(text, today=..., default_region=...)` reads one message (Spanish or English) and returns
what the visitor said explicitly about themselves: e-mail, phone, budget, timeline, name, job
title and company. It is pure: no database, no network, no clock (the caller passes `today`), and
the same input always gives the same output. It reads only what a person would read as such
and leaves a field empty rather than guess; the rules and the decisions behind them are in
docs/leads/extraction.md.

Matching is accent- and case-insensitive: the message is folded (lower case, accents and tildes
dropped, one character for one character) so that spans found in the folded text are spans of
the original, from which names and timeline words are copied as written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import phonenumbers

__all__ = ["Budget", "Extraction", "Timeline", "extract", "region_for_time_zone"]


@dataclass(frozen=True)
class Budget:
    """An amount the visitor can spend. `currency` is ISO 4217, or "" when the text does not
    say and the region does not tell it. A monthly amount is kept as written (not annualised)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Timeline:
    """When the visitor needs it. `text` is the words as written; `date` the first day they
    mean (None when not resolvable); `precision` one of day, week, month, quarter, year, vague.

    Urgent words ("asap", "cuanto antes") give today with precision "vague"; relaxed ones
    ("no tengo prisa", "no rush") give no date with precision "vague"."""

    text: str
    date: date | None
    precision: str


@dataclass(frozen=True)
class Extraction:
    """Everything found in one message; empty strings / None where nothing explicit was said."""

    email: str = ""
    phone: str = ""
    budget: Budget | None = None
    timeline: Timeline | None = None
    name: str = ""
    role: str = ""
    company: str = ""


# --------------------------------------------------------------------------------------------
# Folding


class _FoldTable(dict[int, str]):
    """`str.translate` table filled on first sight of each character (then a C-level lookup)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
        ).lower()
        if len(base) != 1:
            lower = ch.lower()
            base = lower if len(lower) == 1 else ch
        if len(self) < 10_000:  # bounded: a flood of exotic characters cannot grow it forever
            self[code] = base
        return base


_FOLD_TABLE = _FoldTable()


def _fold(text: str) -> str:
    """Lower case without accents, exactly one character per character of `text`."""
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD_TABLE)


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _words_re(words: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


# --------------------------------------------------------------------------------------------
# E-mail

# Domains may be internationalised ("lacosteña.mx"); local parts are kept to ASCII.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.[A-Za-z]{2,}"
)
_URL = re.compile(r"(?:https?://|www\.|wa\.me/|api\.whatsapp\.com/)\S+", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Phone

# Only text that could hold a phone number goes to libphonenumber's matcher (it is the
# slowest step): seven or more digits, possibly grouped and prefixed with "+".
_PHONE_CANDIDATE = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")
_WHATSAPP_LINK = re.compile(
    r"(?:wa\.me/|api\.whatsapp\.com/send\?phone=|whatsapp\.com/send\?phone=)\+?(\d{8,15})",
    re.IGNORECASE,
)
# Numbers right after these words are references, not phones ("pedido 5512345678").
_NOT_PHONE_CUE = re.compile(
    r"(?:#|\bpedido|\borden|\border|\bfolio|\bticket|\bfactura|"
    r"\binvoice|\bguia|\btracking|\bref(?:erencia)?\.?|\bcodigo|\bcode|\bcuenta|\baccount|"
    r"\btarjeta|\bcard|\brfc|\bcurp|\bnit|\bruc|\brut|\bcuit|\bdni|\bcedula|\bclabe|\bid|"
    r"\bserie|\bserial|\bsku|\bmodelo|\bmodel|\$|usd|mxn|cop|ars|clp|pen)"
    r"(?:\s*(?:number|no\.?|num\.?|numero|de|del|pedido|orden|order|cliente|customer|#|:))*\s*$"
)


def _region(default_region: str) -> str | None:
    region = default_region.strip().upper()
    return region if len(region) == 2 else None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_international(digits: str) -> str:
    """E.164 of an international number written without "+" (a WhatsApp link), or ""."""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number) and digits.startswith("521"):
        # WhatsApp still writes Mexican mobiles with the "1" dropped from the plan in 2019.
        return _parse_international("52" + digits[3:])
    return _e164(number) if phonenumbers.is_valid_number(number) else ""


def _find_phone(text: str, folded: str, region: str | None) -> tuple[str, list[tuple[int, int]]]:
    """The first phone number and the spans of every phone-like number read as one."""
    found = ""
    spans: list[tuple[int, int]] = []
    for match in _WHATSAPP_LINK.finditer(text):
        e164 = _parse_international(match.group(1))
        if e164:
            found = found or e164
            spans.append(match.span())
    for candidate in _PHONE_CANDIDATE.finditer(text):
        offset = candidate.start()
        if any(s <= offset < e for s, e in spans):
            continue
        if _NOT_PHONE_CUE.search(folded[max(0, offset - 30) : offset]):
            continue
        chunk = candidate.group()
        matched = False
        for number in phonenumbers.PhoneNumberMatcher(
            chunk, region, leniency=phonenumbers.Leniency.VALID
        ):
            matched = True
            found = found or _e164(number.number)
            spans.append((offset + number.start, offset + number.end))
        if not matched and chunk.startswith("+"):
            # "+52 1 55 1234 5678": the old Mexican mobile prefix, which the matcher rejects.
            e164 = _parse_international(re.sub(r"\D", "", chunk))
            if e164:
                found = found or e164
                spans.append(candidate.span())
    return found, spans


# --------------------------------------------------------------------------------------------
# Number words (es, en)

_UNITS = {
    "cero": 0, "zero": 0,
    "un": 1, "uno": 1, "una": 1, "one": 1, "dos": 2, "two": 2, "tres": 3, "three": 3,
    "cuatro": 4, "four": 4, "cinco": 5, "five": 5, "seis": 6, "six": 6, "siete": 7, "seven": 7,
    "ocho": 8, "eight": 8, "nueve": 9, "nine": 9, "diez": 10, "ten": 10, "once": 11,
    "eleven": 11, "doce": 12, "twelve": 12, "trece": 13, "thirteen": 13, "catorce": 14,
    "fourteen": 14, "quince": 15, "fifteen": 15, "dieciseis": 16, "sixteen": 16,
    "diecisiete": 17, "seventeen": 17, "dieciocho": 18, "eighteen": 18, "diecinueve": 19,
    "nineteen": 19, "veinte": 20, "twenty": 20, "veintiun": 21, "veintiuno": 21,
    "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25,
    "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30,
    "thirty": 30, "cuarenta": 40, "forty": 40, "cincuenta": 50, "fifty": 50, "sesenta": 60,
    "sixty": 60, "setenta": 70, "seventy": 70, "ochenta": 80, "eighty": 80, "noventa": 90,
    "ninety": 90, "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200,
    "trescientos": 300, "trescientas": 300, "cuatrocientos": 400, "cuatrocientas": 400,
    "quinientos": 500, "quinientas": 500, "seiscientos": 600, "seiscientas": 600,
    "setecientos": 700, "setecientas": 700, "ochocientos": 800, "ochocientas": 800,
    "novecientos": 900, "novecientas": 900,
}  # fmt: skip
_HUNDRED = {"hundred"}
_THOUSAND = {"mil", "thousand"}
_MILLION = {"millon", "millones", "million", "millions"}
_HALF = {"medio", "media", "half"}
_JOINERS = {"y", "and", "a"}
_NUMBER_WORD = _words_re(set(_UNITS) | _HUNDRED | _THOUSAND | _MILLION | _HALF)
_NUMBER_WORDS = re.compile(
    rf"\b(?:{_NUMBER_WORD}|a(?=\s+(?:hundred|thousand|million|half)\b))"
    rf"(?:(?:\s+|\s*-\s*)(?:(?:{_NUMBER_WORD})\b|(?:y|and|a)\b(?=\s+(?:{_NUMBER_WORD})\b)))*\b"
)


def _words_value(words: list[str]) -> Decimal | None:
    """The value of a run of number words ("un millon y medio", "twenty five thousand")."""
    total = Decimal(0)
    current = Decimal(0)
    last_scale = Decimal(0)
    numeral = False
    for word in words:
        if word in _JOINERS:
            if word == "a":
                current = current or Decimal(1)
            continue
        if word in _UNITS:
            current += _UNITS[word]
            numeral = True
        elif word in _HUNDRED:
            current = (current or Decimal(1)) * 100
            numeral = True
        elif word in _THOUSAND:
            total += (current or Decimal(1)) * 1000
            current = Decimal(0)
            last_scale = Decimal(1000)
            numeral = True
        elif word in _MILLION:
            total = (total + (current or Decimal(1))) * 1_000_000
            current = Decimal(0)
            last_scale = Decimal(1_000_000)
            numeral = True
        elif word in _HALF:
            if last_scale and not current:
                total += last_scale / 2
            else:
                current += Decimal("0.5")
    if not numeral:
        return None
    return total + current


_SMALL_NUMBER = rf"(?:\d{{1,3}}|{_words_re(w for w, v in _UNITS.items() if 0 < v <= 30)}|a|an)"


def _small_number(token: str) -> int | None:
    token = token.strip()
    if token.isdigit():
        return int(token)
    if token in ("a", "an"):
        return 1
    value = _UNITS.get(token)
    return value if value else None


# --------------------------------------------------------------------------------------------
# Timeline

_MONTHS = {
    "enero": 1, "january": 1, "jan": 1, "febrero": 2, "february": 2, "feb": 2,
    "marzo": 3, "march": 3, "abril": 4, "april": 4, "apr": 4, "mayo": 5, "may": 5,
    "junio": 6, "june": 6, "julio": 7, "july": 7, "agosto": 8, "august": 8, "aug": 8,
    "septiembre": 9, "setiembre": 9, "september": 9, "sept": 9, "sep": 9, "octubre": 10,
    "october": 10, "oct": 10, "noviembre": 11, "november": 11, "nov": 11,
    "diciembre": 12, "december": 12, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {
    "lunes": 0, "monday": 0, "martes": 1, "tuesday": 1, "miercoles": 2, "wednesday": 2,
    "jueves": 3, "thursday": 3, "viernes": 4, "friday": 4, "sabado": 5, "saturday": 5,
    "domingo": 6, "sunday": 6,
}  # fmt: skip
_ORDINAL_QUARTER = {
    "primer": 1, "1er": 1, "first": 1, "1st": 1, "segundo": 2, "2do": 2, "second": 2, "2nd": 2,
    "tercer": 3, "3er": 3, "third": 3, "3rd": 3, "cuarto": 4, "4to": 4, "fourth": 4, "4th": 4,
}  # fmt: skip
_MONTH = _words_re(_MONTHS)
_WEEKDAY = _words_re(_WEEKDAYS)
_YEAR = r"(?:20\d\d)"


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _month_length(year, month)))


def _month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _month_start(today: date, month: int, year: int | None) -> date:
    """The first day of the named month, the next one (or this one: today) if no year."""
    if year is None:
        year = today.year if month >= today.month else today.year + 1
    if (year, month) == (today.year, today.month):
        return today
    return date(year, month, 1)


def _next_day_month(today: date, day: int, month: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _quarter_start(today: date, quarter: int, year: int | None) -> date:
    current = (today.month - 1) // 3 + 1
    if year is None:
        year = today.year if quarter >= current else today.year + 1
    if (year, quarter) == (today.year, current):
        return today
    return date(year, 3 * quarter - 2, 1)


def _year_of(token: str | None) -> int | None:
    if not token:
        return None
    token = token.lstrip("'")
    return int(token) if len(token) == 4 else 2000 + int(token)


_MONTH_WORDS = frozenset(_MONTHS)
_WEEKDAY_WORDS = frozenset(_WEEKDAYS)
_UNIT_WORDS = frozenset({"dia", "dias", "semana", "semanas", "mes", "meses", "ano", "anos"}) | {
    "day", "days", "week", "weeks", "month", "months", "year", "years"
}  # fmt: skip
_STREET = re.compile(r"\b(?:calle|av|avda|avenida|col|colonia|blvd|street|st)\.?\s*$")
_Resolver = Callable[[re.Match[str], date], tuple[date | None, str] | None]


def _relative(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    n = match.group("n")
    count = 2 if "par" in n or "couple" in n else _small_number(n)
    if count is None:
        return None
    unit = match.group("unit")
    if unit.startswith(("dia", "day")):
        return today + timedelta(days=count), "day"
    if unit.startswith(("semana", "week")):
        return today + timedelta(weeks=count), "week"
    if unit.startswith(("mes", "month")):
        return _add_months(today, count), "month"
    return _add_months(today, 12 * count), "year"


def _tomorrow(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    # "por la mañana", "en la mañana", "esta mañana": the morning, not tomorrow.
    if match.group("art"):
        return None
    return today + timedelta(days=1), "day"


def _weekday(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    ahead = (_WEEKDAYS[match.group("wd")] - today.weekday() - 1) % 7 + 1
    return today + timedelta(days=ahead), "day"


def _weekend(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    if today.weekday() >= 5:
        return today, "day"
    return today + timedelta(days=5 - today.weekday()), "day"


def _day_month(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    if _STREET.search(match.string, max(0, match.start() - 12), match.start()):
        return None  # "calle 5 de Mayo": a street named after a date
    day = _next_day_month(
        today, int(match.group("d")), _MONTHS[match.group("m")], _year_of(match.group("y"))
    )
    return (day, "day") if day else None


def _numeric_date(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    day, month = int(match.group("d")), int(match.group("m"))
    if (day, month) in ((24, 7), (7, 24)):  # "24/7": always open, not 24 July
        return None
    if len(match.group("d")) < 2 and len(match.group("m")) < 2 and not match.group("y"):
        return None  # "3/4" is a fraction as often as a date
    if not 1 <= month <= 12:
        # Month/day only when day/month cannot be ("12/15"): never a guess between the two.
        day, month = month, day
        if not 1 <= month <= 12:
            return None
    year = match.group("y")
    resolved = _next_day_month(
        today, day, month, None if not year else int(year) if len(year) == 4 else 2000 + int(year)
    )
    return (resolved, "day") if resolved else None


def _month_name(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    month = _MONTHS[match.group("m") or match.group("m2")]
    return _month_start(today, month, _year_of(match.group("y"))), "month"


def _quarter(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    q = match.group("q")
    quarter = int(q) if q.isdigit() else _ORDINAL_QUARTER[q]
    return _quarter_start(today, quarter, _year_of(match.group("y"))), "quarter"


def _next_quarter(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    current = (today.month - 1) // 3 + 1
    if current == 4:
        return date(today.year + 1, 1, 1), "quarter"
    return date(today.year, 3 * current + 1, 1), "quarter"


def _year(match: re.Match[str], today: date) -> tuple[date | None, str] | None:
    year = int(match.group("y"))
    if year < today.year:
        return None
    return (today if year == today.year else date(year, 1, 1)), "year"


def _fixed(
    compute: Callable[[date], date | None], precision: str
) -> Callable[[re.Match[str], date], tuple[date | None, str]]:
    return lambda match, today: (compute(today), precision)


def _next_month(today: date) -> date:
    return _add_months(today.replace(day=1), 1)


def _end_of_month(today: date) -> date:
    return today.replace(day=_month_length(today.year, today.month))


_TIMELINE_RULES: list[tuple[re.Pattern[str], _Resolver, frozenset[str] | None]] = [
    (
        re.compile(
            r"\b(?:no tengo (?:prisa|apuro)|no tenemos (?:prisa|apuro)|sin (?:prisa|apuro)|"
            r"no hay (?:prisa|apuro)|no es urgente|no corre prisa|no rush|no hurry|"
            r"not in a (?:rush|hurry)|not urgent|no urgency|mas adelante|en algun momento|"
            r"algun dia|eventually|someday|some day|not sure when|no se cuando|"
            r"todavia no (?:se|sabemos)|sin fecha)\b"
        ),
        _fixed(lambda today: None, "vague"),
        frozenset(
            {
                "prisa",
                "apuro",
                "urgente",
                "rush",
                "hurry",
                "urgent",
                "urgency",
                "adelante",
                "momento",
                "algun",
                "eventually",
                "someday",
                "some",
                "sure",
                "cuando",
                "todavia",
                "fecha",
            }
        ),
    ),
    (
        re.compile(
            r"\b(?:asap|cuanto antes|lo antes posible|lo mas pronto posible|"
            r"lo mas rapido posible|a la brevedad(?: posible)?|de inmediato|inmediatamente|"
            r"urgente(?:mente)?|ya mismo|as soon as possible|right away|immediately|urgent(?:ly)?|"
            r"right now|ahorita|para ayer)\b"
        ),
        _fixed(lambda today: today, "vague"),
        frozenset(
            {
                "asap",
                "cuanto",
                "antes",
                "pronto",
                "rapido",
                "brevedad",
                "inmediato",
                "inmediatamente",
                "urgente",
                "urgentemente",
                "ya",
                "soon",
                "right",
                "immediately",
                "urgent",
                "urgently",
                "ahorita",
                "ayer",
            }
        ),
    ),
    (
        re.compile(r"\b(?:pasado manana|day after tomorrow)\b"),
        _fixed(lambda t: t + timedelta(2), "day"),
        frozenset({"pasado", "after"}),
    ),
    (
        re.compile(r"(?P<art>\b(?:la|las|esta|en la|por la|de la|a la)\s+)?\bmanana\b"),
        _tomorrow,
        frozenset({"manana"}),
    ),
    (
        re.compile(r"\btomorrow\b"),
        _fixed(lambda t: t + timedelta(1), "day"),
        frozenset({"tomorrow"}),
    ),
    (
        re.compile(r"\b(?:hoy(?: mismo)?(?! en dia)(?! dia)|today|esta noche|tonight)\b"),
        _fixed(lambda t: t, "day"),
        frozenset({"hoy", "today", "noche", "tonight"}),
    ),
    (
        re.compile(
            r"\b(?:(?:este|el proximo|el|this|next|this coming)\s+)?"
            r"(?:fin de semana|finde|weekend)\b"
        ),
        _weekend,
        frozenset({"fin", "finde", "weekend"}),
    ),
    (
        re.compile(
            r"\b(?:(?:la\s+)?(?:proxima semana|semana que viene|semana proxima|semana entrante)|"
            r"la otra semana|next week)\b"
        ),
        _fixed(lambda t: t + timedelta(days=7 - t.weekday()), "week"),
        frozenset({"semana", "week"}),
    ),
    (
        re.compile(r"\b(?:esta semana|this week)\b"),
        _fixed(lambda t: t, "week"),
        frozenset({"semana", "week"}),
    ),
    (
        re.compile(
            r"\b(?:(?:a |para |antes de |hacia )?(?:fin|fines|final|finales) de(?:l| este)? mes|"
            r"(?:by |before |until |at )?(?:the )?end of (?:the |this )?month|month[- ]end)\b"
        ),
        _fixed(_end_of_month, "day"),
        frozenset({"mes", "month"}),
    ),
    (
        re.compile(
            r"\b(?:(?:a |para |antes de |hacia )?(?:fin|fines|final|finales) de(?:l| este)? ano|"
            r"(?:by |before |until |at )?(?:the )?end of (?:the |this )?year|year[- ]end)\b"
        ),
        _fixed(lambda t: date(t.year, 12, 31), "day"),
        frozenset({"ano", "year"}),
    ),
    (
        re.compile(
            r"\b(?:(?:el\s+)?(?:proximo mes|mes que viene|mes proximo|mes entrante|siguiente mes)|"
            r"(?:a )?(?:principios|inicios|comienzos) del (?:proximo|siguiente) mes|"
            r"(?:early )?next month|(?:the )?(?:beginning|start) of next month)\b"
        ),
        _fixed(_next_month, "month"),
        frozenset({"mes", "month"}),
    ),
    (
        re.compile(r"\b(?:este mes|this month)\b"),
        _fixed(lambda t: t, "month"),
        frozenset({"mes", "month"}),
    ),
    (
        re.compile(
            r"\b(?:(?:el\s+)?(?:proximo ano|ano que viene|ano proximo|ano entrante|siguiente ano)|"
            r"el otro ano|next year)\b"
        ),
        _fixed(lambda t: date(t.year + 1, 1, 1), "year"),
        frozenset({"ano", "year"}),
    ),
    (
        re.compile(r"\b(?:este ano|this year)\b"),
        _fixed(lambda t: t, "year"),
        frozenset({"ano", "year"}),
    ),
    (
        re.compile(
            r"\b(?:(?:el\s+)?(?:proximo|siguiente) trimestre|trimestre que viene|next quarter)\b"
        ),
        _next_quarter,
        frozenset({"trimestre", "quarter"}),
    ),
    (
        re.compile(r"\b(?:este trimestre|this quarter)\b"),
        _fixed(lambda t: t, "quarter"),
        frozenset({"trimestre", "quarter"}),
    ),
    (
        re.compile(rf"\bq(?P<q>[1-4])(?:\s*(?:de(?:l)?\s+)?(?P<y>{_YEAR}|'\d\d))?\b"),
        _quarter,
        frozenset({"q1", "q2", "q3", "q4"}),
    ),
    (
        re.compile(
            rf"\b(?:el\s+|the\s+)?(?P<q>{_words_re(_ORDINAL_QUARTER)})\s+(?:trimestre|quarter)"
            rf"(?:\s+(?:de(?:l)?\s+|of\s+)?(?P<y>{_YEAR}))?\b"
        ),
        _quarter,
        frozenset({"trimestre", "quarter"}),
    ),
    (
        re.compile(
            rf"\b(?:en|dentro de|de aqui a|in|within|after|en unos|en unas|en los proximos|"
            rf"en las proximas|in the next|within the next|in about|en aproximadamente)\s+"
            rf"(?P<n>un par de|a couple of|couple of|{_SMALL_NUMBER})\s+"
            rf"(?P<unit>dias|dia|semanas|semana|meses|mes|anos|ano|days|day|weeks|week|months"
            rf"|month|years|year)\b"
        ),
        _relative,
        _UNIT_WORDS,
    ),
    (
        re.compile(
            rf"\b(?:el\s+)?(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:de\s+|of\s+)?(?P<m>{_MONTH})"
            rf"(?:,?\s+(?:de(?:l)?\s+)?(?P<y>{_YEAR}))?\b"
        ),
        _day_month,
        _MONTH_WORDS,
    ),
    (
        re.compile(
            rf"\b(?P<m>{_MONTH})\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\b(?!\s*(?:%|mil|k\b|pesos))"
            rf"(?:,?\s+(?P<y>{_YEAR}))?"
        ),
        _day_month,
        _MONTH_WORDS,
    ),
    (
        re.compile(r"(?<![\d/.,])(?P<d>[0-3]?\d)/(?P<m>[01]?\d)(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])"),
        _numeric_date,
        frozenset({"/"}),
    ),
    (
        re.compile(
            rf"\b(?:en|para|hasta|antes de|desde|a partir de|durante|en el mes de|"
            rf"(?:a\s+)?(?:principios|inicios|comienzos|mediados|finales|fines) de|"
            rf"el proximo|proximo|in|by|for|until|before|after|during|early|late|next|"
            rf"this|starting|around|timeline|deadline|fecha|plazo)\s*:?\s+(?P<m>{_MONTH})\b(?:\s+(?:de(?:l)?\s+)?(?P<y>{_YEAR}))?|"
            rf"\bmid-?(?P<m2>{_MONTH})\b"
        ),
        _month_name,
        _MONTH_WORDS,
    ),
    (
        re.compile(rf"\b(?P<m>{_MONTH})\s+(?:de(?:l)?\s+)?(?P<y>{_YEAR})\b"),
        _month_name,
        _MONTH_WORDS,
    ),
    (
        re.compile(
            rf"\b(?:el|este|esta|para el|el proximo|el siguiente|proximo|on|next|this|by|"
            rf"this coming|coming|until|before)\s+(?P<wd>{_WEEKDAY})\b"
        ),
        _weekday,
        _WEEKDAY_WORDS,
    ),
    (
        re.compile(
            rf"\b(?:en|para|in|by|for|durante|during|a partir de|desde|early|late|mid-?)"
            rf"\s+(?:el\s+)?(?P<y>{_YEAR})\b"
        ),
        _year,
        None,
    ),
]

_WORD = re.compile(r"[a-z0-9]+")


def _find_timeline(
    text: str, folded: str
) -> tuple[list[tuple[int, int, _Resolver, re.Match[str]]], list[tuple[int, int]]]:
    """Every timeline expression, longest first where they overlap, in text order."""
    found: list[tuple[int, int, int, _Resolver, re.Match[str]]] = []
    # Most rules cannot match a given message: a word lookup skips them cheaply.
    words = set(_WORD.findall(folded))
    if "/" in folded:
        words.add("/")
    for rank, (pattern, resolver, triggers) in enumerate(_TIMELINE_RULES):
        if triggers is not None and triggers.isdisjoint(words):
            continue
        for match in pattern.finditer(folded):
            found.append((match.start(), match.end(), rank, resolver, match))
    # Where two overlap the longer one is the reading ("by March 15th", not "by March"); of
    # two as long, the rule listed first ("by December 20": the day, not "by December").
    found.sort(key=lambda item: (-(item[1] - item[0]), item[2], item[0]))
    kept: list[tuple[int, int, _Resolver, re.Match[str]]] = []
    for start, end, _, resolver, match in found:
        if any(start < e and s < end for s, e, _, _ in kept):
            continue
        kept.append((start, end, resolver, match))
    kept.sort(key=lambda item: item[0])
    return kept, [(s, e) for s, e, _, _ in kept]


def _choose_timeline(
    text: str, candidates: list[tuple[int, int, _Resolver, re.Match[str]]], today: date
) -> Timeline | None:
    """The first timeline with a date, else the first vague one."""
    vague: Timeline | None = None
    for start, end, resolver, match in candidates:
        resolved = resolver(match, today)
        if resolved is None:
            continue
        day, precision = resolved
        timeline = Timeline(text=text[start:end].strip(), date=day, precision=precision)
        if precision != "vague":
            return timeline
        vague = vague or timeline
    return vague


# --------------------------------------------------------------------------------------------
# Budget

_CURRENCY_WORDS = {
    "pesos mexicanos": "MXN", "peso mexicano": "MXN", "pesos colombianos": "COP",
    "pesos argentinos": "ARS", "pesos chilenos": "CLP", "pesos uruguayos": "UYU",
    "pesos dominicanos": "DOP", "pesos filipinos": "PHP", "pesos": "PESO", "peso": "PESO",
    "lucas": "PESO_K", "luca": "PESO_K", "palos": "PESO_M", "palo": "PESO_M",
    "dolares americanos": "USD", "dolares estadounidenses": "USD", "dolares": "USD",
    "dolar": "USD", "dollars": "USD", "dollar": "USD", "dlls": "USD", "dls": "USD",
    "bucks": "USD", "verdes": "USD", "euros": "EUR", "euro": "EUR", "soles": "PEN", "sol": "PEN",
    "reales": "BRL", "reais": "BRL", "real": "BRL", "libras": "GBP", "pounds": "GBP",
    "quetzales": "GTQ", "colones": "CRC", "lempiras": "HNL", "guaranies": "PYG",
    "bolivianos": "BOB", "m.n.": "MXN", "mn": "MXN",
}  # fmt: skip
_CODES = {
    "usd", "mxn", "cop", "ars", "clp", "pen", "uyu", "brl", "eur", "gbp", "dop", "php", "gtq",
    "crc", "hnl", "pyg", "bob", "ves", "cad",
}  # fmt: skip
_SYMBOLS = {
    "us$": "USD", "u$s": "USD", "u$d": "USD", "usd$": "USD", "r$": "BRL", "s/.": "PEN",
    "s/": "PEN", "€": "EUR", "£": "GBP", "rd$": "DOP", "mx$": "MXN", "col$": "COP",
    "clp$": "CLP", "ar$": "ARS", "$": "$",
}  # fmt: skip
_PESO_CURRENCY = {
    "MX": "MXN", "CO": "COP", "AR": "ARS", "CL": "CLP", "UY": "UYU", "DO": "DOP", "PH": "PHP",
    "CU": "CUP",
}  # fmt: skip
_DOLLAR_SIGN_USD = {"US", "EC", "SV", "PA", "PR"}

_PREFIX = re.compile(
    rf"(?:(?P<sym>{_words_re(_SYMBOLS)})|\b(?P<code>{_words_re(_CODES)})\b\.?)\s*$"
)
_SUFFIX = re.compile(
    rf"\s*(?:(?:de\s+)?(?P<word>{_words_re(_CURRENCY_WORDS)})(?![a-z])|"
    rf"(?P<code>{_words_re(_CODES)})\b)"
)
_PERIOD = re.compile(
    r"\s*(?:/\s*|al |por |a |per |x |cada )?(?:mes|month|mo|ano|year|yr|semana|week)\b|"
    r"\s*(?:mensuales?|monthly|anuales?|yearly|semanales?|weekly)\b"
)
_DIGITS = re.compile(
    r"(?<![\w.,:/#-])(?P<num>\d{1,3}(?:(?P<sep>[.,'])\d{3})(?:(?P=sep)\d{3})*(?:[.,]\d{1,2})?"
    r"|\d+(?:[.,]\d+)?)"
    r"(?:(?P<mult>k|m|mm)\b|\s?(?P<wmult>mil|millones|millon|millions|million|thousand|"
    r"k|grand|lucas|luca|palos|palo)\b)?"
    r"(?P<half>\s+y\s+medio|\s+and\s+a\s+half)?"
    r"(?![:\d]|[.,]\d)"
)
_MULTIPLIERS = {
    "k": 1000, "mil": 1000, "thousand": 1000, "grand": 1000, "lucas": 1000, "luca": 1000,
    "m": 1_000_000, "mm": 1_000_000, "millon": 1_000_000, "millones": 1_000_000,
    "million": 1_000_000, "millions": 1_000_000, "palos": 1_000_000, "palo": 1_000_000,
}  # fmt: skip
_STRONG_CUE = re.compile(
    r"\b(?:presupuesto|presupuestado|budget|tengo|tenemos|puedo|podemos|podria|podriamos|"
    r"pagar|pago|gastar|invertir|inversion|spend|spending|afford|pay|paying|invest|max|"
    r"maximo|tope|limite|hasta|up to|around|about|alrededor de|aprox|aproximadamente|"
    r"cerca de|entre|between|range|rango|dispongo de|disponemos de|contamos con|cuento con|"
    r"i have|we have|i've got|we've got)\b"
    r"[^.!?\n]{0,40}$"
)
_COUNT_NOUN = re.compile(
    r"\s*(?:%|por ?ciento|percent|pct|personas?|people|persons?|gente|pax|usuarios?|users?|"
    r"empleados?|employees?|trabajadores|staff|clientes?|customers?|clients?|autos?|carros?|"
    r"coches?|cars?|vehiculos?|vehicles?|camionetas?|trucks?|unidades|units?|piezas?|pieces?|"
    r"pcs|productos?|products?|items?|articulos?|anos|years?|meses|months?|semanas|weeks?|dias|"
    r"days?|horas?|hours?|hrs?|minutos?|minutes?|mins?|am|pm|a\.m\.|p\.m\.|m2|m²|mts?|metros?|"
    r"meters?|sq|km|kms|kg|kilos?|litros?|liters?|habitaciones|rooms?|cuartos?|recamaras|"
    r"noches|nights?|sucursales|branches|tiendas|stores?|locales|vendedores|agentes|agents?|"
    r"mensajes|messages?|leads?|conversaciones|conversations?|chats?|licencias|licenses?|"
    r"seats?|asientos|lugares|invitados|guests?|ninos|kids|children|adultos|adults|alumnos|"
    r"students?|pacientes|patients?|hijos|pisos|floors?|lotes?|casas|departamentos|deptos|"
    r"pedidos|orders?|ventas|sales|visitas|visits|seguidores|followers|veces|times|x\b|"
    r"gb|mb|tb|hp|cc|ml|lts?|mg|gr|g\b|cm|mm\b|pulgadas|inches|in\b|pies|feet|ft)"
)
_REVENUE_CUE = re.compile(
    r"\b(?:facturamos|facturo|facturan|factura(?:cion)? de|vendemos|vendimos|ventas de|"
    r"ganamos|gastamos|gaste|gastabamos|pagamos|pague|pagabamos|spent|paid|revenue|turnover|"
    r"sales of|made|we make|we sell|we sold|earn|earned)\b[^.!?\n]{0,30}$"
)
_PRICE_CUE = re.compile(
    r"\b(?:plan|planes|paquete|package|price|precio|cuesta|cuestan|costs?|vale|valen|sale|salen|"
    r"priced at|cobran|charges?|tarifa|rate|fee)\s*(?:de|del|of|is|es|at|"
    r"a|en)?\s*$"
)
_REFERENCE_CUE = re.compile(
    r"(?:#|\bn[o°º]\.?|\bnum(?:ero)?\.?|\bpedido|\borden|\border|\bfolio|\bticket|\bfactura|"
    r"\binvoice|\bguia|\btracking|\bref(?:erencia)?\.?|\bcodigo|\bcode|\bc\.?p\.?|\bzip|"
    r"\bpostal|\bmodelo|\bmodel|\bversion|\bv|\btalla|\bsize|\bpiso|\bfloor|\bcalle|\bav\.?|"
    r"\bavenida|\bext\.?|\blote|\bmanzana|\bdepto\.?|\boficina|\bsuite|\bapt\.?|\broom|"
    r"\bnumero de|\bcuenta|\baccount|\ba las|\bat)\s*:?\s*$"
)


@dataclass
class _Amount:
    start: int
    end: int
    value: Decimal
    currency: str  # ISO code, "$", "PESO" or ""
    scaled: bool  # a multiplier or a number word: "2k", "20 mil", "veinte mil"
    digits: str


def _parse_digits(number: str, sep: str | None) -> Decimal | None:
    """ "2.000.000" / "2,000,000" / "1,5" / "1.5" / "3.500" -> Decimal."""
    try:
        if sep:
            groups = number.split(sep)
            last = groups[-1]
            decimals = ""
            if len(last) > 3:  # "1.200,50": the last group carries the decimals
                last, decimals = last[:3], last[4:]
            digits = "".join(groups[:-1]) + last
            return Decimal(digits + ("." + decimals if decimals else ""))
        if "," in number or "." in number:
            whole, frac = re.split(r"[.,]", number)
            return Decimal(f"{whole}.{frac}")
        return Decimal(number)
    except (InvalidOperation, ValueError):
        return None


def _currency_around(folded: str, start: int, end: int) -> tuple[str, int, int]:
    """The currency written just before or after an amount, and the widened span."""
    currency = ""
    before = _PREFIX.search(folded[max(0, start - 8) : start])
    if before:
        currency = _SYMBOLS[before.group("sym")] if before.group("sym") else before.group("code")
        start -= len(before.group())
        currency = currency.upper() if currency != "$" else "$"
    after = _SUFFIX.match(folded, end)
    if after:
        if after.group("word"):
            word_currency = _CURRENCY_WORDS[after.group("word")]
        else:
            word_currency = after.group("code").upper()
        # "$2,000 USD": the code is more precise than the sign.
        if not currency or currency in ("$", "PESO") or word_currency not in ("PESO", "$"):
            currency = word_currency if not word_currency.startswith("PESO_") else currency
        if word_currency.startswith("PESO_"):
            currency = word_currency
        end = after.end()
    return currency, start, end


def _amount_candidates(folded: str) -> list[_Amount]:
    found: list[_Amount] = []
    for match in _DIGITS.finditer(folded):
        value = _parse_digits(match.group("num"), match.group("sep"))
        if value is None:
            continue
        mult_word = match.group("mult") or match.group("wmult")
        scaled = bool(mult_word)
        currency, start, end = _currency_around(folded, match.start(), match.end())
        if mult_word:
            factor = _MULTIPLIERS[mult_word]
            value *= factor
            if mult_word in ("lucas", "luca", "palos", "palo"):
                currency = currency or "PESO"
            if match.group("half"):
                value += Decimal(factor) / 2
        if currency in ("PESO_K", "PESO_M"):
            value *= 1000 if currency == "PESO_K" else 1_000_000
            currency, scaled = "PESO", True
        found.append(_Amount(start, end, value, currency, scaled, match.group("num")))
    for match in _NUMBER_WORDS.finditer(folded):
        words = re.split(r"[\s-]+", match.group())
        value = _words_value(words)
        if value is None:
            continue
        scaled = any(w in _THOUSAND | _MILLION | _HUNDRED for w in words)
        currency, start, end = _currency_around(folded, match.start(), match.end())
        if currency in ("PESO_K", "PESO_M"):
            value *= 1000 if currency == "PESO_K" else 1_000_000
            currency, scaled = "PESO", True
        if not scaled and not currency:
            continue  # "dos", "una": not money without a currency
        found.append(_Amount(start, end, value, currency, scaled, ""))
    found.sort(key=lambda a: a.start)
    return found


_RANGE_JOIN = re.compile(r"\s*(?:-|\u2013|a|y|to|and|hasta|o|or)\s*$")
_RANGE_OPEN = re.compile(r"\b(?:entre|between|de|from|desde)\s*$")


def _is_budget(amount: _Amount, folded: str) -> bool:
    if amount.value <= 0:
        return False
    tail = folded[amount.end : amount.end + 16]
    if _COUNT_NOUN.match(tail) and not amount.currency:
        return False
    if re.match(r"\s*(?:%|por ?ciento|percent)", tail):
        return False
    head = folded[max(0, amount.start - 50) : amount.start]
    if _REVENUE_CUE.search(head) or re.match(
        r"\s*(?:in|en|de) (?:sales|revenue|ventas|facturacion)\b", tail
    ):
        return False  # "facturamos 2 palos", "we spent $40,000": money they have moved
    if _PRICE_CUE.search(head) or re.match(r"\s*(?:plan|package|paquete)\b", tail):
        return False  # the price of something offered ("el plan de $499"), not their budget
    if amount.currency:
        return True
    if _REFERENCE_CUE.search(head):
        return False
    if amount.digits and re.fullmatch(r"(?:19|20)\d\d", amount.digits) and not amount.scaled:
        return False  # a year
    if not _STRONG_CUE.search(head):
        return False
    return amount.scaled or amount.value >= 50


def _resolve_currency(currency: str, region: str | None) -> str:
    if currency == "PESO":
        return _PESO_CURRENCY.get(region or "", "")
    if currency == "$":
        if region in _DOLLAR_SIGN_USD:
            return "USD"
        return _PESO_CURRENCY.get(region or "", "") if region != "PH" else ""
    return currency


def _normal(value: Decimal) -> Decimal:
    integral = value.to_integral_value()
    return integral.quantize(Decimal(1)) if value == integral else value.normalize()


def _find_budget(folded: str, region: str | None) -> Budget | None:
    amounts = _amount_candidates(folded)
    budgets: list[_Amount] = []
    index = 0
    while index < len(amounts):
        amount = amounts[index]
        following = amounts[index + 1] if index + 1 < len(amounts) else None
        between = folded[amount.end : following.start] if following else ""
        # "entre 10 y 20 mil", "$10,000 - $20,000", "10 to 20k": the upper bound.
        if following and _RANGE_JOIN.fullmatch(between or " "):
            joined_by_and = between.strip() in ("y", "and", "o", "or")
            opened = _RANGE_OPEN.search(folded[max(0, amount.start - 10) : amount.start])
            if not joined_by_and or opened:
                upper = following
                merged = _Amount(
                    amount.start,
                    upper.end,
                    upper.value,
                    upper.currency or amount.currency,
                    upper.scaled or amount.scaled,
                    upper.digits,
                )
                if _is_budget(merged, folded):
                    budgets.append(merged)
                index += 2
                continue
        if _is_budget(amount, folded):
            budgets.append(amount)
        index += 1
    if not budgets:
        return None
    cued = [b for b in budgets if _BUDGET_WORD.search(folded[max(0, b.start - 60) : b.start])]
    chosen = (cued or budgets)[0]
    return Budget(amount=_normal(chosen.value), currency=_resolve_currency(chosen.currency, region))


_BUDGET_WORD = re.compile(
    r"\b(?:presupuesto|budget|puedo (?:pagar|gastar|invertir)|podemos (?:pagar|gastar|invertir)|"
    r"spend|afford|invertir|invest)\b[^.!?\n]*$"
)


# --------------------------------------------------------------------------------------------
# Name, role, company

_NAME_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_ROLE_HEADS_ES = (
    "gerente", "subgerente", "director", "directora", "subdirector", "subdirectora", "dueno",
    "duena", "jefe", "jefa", "encargado", "encargada", "coordinador", "coordinadora",
    "fundador", "fundadora", "cofundador", "cofundadora", "co-fundador", "co-fundadora",
    "socio", "socia", "administrador", "administradora", "responsable", "asistente",
    "analista", "ejecutivo", "ejecutiva", "supervisor", "supervisora", "presidente",
    "presidenta", "vicepresidente", "vicepresidenta", "propietario", "propietaria", "contador",
    "contadora", "comprador", "compradora", "vendedor", "vendedora", "representante", "lider",
    "consultor", "consultora", "ingeniero", "ingeniera", "desarrollador", "desarrolladora",
    "disenador", "disenadora", "arquitecto", "arquitecta", "abogado", "abogada", "doctor",
    "doctora", "medico", "medica", "dentista", "odontologo", "odontologa", "psicologo",
    "psicologa", "nutriologo", "nutriologa", "profesor", "profesora", "maestro", "maestra",
    "agente", "corredor", "corredora", "asesor", "asesora", "tesorero", "tesorera",
    "community manager", "product manager", "project manager", "country manager",
)  # fmt: skip
_ROLE_HEADS_EN = (
    "manager", "director", "owner", "co-owner", "founder", "co-founder", "cofounder", "head",
    "lead", "president", "vice president", "partner", "buyer", "engineer", "developer",
    "consultant", "coordinator", "administrator", "assistant", "analyst", "officer",
    "specialist", "executive", "supervisor", "accountant", "designer", "architect", "doctor",
    "dentist", "lawyer", "attorney", "realtor", "agent", "representative", "rep", "principal",
    "chief", "controller", "strategist", "marketer", "recruiter", "teacher",
)  # fmt: skip
_ACRONYM_ROLES = ("ceo", "cto", "cfo", "coo", "cmo", "cio", "cpo", "cro", "vp", "svp", "evp", "gm")
_DEPARTMENTS = (
    "compras", "ventas", "marketing", "mercadotecnia", "mercadeo", "sistemas", "ti", "it",
    "tecnologia", "operaciones", "finanzas", "recursos humanos", "rrhh", "rh", "logistica",
    "proyectos", "producto", "innovacion", "atencion al cliente", "servicio al cliente",
    "comunicacion", "comunicaciones", "administracion", "desarrollo", "ingenieria", "calidad",
    "abastecimiento", "adquisiciones", "tienda", "sucursal", "e-commerce", "ecommerce",
    "growth", "crecimiento", "experiencia del cliente", "customer success", "sales",
    "purchasing", "procurement", "operations", "engineering", "product", "finance", "hr",
    "people", "technology", "growth", "partnerships", "alianzas", "cobranza", "soporte",
    "support", "contabilidad", "obra", "planta", "almacen", "digital", "contenido", "content",
    "negocios", "business development", "infraestructura", "seguridad", "legal", "datos",
    "data", "analytics", "expansion", "franquicias", "canal", "canales", "trade marketing",
)  # fmt: skip
_ROLE_ADJECTIVES = (
    "general", "comercial", "regional", "nacional", "administrativo", "administrativa",
    "financiero", "financiera", "ejecutivo", "ejecutiva", "tecnico", "tecnica", "operativo",
    "operativa", "de ventas", "de compras", "senior", "sr", "jr", "junior", "independiente",
    "freelance",
)  # fmt: skip
_EN_ROLE_MODIFIERS = (
    "senior", "junior", "sr", "jr", "general", "regional", "national", "country", "product",
    "project", "account", "office", "store", "branch", "sales", "marketing", "it", "hr",
    "operations", "ops", "purchasing", "procurement", "finance", "financial", "technical",
    "engineering", "growth", "digital", "ecommerce", "e-commerce", "content", "social media",
    "brand", "business", "customer success", "support", "executive", "managing", "creative",
    "art", "legal", "data", "software", "lead", "principal", "chief", "head", "real estate",
    "it", "logistics", "supply chain", "communications", "partnerships", "program",
)  # fmt: skip
_PLACES = {
    "mexico", "cdmx", "ciudad de mexico", "df", "guadalajara", "monterrey", "puebla",
    "tijuana", "queretaro", "merida", "cancun", "leon", "toluca", "colombia", "bogota",
    "medellin", "cali", "barranquilla", "cartagena", "bucaramanga", "argentina",
    "buenos aires", "cordoba", "rosario", "mendoza", "chile", "santiago", "valparaiso",
    "concepcion", "vina del mar", "peru", "lima", "arequipa", "cusco", "trujillo", "ecuador",
    "quito", "guayaquil", "uruguay", "montevideo", "paraguay", "asuncion", "bolivia",
    "la paz", "santa cruz", "venezuela", "caracas", "brasil", "brazil", "sao paulo", "spain",
    "espana", "madrid", "barcelona", "usa", "us", "eeuu", "ee.uu.", "united states",
    "estados unidos", "miami", "texas", "california", "new york", "nueva york", "costa rica",
    "panama", "guatemala", "el salvador", "honduras", "nicaragua", "republica dominicana",
    "santo domingo", "puerto rico", "cuba", "latam", "latin america", "latinoamerica",
    "america latina", "canada", "europe", "europa", "home", "casa", "austin", "chicago",
    "los angeles", "houston", "san francisco", "toronto", "london", "londres",
}  # fmt: skip
_NAME_STOP = {
    # function words, greetings and verbs that follow "soy"/"I'm" and are not names
    "el", "la", "los", "las", "un", "una", "de", "del", "y", "e", "o", "en", "con", "por",
    "para", "que", "a", "al", "the", "an", "and", "or", "from", "of", "at", "in", "here",
    "aqui", "aca", "hola", "hi", "hello", "buenas", "buenos", "muy", "yo", "nuevo", "nueva",
    "cliente", "clienta", "estudiante", "interesado", "interesada", "interested", "looking",
    "trying", "just", "not", "also", "so", "very", "new", "curious", "wondering",
    "writing", "reaching", "contacting", "calling", "checking", "planning", "currently",
    "going", "still", "sure", "ready", "happy", "glad", "sorry", "asking", "based", "located",
    "quiero", "queria", "necesito", "busco", "tengo", "estoy", "escribo", "me", "mi", "su",
    "quisiera", "gracias", "thanks", "thank", "saludos", "regards", "cheers", "best",
    "esposo", "esposa", "mama", "papa", "mexicano", "mexicana", "colombiano", "colombiana",
    "argentino", "argentina", "chileno", "chilena", "peruano", "peruana", "emprendedor",
    "emprendedora", "freelance", "freelancer", "independiente", "particular", "persona",
    "parte", "yes", "no", "si", "ok", "okay", "bien", "good", "fine", "great", "tu", "your",
    "usuario", "user", "customer", "client", "owner", "socio", "team", "equipo", "part",
    "responsible", "on", "with", "about", "out", "back", "done", "available", "busy",
    "please", "por favor", "bueno", "buena", "dia", "dias", "tardes", "noches", "morning",
    "evening", "afternoon", "there", "all", "everyone", "buscando", "preguntando", "viendo",
    "te", "le", "lo", "les", "nos", "it", "is", "this", "that", "what", "who",
    "mucho", "gusto", "gran", "fan",
} | set(_ROLE_HEADS_ES) | set(_ROLE_HEADS_EN) | set(_ACRONYM_ROLES) | _PLACES  # fmt: skip
_PARTICLES = ("de la", "de los", "de las", "del", "da", "van", "von", "de")
_LEGAL = {
    "sa", "s.a.", "s.a", "sas", "s.a.s.", "s.a.s", "cv", "c.v.", "de", "srl", "s.r.l.",
    "s.r.l", "llc", "inc", "inc.", "corp", "corp.", "co", "co.", "ltd", "ltd.", "ltda",
    "ltda.", "sac", "s.a.c.", "s.a.c", "spa", "eirl", "s.", "r.l.", "sapi", "gmbh", "sl",
    "s.l.", "plc", "sab", "lp", "llp", "pllc",
}  # fmt: skip
_COMPANY_CONNECTORS = {"de", "del", "y", "&", "and", "of", "la", "los", "las", "el", "the", "e"}

_GREETING = (
    r"(?:(?:hola|holi|ola|hey|hi|hello|buen(?:os|as)?(?:\s+(?:dias|dia|tardes|noches))?|"
    r"que tal|saludos|good (?:morning|afternoon|evening)|alo|buenas)\W+)*"
)
_NAME_CUE = re.compile(
    r"\b(?:me llamo|mi nombre es|my name is|my name's|i am called|mi nombre:|nombre:|name:|"
    r"(?:les|le|te) habla|(?:les|le|te) saluda|(?:les|le|te) escribe)\s+"
)
_SENTENCE_SOY = re.compile(
    rf"(?:^|[.!?\n¡¿]\s*|,\s*){_GREETING}(?:yo\s+)?(?P<cue>soy|i'?m|i am|this is|it's)\s+"
)
_SIGNATURE = re.compile(
    r"(?:(?i:saludos|gracias|thanks|thank you|regards|best|cheers|atentamente|cordialmente|"
    r"slds|bendiciones)\s*[,.!:-]?|(?:^|\s)[-\u2013\u2014])\s*\n?\s*"
    r"(?P<name>[^\W\d_][^\n,.!?]{1,40}?)\s*[.!]?\s*$"
)
_ROLE_CUE = re.compile(
    r"\b(?P<cue>soy|i'?m|i am|as|como|trabajo como|me desempeno como|funjo como|"
    r"mi (?:cargo|puesto|rol) es(?: de)?|my (?:role|title|position) is|i work as|"
    r"work as|estoy como)\s+(?:(?:el|la|un|una|the|a|an|our|their)\s+)?"
)
_COMPANY_CUE = re.compile(
    r"\b(?:(?:trabajo|laboro|estoy) en (?:el|la) (?:area|departamento|depto|equipo|gerencia|"
    r"direccion) de [a-z ]{1,30}?(?:de|en)|i work in (?:the )?[a-z ]{1,30}?(?:at|for)|"
    r"trabajo (?:en|para)|trabajamos en|laboro en|i work (?:at|for)|we work at|"
    r"working (?:at|for)|(?:de|en|para|con) (?:la|una|mi|nuestra) "
    r"(?:empresa|compania|firma|agencia|marca|tienda|clinica|constructora|inmobiliaria|"
    r"organizacion|escuela|consultora|distribuidora)|"
    r"(?:empresa|compania|company)(?: se llama| es| is|:)|"
    r"mi (?:empresa|compania|negocio|marca|tienda) (?:se llama|es)|"
    r"(?:our|my) (?:company|business|brand|firm|agency|store)(?: is| is called|'s|:)|"
    r"de parte de|en nombre de|represento a|on behalf of)\s+"
)


_TITLE = re.compile(
    r"[ \t]*(?:dr|dra|mr|mrs|ms|miss|lic|ing|arq|sr|sra|srta|prof|mtro|mtra)\.?[ \t]+",
    re.IGNORECASE,
)


def _is_capitalized(word: str) -> bool:
    return word[:1].isupper() or word[:1].isdigit()


def _take_name(
    text: str, folded: str, pos: int, *, capital: bool, particles: bool = False
) -> tuple[str, int]:
    """Up to four name words from `pos`, stopping at punctuation or a non-name word."""
    words: list[str] = []
    title = _TITLE.match(text, pos)
    if title:
        pos = title.end()
    end = pos
    cursor = pos
    while len(words) < 4:
        gap = re.match(r"[ \t]*", text[cursor:])
        assert gap is not None
        start = cursor + gap.end()
        if words and gap.end() == 0:
            break
        match = _NAME_WORD.match(text, start)
        if not match:
            break
        word, folded_word = match.group(), folded[match.start() : match.end()]
        if words and particles and folded_word in ("de", "del", "da", "van", "von"):
            # "María de la Cruz": a particle only when a capitalised word follows
            rest = re.match(
                r"(?:de|del|da|van|von)(?:\s+(?:la|los|las))?\s+([^\W\d_]+)", text[start:]
            )
            if rest and rest.group(1)[:1].isupper():
                particle = text[start : start + rest.start(1)].rstrip()
                if rest.group(1).lower() not in _NAME_STOP:
                    words.append(particle)
                    cursor = start + len(particle)
                    continue
            break
        if folded_word in _NAME_STOP:
            break
        if capital and not word[:1].isupper():
            break
        words.append(word)
        end = match.end()
        cursor = end
    if not words or words[-1].lower() in _PARTICLES:
        return "", pos
    name = " ".join(words)
    if name == name.lower():
        name = " ".join(w.capitalize() for w in words)
    return name, end


def capital_text(text: str) -> bool:
    """True when the writer uses capitals (so a lower-case word is not a name)."""
    return any(ch.isupper() for ch in text)


def _find_name(text: str, folded: str) -> tuple[str, int]:
    for match in _NAME_CUE.finditer(folded):
        name, end = _take_name(text, folded, match.end(), capital=False, particles=True)
        if name:
            return name, end
    for match in _SENTENCE_SOY.finditer(folded):
        name, end = _take_name(text, folded, match.end(), capital=match.group("cue") != "soy")
        if not name:
            continue
        follower = re.sub(r"[^\w\s,.;:!?()\n-]", "", folded[end : end + 16])  # emoji
        if text[match.end() : end].islower() and not re.match(r"\s*(?:[,.;!\n]|$)", follower):
            continue  # "soy carlos," but not "soy nuevo en esto"
        # "Soy Ana," / "Soy Ana de Acme" / "I'm Ana from Acme": never "soy gerente de…"
        if re.match(
            r"\s*(?:[,.;:!)\n-]|$|(?:y|and|de|del|from|here|aqui|con|with|at|en|por)\b)", follower
        ):
            return name, end
    signature = _SIGNATURE.search(text.strip())
    if signature and capital_text(text):
        candidate = signature.group("name").strip()
        words = candidate.split()
        if (
            1 <= len(words) <= 3
            and all(w[:1].isupper() for w in words)
            and not any(_fold(w) in _NAME_STOP for w in words)
        ):
            return candidate, -1
    return "", -1


def _take_company(text: str, folded: str, pos: int) -> str:
    """A company name from `pos`: capitalised words, legal suffixes, inner connectors."""
    quoted = re.match(r"\s*[\"“«'](?P<q>[^\"”»'\n]{2,40})[\"”»']", text[pos:])
    if quoted:
        return quoted.group("q").strip()
    tokens = list(re.finditer(r"[^\s,;:!?()]+", text[pos : pos + 80]))
    taken: list[str] = []
    for index, token in enumerate(tokens):
        word = token.group().rstrip(".")
        raw = token.group()
        if index and text[pos + tokens[index - 1].end() : pos + token.start()].strip():
            break
        lower = _fold(raw)
        if taken and taken[-1].endswith(".") and lower not in _LEGAL:
            break  # "Acme S.A. de C.V. Les dejo…": the period also ended the sentence
        if taken and lower in _LEGAL:
            taken.append(raw)
            continue
        if taken and lower in _COMPANY_CONNECTORS:
            nxt = tokens[index + 1].group() if index + 1 < len(tokens) else ""
            if nxt[:1].isupper() or _fold(nxt) in _LEGAL:
                taken.append(raw)
                continue
            break
        if not word or not (_is_capitalized(word) or word[:1] in "&"):
            break
        if not taken and _fold(word) in _NAME_STOP:
            break
        if not taken and _fold(word) in _DEPARTMENTS:
            nxt = tokens[index + 1].group() if index + 1 < len(tokens) else ""
            if not nxt[:1].isupper():
                break  # "trabajo en Ventas", but "Logística Express"
        taken.append(raw)
        if raw.endswith(".") and _fold(raw) not in _LEGAL and not re.fullmatch(r"(?:\w\.)+", raw):
            break
        if len(taken) >= 6:
            break
    while taken and (_fold(taken[-1]) in _COMPANY_CONNECTORS):
        taken.pop()
    company = " ".join(taken)
    if company.endswith(".") and _fold(company.split()[-1]) not in _LEGAL:
        company = company[:-1]
    if not company or _fold(company).strip(". ") in _PLACES:
        return ""
    return company


_ACRONYM_HEAD = re.compile(rf"(?:{'|'.join(_ACRONYM_ROLES)})\b")
_ES_HEAD = re.compile(rf"(?:{_words_re(_ROLE_HEADS_ES)})\b")
_EN_HEAD = re.compile(
    rf"(?:(?:{_words_re(_EN_ROLE_MODIFIERS)})\s+){{0,2}}(?:{_words_re(_ROLE_HEADS_EN)})\b"
)
_DEPARTMENT_COMPLEMENT = re.compile(
    rf"\s+(?:(?:de|del|of|for|de la|de los)\s+)?(?P<d>{_words_re(_DEPARTMENTS)})\b"
)
_ROLE_ADJECTIVE = re.compile(rf"\s+(?:{_words_re(_ROLE_ADJECTIVES)})\b")


def _role_phrase(text: str, folded: str, pos: int, *, free: bool) -> tuple[str, int]:
    """A job title at `pos`: a known head ("gerente", "CTO", "marketing manager") and its
    department, or, after "trabajo como"/"I work as", the words up to punctuation."""
    rest = folded[pos:]
    acronym = _ACRONYM_HEAD.match(rest)
    head = acronym or _ES_HEAD.match(rest) or _EN_HEAD.match(rest)
    if head is None:
        if not free:
            return "", pos
        words = re.match(
            r"[^\W\d_]+(?:\s+[^\W\d_]+){0,3}?(?=\s*(?:[,.;:!?\n]|$|\s+(?:en|at|in|y|and|para|for|con|with)\b))",
            rest,
        )
        if not words:
            return "", pos
        return text[pos : pos + words.end()], pos + words.end()
    end = pos + head.end()
    while True:
        tail = folded[end:]
        complement = _DEPARTMENT_COMPLEMENT.match(tail)
        adjective = _ROLE_ADJECTIVE.match(tail)
        # "gerente de compras" but "gerente general de Logística Express": a capitalised
        # word after the department word makes it the company's name.
        next_word = re.match(r"\s+(\S)", text[end + complement.end() :]) if complement else None
        if (
            complement
            and (complement.group().strip().startswith(("de", "of", "for")) or acronym is None)
            and not (next_word and next_word.group(1).isupper())
        ):
            end += complement.end()
            continue
        if adjective:
            end += adjective.end()
            continue
        if re.match(r"\s+(?:de|of)\s+(?:sales|ventas|marketing|operations|growth)\b", tail):
            continue
        break
    return text[pos:end], end


def _find_role_and_company(text: str, folded: str, name_end: int) -> tuple[str, str]:
    role, role_end = "", -1
    for match in _ROLE_CUE.finditer(folded):
        free = match.group("cue") not in ("soy", "i'm", "im", "i am", "as", "como", "estoy como")
        phrase, end = _role_phrase(text, folded, match.end(), free=free)
        if phrase:
            role, role_end = phrase.strip(), end
            break
    if not role and name_end >= 0:
        after_name = re.match(r"\s*,\s*(?:(?:el|la|the|a|an)\s+)?", folded[name_end:])
        if after_name:
            phrase, end = _role_phrase(text, folded, name_end + after_name.end(), free=False)
            if phrase:
                role, role_end = phrase.strip(), end
    company = ""
    for match in _COMPANY_CUE.finditer(folded):
        company = _take_company(text, folded, match.end())
        if company:
            break
    if not company and role_end >= 0:
        joint = re.match(r"\s*(?:,\s*)?(?:en|de|del|at|of|for|with|con|@)\s+", folded[role_end:])
        if joint:
            company = _take_company(text, folded, role_end + joint.end())
    if not company and name_end >= 0:
        joint = re.match(r"\s*(?:,\s*)?(?:from|de|del|at|@)\s+", folded[name_end:])
        if joint:
            company = _take_company(text, folded, name_end + joint.end())
    return role, company


# --------------------------------------------------------------------------------------------
# Public interface


def extract(text: str, *, today: date, default_region: str = "") -> Extraction:
    """Read the lead data a visitor wrote in one message.

    `today` anchors relative timelines ("la próxima semana"); `default_region` (ISO 3166-1
    alpha-2, e.g. "MX", from the company or the visitor's time zone) lets phone numbers
    without a country code be read, and says which currency "pesos" and "$" mean. Without it
    such phones are left out and such currencies are "". Never raises on any text.
    """
    region = _region(default_region)
    folded = _fold(text)

    email_match = _EMAIL.search(text)
    email = email_match.group().lower().rstrip(".") if email_match else ""
    masked_spans = [m.span() for m in _EMAIL.finditer(text)]
    masked_spans += [m.span() for m in _URL.finditer(text) if not _WHATSAPP_LINK.search(m.group())]

    phone, phone_spans = _find_phone(text, folded, region)
    masked_spans += phone_spans
    masked = _mask(folded, masked_spans)

    candidates, timeline_spans = _find_timeline(text, masked)
    timeline = _choose_timeline(text, candidates, today)
    budget = _find_budget(_mask(masked, timeline_spans), region)

    name, name_end = _find_name(text, folded)
    role, company = _find_role_and_company(text, folded, name_end)
    return Extraction(
        email=email,
        phone=phone,
        budget=budget,
        timeline=timeline,
        name=name,
        role=role,
        company=company,
    )


_TIME_ZONE_REGIONS = {
    # Mexico
    **dict.fromkeys(
        (
            "America/Mexico_City", "America/Cancun", "America/Merida", "America/Monterrey",
            "America/Matamoros", "America/Chihuahua", "America/Ciudad_Juarez",
            "America/Ojinaga", "America/Mazatlan", "America/Bahia_Banderas",
            "America/Hermosillo", "America/Tijuana", "America/Ensenada", "America/Santa_Isabel",
            "Mexico/General", "Mexico/BajaNorte", "Mexico/BajaSur",
        ),
        "MX",
    ),
    "America/Bogota": "CO",
    **dict.fromkeys(
        (
            "America/Buenos_Aires", "America/Cordoba", "America/Catamarca", "America/Jujuy",
            "America/Mendoza", "America/Rosario",
        ),
        "AR",
    ),
    **dict.fromkeys(
        (
            "America/Santiago", "America/Punta_Arenas", "Pacific/Easter", "Chile/Continental",
            "Chile/EasterIsland",
        ),
        "CL",
    ),
    "America/Lima": "PE",
    "America/Caracas": "VE",
    "America/Guayaquil": "EC",
    "Pacific/Galapagos": "EC",
    "America/La_Paz": "BO",
    "America/Asuncion": "PY",
    "America/Montevideo": "UY",
    **dict.fromkeys(
        (
            "America/Sao_Paulo", "America/Bahia", "America/Fortaleza", "America/Recife",
            "America/Belem", "America/Manaus", "America/Cuiaba", "America/Campo_Grande",
            "America/Porto_Velho", "America/Boa_Vista", "America/Rio_Branco",
            "America/Eirunepe", "America/Maceio", "America/Araguaina", "America/Santarem",
            "America/Noronha", "America/Porto_Acre",
        ),
        "BR",
    ),
    "America/Guatemala": "GT",
    "America/El_Salvador": "SV",
    "America/Tegucigalpa": "HN",
    "America/Managua": "NI",
    "America/Costa_Rica": "CR",
    "America/Panama": "PA",
    "America/Belize": "BZ",
    "America/Havana": "CU",
    "Cuba": "CU",
    "America/Santo_Domingo": "DO",
    "America/Puerto_Rico": "PR",
    "America/Port-au-Prince": "HT",
    "America/Cayenne": "GF",
    "America/Paramaribo": "SR",
    "America/Guyana": "GY",
    "America/Martinique": "MQ",
    "America/Guadeloupe": "GP",
    **dict.fromkeys(("Europe/Madrid", "Atlantic/Canary", "Africa/Ceuta"), "ES"),
    **dict.fromkeys(
        (
            "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
            "America/Phoenix", "America/Anchorage", "America/Adak", "America/Boise",
            "America/Detroit", "America/Juneau", "America/Metlakatla", "America/Nome",
            "America/Sitka", "America/Yakutat", "America/Menominee", "America/Fort_Wayne",
            "America/Indianapolis", "America/Knox_IN", "America/Louisville", "Pacific/Honolulu",
            "EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT", "Navajo",
        ),
        "US",
    ),
}  # fmt: skip
_TIME_ZONE_PREFIXES = (
    ("America/Argentina/", "AR"),
    ("America/Indiana/", "US"),
    ("America/Kentucky/", "US"),
    ("America/North_Dakota/", "US"),
    ("US/", "US"),
    ("Brazil/", "BR"),
)


def region_for_time_zone(time_zone: str) -> str:
    """The ISO 3166-1 region of an IANA time zone, for the Latin American zones, Spain and the
    United States ("America/Mexico_City" -> "MX"); "" for any other or unknown zone."""
    zone = time_zone.strip()
    if zone in _TIME_ZONE_REGIONS:
        return _TIME_ZONE_REGIONS[zone]
    for prefix, region in _TIME_ZONE_PREFIXES:
        if zone.startswith(prefix):
            return region
    return ""
