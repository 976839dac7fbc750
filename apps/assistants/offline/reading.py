"""Reading the visitor's message: intents, stated needs, contact details."""

from __future__ import annotations

import re

from apps.assistants.offline.text import (
    _words,
)

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
