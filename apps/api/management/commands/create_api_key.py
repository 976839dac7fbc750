"""Create an API key for a company; prints one JSON object with the key (shown once)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.api.models import Scope
from apps.api.services import api_key_create
from apps.audit.services import SYSTEM
from apps.tenants.selectors import company_by_slug


class Command(BaseCommand):
    help = "Create an API key. Prints JSON: id, company, name, scopes, key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company's slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            default="chat,read",
            help=f"Comma-separated, from: {', '.join(Scope.values)} (default: chat,read).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        company = company_by_slug(slug=options["company"])
        if company is None:
            raise CommandError(f"There is no company with slug {options['company']!r}.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            issued = api_key_create(
                company=company, name=options["name"], scopes=scopes, actor=SYSTEM
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "id": issued.api_key.pk,
                    "company": company.slug,
                    "name": issued.api_key.name,
                    "scopes": issued.api_key.scopes,
                    "key": issued.key,
                }
            )
        )
