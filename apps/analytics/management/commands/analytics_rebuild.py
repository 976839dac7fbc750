"""python manage.py analytics_rebuild [--company SLUG]: recount a company's (or every
company's) analytics rollups from its event log."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from apps.analytics.rollup import rollup_rebuild
from apps.tenants.models import Company


class Command(BaseCommand):
    help = "Recount the analytics rollups from the event log (one company, or all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", help="The company's slug (default: every company).")

    def handle(self, *args: Any, **options: Any) -> None:
        companies = Company.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        if options["company"]:
            companies = companies.filter(slug=options["company"])
            if not companies.exists():
                raise CommandError(f"No company {options['company']!r}.")
        for company in companies.order_by("slug"):
            with tenant_context(company):
                events = rollup_rebuild()
            self.stdout.write(json.dumps({"company": company.slug, "events": events}))
