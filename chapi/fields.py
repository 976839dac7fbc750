"""Model and form fields for secrets stored encrypted at rest (see chapi.crypto)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chapi.crypto import decrypt, encrypt, mask


class _Keep:
    """Form value meaning "leave the stored secret as it is"."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


class EncryptedTextField(models.Field):
    """A text secret: plaintext in Python, a Fernet token in the database.

    The column holds ciphertext only. Lookups on it are meaningless (each encryption differs)
    and not supported. In forms it renders as a write-only input that never shows the stored
    value back (at most its last four characters); leaving it blank keeps the stored value.
    """

    description = gettext_lazy("Encrypted text")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def to_python(self, value: Any) -> str | None:
        return value if value is None else str(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(str(value))

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        kwargs.pop("widget", None)  # the admin offers a textarea for text columns: not for secrets
        kwargs["form_class"] = SecretFormField
        return super().formfield(**kwargs)

    def save_form_data(self, instance: models.Model, data: Any) -> None:
        if data is KEEP:
            return
        super().save_form_data(instance, data)


class SecretWidget(forms.MultiWidget):
    """A password input plus a "remove" checkbox; shows only a masked hint of the stored value."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        widgets = [
            forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
            forms.CheckboxInput(),
        ]
        super().__init__(widgets, attrs)

    def decompress(self, value: Any) -> list[Any]:
        return [None, False]

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        final_attrs = self.build_attrs(self.attrs, attrs)
        base_id = final_attrs.get("id") or f"id_{name}"
        stored = mask(value) if isinstance(value, str) else ""
        placeholder = (
            _("Stored (%(masked)s) — type to replace") % {"masked": stored}
            if stored
            else _("Not set")
        )
        hint = (
            format_html(
                ' <label class="secret-remove"><input type="checkbox" name="{}_1" id="{}_1"> {}'
                "</label>",
                name,
                base_id,
                _("Remove"),
            )
            if stored
            else ""
        )
        return format_html(
            '<input type="password" name="{}_0" id="{}_0" autocomplete="new-password" '
            'placeholder="{}" class="vTextField secret-input">{}',
            name,
            base_id,
            placeholder,
            hint,
        )

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0" if id_ else id_


class SecretFormField(forms.MultiValueField):
    widget = SecretWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("max_length", None)
        kwargs.pop("empty_value", None)
        kwargs["required"] = False
        fields = (forms.CharField(required=False), forms.BooleanField(required=False))
        super().__init__(fields, require_all_fields=False, **kwargs)

    def compress(self, data_list: list[Any]) -> Any:
        if not data_list:
            return KEEP
        text, remove = ([*list(data_list), "", False])[:2]
        if remove:
            return ""
        return text.strip() if text and text.strip() else KEEP

    def has_changed(self, initial: Any, data: Any) -> bool:
        text, remove = ([*list(data or []), "", False])[:2]
        return bool(text) or bool(remove)
