"""Rules for company subdomains (slugs)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

SLUG_MAX_LENGTH = 40
# A DNS label: lowercase letters, digits and inner hyphens.
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")

RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "apps", "assets", "auth", "billing", "blog", "cdn", "chapi",
        "dashboard", "demo-template", "dev", "docs", "embed", "ftp", "help", "hooks", "imap",
        "login", "mail", "media", "mx", "ns", "ns1", "ns2", "pop", "public", "root", "signup",
        "smtp", "staff", "static", "status", "support", "system", "template", "test", "webhook",
        "webhooks", "widget", "ws", "wss", "www",
    }
)  # fmt: skip


def slug_to_schema_name(slug: str) -> str:
    """The PostgreSQL schema of a company: `t_` + slug with hyphens as underscores.

    Slugs never hold underscores, so the mapping is one-to-one; the prefix keeps clear of
    `pg_` and of the `public` and template schemas.
    """
    return "t_" + slug.replace("-", "_")


def validate_slug(slug: str) -> None:
    if not slug or len(slug) < 3:
        raise ValidationError(_("The subdomain must have at least 3 characters."), code="short")
    if len(slug) > SLUG_MAX_LENGTH:
        raise ValidationError(
            _("The subdomain can have at most %(max)d characters.") % {"max": SLUG_MAX_LENGTH},
            code="long",
        )
    if not _SLUG_RE.fullmatch(slug) or "--" in slug:
        raise ValidationError(
            _(
                "Use only lowercase letters, digits and single hyphens, "
                "starting and ending with a letter or digit."
            ),
            code="invalid",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(_("This subdomain is reserved."), code="reserved")
