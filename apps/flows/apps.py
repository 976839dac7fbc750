from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "apps.flows"
    label = "flows"
    verbose_name = "Flows"

    def ready(self) -> None:
        from apps.assistants.prompting import PROMPT_HOOKS
        from apps.conversations.services import ReplyHooks
        from apps.flows import hooks
        from apps.leads.services import LeadHooks

        # After the leads' hook (INSTALLED_APPS order): the lead exists and is up to date.
        ReplyHooks.received.append(hooks.on_received)
        LeadHooks.changed.append(hooks.on_lead_changed)
        PROMPT_HOOKS.append(hooks.prompt_state)
