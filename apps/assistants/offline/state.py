"""The conversation so far, read back from the history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from apps.assistants.industry_templates import (
    TEMPLATE_KEYS,
    IndustryTemplate,
    template_get,
)
from apps.assistants.offline.matching import (
    _index_build,
)
from apps.assistants.offline.phrasing import (
    _fill,
)
from apps.assistants.offline.reading import (
    _NEED,
)
from apps.assistants.offline.text import (
    _is_concept,
    normalize,
    tokens,
)
from apps.assistants.offline.types import (
    OfflineProfile,
    Turn,
)

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
