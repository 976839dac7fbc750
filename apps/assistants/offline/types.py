"""Constants and the data the responder works on."""

from __future__ import annotations

from dataclasses import dataclass

from apps.assistants.industry_templates import (
    IndustryTemplate,
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
