"""What a visitor's message is about, for flow triggers (`intent: precio`): a few intents a
sales conversation turns on, read by word patterns in Spanish and English. Deliberately
simple and predictable: a company sees why a rule fired (the run records the intent)."""

from __future__ import annotations

import re

from apps.flows.spec import fold
from apps.leads.handoff import asks_for_person, asks_for_price

_PATTERNS = {
    "booking": re.compile(
        r"\b(agendar|agenda(r|me)?|cita|reunion|reservar|reserva|visita|demo|demostracion|"
        r"book|booking|schedule|appointment|meeting|call me|llamame|llamada)\b"
    ),
    "purchase": re.compile(
        r"\b(comprar|compro|lo quiero|la quiero|contratar|contrato|adquirir|pagar|"
        r"buy|purchase|sign up|subscribe|order|i'll take it|me lo llevo)\b"
    ),
    "complaint": re.compile(
        r"\b(queja|reclamo|reclamacion|molesto|molesta|pesimo|terrible|no funciona|"
        r"devolucion|reembolso|complaint|refund|angry|broken|doesn'?t work|not working)\b"
    ),
    "greeting": re.compile(
        r"^\W*(hola|buenas|buenos dias|buenas tardes|buenas noches|que tal|hi|hello|hey|"
        r"good (morning|afternoon|evening))\b"
    ),
    "goodbye": re.compile(
        r"\b(adios|chao|chau|hasta luego|hasta pronto|nos vemos|bye|goodbye|see you)\b"
    ),
}


def intents_of(text: str) -> frozenset[str]:
    folded = fold(text)
    found = {name for name, pattern in _PATTERNS.items() if pattern.search(folded)}
    if asks_for_price(text):
        found.add("price")
    if asks_for_person(text):
        found.add("person")
    return frozenset(found)
