from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "apps.leads"
    label = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from apps.assistants.prompting import PROMPT_HOOKS
        from apps.conversations.services import ReplyHooks
        from apps.leads import booking, hooks
        from apps.leads.models import Lead

        ReplyHooks.unanswered.append(hooks.on_unanswered)
        ReplyHooks.received.append(hooks.on_received)
        ReplyHooks.known.append(hooks.known_fields)
        ReplyHooks.answer.append(booking.booking_answer)
        ReplyHooks.generated.append(hooks.on_generated)
        PROMPT_HOOKS.append(hooks.prompt_state)
        post_save.connect(hooks.on_lead_saved, sender=Lead, dispatch_uid="lead-for-reply")
