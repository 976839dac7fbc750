"""Telling the team a lead is qualified: in-dashboard notifications, an email and the CRM
webhook's `lead.qualified` event (its payload is documented in docs/leads/crm-webhook.md)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.accounts.models import MANAGER_ROLES, Membership, User
from apps.conversations.models import Conversation
from apps.leads.crm import EVENT_QUALIFIED, webhook_delivery_create
from apps.leads.models import Lead, LeadEvent, Notification
from apps.leads.realtime import inbox_publish
from apps.leads.scoring import PARTS, reason_text
from apps.leads.services import lead_settings_get

logger = logging.getLogger(__name__)

NOTIFICATION_KIND = "lead.qualified"


def lead_path(lead_id: int) -> str:
    return f"/dashboard/leads/{lead_id}/"


def company_url(path: str) -> str:
    """`path` on the current company's primary host: https, or the scheme (and port) of
    PUBLIC_BASE_URL when it is set (development over http)."""
    from urllib.parse import urlsplit

    domain = connection.tenant.get_primary_domain()  # type: ignore[attr-defined]
    host = domain.domain if domain is not None else ""
    base = urlsplit(settings.PUBLIC_BASE_URL) if settings.PUBLIC_BASE_URL else None
    scheme = base.scheme if base is not None else "https"
    port = f":{base.port}" if base is not None and base.port else ""
    return f"{scheme}://{host}{port}{path}"


def lead_team(lead: Lead) -> list[User]:
    """Who hears about the lead: the active owners and admins, and the lead's owner."""
    users = {
        m.user
        for m in Membership.objects.select_related("user").filter(
            role__in=MANAGER_ROLES, user__is_active=True
        )
    }
    if lead.owner is not None and lead.owner.is_active:
        users.add(lead.owner)
    return sorted(users, key=lambda user: user.pk)


def lead_payload(lead: Lead, *, event: str = EVENT_QUALIFIED) -> dict[str, Any]:
    """The webhook's JSON for a lead (docs/leads/crm-webhook.md): identity, qualification
    fields, score with its breakdown, stage, owner, tags, conversations, timestamps."""
    company = connection.tenant  # type: ignore[attr-defined]
    conversation_ids = list(
        Conversation.objects.filter(contact__lead=lead).order_by("id").values_list("id", flat=True)
    )

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "event": event,
        "company": company.slug,
        "occurred_at": timezone.now().isoformat(),
        "lead": {
            "id": lead.pk,
            "url": company_url(lead_path(lead.pk)),
            "name": lead.name,
            "email": lead.email,
            "phone": lead.phone,
            "company_name": lead.company_name,
            "role": lead.role,
            "need": lead.need,
            "budget": (
                {"amount": str(lead.budget_amount), "currency": lead.budget_currency}
                if lead.budget_amount is not None
                else None
            ),
            "timeline": {"text": lead.timeline, "date": iso(lead.timeline_date)},
            "preferred_channel": lead.preferred_channel,
            "preferred_time": lead.preferred_time,
            "source_channel": lead.source_channel,
            "first_page": lead.first_page,
            "context": lead.context,
            "score": lead.score,
            "score_breakdown": lead.score_breakdown,
            "stage": lead.stage,
            "owner_email": lead.owner.email if lead.owner is not None else None,
            "tags": list(lead.tags),
            "conversation_ids": conversation_ids,
            "created_at": iso(lead.created_at),
            "updated_at": iso(lead.updated_at),
            "qualified_at": iso(lead.qualified_at),
        },
    }


def _breakdown_rows(lead: Lead) -> list[dict[str, Any]]:
    labels = {
        "need": _("Need"),
        "budget": _("Budget"),
        "authority": _("Authority"),
        "timeline": _("Timeline"),
        "engagement": _("Engagement"),
    }
    rows = []
    for part in PARTS:
        item = lead.score_breakdown.get(part)
        if not isinstance(item, dict):
            continue
        points = item.get("points", 0)
        rows.append(
            {
                "label": labels[part],
                "points": int(points) if float(points).is_integer() else points,
                "max": item.get("max", 0),
                "reason": reason_text(str(item.get("reason", ""))),
            }
        )
    return rows


def _email(lead: Lead, recipients: list[str], link: str, language: str) -> EmailMultiAlternatives:
    company = connection.tenant  # type: ignore[attr-defined]
    with translation.override(language):
        context = {
            "lead": lead,
            "company": company,
            "link": link,
            "breakdown": _breakdown_rows(lead),
        }
        subject = _("Qualified lead: %(name)s (score %(score)s)") % {
            "name": str(lead),
            "score": lead.score,
        }
        text = render_to_string("leads/email/qualified.txt", context)
        html = render_to_string("leads/email/qualified.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=recipients)
    message.attach_alternative(html, "text/html")
    return message


def lead_qualified_notify(*, lead_id: int) -> None:
    """Tell the team lead `lead_id` qualified, once per qualification (its `qualified_at`):
    a Notification for each owner, admin and the lead's owner (live event "notification"),
    an email to the settings' notify emails (or those people), and, with a CRM webhook URL,
    a `lead.qualified` WebhookDelivery queued after commit. Records a NOTIFIED LeadEvent
    with what was sent; a second call for the same qualification does nothing."""
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(of=("self",))
            .select_related("owner")
            .filter(pk=lead_id)
            .first()
        )
        if lead is None or lead.qualified_at is None:
            return
        qualified_at = lead.qualified_at.isoformat()
        if LeadEvent.objects.filter(
            lead=lead, kind=LeadEvent.Kind.NOTIFIED, data__qualified_at=qualified_at
        ).exists():
            return
        lead_settings = lead_settings_get()
        language = connection.tenant.language  # type: ignore[attr-defined]
        team = lead_team(lead)
        url = lead_path(lead.pk)
        with translation.override(language):
            text = _("Lead %(name)s is qualified (score %(score)s).") % {
                "name": str(lead),
                "score": lead.score,
            }
        Notification.objects.bulk_create(
            [
                Notification(user=user, kind=NOTIFICATION_KIND, text=text[:300], url=url, lead=lead)
                for user in team
            ]
        )
        recipients = list(lead_settings.notify_emails) or [user.email for user in team]
        recipients = list(dict.fromkeys(r.strip().lower() for r in recipients if r.strip()))
        delivery = None
        if lead_settings.crm_webhook_url:
            delivery = webhook_delivery_create(
                event=EVENT_QUALIFIED,
                payload=lead_payload(lead),
                url=lead_settings.crm_webhook_url,
                lead=lead,
            )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.NOTIFIED,
            new=str(lead.score),
            data={
                "qualified_at": qualified_at,
                "notified_user_ids": [user.pk for user in team],
                "emails": recipients,
                "webhook_delivery_id": delivery.pk if delivery is not None else None,
            },
        )
        inbox_publish("notification", lead_id=lead.pk)
        if recipients:
            message = _email(lead, recipients, company_url(url), language)
            transaction.on_commit(lambda: _send(message, lead.pk))


def _send(message: EmailMultiAlternatives, lead_id: int) -> None:
    try:
        message.send()
    except Exception:
        # Notifications and the webhook went out; the email is best effort (SMTP outage).
        logger.exception("could not email the team about qualified lead %s", lead_id)


def notification_open(*, user: User, pk: int) -> Notification | None:
    """Mark one of `user`'s notifications read and return it (None: not theirs, or gone)."""
    notification = Notification.objects.filter(pk=pk, user=user).first()
    if notification is not None and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_read_all(*, user: User) -> int:
    """Mark every unread notification of `user` read; how many were."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
