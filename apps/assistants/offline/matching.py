"""The index over the company's FAQ and facts, and matching a message against it."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from apps.assistants.offline.text import (
    HOURS,
    LOCATION,
    PRICE,
    _closest,
    _is_concept,
    tokens,
)
from apps.assistants.offline.types import (
    BM25_B,
    BM25_K1,
    CONCEPT_WEIGHT,
    PRICE_CONTENT_THRESHOLD,
    Fact,
    FaqEntry,
    OfflineProfile,
)

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
