"""The booking step: the assistant offers the company's next free weekly slots (or its booking
link), reads the visitor's choice in Spanish or English, books it on the lead and emails a
calendar invitation (.ics) to the visitor and to the company's team.

`booking_answer` is a `ReplyHooks.answer` hook (registered in LeadsConfig.ready): it returns
the reply text when the visitor asks for the next step, says yes to the assistant's offer of
it, or picks one of the slots offered; otherwise None and the assistant answers as usual.
State lives on the lead (`booking_offer`, `booking_at`, `booking_kind`, `booking_link`), its
BOOKED events, and `conversation.context["booking_reoffers"]` (how many times the same offer
was repeated, at most `MAX_REOFFERS`). See docs/leads/booking.md.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.mime.text import MIMEText
from email.utils import parseaddr

from django.conf import settings as django_settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dates import MONTHS, WEEKDAYS
from django.utils.translation import gettext, gettext_noop, override
from icalendar import Calendar, Event, vCalAddress, vText

from apps.accounts.models import MANAGER_ROLES, Membership
from apps.analytics.services import event_emit
from apps.assistants.industry_templates import NextStep, template_get
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import Conversation, Message
from apps.leads.models import Lead, LeadEvent, LeadSettings, Stage
from apps.leads.services import (
    _company_time_zone,
    lead_changed_broadcast,
    lead_for_reply,
    lead_rescore,
    lead_settings_get,
    lead_stage_set,
)

logger = logging.getLogger(__name__)

OFFER_SIZE = 3
MAX_REOFFERS = 2  # the same offer is repeated at most this many times, then the assistant talks
HORIZON_DAYS = 56  # how far ahead free slots are looked for
WIDE_SEARCH = 30  # free slots searched when the visitor names a time that was not offered
# Steps that are not a meeting: a "yes" to them is not a request for a slot, and a meeting
# asked for explicitly is a call.
_NOT_MEETINGS = frozenset({"quote", "purchase"})
_CALL = {
    "es": NextStep(kind="call", text="", label="la llamada"),
    "en": NextStep(kind="call", text="", label="the call"),
}


# --- What the assistant says --------------------------------------------------------------
# English msgids for the catalogue, with the Spanish used until the catalogue translates them
# (assistant replies follow the conversation's language, not the request's).

_TEXTS: dict[str, tuple[str, str]] = {
    "offer": (
        gettext_noop("Great! These are the next available times for %(step)s (%(zone)s time):"),
        "¡Perfecto! Estos son los próximos horarios disponibles para %(step)s (hora de %(zone)s):",
    ),
    "offer_end": (
        gettext_noop("Which one works best for you? Just reply with the number."),
        "¿Cuál te queda mejor? Respóndeme con el número.",
    ),
    "reoffer": (
        gettext_noop(
            "Sorry, I didn't catch which time you prefer. These are the options for "
            "%(step)s (%(zone)s time):"
        ),
        "Perdona, no me quedó claro qué horario prefieres. Estas son las opciones para "
        "%(step)s (hora de %(zone)s):",
    ),
    "narrowed": (
        gettext_noop("These are the times that match for %(step)s (%(zone)s time):"),
        "Estos son los horarios que coinciden para %(step)s (hora de %(zone)s):",
    ),
    "unavailable": (
        gettext_noop(
            "I don't have that time available. These are the options for %(step)s (%(zone)s time):"
        ),
        "No tengo disponible ese horario. Estas son las opciones para %(step)s (hora de %(zone)s):",
    ),
    "taken": (
        gettext_noop(
            "Sorry, that time was just taken. These are the next available times for "
            "%(step)s (%(zone)s time):"
        ),
        "Lo siento, ese horario se acaba de ocupar. Estos son los próximos horarios "
        "disponibles para %(step)s (hora de %(zone)s):",
    ),
    "more": (
        gettext_noop("No problem. These are other available times for %(step)s (%(zone)s time):"),
        "Sin problema. Estos son otros horarios disponibles para %(step)s (hora de %(zone)s):",
    ),
    "link": (
        gettext_noop("Great! You can book %(step)s at the time that suits you best here: %(link)s"),
        "¡Perfecto! Puedes agendar %(step)s en el horario que mejor te quede aquí: %(link)s",
    ),
    "booked": (
        gettext_noop("Done, I booked %(step)s for %(when)s (%(zone)s time)."),
        "Listo, agendé %(step)s para el %(when)s (hora de %(zone)s).",
    ),
    "invite_sent": (
        gettext_noop("I sent the calendar invitation to %(email)s."),
        "Te envié la invitación de calendario a %(email)s.",
    ),
    "ask_email": (
        gettext_noop("What email should I send the calendar invitation to?"),
        "¿A qué correo te envío la invitación de calendario?",
    ),
    "invite_later": (
        gettext_noop("Thanks! I sent the calendar invitation for %(step)s to %(email)s."),
        "¡Gracias! Te envié la invitación de calendario para %(step)s a %(email)s.",
    ),
    "already": (
        gettext_noop(
            "You already have a booking: %(step)s on %(when)s (%(zone)s time). Is there "
            "anything else I can help you with?"
        ),
        "Ya tienes una reserva: %(step)s el %(when)s (hora de %(zone)s). ¿Te ayudo con algo más?",
    ),
    "declined": (
        gettext_noop("No problem. Whenever you want to book %(step)s, just tell me."),
        "Sin problema. Cuando quieras agendar %(step)s, solo dime.",
    ),
    "at": (gettext_noop("at"), "a las"),
    "zone": (gettext_noop("%(zone)s time"), "hora de %(zone)s"),
    # Emails.
    "subject_visitor": (
        gettext_noop("Invitation: %(step)s with %(company)s, %(when)s"),
        "Invitación: %(step)s con %(company)s, %(when)s",
    ),
    "subject_team": (
        gettext_noop("Booked: %(step)s with %(visitor)s, %(when)s"),
        "Agendado: %(step)s con %(visitor)s, %(when)s",
    ),
    "hello": (gettext_noop("Hi %(name)s,"), "Hola %(name)s:"),
    "hello_anonymous": (gettext_noop("Hi,"), "Hola:"),
    "visitor_intro": (
        gettext_noop("Your booking with %(company)s is confirmed: %(step)s."),
        "Tu reserva con %(company)s está confirmada: %(step)s.",
    ),
    "visitor_end": (
        gettext_noop("The invitation is attached: add it to your calendar."),
        "Adjuntamos la invitación: agrégala a tu calendario.",
    ),
    "team_intro": (
        gettext_noop("The assistant booked %(step)s with a lead."),
        "El asistente agendó %(step)s con un lead.",
    ),
    "when": (gettext_noop("When"), "Cuándo"),
    "duration": (gettext_noop("Duration"), "Duración"),
    "minutes": (gettext_noop("%(minutes)s minutes"), "%(minutes)s minutos"),
    "lead": (gettext_noop("Lead"), "Lead"),
    "email": (gettext_noop("Email"), "Correo"),
    "phone": (gettext_noop("Phone"), "Teléfono"),
    "conversation": (gettext_noop("Conversation"), "Conversación"),
}

# Spanish names of the time zones of the first markets; others read "Region/City" as "City".
_ZONE_NAMES_ES = {
    "America/Bogota": "Bogotá",
    "America/Mexico_City": "Ciudad de México",
    "America/Sao_Paulo": "São Paulo",
    "America/Panama": "Panamá",
    "America/Asuncion": "Asunción",
    "America/Havana": "La Habana",
}
_ZONE_NAMES_EN = {"America/Bogota": "Bogotá", "America/Sao_Paulo": "São Paulo"}


def _say(lang: str, key: str, **params: object) -> str:
    msgid, spanish = _TEXTS[key]
    with override(lang):
        text = gettext(msgid)
    if lang == "es" and text == msgid:
        text = spanish
    return text % params if params else text


def _lang(language: str) -> str:
    lang = (language or "").lower()[:2]
    return lang if lang in ("es", "en") else "es"


def _zone_name(zone: str, lang: str) -> str:
    names = _ZONE_NAMES_ES if lang == "es" else _ZONE_NAMES_EN
    return names.get(zone) or zone.rsplit("/", 1)[-1].replace("_", " ")


def _time_text(at: datetime, lang: str) -> str:
    if lang == "en":
        hour = at.hour % 12 or 12
        return f"{hour}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"
    return f"{at.hour}:{at.minute:02d}"


def _day_text(at: datetime, lang: str) -> str:
    with override(lang):
        weekday, month = str(WEEKDAYS[at.weekday()]), str(MONTHS[at.month])
    if lang == "en":
        return f"{weekday}, {month} {at.day}"
    return f"{weekday.lower()} {at.day} de {month.lower()}"


def _when_text(at: datetime, lang: str) -> str:
    """'jueves 3 de diciembre a las 10:00', 'Thursday, December 3 at 10:00 AM'."""
    # Spanish says "a la 1:00" but "a las 10:00": one msgid cannot carry both.
    at_word = ("a la" if at.hour == 1 else "a las") if lang == "es" else _say(lang, "at")
    return f"{_day_text(at, lang)} {at_word} {_time_text(at, lang)}"


def _item_text(at: datetime, lang: str) -> str:
    return f"{_day_text(at, lang)}, {_time_text(at, lang)}"


def _title(label: str) -> str:
    """'la prueba de manejo' -> 'Prueba de manejo', 'the demo' -> 'Demo'."""
    noun = re.sub(r"^(la|el|los|las|tu|su|the|your)\s+", "", label.strip(), flags=re.I)
    return noun[:1].upper() + noun[1:]


# --- Slots ----------------------------------------------------------------------------------


def _weekly_slots(raw: object) -> list[tuple[int, time]]:
    """The valid entries of LeadSettings.booking_slots, sorted; malformed ones are skipped."""
    slots: set[tuple[int, time]] = set()
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            weekday = int(entry["weekday"])
            at = time.fromisoformat(str(entry["time"]))
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= weekday <= 6:
            slots.add((weekday, at.replace(second=0, microsecond=0, tzinfo=None)))
    return sorted(slots)


def _taken(
    start: datetime, end: datetime, minutes: int, exclude: int | None = None
) -> list[datetime]:
    """Meetings already booked (any lead) that could overlap [start, end)."""
    length = timedelta(minutes=minutes)
    rows = Lead.objects.filter(booking_at__gt=start - length, booking_at__lt=end + length)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    return [at for at in rows.values_list("booking_at", flat=True) if at is not None]


def _overlaps(slot: datetime, taken: Sequence[datetime], minutes: int) -> bool:
    length = timedelta(minutes=minutes)
    return any(abs(slot - other) < length for other in taken)


def booking_slots_next(
    *, settings: LeadSettings, now: datetime, count: int = OFFER_SIZE
) -> list[datetime]:
    """The next `count` free weekly slots of the company (in its time zone), starting at least
    `booking_notice_hours` after `now` and within HORIZON_DAYS; a slot that overlaps a meeting
    another lead booked is skipped (one meeting at a time)."""
    weekly = _weekly_slots(settings.booking_slots)
    if not weekly or count <= 0:
        return []
    zone = zoneinfo.ZoneInfo(_company_time_zone())
    earliest = now + timedelta(hours=settings.booking_notice_hours)
    first_day = earliest.astimezone(zone).date()
    last_day = first_day + timedelta(days=HORIZON_DAYS)
    minutes = max(settings.booking_minutes, 1)
    taken = _taken(earliest, datetime.combine(last_day, time.max, tzinfo=zone), minutes)
    found: list[datetime] = []
    day = first_day
    while day <= last_day and len(found) < count:
        for weekday, at in weekly:
            if weekday != day.weekday():
                continue
            # Through UTC and back: a wall time skipped by a DST change moves to a real one.
            slot = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
            slot = slot.astimezone(zone)
            if slot >= earliest and not _overlaps(slot, taken, minutes):
                found.append(slot)
                if len(found) == count:
                    break
        day += timedelta(days=1)
    return found


# --- Reading the visitor's words ------------------------------------------------------------


def _fold(text: str) -> str:
    """Lowercase without accents; only letters, digits and ':' kept ("¿A las 10:30?" ->
    "a las 10:30")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"(?<=\d)\.(?=\d\d\b)", ":", plain)  # 10.30
    plain = re.sub(r"\b([ap])\s?\.?\s?m\b\.?", r"\1m", plain)  # a.m., p. m.
    return re.sub(r"[^a-z0-9:#/]+", " ", plain).strip()


