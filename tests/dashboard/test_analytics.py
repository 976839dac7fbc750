"""The analytics page and its CSV export (apps/dashboard/analytics.py): figures from the rollups
for a period and a channel, fed through the real pipeline (visitor messages received, the
offline responder answering, `rollup_run`), a notice naming dropped filters, one CSV row per
day, every member role, a query count that does not grow with the conversations, and nothing
of another company."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import Counter
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role, User
from apps.analytics.rollup import rollup_run
from apps.analytics.selectors import company_zone
from apps.conversations.models import Message
from apps.conversations.services import message_receive
from apps.experiments.models import Experiment
from apps.experiments.services import (
    experiment_create,
    experiment_results,
    experiment_start,
    experiment_stop,
)
from apps.leads.services import company_today
from apps.tenants.models import Company
from tests.conftest import host, logged_in, member, owner

pytestmark = pytest.mark.django_db

ANALYTICS = "/dashboard/analytics/"
EXPORT = "/dashboard/analytics/export.csv"
PRICES = "https://shop.example.com/precios"
CONTACT = "https://shop.example.com/contacto"
HEADERS = ["Day", "Conversations", "Visitor messages", "Leads", "Qualified", "Won", "Cost (US$)"]


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """As tests/flows/test_runtime.py: Celery is eager and `on_commit` runs at once, so a
    `message_receive` stores the message, the offline responder answers and every event of
    it is in the log."""
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""


def client_for(company: Company, user: User) -> Client:
    client = logged_in(company, user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def writes(session: str, text: str, *, channel: str = "web", page: str = PRICES) -> None:
    message_receive(channel=channel, session_id=session, text=text, context={"page": page})


def seed(company: Company) -> None:
    """Three conversations (two on the web widget, one through the API), four visitor
    messages, one lead (an email): counted by the rollup."""
    with tenant_context(company):
        writes("visitor-1", "Hola")
        writes("visitor-1", "Quiero saber los precios, mi correo es ana@example.com")
        writes("visitor-2", "Buenas tardes", page=PRICES + "?utm_source=ads")
        writes("visitor-3", "Hola", channel="api", page=CONTACT)
        rollup_run(lag=timedelta(0))


def today(company: Company) -> date:
    with tenant_context(company):
        return company_today()


def figure(page: str, key: str) -> tuple[str, str]:
    """The figure `key`: (its data-value, the text shown)."""
    match = re.search(
        rf'<div class="figure" id="figure-{key}" data-testid="figure-{key}" '
        r'data-value="([^"]*)">\s*<span class="figure-label">[^<]*</span>\s*'
        r'<strong class="figure-value">([^<]*)</strong>',
        page,
    )
    assert match, f"no figure {key}"
    return match.group(1), html.unescape(match.group(2))


def values(page: str, *keys: str) -> dict[str, str]:
    return {key: figure(page, key)[0] for key in keys}


COUNTS = ("conversations", "unique-visitors", "visitor-messages", "leads")
RATES_AND_TIMES = (
    "qualification-rate", "conversion-rate", "handoff-rate", "resolved-rate", "first-response",
    "ttft-p50", "ttft-p95",
)  # fmt: skip


def top_pages(page: str) -> list[tuple[str, int]]:
    found = re.findall(r'data-testid="top-page" data-page="([^"]*)" data-value="(\d+)"', page)
    return [(path, int(count)) for path, count in found]


def heatmap(page: str) -> dict[tuple[int, int], int]:
    found = re.findall(r'data-testid="heat-(\d)-(\d+)" data-value="(\d+)"', page)
    return {(int(day), int(hour)): int(count) for day, hour, count in found}


def heat_expected(company: Company) -> dict[tuple[int, int], int]:
    """Visitor messages per (weekday, hour) in the company's time zone, from the messages
    themselves: what the rollup must have counted."""
    with tenant_context(company):
        zone = company_zone()
        stamps = Message.objects.filter(role=Message.Role.VISITOR).values_list(
            "created_at", flat=True
        )
        cells = Counter(
            (local.weekday(), local.hour) for local in (s.astimezone(zone) for s in stamps)
        )
    return {(d, h): cells.get((d, h), 0) for d in range(7) for h in range(24)}


def island(page: str) -> dict:
    match = re.search(
        r'<script id="analytics-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert match, "no data island"
    return json.loads(match.group(1))


def csv_rows(content: bytes) -> list[list[str]]:
    text = content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- The figures -------------------------------------------------------------------------------


def test_the_page_shows_the_figures_of_the_rollups(alpha: Company) -> None:
    seed(alpha)

    response = client_for(alpha, owner(alpha)).get(ANALYTICS)

    assert response.status_code == 200
    page = response.content.decode()
    assert values(page, *COUNTS) == {
        "conversations": "3",
        "unique-visitors": "3",
        "visitor-messages": "4",
        "leads": "1",
    }
    assert figure(page, "qualification-rate") == ("0.0", "0.0%")
    assert figure(page, "conversion-rate") == ("0.0", "0.0%")
    assert figure(page, "handoff-rate") == ("0.0", "0.0%")
    assert figure(page, "resolved-rate") == ("1.0", "100.0%")
    assert top_pages(page) == [("/precios", 2), ("/contacto", 1)]
    cells = heatmap(page)
    assert len(cells) == 7 * 24
    assert cells == heat_expected(alpha)
    assert sum(cells.values()) == 4
    assert "Figures are updated every minute." in page
    assert "(America/Bogota)" in page
    data = island(page)
    assert data["funnel"] == [
        {"step": "visitors", "count": 3},
        {"step": "engaged", "count": 1},
        {"step": "leads", "count": 1},
        {"step": "qualified", "count": 0},
        {"step": "won", "count": 0},
    ]
    assert [(row["channel"], row["conversations"]) for row in data["channels"]] == [
        ("web", 2),
        ("api", 1),
    ]
    assert len(data["series"]) == 30
    assert data["series"][-1]["day"] == today(alpha).isoformat()
    assert data["series"][-1]["conversations"] == 3
    assert data["labels"]["funnel"]["engaged"] == "Engaged"
    assert data["labels"]["channels"] == {"web": "Web widget", "api": "REST API"}


def test_the_offline_responders_replies_are_counted(alpha: Company) -> None:
    seed(alpha)

    page = client_for(alpha, owner(alpha)).get(ANALYTICS).content.decode()

    # Every visitor message got an answer from the offline responder (no API key): its
    # replies have a time to first token, tokens out and no cost.
    data = island(page)
    assert data["ttft_ms"]["count"] == 4
    assert figure(page, "ttft-p50")[0] == str(data["ttft_ms"]["p50"])
    assert figure(page, "ttft-p95")[0] == str(data["ttft_ms"]["p95"])
    assert figure(page, "first-response")[0] == str(data["first_response_ms"])
    tokens = data["totals"]["input_tokens"] + data["totals"]["output_tokens"]
    assert tokens > 0
    assert figure(page, "tokens")[0] == str(tokens)
    assert figure(page, "cost") == ("0", "US$ 0.0000")
    assert [(row["provider"], row["replies"]) for row in data["models"]] == [("offline", 4)]


def test_nothing_shows_before_the_rollup_counts_it(alpha: Company) -> None:
    with tenant_context(alpha):
        writes("visitor-1", "Hola")

    page = client_for(alpha, owner(alpha)).get(ANALYTICS).content.decode()

    assert values(page, *COUNTS) == {
        "conversations": "0",
        "unique-visitors": "0",
        "visitor-messages": "0",
        "leads": "0",
    }
    for key in RATES_AND_TIMES:
        assert figure(page, key) == ("", "—")
    assert top_pages(page) == []
    assert set(heatmap(page).values()) == {0}


def test_the_channel_filter_changes_the_figures(alpha: Company) -> None:
    seed(alpha)
    client = client_for(alpha, owner(alpha))

    web = client.get(ANALYTICS, {"channel": "web"}).content.decode()
    api = client.get(ANALYTICS, {"channel": "api"}).content.decode()
    whatsapp = client.get(ANALYTICS, {"channel": "whatsapp"}).content.decode()

    assert values(web, *COUNTS) == {
        "conversations": "2",
        "unique-visitors": "2",
        "visitor-messages": "3",
        "leads": "1",
    }
    assert top_pages(web) == [("/precios", 2)]
    assert sum(heatmap(web).values()) == 3
    assert '<option value="web" selected>Web widget</option>' in web
    assert values(api, *COUNTS) == {
        "conversations": "1",
        "unique-visitors": "1",
        "visitor-messages": "1",
        "leads": "0",
    }
    assert top_pages(api) == [("/contacto", 1)]
    assert figure(api, "qualification-rate") == ("", "—")
    assert values(whatsapp, *COUNTS) == {
        "conversations": "0",
        "unique-visitors": "0",
        "visitor-messages": "0",
        "leads": "0",
    }
    assert figure(whatsapp, "resolved-rate") == ("", "—")
    assert top_pages(whatsapp) == []
    # The channel breakdown always shows every channel.
    assert [row["channel"] for row in island(whatsapp)["channels"]] == ["web", "api"]
    # The dashboard's own test chat is not offered as a channel.
    assert '<option value="test"' not in web


def test_dropped_filters_are_named_and_the_default_period_is_shown(alpha: Company) -> None:
    seed(alpha)
    client = client_for(alpha, owner(alpha))
    end = today(alpha)

    response = client.get(ANALYTICS, {"from": "2026-13-45", "channel": "fax"})

    page = response.content.decode()
    notice = re.search(r'id="analytics-problems"[^>]*><p>(.*?)</p>', page)
    assert notice
    assert html.unescape(notice.group(1)) == (
        "Some filters were not valid and were left out: From, Channel."
    )
    assert f'name="from" value="{(end - timedelta(days=29)).isoformat()}"' in page
    assert f'name="to" value="{end.isoformat()}"' in page
    assert figure(page, "conversations")[0] == "3"

    later = client.get(ANALYTICS, {"from": end.isoformat(), "to": "2020-01-01"}).content.decode()
    assert "Some filters were not valid and were left out: From." in html.unescape(later)

    fine = client.get(ANALYTICS, {"from": end.isoformat(), "to": end.isoformat()})
    assert 'id="analytics-problems"' not in fine.content.decode()


def test_the_export_link_keeps_the_filters(alpha: Company) -> None:
    client = client_for(alpha, owner(alpha))

    page = client.get(
        ANALYTICS, {"from": "2026-01-01", "to": "2026-01-31", "channel": "api"}
    ).content.decode()

    assert (
        '<a id="analytics-export" data-testid="analytics-export" '
        f'href="{EXPORT}?from=2026-01-01&amp;to=2026-01-31&amp;channel=api" download>'
        "Export CSV</a>"
    ) in page


def test_the_charts_come_from_the_products_own_chartjs(alpha: Company) -> None:
    page = client_for(alpha, owner(alpha)).get(ANALYTICS).content.decode()

    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts == [
        ' id="analytics-data" type="application/json"',
        ' src="/static/vendor/chartjs/chart.umd.min.js" defer',
        ' src="/static/dashboard/analytics.js" defer',
    ]
    for canvas in ("chart-daily", "chart-funnel", "chart-channels", "chart-models"):
        pattern = rf'<canvas id="{canvas}" data-testid="{canvas}" role="img" aria-label="[^"]+">'
        assert re.search(pattern, page)
    for table in ("table-daily", "table-funnel", "table-channels", "table-models"):
        assert f'<table class="table" id="{table}">' in page


# --- The CSV -----------------------------------------------------------------------------------


def test_the_csv_has_one_row_per_day(alpha: Company) -> None:
    seed(alpha)
    end = today(alpha)
    start = end - timedelta(days=2)
    client = client_for(alpha, owner(alpha))

    response = client.get(EXPORT, {"from": start.isoformat(), "to": end.isoformat()})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="analytics-{start.isoformat()}-{end.isoformat()}.csv"'
    )
    assert csv_rows(response.content) == [
        HEADERS,
        [start.isoformat(), "0", "0", "0", "0", "0", "0.000000"],
        [(start + timedelta(days=1)).isoformat(), "0", "0", "0", "0", "0", "0.000000"],
        [end.isoformat(), "3", "4", "1", "0", "0", "0.000000"],
    ]

    api = client.get(EXPORT, {"from": end.isoformat(), "to": end.isoformat(), "channel": "api"})
    assert csv_rows(api.content) == [
        HEADERS,
        [end.isoformat(), "1", "1", "0", "0", "0", "0.000000"],
    ]


def test_the_csv_of_the_default_period_has_thirty_days(alpha: Company) -> None:
    end = today(alpha)

    response = client_for(alpha, owner(alpha)).get(EXPORT, {"to": "not-a-day"})

    rows = csv_rows(response.content)
    assert rows[0] == HEADERS
    assert [row[0] for row in rows[1:]] == [
        (end - timedelta(days=n)).isoformat() for n in range(29, -1, -1)
    ]
    assert response["Content-Disposition"] == (
        f'attachment; filename="analytics-{(end - timedelta(days=29)).isoformat()}-'
        f'{end.isoformat()}.csv"'
    )


# --- Who may read it ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.AGENT, Role.VIEWER])
def test_every_member_role_reads_the_page_and_the_csv(alpha: Company, role: str) -> None:
    seed(alpha)
    client = client_for(alpha, member(alpha, role))

    page = client.get(ANALYTICS)
    export = client.get(EXPORT)

    assert page.status_code == 200
    assert figure(page.content.decode(), "conversations")[0] == "3"
    assert export.status_code == 200
    assert csv_rows(export.content)[-1][1] == "3"


def test_a_signed_out_visitor_is_sent_to_log_in(alpha: Company) -> None:
    client = Client(HTTP_HOST=host(alpha))

    for path in (ANALYTICS, EXPORT):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_the_page_is_read_only(alpha: Company) -> None:
    client = client_for(alpha, owner(alpha))

    assert client.post(ANALYTICS).status_code == 405
    assert client.post(EXPORT).status_code == 405


# --- Queries -----------------------------------------------------------------------------------


def conversations_add(company: Company, first: int, count: int) -> None:
    with tenant_context(company):
        for n in range(first, first + count):
            writes(f"many-{n}", "Hola", page=f"https://shop.example.com/p{n % 12}")
        rollup_run(lag=timedelta(0))


def test_the_number_of_queries_does_not_grow_with_the_conversations(alpha: Company) -> None:
    client = client_for(alpha, owner(alpha))
    conversations_add(alpha, 0, 3)
    client.get(ANALYTICS)  # warm caches (session, company, translations)

    with CaptureQueriesContext(connection) as few:
        response = client.get(ANALYTICS)
    assert figure(response.content.decode(), "conversations")[0] == "3"

    conversations_add(alpha, 3, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get(ANALYTICS)
    assert figure(response.content.decode(), "conversations")[0] == "30"

    assert len(few) == len(many), [q["sql"] for q in many.captured_queries]
    # Nothing reads the messages or the conversations themselves.
    tables = " ".join(q["sql"] for q in many.captured_queries)
    assert "conversations_message" not in tables
    assert "conversations_conversation" not in tables


# --- A/B tests ---------------------------------------------------------------------------------


def test_running_and_recently_ended_ab_tests_are_listed_with_their_verdicts(
    alpha: Company,
) -> None:
    with tenant_context(alpha):
        ended = []
        for n in range(6):
            experiment = experiment_create(
                name=f"Welcome {n}",
                target="welcome",
                metric="leads",
                texts=[(f"Hello {n}", 50), (f"Hi there {n}", 50)],
            )
            experiment_start(experiment=experiment)
            ended.append(experiment_stop(experiment=experiment))
        prompt = experiment_create(
            name="Prompt",
            target="system_prompt",
            metric="qualified",
            texts=[("Be brief.", 50), ("Be warm and brief.", 50)],
        )
        running = experiment_start(experiment=prompt)
        draft = experiment_create(
            name="Draft", target="welcome", metric="leads", texts=[("A", 50), ("B", 50)]
        )
        verdicts = {
            e.pk: experiment_results(Experiment.objects.get(pk=e.pk)).verdict
            for e in [running, *ended]
        }

    page = client_for(alpha, owner(alpha)).get(ANALYTICS).content.decode()

    rows = re.findall(
        r'<tr data-testid="experiment" data-experiment-id="(\d+)"><td><a href="([^"]+)">'
        r"([^<]+)</a></td><td><span [^>]+>([^<]+)</span></td><td>([^<]*)</td></tr>",
        page,
    )
    newest_ended = list(reversed(ended))[:5]
    assert [(int(pk), link, name, status) for pk, link, name, status, _v in rows] == [
        (running.pk, f"/dashboard/experiments/{running.pk}/", "Prompt", "Running"),
        *[(e.pk, f"/dashboard/experiments/{e.pk}/", e.name, "Stopped") for e in newest_ended],
    ]
    assert [html.unescape(verdict) for *_rest, verdict in rows] == [
        verdicts[running.pk],
        *[verdicts[e.pk] for e in newest_ended],
    ]
    assert f'data-experiment-id="{draft.pk}"' not in page


# --- Isolation ---------------------------------------------------------------------------------


def test_another_companys_events_never_show(alpha: Company, beta: Company) -> None:
    seed(alpha)
    with tenant_context(beta):
        for n in range(5):
            writes(f"beta-{n}", "Hola desde beta", page="https://beta.example.com/solo-beta")
        rollup_run(lag=timedelta(0))
    end = today(alpha)

    alpha_page = client_for(alpha, owner(alpha)).get(ANALYTICS).content.decode()
    alpha_csv = client_for(alpha, owner(alpha)).get(EXPORT, {"to": end.isoformat()})
    beta_page = client_for(beta, owner(beta)).get(ANALYTICS).content.decode()

    assert figure(alpha_page, "conversations")[0] == "3"
    assert "/solo-beta" not in alpha_page
    assert top_pages(alpha_page) == [("/precios", 2), ("/contacto", 1)]
    assert csv_rows(alpha_csv.content)[-1][:3] == [end.isoformat(), "3", "4"]
    assert figure(beta_page, "conversations")[0] == "5"
    assert top_pages(beta_page) == [("/solo-beta", 5)]
