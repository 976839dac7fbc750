"""The company's assistant profile (one per company)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from chapi.fields import EncryptedTextField


class AssistantProfile(models.Model):
    bot_name = models.CharField(_("bot name"), max_length=80, default="CHAPI")
    welcome_message = models.CharField(
        _("welcome message"), max_length=500, default="¡Hola! ¿Cómo puedo ayudarte?"
    )
    model = models.CharField(
        _("model"), max_length=100, blank=True, help_text=_("Empty: the platform's default model.")
    )
    api_base_url = models.URLField(
        _("API base URL"),
        blank=True,
        help_text=_("An OpenAI-compatible endpoint. Empty: the platform's default."),
    )
    api_key = EncryptedTextField(
        _("API key"),
        help_text=_("Your own key for the model provider. Stored encrypted; never shown back."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = frozenset({"api_key"})

    class Meta:
        verbose_name = _("assistant profile")
        verbose_name_plural = _("assistant profile")

    def __str__(self) -> str:
        return str(self.bot_name)