_WEEKDAY_NAMES = {
    "lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5,
    "domingo": 6, "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2,
    "wed": 2, "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sunday": 6,
}  # fmt: skip
_MONTH_NAMES = {
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11,
    "diciembre": 12, "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12, "dic": 12, "ene": 1, "ago": 8,
}  # fmt: skip
_ORDINALS = {
    "primer": 1, "primero": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercer": 3,
    "tercero": 3, "tercera": 3, "first": 1, "second": 2, "third": 3, "1st": 1, "2nd": 2,
    "3rd": 3, "ultimo": -1, "ultima": -1, "last": -1,
}  # fmt: skip
_NUMBER_WORDS = {"uno": 1, "dos": 2, "tres": 3, "one": 1, "two": 2, "three": 3}
_WEEKDAY_RE = "|".join(sorted(_WEEKDAY_NAMES, key=len, reverse=True))
_MONTH_RE = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
_ORDINAL_RE = "|".join(sorted(_ORDINALS, key=len, reverse=True))

_NUMBER_PICK = re.compile(
    r"\b(?:opcion|option|numero|number|num|nro)\s*#?\s*(\d|uno|dos|tres|one|two|three)\b"
    r"|#\s*(\d)\b"
)
_BARE_PICK = re.compile(
    r"^(?:(?:me quedo con|quiero|prefiero|elijo|escojo|me sirve|mejor|dame|vamos con|"
    r"i ll take|ill take|i choose|i pick|i prefer|lets do|let s do|go with|take)\s+)?"
    r"(?:(?:la|el|lo|the)\s+)?(\d|uno|dos|tres|one|two|three)"
    r"(?:\s+(?:one|porfa|por favor|please|gracias|thanks|thank you|esa|ese|that one))*$"
)
_ORDINAL_PICK = re.compile(rf"\b({_ORDINAL_RE})\b")
_ANY_PICK = re.compile(
    r"\b(cualquiera|la que sea|el que sea|any of them|any one|anyone works|any is fine|"
    r"either|whichever|la mas pronto|"
    r"lo mas pronto|the earliest|la primera disponible|as soon as possible)\b"
)
_WEEKDAY = re.compile(rf"\b({_WEEKDAY_RE})\b")
_WEEKDAY_DAY = re.compile(rf"\b(?:{_WEEKDAY_RE})\s+(\d{{1,2}})\b(?!\s*(?::|am|pm|h\b|hrs))")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:de\s+|of\s+)?({_MONTH_RE})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*(?::|am|pm))")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})\b")
_TOMORROW = re.compile(r"(?<!la )(?<!de la )\b(manana|tomorrow)\b(?! (?:en la|por la) manana)")
_AFTER_TOMORROW = re.compile(r"\b(pasado manana|day after tomorrow)\b")
_TODAY = re.compile(r"\b(hoy|today)\b")
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\s*(am|pm)?\b")
_HOUR_MARKED = re.compile(r"\b(\d{1,2})\s*(am|pm|hrs|hr|h)\b")
_HOUR_AFTER = re.compile(
    r"\b(?:a las|a la|las|at|around|tipo|sobre las|como a las)\s+(\d{1,2}|una|dos|tres|cuatro|"
    r"cinco|seis|siete|ocho|nueve|diez|once|doce|one|two|three|four|five|six|seven|eight|"
    r"nine|ten|eleven|twelve)\b(?!\s*(?:de\s+)?(?:" + _MONTH_RE + r")\b)"
)
_HOUR_WORDS = {
    "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
    "nueve": 9, "diez": 10, "once": 11, "doce": 12, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12,
}  # fmt: skip
_NOON = re.compile(r"\b(mediodia|medio dia|noon)\b")
_MORNING = re.compile(r"\b((?:en|por|de) la manana|morning|am)\b")
_AFTERNOON = re.compile(r"\b((?:en|por|de) la tarde|afternoon|pm)\b")
_EVENING = re.compile(r"\b((?:en|por|de) la noche|evening|tonight)\b")

