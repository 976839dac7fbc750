"""Indexes for the inbox: sorting by name, and trigram indexes that serve its `icontains`
search (UPPER(col) LIKE UPPER('%…%')) where PostgreSQL has the pg_trgm extension. The
embedded development server (pgserver) does not ship it: there the search scans, which is
fine at development sizes."""

from django.conf import settings
from django.db import DatabaseError, migrations, models, transaction

SEARCHED = ("name", "email", "phone", "company_name")


def trigram_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        except DatabaseError:
            return  # no privilege to create it: the search scans
        for column in SEARCHED:
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "lead_{column}_trgm" ON "leads_lead" '
                f'USING gin (UPPER("{column}"::text) public.gin_trgm_ops)'
            )


def trigram_indexes_drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for column in SEARCHED:
            cursor.execute(f'DROP INDEX IF EXISTS "lead_{column}_trgm"')


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["name", "id"], name="lead_name"),
        ),
        migrations.RunPython(trigram_indexes, trigram_indexes_drop),
    ]
