"""How flows plug into the reply pipeline and lead changes (registered in FlowsConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.conversations.models import Message
from apps.flows.models import FlowRun
from apps.flows.services import flows_active, flows_on_message, lead_change_rules


def on_received(visitor: Message) -> None:
    flows_on_message(visitor)


def on_lead_changed(lead_id: int, kind: str, old: Any, new: Any) -> None:
    """Queue the rules the change triggers; nothing to queue when none would (e.g. the score
    a visitor's every message moves, for a company without score rules)."""
    from apps.flows.tasks import lead_changed_task

    if not lead_change_rules(flows_active(), kind=kind, old=old, new=new):
        return
    transaction.on_commit(lambda: lead_changed_task.delay(lead_id, kind, old, new))


def prompt_state(conversation_id: int) -> str:
    """What the model is told of the flows that ran since its last answer: their messages
    went out before the answer it is writing, which must not repeat them. Nothing to read
    for a company without flows (every reply asks)."""
    if not flows_active().rules:
        return ""
    last_reply = (
        Message.objects.filter(
            conversation_id=conversation_id, role=Message.Role.ASSISTANT, reply_to__isnull=False
        )
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    runs = list(
        FlowRun.objects.filter(conversation_id=conversation_id, message_id__gt=last_reply or 0)
        .select_related("message")
        .order_by("-id")[:3]
    )
    said = [run.message.text for run in runs if run.message is not None and run.message.text]
    if not said:
        return ""
    lines = ["Conversation flow (internal): you already sent these messages; do not repeat them:"]
    lines += [f"- {text[:300]}" for text in reversed(said)]
    return "\n".join(lines)