_NONE_OF_THESE = re.compile(
    r"\b(ninguno|ninguna|ningun|otro horario|otros horarios|otra hora|otro dia|otros dias|"
    r"otra fecha|otras fechas|none|other times|other time|another time|different time|"
    r"another day|other days|no me (?:sirve|sirven|queda|quedan|funciona|funcionan)|"
    r"no puedo|doesn t work|don t work|dont work|doesnt work|can t make|cant make)\b"
)
_DECLINE = re.compile(
    r"^(no|nop|nel|ahora no|no gracias|mejor no|por ahora no|todavia no|aun no|no thanks|"
    r"not now|no thank you|nah|maybe later|mas adelante|luego|later)\b"
)
_AFFIRMATIVE = re.compile(
    r"^(si|sip|dale|claro|perfecto|ok|okay|okey|de una|va|vale|por supuesto|me parece|"
    r"listo|genial|excelente|yes|yeah|yep|yup|sure|of course|sounds good|great|perfect|"
    r"absolutely|definitely|let s do it|lets do it)\b"
)
# Asking for the next step in so many words (any step kind).
_WANTS_STEP = re.compile(
    r"\b("
    r"agendar|agendemos|agendamos|agenda(?:r|me|nos)?\s+(?:una|un|la|el)|agendo|"
    r"(?:reservar|reservemos|programar|coordinar|sacar|separar|pedir|solicitar|apartar)\s+"
    r"(?:una?\s+)?(?:cita|hora|turno|demo|demostracion|visita|llamada|reunion|videollamada|"
    r"prueba de manejo|test drive|asesoria)|"
    r"(?:quiero|quisiera|necesito|me gustaria)\s+(?:una?\s+)?(?:cita|demo|demostracion|visita|"
    r"llamada|reunion|videollamada|prueba de manejo)|"
    r"(?:book|schedule|set up|arrange|request)\s+(?:a|an|the|my)?\s*(?:demo|call|meeting|"
    r"visit|appointment|test drive|viewing|consultation|video call|time)|"
    r"(?:can|could|shall)\s+we\s+(?:meet|talk|have a call)|let s meet|lets meet|"
    r"make an appointment|i d like a (?:demo|call|meeting|visit)|i want a (?:demo|call|meeting|"
    r"visit)"
    r")\b"
)
_NEGATED = re.compile(r"\b(no quiero|no necesito|no me gustaria|don t want|dont want|not now)\b")
# Words that say a message is about the booking at all (otherwise, with an offer open, the
# visitor has moved on and the assistant answers).
_ABOUT_BOOKING = re.compile(
    r"\b(horario|horarios|hora|dia|fecha|cita|agenda|agendar|opcion|opciones|turno|reunion|"
    r"llamada|demo|visita|time|times|slot|slots|day|date|option|options|meeting|call|"
    r"appointment|schedule|book|cualquiera|any|whichever|ese|esa|that one|this one)\b"
)


