"""The responder: choosing and composing the reply."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from apps.assistants.industry_templates import (
    TEMPLATE_KEYS,
    IndustryTemplate,
    QualificationQuestion,
    template_get,
)
from apps.assistants.offline.matching import (
    _match,
)
from apps.assistants.offline.phrasing import (
    _answer_text,
    _clean,
    _end,
    _fill,
    _lower_first,
    _pick,
    _sentences,
)
from apps.assistants.offline.reading import (
    _AFFIRMATIVE,
    _BUYING,
    _CONTACT_DETAILS,
    _EMERGENCY,
    _FILLER,
    _GOODBYE,
    _GREETING,
    _HANDOFF,
    _INFO_WORDS,
    _NEGATIVE,
    _QUESTION_CUES,
    _SMALL_TALK,
    _STEP_REQUEST,
    _THANKS,
    _only,
    _starts_with,
)
from apps.assistants.offline.state import (
    _marked,
    _state_read,
    _states_need,
)
from apps.assistants.offline.text import (
    PRICE,
    _is_concept,
    detect_language,
    normalize,
    tokens,
)
from apps.assistants.offline.types import (
    MAX_MESSAGE_CHARS,
    QUESTION_THRESHOLD,
    STATEMENT_THRESHOLD,
    OfflineProfile,
    OfflineReply,
    Turn,
)

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
