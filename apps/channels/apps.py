from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # "channels" belongs to Django Channels.
    name = "apps.channels"
    label = "chapi_channels"
    verbose_name = "Channels"