@dataclass(frozen=True)
class Pick:
    """What a message says about when: an option number, a day, a time, a part of the day."""

    index: int | None = None  # 1-based; -1 is the last one
    weekday: int | None = None
    day: date | None = None
    hour: int | None = None
    minute: int | None = None
    meridiem: str = ""  # "am" | "pm" | "" (unknown)
    part: str = ""  # "morning" | "afternoon" | "evening"
    any: bool = False

    @property
    def when(self) -> bool:
        return any(v is not None for v in (self.weekday, self.day, self.hour)) or bool(self.part)

    @property
    def anything(self) -> bool:
        return self.index is not None or self.when or self.any


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBER_WORDS.get(token, _HOUR_WORDS.get(token, 0))


def _date_near(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today - timedelta(days=1):
            return candidate
    return None


def booking_pick_read(text: str, *, today: date, lang: str, options: int) -> Pick:
    """Read which slot a message picks: "2", "la 2", "opción 3", "the second one", "el
    jueves", "Thursday", "3 de diciembre", "Dec 3", "a las 10", "10am", "en la tarde"…
    A bare number up to `options` is an option, above it a day of the month."""
    norm = _fold(text)
    values: dict[str, object] = {}
    match = _NUMBER_PICK.search(norm) or _BARE_PICK.match(norm)
    if match:
        number = _number(next(g for g in match.groups() if g))
        if 1 <= number <= options:
            values["index"] = number
        elif match.re is _BARE_PICK and number:
            values["day_of_month"] = number
    short = len(norm.split()) <= 6  # "first, what does it cost?" picks nothing
    if "index" not in values and short and (found := _ORDINAL_PICK.search(norm)):
        values["index"] = _ORDINALS[found.group(1)]
    if _ANY_PICK.search(norm):
        values["any"] = True
    if found := _WEEKDAY.search(norm):
        values["weekday"] = _WEEKDAY_NAMES[found.group(1)]
    day: date | None = None
    if found := _DAY_MONTH.search(norm):
        day = _date_near(today, _MONTH_NAMES[found.group(2)], int(found.group(1)))
    elif found := _MONTH_DAY.search(norm):
        day = _date_near(today, _MONTH_NAMES[found.group(1)], int(found.group(2)))
    elif found := _NUMERIC_DATE.search(norm):
        first, second = int(found.group(1)), int(found.group(2))
        day_n, month_n = (second, first) if lang == "en" else (first, second)
        if 1 <= month_n <= 12:
            day = _date_near(today, month_n, day_n)
    elif found := _WEEKDAY_DAY.search(norm):
        values["day_of_month"] = int(found.group(1))
    elif _AFTER_TOMORROW.search(norm):
        day = today + timedelta(days=2)
    elif _TOMORROW.search(norm):
        day = today + timedelta(days=1)
    elif _TODAY.search(norm):
        day = today
    if day is not None:
        values["day"] = day
    hour = minute = None
    meridiem = ""
    if found := _CLOCK.search(norm):
        hour, minute, meridiem = int(found.group(1)), int(found.group(2)), found.group(3) or ""
    elif found := _HOUR_MARKED.search(norm):
        hour, mark = int(found.group(1)), found.group(2)
        meridiem = mark if mark in ("am", "pm") else ""
        if mark in ("h", "hr", "hrs"):
            meridiem = "24h"
    elif found := _HOUR_AFTER.search(norm):
        hour = _number(found.group(1)) or None
    elif _NOON.search(norm):
        hour, minute, meridiem = 12, 0, "24h"
    if hour is not None and not 0 <= hour <= 23:
        hour = minute = None
    part = ""
    if _EVENING.search(norm):
        part = "evening"
    elif _AFTERNOON.search(norm):
        part = "afternoon"
    elif _MORNING.search(norm):
        part = "morning"
    if not meridiem and part:
        meridiem = "am" if part == "morning" else "pm"
    return Pick(
        index=values.get("index"),  # type: ignore[arg-type]
        weekday=values.get("weekday"),  # type: ignore[arg-type]
        day=_day_of_month(today, values),
        hour=hour,
        minute=minute,
        meridiem=meridiem,
        part=part if hour is None else "",
        any=bool(values.get("any")),
    )


def _day_of_month(today: date, values: dict[str, object]) -> date | None:
    if isinstance(values.get("day"), date):
        return values["day"]  # type: ignore[return-value]
    number = values.get("day_of_month")
    if not isinstance(number, int) or not 1 <= number <= 31:
        return None
    month = today.month if number >= today.day else today.month % 12 + 1
    return _date_near(today, month, number)


def _hour_matches(slot: datetime, pick: Pick) -> bool:
    assert pick.hour is not None
    if pick.minute is not None and slot.minute != pick.minute:
        return False
    hour = pick.hour
    if pick.meridiem == "pm" and hour < 12:
        return slot.hour == hour + 12
    if pick.meridiem == "am":
        return slot.hour == (0 if hour == 12 else hour)
    if pick.meridiem == "24h" or hour > 12:
        return slot.hour == hour
    # "a las 3": 3:00 or 15:00, whichever is offered.
    return slot.hour in (hour, hour + 12)


def booking_pick_filter(slots: Sequence[datetime], pick: Pick) -> list[datetime]:
    """The slots (local datetimes, in order) that agree with everything the pick says."""
    found = list(slots)
    if pick.index is not None:
        position = len(slots) - 1 if pick.index == -1 else pick.index - 1
        found = [slots[position]] if 0 <= position < len(slots) else []
    if pick.weekday is not None:
        found = [s for s in found if s.weekday() == pick.weekday]
        if pick.day is None and found:  # "el lunes": the next Monday, not every Monday
            found = [s for s in found if s.date() == found[0].date()]
    if pick.day is not None:
        found = [s for s in found if s.date() == pick.day]
    if pick.hour is not None:
        found = [s for s in found if _hour_matches(s, pick)]
    if pick.part == "morning":
        found = [s for s in found if s.hour < 12]
    elif pick.part == "afternoon":
        found = [s for s in found if 12 <= s.hour < 19]
    elif pick.part == "evening":
        found = [s for s in found if s.hour >= 18]
    if pick.any and pick.index is None and found:
        found = found[:1]
    return found


# --- Booking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    lead: Lead
    conversation: Conversation
    visitor: Message
    settings: LeadSettings
    lang: str
    step: NextStep  # in the visitor's language; the meeting booked (never quote/purchase)
    offered_step: NextStep  # the template's own next step, to read a "yes" to its offer
    offered_step_key: str  # the industry template's key
    zone: str
    company_name: str
    now: datetime


def _step_for(template_key: str, lang: str) -> tuple[NextStep, NextStep]:
    step = template_get(template_key, lang).next_step
    return (_CALL[lang] if step.kind in _NOT_MEETINGS else step), step


def _local(iso: str, zone: zoneinfo.ZoneInfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(zone)


def _offer_of(ctx: _Context) -> list[datetime]:
    """The lead's open offer, without slots that are no longer ahead."""
    zone = zoneinfo.ZoneInfo(ctx.zone)
    slots = [_local(str(iso), zone) for iso in ctx.lead.booking_offer or []]
    return [s for s in slots if s is not None and s > ctx.now]


def _reoffers(conversation: Conversation) -> int:
    count = (conversation.context or {}).get("booking_reoffers", 0)
    return count if isinstance(count, int) else 0


def _reoffers_set(conversation: Conversation, count: int) -> None:
    if _reoffers(conversation) == count:
        return
    with transaction.atomic():
        row = Conversation.objects.select_for_update().get(pk=conversation.pk)
        row.context = {**(row.context or {}), "booking_reoffers": count}
        Conversation.objects.filter(pk=row.pk).update(context=row.context)
    conversation.context = row.context


def _offer_save(ctx: _Context, slots: Sequence[datetime]) -> None:
    offer = [s.isoformat() for s in slots]
    Lead.objects.filter(pk=ctx.lead.pk).update(booking_offer=offer, updated_at=timezone.now())
    ctx.lead.booking_offer = offer


def _offer_text(ctx: _Context, key: str, slots: Sequence[datetime]) -> str:
    zone = _zone_name(ctx.zone, ctx.lang)
    lines = [_say(ctx.lang, key, step=ctx.step.label, zone=zone)]
    lines += [f"{n}. {_item_text(s, ctx.lang)}" for n, s in enumerate(slots, start=1)]
    lines.append(_say(ctx.lang, "offer_end"))
    return "\n".join(lines)


def _offer(ctx: _Context, key: str, slots: Sequence[datetime], *, reoffer: bool) -> str:
    _offer_save(ctx, slots)
    _reoffers_set(ctx.conversation, _reoffers(ctx.conversation) + 1 if reoffer else 0)
    return _offer_text(ctx, key, slots)


class SlotTaken(Exception):
    """Another lead booked an overlapping meeting first."""


def booking_book(
    *, lead: Lead, slot: datetime, kind: str, language: str, message: Message | None = None
) -> Lead:
    """Book `slot` for the lead: `booking_at`/`booking_kind` set, the offer cleared, stage
    meeting_booked, a BOOKED event (with what the invitation needs), re-scored; the calendar
    invitations go out after commit when the lead's email is known (`booking_invite_pending`).
    Bookings of one company are serialized on its LeadSettings row; raises SlotTaken when the
    slot overlaps a meeting another lead booked."""
    with transaction.atomic():
        settings = LeadSettings.objects.select_for_update().get(pk=lead_settings_get().pk)
        minutes = max(settings.booking_minutes, 1)
        if _overlaps(slot, _taken(slot, slot, minutes, exclude=lead.pk), minutes):
            raise SlotTaken(slot.isoformat())
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        lead.booking_at, lead.booking_kind, lead.booking_offer = slot, kind, []
        lead.save(update_fields=["booking_at", "booking_kind", "booking_offer", "updated_at"])
        conversation_id = message.conversation_id if message is not None else None
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.BOOKED,
            field="booking_at",
            new=slot.isoformat(),
            conversation_id=conversation_id,
            message_id=message.pk if message is not None else None,
            data={
                "at": slot.astimezone(UTC).isoformat(),
                "kind": kind,
                "minutes": minutes,
                "language": _lang(language),
                "uid": booking_uid(lead, slot),
            },
        )
        lead_stage_set(lead=lead, stage=Stage.MEETING_BOOKED)
        lead_rescore(lead=lead, conversation_id=conversation_id, settings=settings)
        event_emit(kind="lead.booked", conversation_id=conversation_id, lead_id=lead.pk,
                   step=kind, at=slot.isoformat())  # fmt: skip
        lead_id = lead.pk
        transaction.on_commit(lambda: _invite_after_commit(lead_id))
    lead_changed_broadcast(lead)
    return lead


def _invite_after_commit(lead_id: int) -> None:
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is not None:
        try:
            booking_invite_pending(lead)
        except Exception:
            logger.exception("could not send the booking invitations of lead %s", lead_id)


def _link_send(ctx: _Context) -> str:
    link = ctx.settings.booking_link
    with transaction.atomic():
        if ctx.lead.booking_link != link:
            ctx.lead.booking_link = link
            ctx.lead.save(update_fields=["booking_link", "updated_at"])
        LeadEvent.objects.create(
            lead=ctx.lead,
            kind=LeadEvent.Kind.BOOKED,
            field="booking_link",
            new=link,
            conversation_id=ctx.conversation.pk,
            message_id=ctx.visitor.pk,
            data={"link": link, "kind": ctx.step.kind},
        )
    lead_changed_broadcast(ctx.lead)
    return _say(ctx.lang, "link", step=ctx.step.label, link=link)


def _book(ctx: _Context, slot: datetime) -> str | None:
    try:
        lead = booking_book(
            lead=ctx.lead, slot=slot, kind=ctx.step.kind, language=ctx.lang, message=ctx.visitor
        )
    except SlotTaken:
        fresh = booking_slots_next(settings=ctx.settings, now=ctx.now)
        if fresh:
            return _offer(ctx, "taken", fresh, reoffer=True)
        return _link_send(ctx) if ctx.settings.booking_link else _give_up(ctx)
    _reoffers_set(ctx.conversation, 0)
    zone = _zone_name(ctx.zone, ctx.lang)
    text = _say(ctx.lang, "booked", step=ctx.step.label, when=_when_text(slot, ctx.lang), zone=zone)
    if lead.email:
        return f"{text} {_say(ctx.lang, 'invite_sent', email=lead.email)}"
    return f"{text} {_say(ctx.lang, 'ask_email')}"


def _choose(ctx: _Context, offer: list[datetime]) -> str | None:
    """The visitor's answer while an offer is open."""
    today = ctx.now.astimezone(zoneinfo.ZoneInfo(ctx.zone)).date()
    pick = booking_pick_read(ctx.visitor.text, today=today, lang=ctx.lang, options=len(offer))
    norm = _fold(ctx.visitor.text)
    if pick.anything:
        matches = booking_pick_filter(offer, pick)
        if len(matches) == 1:
            return _book(ctx, matches[0])
        if len(matches) > 1:
            return _reoffer(ctx, "narrowed", matches[:OFFER_SIZE])
        if pick.when:
            # A time that was not offered: any free slot that fits.
            wide = booking_slots_next(settings=ctx.settings, now=ctx.now, count=WIDE_SEARCH)
            fits = booking_pick_filter(wide, _without_index(pick))
            exact = pick.hour is not None and (pick.day is not None or pick.weekday is not None)
            if len(fits) == 1 and exact:
                return _book(ctx, fits[0])
            if fits:
                return _reoffer(ctx, "narrowed", fits[:OFFER_SIZE])
            return _reoffer(ctx, "unavailable", offer)
        return _reoffer(ctx, "reoffer", offer)
    if _DECLINE.match(norm) and not _NONE_OF_THESE.search(norm):
        _offer_save(ctx, [])
        _reoffers_set(ctx.conversation, 0)
        return _say(ctx.lang, "declined", step=ctx.step.label)
    if _NONE_OF_THESE.search(norm):
        later = [
            s
            for s in booking_slots_next(settings=ctx.settings, now=ctx.now, count=WIDE_SEARCH)
            if s > max(offer)
        ][:OFFER_SIZE]
        if later:
            return _reoffer(ctx, "more", later)
        if ctx.settings.booking_link:
            _offer_save(ctx, [])
            return _link_send(ctx)
        return _give_up(ctx)
    if _AFFIRMATIVE.match(norm) and "?" not in ctx.visitor.text:
        if len(offer) == 1:
            return _book(ctx, offer[0])
        return _reoffer(ctx, "reoffer", offer)
    if "?" in ctx.visitor.text or not _ABOUT_BOOKING.search(norm):
        return None  # the visitor moved on; the offer stays open for a later choice
    return _reoffer(ctx, "reoffer", offer)


def _without_index(pick: Pick) -> Pick:
    return Pick(
        weekday=pick.weekday, day=pick.day, hour=pick.hour, minute=pick.minute,
        meridiem=pick.meridiem, part=pick.part,
    )  # fmt: skip


def _reoffer(ctx: _Context, key: str, slots: Sequence[datetime]) -> str | None:
    if _reoffers(ctx.conversation) >= MAX_REOFFERS:
        return _give_up(ctx)
    return _offer(ctx, key, slots, reoffer=True)


def _give_up(ctx: _Context) -> str | None:
    """Close the offer and let the assistant answer (None)."""
    _offer_save(ctx, [])
    _reoffers_set(ctx.conversation, 0)
    return None


def _last_assistant_text(visitor: Message) -> str:
    text = (
        Message.objects.filter(
            conversation_id=visitor.conversation_id, id__lt=visitor.pk, role=Message.Role.ASSISTANT
        )
        .exclude(status__in=[Message.Status.DISCARDED, Message.Status.FAILED])
        .order_by("-id")
        .values_list("text", flat=True)
        .first()
    )
    return text or ""


# The model's own words for offering a meeting, in its last question.
_OFFERS_MEETING = re.compile(
    r"\b(agendar|agendemos|agende|reservar|programar|coordinar|schedule|book|set up|arrange)\b"
)


def _wants_step(ctx: _Context) -> bool:
    """Asked for in so many words, or a short yes right after the assistant offered it (the
    template's sentence, or a question of the model's proposing to schedule)."""
    norm = _fold(ctx.visitor.text)
    if _NEGATED.search(norm):
        return False
    if _WANTS_STEP.search(norm):
        return True
    if not _AFFIRMATIVE.match(norm) or "?" in ctx.visitor.text or len(norm.split()) > 8:
        return False
    if ctx.offered_step.kind in _NOT_MEETINGS:
        return False  # "yes" to a quote or an order is not a meeting
    raw = _last_assistant_text(ctx.visitor)
    last = _fold(raw)
    if not last:
        return False
    key = ctx.offered_step_key
    if any(_fold(template_get(key, lang).next_step.text) in last for lang in ("es", "en")):
        return True
    questions = re.findall(r"[^.!?\n]*\?", raw)
    return bool(questions) and bool(_OFFERS_MEETING.search(_fold(questions[-1])))


@dataclass(frozen=True)
class _Company:
    name: str  # as the assistant calls it
    template_key: str
    language: str  # the assistant's first language
    team_language: str  # the company's (dashboard) language


def _company() -> _Company:
    profile = assistant_profile_get()
    tenant = connection.tenant  # type: ignore[attr-defined]
    language = _lang(profile.default_language)
    return _Company(
        name=profile.company_display_name or tenant.name,
        template_key=template_get(profile.industry_template, language).key,
        language=language,
        team_language=_lang(getattr(tenant, "language", "") or language),
    )


def _context(visitor: Message, lead: Lead) -> _Context:
    conversation = visitor.conversation
    company = _company()
    lang = _lang(conversation.language or company.language)
    step, offered = _step_for(company.template_key, lang)
    return _Context(
        lead=lead,
        conversation=conversation,
        visitor=visitor,
        settings=lead_settings_get(),
        lang=lang,
        step=step,
        offered_step=offered,
        offered_step_key=company.template_key,
        zone=_company_time_zone(),
        company_name=company.name,
        now=timezone.now(),
    )


def booking_answer(visitor: Message) -> str | None:
    """The ReplyHooks.answer hook: a reply about the booking step, or None.

    - An offer is open: the visitor's pick (number, weekday, date, time) is booked and
      confirmed; an unclear answer gets the offer again (at most MAX_REOFFERS times); a
      message about something else gets None (the offer stays open).
    - The lead is booked and the visitor just gave the email the confirmation asked for: the
      invitations go out and the reply says so.
    - The visitor asks for the next step (or says yes to the assistant's offer of it): the next
      free slots as a numbered list, else the booking link; a lead already booked is reminded
      of its booking. A company with neither slots nor link gets None."""
    lead = lead_for_reply(visitor.conversation_id)
    if lead is None:
        return None
    norm = _fold(visitor.text)
    if not (
        lead.booking_offer
        or lead.booking_at is not None
        or _WANTS_STEP.search(norm)
        or _AFFIRMATIVE.match(norm)
    ):
        return None  # the common case, without loading the company's settings
    ctx = _context(visitor, lead)
    booked = lead.booking_at is not None and lead.booking_at > ctx.now
    offer = [] if booked else _offer_of(ctx)
    if offer:
        return _choose(ctx, offer)
    if lead.booking_offer:
        _give_up(ctx)  # every slot of the old offer has passed
    if booked and lead.email and lead.email in visitor.text.lower() and _invite_unsent(lead):
        booking_invite_pending(lead)
        return _say(ctx.lang, "invite_later", step=ctx.step.label, email=lead.email)
    if not _wants_step(ctx):
        return None
    if booked:
        assert lead.booking_at is not None
        at = lead.booking_at.astimezone(zoneinfo.ZoneInfo(ctx.zone))
        zone = _zone_name(ctx.zone, ctx.lang)
        return _say(ctx.lang, "already", step=ctx.step.label, when=_when_text(at, ctx.lang),
                    zone=zone)  # fmt: skip
    slots = booking_slots_next(settings=ctx.settings, now=ctx.now)
    if slots:
        today = ctx.now.astimezone(zoneinfo.ZoneInfo(ctx.zone)).date()
        pick = booking_pick_read(visitor.text, today=today, lang=ctx.lang, options=0)
        if pick.when:  # "quiero agendar una demo el jueves": Thursday's slots first
            wide = booking_slots_next(settings=ctx.settings, now=ctx.now, count=WIDE_SEARCH)
            slots = booking_pick_filter(wide, pick)[:OFFER_SIZE] or slots
        return _offer(ctx, "offer", slots, reoffer=False)
    if ctx.settings.booking_link:
        return _link_send(ctx)
    return None


# --- Invitations ----------------------------------------------------------------------------


def booking_uid(lead: Lead, slot: datetime) -> str:
    """The invitation's UID: the same for the same lead and slot (a re-send updates the
    calendar entry instead of adding one)."""
    stamp = slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    schema = connection.schema_name  # type: ignore[attr-defined]
    return f"booking-{schema}-{lead.pk}-{stamp}@{django_settings.ROOT_DOMAIN}"


def _booked_event(lead: Lead) -> LeadEvent | None:
    if lead.booking_at is None:
        return None
    return (
        LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.BOOKED, field="booking_at")
        .order_by("-id")
        .first()
    )


