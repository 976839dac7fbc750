"""The company's assistant: its profile (one per company), FAQ and business facts."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from chapi.fields import EncryptedTextField


class Provider(models.TextChoices):
    AUTO = "auto", _("Automatic: OpenAI-compatible if a key is configured, else offline")
    OPENAI = "openai", _("OpenAI or OpenAI-compatible endpoint")
    OFFLINE = "offline", _("Offline responder (no model)")


def _default_languages() -> list[str]:
    return ["es", "en"]


class AssistantProfile(models.Model):
    # Identity
    bot_name = models.CharField(_("bot name"), max_length=80, default="CHAPI")
    company_display_name = models.CharField(
        _("company name shown to visitors"),
        max_length=120,
        blank=True,
        help_text=_("Empty: the company's name."),
    )
    welcome_message = models.CharField(
        _("welcome message"), max_length=500, default="¡Hola! ¿Cómo puedo ayudarte?"
    )
    languages = models.JSONField(
        _("languages"),
        default=_default_languages,
        help_text=_('Languages the assistant speaks, e.g. ["es", "en"]; the first is the default.'),
    )
    # Behaviour
    industry_template = models.CharField(_("industry template"), max_length=32, default="generico")
    persona = models.TextField(
        _("persona"), blank=True, help_text=_("Who the assistant is, in a few sentences.")
    )
    system_prompt = models.TextField(
        _("system prompt"),
        blank=True,
        help_text=_("Empty: the industry template's. {bot_name} and {company_name} are filled in."),
    )
    tone = models.CharField(_("tone"), max_length=200, blank=True)
    goals = models.JSONField(_("goals"), default=list, blank=True)
    topics_to_avoid = models.TextField(_("topics to avoid"), blank=True)
    extra_guardrails = models.TextField(_("additional rules"), blank=True)
    # Model
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.AUTO
    )
    model = models.CharField(
        _("model"), max_length=100, blank=True, help_text=_("Empty: the platform's default model.")
    )
    max_tokens = models.PositiveIntegerField(
        _("max tokens per answer"),
        null=True,
        blank=True,
        validators=[MinValueValidator(16), MaxValueValidator(32000)],
        help_text=_("Empty: the platform's default."),
    )
    temperature = models.DecimalField(
        _("temperature"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
    )
    api_base_url = models.URLField(
        _("API base URL"),
        blank=True,
        help_text=_(
            "An OpenAI-compatible endpoint (Azure OpenAI, Ollama, vLLM, LM Studio, OpenRouter…). "
            "Empty: the platform's default."
        ),
    )
    api_key = EncryptedTextField(
        _("API key"),
        help_text=_("Your own key for the model provider. Stored encrypted; never shown back."),
    )
    # Limits
    monthly_token_budget = models.PositiveBigIntegerField(
        _("monthly token budget"),
        default=0,
        help_text=_("Tokens per calendar month (input + output). 0: no limit."),
    )
    history_token_limit = models.PositiveIntegerField(
        _("history window (tokens)"),
        default=3000,
        validators=[MinValueValidator(200), MaxValueValidator(100000)],
    )
    moderation_enabled = models.BooleanField(
        _("moderate visitor messages"),
        default=False,
        help_text=_("Check each visitor message with the provider's moderation endpoint."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = frozenset({"api_key"})

    class Meta:
        verbose_name = _("assistant profile")
        verbose_name_plural = _("assistant profile")

    def __str__(self) -> str:
        return str(self.bot_name)

    @property
    def default_language(self) -> str:
        return (self.languages or ["es"])[0]


class FaqEntry(models.Model):
    question = models.CharField(_("question"), max_length=300)
    answer = models.TextField(_("answer"))
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("FAQ entry")
        verbose_name_plural = _("FAQ")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.question


class BusinessFact(models.Model):
    class Kind(models.TextChoices):
        PRODUCT = "product", _("Product")
        SERVICE = "service", _("Service")
        HOURS = "hours", _("Opening hours")
        LOCATION = "location", _("Location")
        POLICY = "policy", _("Policy")
        OTHER = "other", _("Other")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.PRODUCT)
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("details"), blank=True)
    price = models.CharField(
        _("price"), max_length=100, blank=True, help_text=_('Free text, e.g. "$1,200 MXN/mes".')
    )
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("business fact")
        verbose_name_plural = _("business facts")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title
