from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # "channels" belongs to Django Channels.
    name = "apps.channels"
    label = "chapi_channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from apps.channels.services import deliver_on_store, typing_send
        from apps.conversations.services import ReplyHooks

        ReplyHooks.starting.append(typing_send)
        ReplyHooks.stored.append(deliver_on_store)
