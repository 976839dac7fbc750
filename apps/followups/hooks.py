"""How follow-ups plug into the reply pipeline (registered in FollowupsConfig.ready): a visitor
who writes cancels what was scheduled; one who asks for no more messages is opted out and
told so (that confirmation is the assistant's reply)."""

from __future__ import annotations

from apps.conversations.models import Message
from apps.conversations.services import conversation_language
from apps.followups.services import (
    contact_opt_out,
    followups_cancel_for_reply,
    opt_out_confirmation,
    wants_no_more_messages,
)


def on_received(visitor: Message) -> None:
    if wants_no_more_messages(visitor.text):
        contact_opt_out(conversation=visitor.conversation)
    followups_cancel_for_reply(conversation_id=visitor.conversation_id)


def on_unanswered(message_id: int) -> None:
    visitor = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if visitor is not None and visitor.role == Message.Role.VISITOR:
        on_received(visitor)


def opt_out_answer(visitor: Message) -> str | None:
    if not wants_no_more_messages(visitor.text):
        return None
    return opt_out_confirmation(conversation_language(visitor.conversation))
