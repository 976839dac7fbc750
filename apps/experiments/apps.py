from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"
    verbose_name = "A/B tests"

    def ready(self) -> None:
        from apps.conversations.services import ReplyHooks
        from apps.experiments import hooks

        ReplyHooks.configure.append(hooks.configure)
