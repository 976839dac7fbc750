"""The dashboard's lead settings page: who may use it, the form (validation, audit, the
write-only secret), the test event, the delivery log and re-sending, company isolation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.audit.models import AuditLog
from apps.dashboard.lead_settings import slots_parse, slots_text
from apps.leads.models import Lead, LeadSettings, WebhookDelivery
from apps.leads.services import lead_settings_get
from apps.tenants.models import Company
from tests.conftest import host, logged_in, member, owner

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

PAGE = "/dashboard/leads/settings/"
TEST = "/dashboard/leads/settings/test/"
SECRET = "whsec_dashboard_0123456789WXYZ"


def resend_url(pk: int) -> str:
    return f"/dashboard/leads/settings/deliveries/{pk}/resend/"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def client_as(company: Company, role: str) -> Client:
    user = owner(company) if role == Role.OWNER else member(company, role)
    return english(logged_in(company, user))


def form(**overrides: Any) -> dict[str, Any]:
    """Every field of the settings form, with the defaults."""
    return {
        "weight_need": "25",
        "weight_budget": "25",
        "weight_authority": "15",
        "weight_timeline": "20",
        "weight_engagement": "15",
        "qualify_threshold": "60",
        "timeline_full_days": "90",
        "model_reading": "on",
        "notify_emails": "",
        "crm_webhook_url": "",
        "crm_webhook_secret_0": "",
        "booking_link": "",
        "booking_slots": "",
        "booking_minutes": "30",
        "booking_notice_hours": "2",
        "handoff_wait_minutes": "5",
        "handoff_on_price_when_qualified": "on",
        "handoff_when_unanswered": "on",
        **overrides,
    }


def stored(company: Company) -> LeadSettings:
    with tenant_context(company):
        return lead_settings_get()


def flashed(response: Response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def audit(company: Company, action: str) -> list[dict[str, Any]]:
    with tenant_context(company):
        return list(
            AuditLog.objects.filter(action=action).order_by("id").values_list("changes", flat=True)
        )


def delivery_in(company: Company, **fields: Any) -> WebhookDelivery:
    with tenant_context(company):
        lead = Lead.objects.create(name="Ana Pérez", score=80)
        return WebhookDelivery.objects.create(
            **{
                "event": "lead.qualified",
                "lead": lead,
                "url": "https://crm.example.com/hook",
                "payload": {"event": "lead.qualified", "lead": {"id": lead.pk}},
                "status": WebhookDelivery.Status.FAILED,
                "attempts": 6,
                "response_code": 503,
                "error": "HTTP 503",
                **fields,
            }
        )


def webhook_configured(company: Company, url: str = "https://crm.example.com/hook") -> None:
    with tenant_context(company):
        row = lead_settings_get()
        row.crm_webhook_url = url
        row.crm_webhook_secret = SECRET
        row.save()


# --- Who may use it ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_see_the_page_and_its_menu_entry(alpha: Company, role: str) -> None:
    response = client_as(alpha, role).get(PAGE)

    assert response.status_code == 200
    assert f'href="{PAGE}"' in response.content.decode()


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_are_refused_everything(alpha: Company, role: str) -> None:
    delivery = delivery_in(alpha)
    webhook_configured(alpha)
    client = client_as(alpha, role)

    responses = [
        client.get(PAGE),
        client.post(PAGE, form(qualify_threshold="10")),
        client.post(TEST),
        client.post(resend_url(delivery.pk)),
    ]
    home = client.get("/dashboard/")

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert stored(alpha).qualify_threshold == 60
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 1
    assert f'href="{PAGE}"' not in home.content.decode()


def test_a_visitor_who_is_not_signed_in_is_sent_to_log_in(client_alpha: Client) -> None:
    response = client_alpha.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_actions_only_accept_post_with_a_csrf_token(alpha: Company) -> None:
    delivery = delivery_in(alpha)
    webhook_configured(alpha)
    boss = owner(alpha)
    client = english(logged_in(alpha, boss))
    strict = Client(HTTP_HOST=host(alpha), enforce_csrf_checks=True)
    with tenant_context(alpha):
        strict.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")

    assert client.get(resend_url(delivery.pk)).status_code == 405
    assert client.get(TEST).status_code == 405
    assert strict.post(resend_url(delivery.pk)).status_code == 403
    assert strict.post(TEST).status_code == 403
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 1


# --- The form ------------------------------------------------------------------------------


def test_saving_stores_every_setting_and_audits_the_change(alpha: Company) -> None:
    client = client_as(alpha, Role.ADMIN)

    response = client.post(
        PAGE,
        form(
            weight_need="30",
            weight_engagement="0",
            qualify_threshold="70",
            timeline_full_days="45",
            model_reading="",
            notify_emails="Sales@Alpha.example.com, crm@alpha.example.com,sales@alpha.example.com",
            crm_webhook_url="https://crm.example.com/hooks/chapi",
            crm_webhook_secret_0=SECRET,
            booking_link="https://cal.example.com/alpha",
            booking_slots="thu 16:30\nlunes 9:30\nmon 10:00\nMon 10:00\n",
            booking_minutes="45",
            booking_notice_hours="24",
            handoff_wait_minutes="10",
            handoff_on_price_when_qualified="",
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert flashed(response) == [("success", "Lead settings saved.")]
    row = stored(alpha)
    assert row.weights == {"need": 30, "budget": 25, "authority": 15, "timeline": 20,
                           "engagement": 0}  # fmt: skip
    assert row.qualify_threshold == 70
    assert row.timeline_full_days == 45
    assert row.model_reading is False
    assert row.notify_emails == ["sales@alpha.example.com", "crm@alpha.example.com"]
    assert row.crm_webhook_url == "https://crm.example.com/hooks/chapi"
    assert row.crm_webhook_secret == SECRET
    assert row.booking_link == "https://cal.example.com/alpha"
    assert row.booking_slots == [
        {"weekday": 0, "time": "09:30"},
        {"weekday": 0, "time": "10:00"},
        {"weekday": 3, "time": "16:30"},
    ]
    assert (row.booking_minutes, row.booking_notice_hours, row.handoff_wait_minutes) == (45, 24, 10)
    assert row.handoff_on_price_when_qualified is False
    assert row.handoff_when_unanswered is True
    [changes] = audit(alpha, "lead_settings.update")
    assert changes["weight_need"] == [25, 30]
    assert changes["qualify_threshold"] == [60, 70]
    assert changes["crm_webhook_secret"] == ["", "••••WXYZ"]
    assert changes["booking_slots"] == [[], row.booking_slots]
    assert SECRET not in str(changes)
    assert "weight_budget" not in changes


def test_the_secret_is_write_only_and_kept_when_left_blank(alpha: Company) -> None:
    webhook_configured(alpha)
    client = client_as(alpha, Role.OWNER)

    page = client.get(PAGE).content.decode()
    response = client.post(
        PAGE, form(crm_webhook_url="https://crm.example.com/v2", qualify_threshold="65")
    )

    assert SECRET not in page
    assert "••••WXYZ" in page
    assert response.status_code == 302
    row = stored(alpha)
    assert row.crm_webhook_secret == SECRET
    assert row.crm_webhook_url == "https://crm.example.com/v2"
    [changes] = audit(alpha, "lead_settings.update")
    assert sorted(changes) == ["crm_webhook_url", "qualify_threshold"]


def test_the_page_shows_the_stored_slots_one_per_line(alpha: Company) -> None:
    with tenant_context(alpha):
        row = lead_settings_get()
        row.booking_slots = [{"weekday": 1, "time": "09:00"}, {"weekday": 4, "time": "15:30"}]
        row.save()

    page = client_as(alpha, Role.OWNER).get(PAGE).content.decode()

    assert ">\ntue 09:00\nfri 15:30</textarea>" in page


def test_slots_are_read_in_english_or_spanish_and_written_back() -> None:
    slots = slots_parse("Monday 9:00\nmiércoles 14.30\n\nsáb 10h00\nvie 18:05\nmon 9:00")

    assert slots == [
        {"weekday": 0, "time": "09:00"},
        {"weekday": 2, "time": "14:30"},
        {"weekday": 4, "time": "18:05"},
        {"weekday": 5, "time": "10:00"},
    ]
    assert slots_text(slots) == "mon 09:00\nwed 14:30\nfri 18:05\nsat 10:00"


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        (
            {"booking_slots": "mon 10:00\nsometime 10:00"},
            "booking_slots",
            'Line 2: write a day and a time, like "mon 10:00".',
        ),
        (
            {"booking_slots": "mon 25:00"},
            "booking_slots",
            'Line 1: write a day and a time, like "mon 10:00".',
        ),
        ({"qualify_threshold": "0"}, "qualify_threshold",
         "Ensure this value is greater than or equal to 1."),
        ({"weight_need": "101"}, "weight_need", "Ensure this value is less than or equal to 100."),
        ({"handoff_wait_minutes": "0"}, "handoff_wait_minutes",
         "Ensure this value is greater than or equal to 1."),
        ({"notify_emails": "sales@alpha.example.com, not-an-email"}, "notify_emails",
         "Item 2 in the array did not validate: Enter a valid email address."),
        ({"notify_emails": ",".join(f"s{i}@alpha.example.com" for i in range(21))},
         "notify_emails", "At most 20 addresses."),
        ({"crm_webhook_url": "https://crm.example.com/hook"}, "crm_webhook_secret",
         "Set a signing secret so that your CRM can tell the events are yours."),
        ({"crm_webhook_url": "not a url", "crm_webhook_secret_0": SECRET}, "crm_webhook_url",
         "Enter a valid URL."),
    ],
)  # fmt: skip
def test_invalid_settings_are_refused_with_their_error_and_nothing_changes(
    alpha: Company, overrides: dict[str, str], field: str, error: str
) -> None:
    response = client_as(alpha, Role.OWNER).post(PAGE, form(**overrides))

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [error]
    row = stored(alpha)
    assert (row.qualify_threshold, row.weight_need, row.booking_slots) == (60, 25, [])
    assert row.crm_webhook_url == ""
    assert audit(alpha, "lead_settings.update") == []


def test_all_weights_at_zero_are_refused(alpha: Company) -> None:
    zero = {f"weight_{part}": "0" for part in ("need", "budget", "authority", "timeline",
                                                "engagement")}  # fmt: skip

    response = client_as(alpha, Role.OWNER).post(PAGE, form(**zero))

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "At least one weight must be above zero."
    ]
    assert stored(alpha).weight_need == 25


@override_settings(CRM_WEBHOOK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://crm.example.com/hook", "The webhook URL must start with https://."),
        ("https://10.0.0.5/hook", "The webhook URL cannot point at a private or local address."),
        ("https://169.254.169.254/latest", "The webhook URL cannot point at a private or local "
                                           "address."),
        ("https://localhost:8000/hook", "The webhook URL cannot point at this server."),
    ],
)  # fmt: skip
def test_a_webhook_url_on_a_private_network_is_refused(
    alpha: Company, url: str, error: str
) -> None:
    response = client_as(alpha, Role.OWNER).post(
        PAGE, form(crm_webhook_url=url, crm_webhook_secret_0=SECRET)
    )

    assert response.status_code == 400
    assert response.context["form"].errors["crm_webhook_url"] == [error]
    assert stored(alpha).crm_webhook_url == ""


# --- Test event, delivery log, re-send -----------------------------------------------------


def test_the_test_event_is_queued_to_the_configured_url(alpha: Company) -> None:
    webhook_configured(alpha)

    response = client_as(alpha, Role.OWNER).post(TEST)

    assert response.status_code == 302
    assert flashed(response) == [("success", "Test event queued: its delivery shows below.")]
    with tenant_context(alpha):
        delivery = WebhookDelivery.objects.get()
    assert delivery.event == "webhook.test"
    assert delivery.url == "https://crm.example.com/hook"
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.payload["event"] == "webhook.test"
    assert delivery.payload["company"] == "alpha"
    assert len(audit(alpha, "lead_webhook.test")) == 1


def test_without_a_url_the_test_event_is_refused(alpha: Company) -> None:
    response = client_as(alpha, Role.OWNER).post(TEST)

    assert flashed(response) == [("error", "Set the CRM webhook URL first.")]
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 0


def test_the_log_lists_deliveries_and_a_resend_makes_a_new_one(alpha: Company) -> None:
    webhook_configured(alpha, "https://crm.example.com/v2")
    failed = delivery_in(alpha)
    client = client_as(alpha, Role.ADMIN)

    page = client.get(PAGE).content.decode()
    response = client.post(resend_url(failed.pk))

    assert "HTTP 503" in page
    assert "Ana Pérez" in page
    assert f'action="{resend_url(failed.pk)}"' in page
    assert SECRET not in page
    assert response.status_code == 302
    assert flashed(response) == [("success", "Delivery queued again.")]
    with tenant_context(alpha):
        resent = WebhookDelivery.objects.exclude(pk=failed.pk).get()
        original = WebhookDelivery.objects.get(pk=failed.pk)
    assert resent.resend_of_id == failed.pk
    assert resent.payload == failed.payload
    assert resent.url == "https://crm.example.com/v2"
    assert resent.status == WebhookDelivery.Status.PENDING
    assert (original.status, original.attempts) == (WebhookDelivery.Status.FAILED, 6)
    assert audit(alpha, "lead_webhook.resend") == [{"resend_of": [None, failed.pk]}]


def test_the_log_shows_the_latest_fifty(alpha: Company) -> None:
    with tenant_context(alpha):
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event="webhook.test", url="https://crm.example.com", payload={})
            for _ in range(55)
        )

    page = client_as(alpha, Role.OWNER).get(PAGE)

    assert len(page.context["deliveries"]) == 50


# --- Isolation -----------------------------------------------------------------------------


def test_another_companys_manager_cannot_see_or_resend_its_deliveries(
    alpha: Company, beta: Company
) -> None:
    webhook_configured(alpha)
    webhook_configured(beta, "https://beta-crm.example.com/hook")
    alpha_delivery = delivery_in(alpha, error="alpha-only-error")
    beta_boss: User = owner(beta)
    beta_client = english(logged_in(beta, beta_boss))
    with tenant_context(beta):
        beta_ids = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert alpha_delivery.pk not in beta_ids

    page = beta_client.get(PAGE).content.decode()
    resend = beta_client.post(resend_url(alpha_delivery.pk))
    # The same session on alpha's host: not a member there.
    cross = Client(HTTP_HOST=host(alpha))
    cross.cookies = beta_client.cookies
    cross_resend = cross.post(resend_url(alpha_delivery.pk))

    assert "alpha-only-error" not in page
    assert resend.status_code == 404
    assert cross_resend.status_code in {302, 403}
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 1
        assert AuditLog.objects.filter(action="lead_webhook.resend").count() == 0
    with tenant_context(beta):
        assert WebhookDelivery.objects.count() == 0
        assert stored(beta).crm_webhook_url == "https://beta-crm.example.com/hook"


# --- The company admin ---------------------------------------------------------------------


def test_the_company_admin_shows_leads_settings_and_deliveries(alpha: Company) -> None:
    delivery = delivery_in(alpha)
    webhook_configured(alpha)
    client = client_as(alpha, Role.OWNER)
    with tenant_context(alpha):
        settings_pk = lead_settings_get().pk

    pages = {
        url: client.get(url)
        for url in (
            "/admin/leads/lead/",
            f"/admin/leads/lead/{delivery.lead_id}/change/",
            f"/admin/leads/leadsettings/{settings_pk}/change/",
            "/admin/leads/webhookdelivery/",
            f"/admin/leads/webhookdelivery/{delivery.pk}/change/",
        )
    }
    redirect = client.get("/admin/leads/leadsettings/")

    assert {url: r.status_code for url, r in pages.items()} == dict.fromkeys(pages, 200)
    assert redirect["Location"] == f"/admin/leads/leadsettings/{settings_pk}/change/"
    assert all(SECRET not in r.content.decode() for r in pages.values())
    assert "••••WXYZ" in pages[f"/admin/leads/leadsettings/{settings_pk}/change/"].content.decode()


def test_the_admin_saves_settings_through_the_audited_service(alpha: Company) -> None:
    webhook_configured(alpha)
    client = client_as(alpha, Role.OWNER)
    with tenant_context(alpha):
        settings_pk = lead_settings_get().pk

    response = client.post(
        f"/admin/leads/leadsettings/{settings_pk}/change/",
        form(crm_webhook_url="https://crm.example.com/hook", qualify_threshold="75"),
    )

    assert response.status_code == 302
    row = stored(alpha)
    assert (row.qualify_threshold, row.crm_webhook_secret) == (75, SECRET)
    assert audit(alpha, "lead_settings.update") == [{"qualify_threshold": [60, 75]}]


def test_the_admin_resend_action_calls_the_service(alpha: Company) -> None:
    delivery = delivery_in(alpha)
    webhook_configured(alpha)
    client = client_as(alpha, Role.ADMIN)

    response = client.post(
        "/admin/leads/webhookdelivery/",
        {"action": "resend", "_selected_action": [str(delivery.pk)]},
    )

    assert response.status_code == 302
    with tenant_context(alpha):
        resent = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
    assert resent.resend_of_id == delivery.pk
    assert audit(alpha, "lead_webhook.resend") == [{"resend_of": [None, delivery.pk]}]
