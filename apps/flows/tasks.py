"""Flow rules triggered by lead changes, run in the company's schema after commit."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.flows.services import flows_on_lead_change


@shared_task(name="flows.lead_changed", acks_late=True, time_limit=60, soft_time_limit=50,
             ignore_result=True)  # fmt: skip
def lead_changed_task(lead_id: int, kind: str, old: Any, new: Any) -> int:
    """Run the rules a lead's score or stage change triggers (each once per conversation)."""
    return len(flows_on_lead_change(lead_id=lead_id, kind=kind, old=old, new=new))