def _invite_unsent(lead: Lead) -> bool:
    event = _booked_event(lead)
    if event is None:
        return False
    uid = event.data.get("uid", "")
    return not LeadEvent.objects.filter(
        lead=lead, kind=LeadEvent.Kind.NOTIFIED, data__invite=uid
    ).exists()


def booking_ics(
    *,
    lead: Lead,
    start: datetime,
    minutes: int,
    summary: str,
    description: str,
    attendee: str,
) -> bytes:
    """The invitation (METHOD:REQUEST) for the lead's meeting, times in UTC."""
    calendar = Calendar()
    calendar.add("prodid", "-//CHAPI//Booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", booking_uid(lead, start))
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", (start + timedelta(minutes=minutes)).astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CONFIRMED")
    event.add("sequence", 0)
    name, address = parseaddr(django_settings.DEFAULT_FROM_EMAIL)
    organizer = vCalAddress(f"mailto:{address}")
    organizer.params["cn"] = vText(name or address)
    event.add("organizer", organizer)
    if attendee:
        guest = vCalAddress(f"mailto:{attendee}")
        guest.params["cn"] = vText(lead.name or attendee)
        guest.params["role"] = vText("REQ-PARTICIPANT")
        guest.params["partstat"] = vText("NEEDS-ACTION")
        guest.params["rsvp"] = vText("TRUE")
        event.add("attendee", guest)
    calendar.add_component(event)
    return calendar.to_ical()


