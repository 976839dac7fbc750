"""Create a widget key for a company; prints one JSON object with the key and the snippet."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.services import SYSTEM
from apps.tenants.forms import OriginsField
from apps.tenants.selectors import company_by_slug
from apps.widget.services import widget_config, widget_key_create, widget_snippet


class Command(BaseCommand):
    help = "Create a widget key. Prints JSON: id, company, name, key, allowed_origins, snippet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company's slug.")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="A website allowed to use the key, e.g. https://www.example.com (repeatable).",
        )
        parser.add_argument("--name", default="Website")
        parser.add_argument(
            "--base-url",
            default="",
            help="The product's public URL for the snippet (default: https://ROOT_DOMAIN).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        company = company_by_slug(slug=options["company"])
        if company is None:
            raise CommandError(f"There is no company with slug {options['company']!r}.")
        try:
            origins = OriginsField().clean("\n".join(options["origin"]))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not origins:
            raise CommandError("Give at least one --origin (the website that shows the widget).")
        widget_key = widget_key_create(
            company=company, name=options["name"], origins=origins, actor=SYSTEM
        )
        base = (options["base_url"] or f"https://{settings.ROOT_DOMAIN}").rstrip("/")
        socket = "ws" + base.removeprefix("http") + f"/ws/widget/?key={widget_key.key}"
        config = widget_config(widget_key, socket)
        snippet = widget_snippet(
            script_url=f"{base}{settings.STATIC_URL}chapi-widget.js",
            widget_key=widget_key,
            config=config,
        )
        self.stdout.write(
            json.dumps(
                {
                    "id": widget_key.pk,
                    "company": company.slug,
                    "name": widget_key.name,
                    "key": widget_key.key,
                    "allowed_origins": widget_key.allowed_origins,
                    "snippet": snippet,
                },
                ensure_ascii=False,
            )
        )
