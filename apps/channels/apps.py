from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # "channels" belongs to Django Channels.
    name = "apps.channels"
    label = "chapi_channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from apps.channels.services import deliver_schedule, typing_send
        from apps.conversations.services import BURST_CHANNELS, ReplyHooks

        def deliver_reply(reply):  # type: ignore[no-untyped-def]
            if reply.channel in BURST_CHANNELS:
                deliver_schedule(reply)

        ReplyHooks.starting.append(typing_send)
        ReplyHooks.stored.append(deliver_reply)
