"""Create a company from the command line; prints one JSON object."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from apps.tenants.services import company_create


class Command(BaseCommand):
    help = "Create a company (schema, host, owner). Prints JSON: slug, schema, domain, owner."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="Subdomain: <slug>.ROOT_DOMAIN")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-name", default="")
        parser.add_argument(
            "--password",
            default=None,
            help="The owner's password. Without it the owner sets one via 'forgot password'.",
        )
        parser.add_argument("--language", default="es", choices=["es", "en"])

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override("en"):  # messages for operators and scripts
            self._create(options)

    def _create(self, options: dict[str, Any]) -> None:
        try:
            created = company_create(
                name=options["name"],
                slug=options["slug"],
                owner_email=options["owner_email"],
                owner_name=options["owner_name"],
                owner_password=options["password"],
                language=options["language"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                text = "; ".join(
                    f"{field}: {' '.join(msg for e in errors for msg in e.messages)}"
                    for field, errors in exc.error_dict.items()
                )
            else:
                text = " ".join(exc.messages)
            raise CommandError(f"Cannot create the company: {text}") from exc
        self.stdout.write(
            json.dumps(
                {
                    "slug": created.company.slug,
                    "schema": created.company.schema_name,
                    "domain": created.domain.domain,
                    "owner_email": created.owner.email,
                }
            )
        )
