"""How A/B tests plug into the reply pipeline (registered in ExperimentsConfig.ready)."""

from __future__ import annotations

import dataclasses

from apps.assistants.prompting import AssistantConfig
from apps.conversations.models import Conversation
from apps.experiments.models import Experiment
from apps.experiments.services import tests_running, variant_text


def configure(config: AssistantConfig, conversation: Conversation) -> AssistantConfig:
    """This conversation's variants of the system prompt and of the welcome (the offline
    responder greets with it)."""
    if not tests_running():
        return config
    changes = {}
    for target, field in (
        (Experiment.Target.SYSTEM_PROMPT, "system_prompt"),
        (Experiment.Target.WELCOME, "welcome_message"),
    ):
        text = variant_text(
            target=target,
            channel=conversation.channel,
            session_id=conversation.session_id,
            conversation=conversation,
        )
        if text is not None:
            changes[field] = text
    return dataclasses.replace(config, **changes) if changes else config
