from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AssistantsConfig(AppConfig):
    name = "apps.assistants"
    label = "assistants"
    verbose_name = "Assistant"

    def ready(self) -> None:
        from apps.assistants.models import AssistantProfile, BusinessFact, FaqEntry

        for model in (AssistantProfile, BusinessFact, FaqEntry):
            post_save.connect(_changed, sender=model, dispatch_uid=f"config-{model.__name__}")
            post_delete.connect(_changed, sender=model, dispatch_uid=f"config-del-{model.__name__}")


def _changed(**_kwargs: Any) -> None:
    """Replies read the configuration kept per process: tell the processes it changed."""
    from apps.assistants.services import assistant_config_changed

    assistant_config_changed()
