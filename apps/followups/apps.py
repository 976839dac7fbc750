from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "apps.followups"
    label = "followups"
    verbose_name = "Follow-ups"

    def ready(self) -> None:
        from apps.conversations.services import ReplyHooks
        from apps.followups import hooks

        ReplyHooks.unanswered.insert(0, hooks.on_unanswered)
        ReplyHooks.received.insert(0, hooks.on_received)
        ReplyHooks.answer.insert(0, hooks.opt_out_answer)
