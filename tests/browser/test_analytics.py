"""The analytics page in real headless Chromium, against the product as it runs in production
(the widget's live stack, tests/browser/widget_live.py): the charts are drawn by the vendored
Chart.js from the page's data island, the console stays clean, and choosing a channel applies
the filter (the figures follow).

The figures are seeded committed (`committed`): conversations received in company A through
the real pipeline (`message_receive`; the replies come from the stack's FakeOpenAI), then the
rollup counts them (`rollup_run`), as the per-minute task would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from tests.browser.inbox_live import (
    TeamMember,
    dashboard_login,
    dashboard_url,
    member_add,
    translated,
)
from tests.browser.widget_live import (
    WidgetCompany,
    WidgetStack,
    last_user_text,
    reply_for,
)
from tests.live import committed

# django_db only gets the test database created (see tests/browser/conftest.py): everything
# the servers see is committed, and the tests read it back through `committed`.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

ANALYTICS = "/dashboard/analytics/"
CHARTS = ("chart-daily", "chart-funnel", "chart-channels", "chart-models")
# Each visitor's messages, all on the web widget, from the shop's pricing page.
VISITORS = {
    "analytics-visitor-1": ["Hola", "¿Cuánto cuesta el plan anual?"],
    "analytics-visitor-2": ["Buenas tardes"],
    "analytics-visitor-3": ["Quiero una cotización"],
}

# Every chart of the page: drawn by Chart.js on a canvas that has a size.
CHARTS_DRAWN_JS = """(ids) => ids.every((id) => {
  const canvas = document.getElementById(id);
  const chart = canvas && window.Chart && window.Chart.getChart(canvas);
  return Boolean(chart) && canvas.width > 0 && canvas.height > 0 && canvas.clientWidth > 0;
})"""

# What each chart shows: its labels and each dataset's label and numbers.
CHART_DATA_JS = """(id) => {
  const chart = window.Chart.getChart(document.getElementById(id));
  return {type: chart.config.type, labels: chart.data.labels,
          datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data}))};
}"""


def conversations_seed(stack: WidgetStack, company: WidgetCompany) -> None:
    """VISITORS' messages received by `company` (committed; each answered by the fake model
    in this process, Celery being eager here), then counted by the rollup."""
    from apps.analytics.rollup import rollup_run
    from apps.conversations.services import message_receive
    from apps.tenants.models import Company

    def work() -> None:
        with tenant_context(Company.objects.get(slug=company.slug)):
            for session, texts in VISITORS.items():
                for text in texts:
                    message_receive(
                        channel="web",
                        session_id=session,
                        text=text,
                        context={"page": "https://shop.example.com/precios"},
                    )
            rollup_run(lag=timedelta(0))

    committed(stack.django_db_blocker, work)


@pytest.fixture(scope="module")
def boss(live_stack: WidgetStack) -> TeamMember:
    """An owner of company A, whose analytics have VISITORS' conversations."""
    fake = live_stack.fake
    fake.reset()
    fake.responder = lambda body: reply_for(last_user_text(body), words=6)
    try:
        conversations_seed(live_stack, live_stack.a)
    finally:
        fake.reset()
    return member_add(live_stack, live_stack.a, role="owner", name="Marina Prado")


@pytest.fixture
def stack(live_stack: WidgetStack) -> Iterator[WidgetStack]:
    """The module's stack; the servers' logs are printed when the test fails."""
    yield live_stack
    print(live_stack.log_tails())


@pytest.fixture
def new_page(new_context: Callable[..., Any]) -> Callable[[], Any]:
    """`new_page()`: a page of a fresh browser context (Spanish, console watched)."""
    return lambda: new_context().new_page()


def charts_drawn(page: Any) -> None:
    page.wait_for_function(CHARTS_DRAWN_JS, arg=list(CHARTS))


def chart(page: Any, chart_id: str) -> dict[str, Any]:
    return page.evaluate(CHART_DATA_JS, chart_id)


def conversations_figure(page: Any) -> Any:
    return page.locator("#figure-conversations")


def test_the_charts_are_drawn_from_the_pages_data(
    stack: WidgetStack, boss: TeamMember, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    dashboard_login(page, stack, stack.a, boss, ANALYTICS)

    expect(conversations_figure(page)).to_have_attribute("data-value", "3")
    expect(page.locator("#figure-visitor-messages")).to_have_attribute("data-value", "4")
    charts_drawn(page)
    assert page.evaluate("() => window.Chart.version") == "4.5.1"
    daily = chart(page, "chart-daily")
    assert daily["type"] == "line"
    assert len(daily["labels"]) == 30
    assert [sum(d["data"]) for d in daily["datasets"]] == [3, 4, 0]
    funnel = chart(page, "chart-funnel")
    assert funnel["type"] == "bar"
    assert funnel["datasets"][0]["data"] == [3, 1, 0, 0, 0]
    channels = chart(page, "chart-channels")
    assert channels["labels"] == [translated("es", "Web widget")]
    assert [d["data"] for d in channels["datasets"]] == [[3], [4], [0]]
    models = chart(page, "chart-models")
    # One model, its tokens and its cost: every reply of the fake model counted.
    assert len(models["datasets"]) == 2
    assert sum(models["datasets"][0]["data"]) > 0
    for chart_id in CHARTS:
        label = page.locator(f"#{chart_id}").get_attribute("aria-label")
        assert label
    # The heatmap and the top pages need no script: server-rendered.
    expect(page.locator("[data-testid=top-page]")).to_have_count(1)
    expect(page.locator("[data-testid=top-page]")).to_have_attribute("data-page", "/precios")
    cells = page.locator("#heatmap td").evaluate_all(
        "(cells) => cells.map((c) => Number(c.dataset.value))"
    )
    assert len(cells) == 7 * 24
    assert sum(cells) == 4


def test_choosing_a_channel_applies_the_filter(
    stack: WidgetStack, boss: TeamMember, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    dashboard_login(page, stack, stack.a, boss, ANALYTICS)
    expect(conversations_figure(page)).to_have_attribute("data-value", "3")
    charts_drawn(page)

    page.select_option("#analytics-channel", "whatsapp")

    expect(page).to_have_url(re.compile(r"[?&]channel=whatsapp(&|$)"))
    expect(conversations_figure(page)).to_have_attribute("data-value", "0")
    expect(page.locator("#figure-visitor-messages")).to_have_attribute("data-value", "0")
    expect(page.locator("#analytics-channel")).to_have_value("whatsapp")
    export = page.locator("#analytics-export").get_attribute("href")
    assert export.startswith("/dashboard/analytics/export.csv?")
    assert "channel=whatsapp" in export
    charts_drawn(page)
    assert [sum(d["data"]) for d in chart(page, "chart-daily")["datasets"]] == [0, 0, 0]
    # The channel breakdown shows every channel whatever the filter.
    assert chart(page, "chart-channels")["labels"] == [translated("es", "Web widget")]

    page.select_option("#analytics-channel", "")

    expect(page).not_to_have_url(re.compile(r"channel=whatsapp"))
    expect(conversations_figure(page)).to_have_attribute("data-value", "3")
    expect(page.locator("#analytics-channel")).to_have_value("")
    charts_drawn(page)
    assert page.url.startswith(dashboard_url(stack, stack.a, ANALYTICS))
