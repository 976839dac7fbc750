"""Bring the database up to date and make sure the platform's own rows exist.

Idempotent: run at every start of `python3 dev.py run` and in every deploy.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from apps.tenants.models import Company
from apps.tenants.services import company_create, company_host, public_company_ensure

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.example.com"
DEMO_PASSWORD = "chapi-demo-2026"  # noqa: S105 - the published demo login
STAFF_EMAIL = "staff@example.com"


def template_schema_migrate(verbosity: int = 0) -> None:
    """Create (if missing) and migrate the template schema new companies are cloned from."""
    schema = settings.TENANT_BASE_SCHEMA
    if not schema_exists(schema):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
    call_command(
        "migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=verbosity
    )


class Command(BaseCommand):
    help = "Apply all migrations (public, template, companies) and create the platform rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--demo",
            action="store_true",
            default=None,
            help="Create the demo company and a staff account (default with DEBUG=true).",
        )
        parser.add_argument("--no-demo", action="store_false", dest="demo")

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = max(0, options["verbosity"] - 1)
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        template_schema_migrate(verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        public_company_ensure()
        self.stdout.write("Database is up to date.")
        demo = settings.DEBUG if options["demo"] is None else options["demo"]
        if demo:
            self._demo()

    def _demo(self) -> None:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            if not Company.objects.filter(slug=DEMO_SLUG).exists():
                company_create(
                    name="Demo Seguros",
                    slug=DEMO_SLUG,
                    owner_email=DEMO_OWNER_EMAIL,
                    owner_name="Demo Owner",
                    owner_password=DEMO_PASSWORD,
                )
            from apps.accounts.models import User

            if not User.objects.filter(email=STAFF_EMAIL).exists():
                User.objects.create_superuser(STAFF_EMAIL, DEMO_PASSWORD, name="Platform staff")
        port = "" if settings.API_PORT == 80 else f":{settings.API_PORT}"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo company: http://{company_host(DEMO_SLUG)}{port}/  "
                f"login {DEMO_OWNER_EMAIL} / {DEMO_PASSWORD}\n"
                f"Platform admin: http://{settings.ROOT_DOMAIN}{port}/admin/  "
                f"login {STAFF_EMAIL} / {DEMO_PASSWORD}"
            )
        )
