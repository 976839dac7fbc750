"""GET /v1/analytics: the key's company's figures for a period, from the rollups; errors named
by field; another company's key sees only its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.analytics.rollup import rollup_run
from apps.analytics.selectors import company_zone
from apps.api.services import api_key_create
from apps.conversations.services import message_receive
from apps.tenants.models import Company


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""


@pytest.fixture
def keys(alpha: Company, beta: Company) -> dict[str, str]:
    return {
        "read": api_key_create(company=alpha, name="read", scopes=["read"]).key,
        "chat": api_key_create(company=alpha, name="chat", scopes=["chat"]).key,
        "beta": api_key_create(company=beta, name="beta", scopes=["read"]).key,
    }


def get(key: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(HTTP_HOST="localhost").get("/v1/analytics", params, headers=headers)


def seed(company: Company, *sessions: tuple[str, str, int]) -> None:
    """(channel, session id, visitor messages) conversations, rolled up."""
    with tenant_context(company):
        for channel, session, messages in sessions:
            for n in range(messages):
                message_receive(channel=channel, session_id=session, text=f"Hola {n}",
                                context={"page": "https://shop.example.com/precios"})  # fmt: skip
        rollup_run(lag=timedelta(0))


def test_the_figures_of_the_keys_company(
    keys: dict[str, str], alpha: Company, beta: Company
) -> None:
    seed(alpha, ("web", "w1", 2), ("web", "w2", 1), ("api", "a1", 3))
    seed(beta, ("web", "b1", 1))

    response = get(keys["read"])

    assert response.status_code == 200
    body = response.json()
    with tenant_context(alpha):
        today = timezone.now().astimezone(company_zone()).date()
    assert (body["from"], body["to"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
    )
    assert body["channel"] is None
    assert body["totals"]["conversations"] == 3
    assert body["totals"]["visitor_messages"] == 6
    assert body["totals"]["engaged"] == 2
    assert body["unique_visitors"] == 3
    assert body["funnel"][0] == {"step": "visitors", "count": 3}
    assert body["top_pages"] == [{"page": "/precios", "conversations": 3}]
    assert len(body["series"]) == 30
    assert sum(sum(row) for row in body["heatmap"]) == 6
    assert get(keys["read"], channel="api").json()["totals"]["conversations"] == 1
    assert get(keys["beta"]).json()["totals"]["conversations"] == 1


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "yesterday"}, "from", "from: use a date, YYYY-MM-DD."),
        ({"to": "2026-13-01"}, "to", "to: use a date, YYYY-MM-DD."),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from",
         "from: on or before `to`, for a period of at most 366 days."),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from",
         "from: on or before `to`, for a period of at most 366 days."),
        ({"channel": "fax"}, "channel", "channel: one of web, api, telegram, whatsapp."),
        ({"channel": "test"}, "channel", "channel: one of web, api, telegram, whatsapp."),
    ],
)  # fmt: skip
def test_an_invalid_parameter_answers_400_naming_it(
    keys: dict[str, str], params: dict[str, str], field: str, message: str
) -> None:
    response = get(keys["read"], **params)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": message, "field": field}
    }


def test_keys_without_the_read_scope_or_without_a_key_are_refused(keys: dict[str, str]) -> None:
    assert get(keys["chat"]).status_code == 403
    assert get(keys["chat"]).json()["error"]["code"] == "forbidden_scope"
    assert get(None).status_code == 401
    assert get("chapi_nope_nope").status_code == 401
