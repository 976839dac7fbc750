"""The Celery application.

tenant-schemas-celery's app records the active schema when a task is sent and enters it in the
worker, so tasks run in the schema they were sent from (plain `celery.Celery` would silently
run every task in the public schema).
"""

from __future__ import annotations

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chapi.settings")

app = CeleryApp("chapi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
