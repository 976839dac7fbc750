"""The committed Spanish catalogue is complete and compiled (users need no gettext)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

LOCALE = Path(__file__).resolve().parent.parent / "locale" / "es" / "LC_MESSAGES"


def _po_entries(text: str) -> dict[str, str]:
    """msgid -> msgstr (or msgstr[0]) of a .po file, multi-line strings joined."""
    entries: dict[str, str] = {}
    blocks = re.split(r"\n\s*\n", text)
    for block in blocks:
        if block.lstrip().startswith("#~"):
            continue
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[0\])?)\s+"(.*)"$', line)
            if match:
                key = match.group(1)
                fields[key] = match.group(2)
            elif key and line.startswith('"'):
                fields[key] += line[1:-1]
        if fields.get("msgid"):
            entries[fields["msgid"]] = fields.get("msgstr", fields.get("msgstr[0]", ""))
    return entries


def test_every_spanish_message_is_translated_and_compiled() -> None:
    entries = _po_entries((LOCALE / "django.po").read_text(encoding="utf-8"))
    assert entries, "the Spanish catalogue is empty"
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [
        msgid
        for msgid, msgstr in entries.items()
        if compiled.gettext(msgid.encode().decode("unicode_escape")) == msgid and msgstr != msgid
    ]
    assert stale == [], "django.mo is older than django.po: run compilemessages"