def _team_emails(lead: Lead, settings: LeadSettings) -> list[str]:
    owner = lead.owner
    if owner is not None and owner.is_active and owner.email:
        return [owner.email]
    if settings.notify_emails:
        return list(dict.fromkeys(settings.notify_emails))
    users = Membership.objects.filter(role__in=MANAGER_ROLES, user__is_active=True)
    return list(dict.fromkeys(users.values_list("user__email", flat=True)))


def _conversation_url(conversation_id: int | None) -> str:
    if conversation_id is None:
        return ""
    from apps.tenants.services import company_host

    host = company_host(connection.tenant.slug)  # type: ignore[attr-defined]
    return f"https://{host}/dashboard/inbox/conversations/{conversation_id}/"


def _email(
    *, to: list[str], subject: str, template: str, context: dict[str, object], ics: bytes
) -> None:
    body = render_to_string(f"leads/email/{template}.txt", context)
    html = render_to_string(f"leads/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    message.attach_alternative(html, "text/html")
    part = MIMEText(ics.decode("utf-8"), "calendar", "utf-8")
    part.set_param("method", "REQUEST")
    part.add_header("Content-Disposition", "attachment", filename="invite.ics")
    message.attach(part)
    message.send()


@dataclass(frozen=True)
class _Invite:
    lead: Lead
    start: datetime  # in the company's time zone
    minutes: int
    zone: str
    company: _Company
    url: str  # the conversation in the dashboard (team only)


def _invite_send(invite: _Invite, *, side: str, lang: str, to: list[str]) -> None:
    """One side's invitation email ("visitor" or "team") in `lang`."""
    lead = invite.lead
    step = _step_for(invite.company.template_key, lang)[0]
    zone = _say(lang, "zone", zone=_zone_name(invite.zone, lang))
    when = f"{_when_text(invite.start, lang)} ({zone})"
    lines = [
        f"{_say(lang, 'when')}: {when}",
        f"{_say(lang, 'duration')}: {_say(lang, 'minutes', minutes=invite.minutes)}",
    ]
    visitor = lead.name or lead.email
    if side == "team":
        lines += [f"{_say(lang, 'lead')}: {visitor}", f"{_say(lang, 'email')}: {lead.email}"]
        if lead.phone:
            lines.append(f"{_say(lang, 'phone')}: {lead.phone}")
        if invite.url:
            lines.append(f"{_say(lang, 'conversation')}: {invite.url}")
        subject = _say(lang, "subject_team", step=_title(step.label), visitor=visitor, when=when)
        intro = [_say(lang, "team_intro", step=step.label)]
    else:
        subject = _say(
            lang, "subject_visitor", step=_title(step.label), company=invite.company.name, when=when
        )
        hello = _say(lang, "hello", name=lead.name) if lead.name else _say(lang, "hello_anonymous")
        intro = [hello, _say(lang, "visitor_intro", company=invite.company.name, step=step.label)]
    ics = booking_ics(
        lead=lead,
        start=invite.start,
        minutes=invite.minutes,
        summary=f"{_title(step.label)} · {invite.company.name}",
        description="\n".join(lines),
        attendee=lead.email,
    )
    context: dict[str, object] = {
        "intro": intro,
        "lines": lines,
        "end": _say(lang, "visitor_end"),
        "lang": lang,
    }
    with override(lang):
        _email(to=to, subject=subject, template=f"booking_{side}", context=context, ics=ics)


def booking_invite_pending(lead: Lead) -> bool:
    """Email the calendar invitations of the lead's booked meeting if they have not gone out:
    to the visitor (in the conversation's language) and to the company's side — the lead's
    owner, else LeadSettings.notify_emails, else the owners and admins — (in the company's
    language, with the conversation's link). Needs the lead's email and a meeting still ahead.
    Idempotent (a NOTIFIED event records the invitation's UID). Call it whenever the lead's
    email is set. Returns whether the invitations were sent now."""
    current = Lead.objects.select_related("owner").filter(pk=lead.pk).first()
    if current is None:
        return False  # merged into another lead meanwhile
    lead = current
    if not lead.email or lead.booking_at is None or lead.booking_at <= timezone.now():
        return False
    event = _booked_event(lead)
    if event is None or not _invite_unsent(lead):
        return False
    settings = lead_settings_get()
    company = _company()
    zone = _company_time_zone()
    invite = _Invite(
        lead=lead,
        start=lead.booking_at.astimezone(zoneinfo.ZoneInfo(zone)),
        minutes=int(event.data.get("minutes") or settings.booking_minutes),
        zone=zone,
        company=company,
        url=_conversation_url(event.conversation_id),
    )
    team = [e for e in _team_emails(lead, settings) if e and e.lower() != lead.email]
    visitor_lang = _lang(event.data.get("language") or company.language)
    _invite_send(invite, side="visitor", lang=visitor_lang, to=[lead.email])
    if team:
        _invite_send(invite, side="team", lang=company.team_language, to=team)
    sent_to = [lead.email, *team]
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.NOTIFIED,
        field="booking_invite",
        new=", ".join(sent_to),
        conversation_id=event.conversation_id,
        data={"invite": event.data.get("uid") or booking_uid(lead, lead.booking_at), "to": sent_to},
    )
    return True
