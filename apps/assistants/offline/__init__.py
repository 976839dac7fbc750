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

from apps.assistants.offline.responder import offline_reply
from apps.assistants.offline.text import detect_language, normalize, stem, tokens
from apps.assistants.offline.types import (
    MAX_MESSAGE_CHARS,
    PRICE_CONTENT_THRESHOLD,
    QUESTION_THRESHOLD,
    STATEMENT_THRESHOLD,
    Fact,
    FaqEntry,
    OfflineProfile,
    OfflineReply,
    Turn,
)

__all__ = [
    "MAX_MESSAGE_CHARS",
    "PRICE_CONTENT_THRESHOLD",
    "QUESTION_THRESHOLD",
    "STATEMENT_THRESHOLD",
    "Fact",
    "FaqEntry",
    "OfflineProfile",
    "OfflineReply",
    "Turn",
    "detect_language",
    "normalize",
    "offline_reply",
    "stem",
    "tokens",
]
