"""Bring the database up to date and make sure the platform's own rows exist.

Idempotent: run at every start of `python3 dev.py run` and in every deploy.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django_tenants.utils import schema_context, schema_exists, tenant_context

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


def demo_assistant_seed() -> None:
    """An insurance assistant with a few facts and FAQ, so the demo answers something real."""
    from apps.assistants.models import AssistantProfile, BusinessFact, FaqEntry

    AssistantProfile.objects.filter().update(
        bot_name="Sofía", industry_template="seguros", welcome_message="¡Hola! Soy Sofía, "
        "asesora virtual de Demo Seguros. ¿Buscas un seguro de auto, hogar o vida?"
    )  # fmt: skip
    BusinessFact.objects.bulk_create(
        [
            BusinessFact(kind="product", title="Seguro de auto básico", price="$890 MXN/mes",
                         text="Responsabilidad civil, asistencia vial 24/7 y robo total."),
            BusinessFact(kind="product", title="Seguro de hogar", price="$450 MXN/mes",
                         text="Incendio, inundación, robo con violencia y responsabilidad civil."),
            BusinessFact(kind="hours", title="Horario de atención",
                         text="Lunes a viernes de 9:00 a 18:00, sábados de 10:00 a 14:00."),
            BusinessFact(kind="location", title="Oficina",
                         text="Av. Reforma 222, Ciudad de México."),
        ]
    )  # fmt: skip
    FaqEntry.objects.bulk_create(
        [
            FaqEntry(question="¿Cómo reporto un siniestro?",
                     answer="Llama al 800 123 4567 las 24 horas o escríbenos por este chat."),
            FaqEntry(question="¿Puedo pagar a meses sin intereses?",
                     answer="Sí, hasta 12 meses sin intereses con tarjetas participantes."),
        ]
    )  # fmt: skip
    from apps.assistants.services import assistant_config_changed

    assistant_config_changed()  # written in bulk: no save signals


DEMO_FLOWS = """\
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Bienvenido a Demo Seguros! Te ayudo a encontrar la cobertura que necesitas."
      actions: ["identificar_necesidad"]
  precios:
    - trigger: {keyword: [precio, cotización, cuánto cuesta]}
      actions: [{tag: precio}]
  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en nuestros seguros? Puedo prepararte una cotización hoy."
      actions: ["re_engagement", "descuento_especial"]
discount:
  code: "DEMO10"
  text: "Con el código {code} tienes 10% de descuento en tu primera póliza este mes."
"""


def demo_flows_seed() -> None:
    """The flows of the product's documentation, adapted to the demo's insurance broker."""
    from apps.flows.services import flow_version_save

    flow_version_save(source=DEMO_FLOWS, author=None, note="demo")


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
                created = company_create(
                    name="Demo Seguros",
                    slug=DEMO_SLUG,
                    owner_email=DEMO_OWNER_EMAIL,
                    owner_name="Demo Owner",
                    owner_password=DEMO_PASSWORD,
                )
                with tenant_context(created.company):
                    demo_assistant_seed()
                    demo_flows_seed()
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
