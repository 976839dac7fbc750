"""The sales inbox in real headless Chromium, against the product as it runs in production
(uvicorn + a Celery worker, the test database, FakeOpenAI as the model): the widget's live
stack (tests/browser/widget_live.py) with team members of its companies logged into their
dashboards (tests/browser/inbox_live.py).

Company A is the handoff's (a visitor on A's shop, an agent of A); company B the leads
list's (committed leads, an admin, a viewer). Every page's console must stay clean: no
uncaught exception, no console error or warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.inbox_live import (
    LeadSpec,
    TeamMember,
    conversation_read,
    csv_rows,
    dashboard_login,
    dashboard_url,
    lead_create_live,
    lead_headers,
    leads_seed,
    live,
    member_add,
    translated,
)
from tests.browser.widget_live import (
    Widget,
    WidgetStack,
    last_user_text,
    reply_for,
)

# django_db only gets the test database created (see tests/browser/conftest.py): everything
# the servers see is committed, and the tests read it back through `committed`.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

# The assistant stays silent while a person has the conversation: how long the tests watch.
SILENCE_MS = 3000

ASKED = (
    "I've asked the team to join this conversation; a person will answer here shortly. "
    "Meanwhile I can keep helping you."
)
JOINED = "%(name)s from the team has joined the conversation."
BACK = "The assistant is back in this conversation. Ask me anything."
# As `{% translate %}` looks it up: a template's percent signs are doubled in the catalogue.
PROGRESS = "%%(done)s / %%(total)s rows"


# -- fixtures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    agent_a: TeamMember
    admin_b: TeamMember
    agent_b: TeamMember
    viewer_b: TeamMember


@pytest.fixture(scope="module")
def team(live_stack: WidgetStack) -> Team:
    return Team(
        agent_a=member_add(live_stack, live_stack.a, role="agent", name="Marta Ruiz"),
        admin_b=member_add(live_stack, live_stack.b, role="admin", name="Olga Paredes"),
        agent_b=member_add(live_stack, live_stack.b, role="agent", name="Tomás Vega"),
        viewer_b=member_add(live_stack, live_stack.b, role="viewer", name="Vera Lima"),
    )


def shop(new_context: Callable[..., Any], stack: WidgetStack, company: Any) -> tuple[Any, Widget]:
    """A visitor on `company`'s shop (another origin), the widget open and online."""
    page = new_context().new_page()
    page.goto(stack.pages.url(f"shop-{company.label}", "/", company.key))
    widget = Widget(page)
    widget.open()
    return page, widget


def dashboard(new_context: Callable[..., Any], stack: WidgetStack, company: Any,
              member: TeamMember, path: str) -> Any:  # fmt: skip
    page = new_context().new_page()
    dashboard_login(page, stack, company, member, path)
    live(page)
    return page


def mark_document(page: Any) -> None:
    """Mark the page's document: `same_document` tells later that it was not reloaded."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Any) -> bool:
    return page.evaluate("window.__sameDocument === true")


def widget_role(widget: Widget, role: str) -> Any:
    return widget.target.locator(f'[data-chapi="message"][data-role="{role}"]')


def transcript(page: Any) -> list[tuple[str, int]]:
    """(role, message id) of every message of the dashboard's conversation page, in order."""
    items = page.locator("#conversation-messages li[data-testid=message]").evaluate_all(
        "(items) => items.map((li) => [li.dataset.role, Number(li.dataset.messageId)])"
    )
    return [(role, id_) for role, id_ in items]


def row_ids(page: Any) -> list[int]:
    return [
        int(i)
        for i in page.locator("#lead-table tr[data-testid=lead-row]").evaluate_all(
            "(rows) => rows.map((r) => r.dataset.leadId)"
        )
    ]


# -- 1. handoff ----------------------------------------------------------------------------------


def test_an_agent_takes_over_a_widget_conversation_and_the_visitor_sees_it_live(
    stack: WidgetStack, team: Team, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    company, agent = stack.a, team.agent_a
    inbox = dashboard(new_context, stack, company, agent, "/dashboard/inbox/")
    waiting = inbox.locator("#queue-waiting li[data-testid=queue-item]")
    expect(waiting).to_have_count(0)
    mark_document(inbox)

    # A visitor on the shop talks to the assistant...
    page, widget = shop(new_context, stack, company)
    mark_document(page)
    question = "Hola, ¿qué planes de seguro de hogar tienen?"
    widget.send(question)
    widget.wait_replies(1)
    assert widget.conversation() == [("visitor", question), ("assistant", reply_for(question))]
    session = widget.session_id(company.key)

    # ... then asks for a person: the widget shows the notice.
    widget.hook("handoff").click()
    expect(widget_role(widget, "system")).to_have_count(1)
    stored = conversation_read(stack, company, session)
    assert stored is not None
    language = stored.language or "es"
    assert stored.mode == "pending_human"
    asked = translated(language, ASKED)
    assert widget.conversation() == [
        ("visitor", question),
        ("assistant", reply_for(question)),
        ("system", asked),
    ]

    # The agent's queue shows it, without a reload.
    item = inbox.locator(
        f"#queue-waiting li[data-testid=queue-item][data-conversation-id='{stored.pk}']"
    )
    expect(item).to_have_count(1)
    expect(waiting).to_have_count(1)
    # The agent's notification count in the top bar follows, live.
    expect(inbox.locator("#notification-badge")).to_have_attribute("data-unread", "1")
    assert same_document(inbox)

    # The agent opens it and takes it.
    item.locator("a").click()
    expect(inbox).to_have_url(
        dashboard_url(stack, company, f"/dashboard/inbox/conversations/{stored.pk}/")
    )
    status = inbox.locator("#conversation-status")
    expect(status).to_have_attribute("data-mode", "pending_human")
    stored = conversation_read(stack, company, session)
    assert stored is not None
    assert transcript(inbox) == [(m.role, m.id) for m in stored.messages]
    inbox.locator("#take-button").click()
    expect(status).to_have_attribute("data-mode", "human")
    expect(inbox.locator("#conversation-agent")).to_contain_text(agent.name)
    expect(inbox.locator("#take-button")).to_have_count(0)
    live(inbox)
    mark_document(inbox)

    # The visitor is told who joined, live.
    signed = agent.name.split()[0]  # agents sign with their first name
    joined = translated(language, JOINED, name=signed)
    expect(widget_role(widget, "system")).to_have_count(2)
    expect(widget_role(widget, "system").last).to_have_text(joined)

    # The agent writes; the reply shows on both sides without a reload, with the agent's name.
    answer = "Hola, soy Marta. Tenemos tres planes de hogar; ¿cuántos m² tiene tu casa?"
    inbox.fill("#reply-text", answer)
    inbox.locator("#reply-send").click()
    mine = inbox.locator("#conversation-messages li[data-testid=message][data-role=agent]")
    expect(mine).to_have_count(1)
    expect(mine.locator("p")).to_have_text(answer)
    expect(inbox.locator("#reply-text")).to_have_value("")
    shown = widget_role(widget, "agent")
    expect(shown).to_have_count(1)
    expect(shown.locator(".author")).to_have_text(signed)
    expect(shown.locator(".text")).to_have_text(answer)

    # The visitor answers: the agent sees it live; the assistant stays silent.
    follow = "Unos 80 m², en Miraflores. ¿Incluye robo?"
    widget.send(follow)
    visitor_rows = inbox.locator(
        "#conversation-messages li[data-testid=message][data-role=visitor]"
    )
    expect(visitor_rows).to_have_count(2)
    expect(visitor_rows.last.locator("p")).to_have_text(follow)
    page.wait_for_timeout(SILENCE_MS)
    expect(widget_role(widget, "assistant")).to_have_count(1)
    expect(
        inbox.locator("#conversation-messages li[data-testid=message][data-role=assistant]")
    ).to_have_count(1)
    assert inbox.locator("#conversation-messages li[data-testid=streaming]").count() == 0
    assert widget.hook("typing").is_hidden()
    assert [b for b in stack.chat_requests(company) if last_user_text(b) == follow] == []
    stored = conversation_read(stack, company, session)
    assert stored is not None
    assert (stored.mode, stored.agent, stored.lead_owner) == ("human", agent.email, agent.email)
    assert [(m.role, m.text, m.status, m.author) for m in stored.messages] == [
        ("visitor", question, "received", ""),
        ("assistant", reply_for(question), "completed", ""),
        ("system", asked, "completed", ""),
        ("system", joined, "completed", ""),
        ("agent", answer, "completed", agent.email),
        ("visitor", follow, "received", ""),
    ]
    assert transcript(inbox) == [(m.role, m.id) for m in stored.messages]
    assert widget.conversation() == [
        ("visitor", question),
        ("assistant", reply_for(question)),
        ("system", asked),
        ("system", joined),
        ("agent", f"{signed}\n\n{answer}"),  # the name above the text
        ("visitor", follow),
    ]

    # Handed back: the visitor is told, and the assistant answers the next message.
    inbox.locator("#release-button").click()
    expect(status).to_have_attribute("data-mode", "bot")
    live(inbox)
    expect(widget_role(widget, "system")).to_have_count(3)
    expect(widget_role(widget, "system").last).to_have_text(translated(language, BACK))
    last = "Gracias. ¿Tienen oficina en Arequipa?"
    widget.send(last)
    widget.wait_replies(2)
    assert widget.conversation()[-2:] == [("visitor", last), ("assistant", reply_for(last))]
    replies = inbox.locator("#conversation-messages li[data-testid=message][data-role=assistant]")
    expect(replies).to_have_count(2)
    expect(replies.last.locator("p")).to_have_text(reply_for(last))
    stored = conversation_read(stack, company, session)
    assert stored is not None
    assert (stored.mode, stored.agent) == ("bot", "")
    assert transcript(inbox) == [(m.role, m.id) for m in stored.messages]
    assert same_document(inbox) and same_document(page)


# -- 2. the leads list ---------------------------------------------------------------------------

STAGES = ("new", "qualified", "contacted", "meeting_booked", "won", "lost")
CHANNELS = ("web", "whatsapp", "telegram")
FIRST_NAMES = (
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elena",
    "Fabio",
    "Gina",
    "Hugo",
    "Irene",
    "Jorge",
    "Karen",
    "Luis",
    "Maya",
    "Nico",
    "Olivia",
    "Pablo",
    "Rita",
    "Sergio",
    "Tania",
    "Ulises",
    "Valeria",
    "Walter",
    "Ximena",
    "Yago",
    "Zoila",
    "Adrián",
    "Beatriz",
    "César",
    "Dalia",
    "Emilio",
)
SURNAMES = ("Torres", "Salas", "Rojas", "Vargas", "Castro", "Mendoza")
QUISPE = {3, 4, 9, 21}  # named Quispe; lead 13 works at "Quispe Hermanos"


def lead_specs(team: Team) -> list[LeadSpec]:
    """30 leads: stages, scores, channels, tags and owners spread so that each filter of the
    test narrows the list."""
    specs = []
    for i in range(30):
        tags = []
        if i % 4 in (1, 3) and i % 8 != 7:
            tags.append("vip")
        if i % 3 == 1:
            tags.append("empresa")
        if i % 5 == 2:
            tags.append("renovacion")
        owner = {0: team.admin_b.email, 1: team.agent_b.email}.get(i % 3, "")
        surname = "Quispe" if i in QUISPE else SURNAMES[i % len(SURNAMES)]
        specs.append(
            LeadSpec(
                name=f"{FIRST_NAMES[i]} {surname}",
                email=f"cliente{i:02d}@example.com",
                stage=STAGES[i % 6],
                score=(i * 37 + 11) % 100,
                channel=CHANNELS[i % 3],
                tags=tuple(tags),
                owner=owner,
                company_name="Quispe Hermanos" if i == 13 else f"Compañía {i:02d}",
            )
        )
    return specs


def matching(ids: list[int], specs: list[LeadSpec], **filters: Any) -> list[int]:
    """The ids of the specs that pass the filters, newest first (the list's default order)."""
    stages, score_min = filters.get("stages"), filters.get("score_min")
    tag, q = filters.get("tag"), filters.get("q", "").lower()
    found = [
        pk
        for pk, spec in zip(ids, specs, strict=True)
        if (not stages or spec.stage in stages)
        and (score_min is None or spec.score >= score_min)
        and (not tag or tag in spec.tags)
        and (not q or any(q in v.lower() for v in (spec.name, spec.email, spec.company_name)))
    ]
    return sorted(found, reverse=True)


def test_the_leads_list_filters_sorts_updates_live_and_exports(
    stack: WidgetStack, team: Team, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    company = stack.b
    specs = lead_specs(team)
    ids = leads_seed(stack, company, specs)
    page = dashboard(new_context, stack, company, team.admin_b, "/dashboard/leads/")
    language = page.locator("html").get_attribute("lang") or "es"
    count = page.locator("#lead-count")
    expect(count).to_have_attribute("data-total", "30")
    assert row_ids(page) == sorted(ids, reverse=True)
    mark_document(page)

    # A visitor's first message on B's shop makes a lead: it shows up without a reload.
    _shop_page, widget = shop(new_context, stack, company)
    hello = "Hola, soy Zoe Quintero y busco un seguro para mi tienda"
    widget.send(hello)
    widget.wait_replies(1)
    stored = conversation_read(stack, company, widget.session_id(company.key))
    assert stored is not None and stored.lead_id is not None
    expect(count).to_have_attribute("data-total", "31")
    expect(page.locator("#lead-table tr[data-testid=lead-row]").first).to_have_attribute(
        "data-lead-id", str(stored.lead_id)
    )
    assert row_ids(page) == [stored.lead_id, *sorted(ids, reverse=True)]
    assert same_document(page)

    # Each filter narrows the list to exactly the leads it should.
    def apply(**filters: Any) -> list[int]:
        with page.expect_navigation():
            page.locator("#apply-filters").click()
        expected = matching(ids, specs, **filters)
        expect(count).to_have_attribute("data-total", str(len(expected)))
        assert row_ids(page) == expected, filters
        return expected

    page.locator("[data-testid=filter-stage-qualified]").check()
    page.locator("[data-testid=filter-stage-meeting_booked]").check()
    stages = {"qualified", "meeting_booked"}
    assert len(apply(stages=stages)) == 10
    page.fill("#filter-score-min", "40")
    assert len(apply(stages=stages, score_min=40)) == 6
    page.fill("#filter-tag", "vip")
    assert len(apply(stages=stages, score_min=40, tag="vip")) == 4
    page.fill("#lead-search", "quispe")
    found = apply(stages=stages, score_min=40, tag="vip", q="quispe")
    assert found == [ids[21], ids[13], ids[9]]
    stage_badges = page.locator("#lead-table [data-testid=lead-stage]")
    expect(stage_badges).to_have_count(3)

    # Sorted by score, highest first; the filters stay.
    with page.expect_navigation():
        page.locator("[data-testid=sort-score]").click()
    expect(page.locator("[data-testid=sort-score]")).to_have_attribute("aria-sort", "descending")
    assert row_ids(page) == [ids[13], ids[21], ids[9]]
    assert page.locator("#lead-table [data-testid=lead-score]").all_inner_texts() == [
        "92",
        "88",
        "44",
    ]
    expect(page.locator("#lead-search")).to_have_value("quispe")
    mark_document(page)

    # New leads while the page is open: the one that passes the filters appears in its place
    # by score, without a reload; the one that does not, does not.
    other = lead_create_live(
        stack,
        company,
        LeadSpec(
            name="Rafael Quispe",
            email="rafael@example.com",
            stage="won",
            score=99,
            channel="web",
            tags=("vip",),
        ),
    )
    new = lead_create_live(
        stack,
        company,
        LeadSpec(
            name="Rosa Quispe",
            email="rosa@example.com",
            stage="qualified",
            score=75,
            channel="whatsapp",
            tags=("vip",),
            owner=team.agent_b.email,
        ),
    )
    expect(count).to_have_attribute("data-total", "4")
    assert row_ids(page) == [ids[13], ids[21], new, ids[9]]
    assert other not in row_ids(page)
    assert same_document(page)
    exported = [ids[9], ids[13], ids[21], new]  # by id

    # The export: the filtered rows, streamed with progress, saved as a file.
    progress = page.locator("#export-progress")
    with page.expect_download() as download:
        page.locator("#export-leads").click()
    expect(progress).to_have_attribute("data-state", "done")
    expect(progress.locator(".export-text")).to_have_text(
        translated(language, PROGRESS).replace("%%", "%") % {"done": "4", "total": "4"}
    )
    assert download.value.suggested_filename.startswith("leads-")
    with open(download.value.path(), "rb") as file:
        rows = csv_rows(file.read())
    header, *body = rows
    assert header == lead_headers(language)
    by_id = dict(zip(ids, specs, strict=True))
    by_id[new] = LeadSpec(name="Rosa Quispe", email="rosa@example.com", stage="qualified",
                          score=75, channel="whatsapp", tags=("vip",),
                          owner=team.agent_b.email)  # fmt: skip
    columns = [header.index(lead_headers(language)[i]) for i in (0, 1, 2, 7, 8, 9, 10, 11)]
    assert [[row[c] for c in columns] for row in body] == [
        [
            str(pk),
            by_id[pk].name,
            by_id[pk].email,
            by_id[pk].stage,
            str(by_id[pk].score),
            by_id[pk].owner,
            by_id[pk].channel,
            ", ".join(by_id[pk].tags),
        ]
        for pk in exported
    ]
    assert same_document(page)


# -- 3. read-only --------------------------------------------------------------------------------


def test_a_viewer_sees_a_lead_without_any_form_or_button(
    stack: WidgetStack, team: Team, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    company = stack.b
    (pk,) = leads_seed(
        stack,
        company,
        [
            LeadSpec(
                name="Inés Cárdenas",
                email="ines@example.com",
                stage="contacted",
                score=57,
                channel="telegram",
                tags=("vip",),
                owner=team.agent_b.email,
            )
        ],
    )
    page = dashboard(new_context, stack, company, team.viewer_b, f"/dashboard/leads/{pk}/")
    lead = page.locator("#lead-page")
    expect(lead).to_have_attribute("data-lead-id", str(pk))
    expect(page.locator("#lead-title")).to_contain_text("Inés Cárdenas")
    expect(page.locator("#lead-details")).to_be_visible()
    expect(page.locator("#lead-details")).to_contain_text("ines@example.com")
    expect(page.locator("#lead-stage")).to_have_attribute("data-stage", "contacted")
    assert lead.locator("form").count() == 0
    assert lead.locator("button, input, select, textarea").count() == 0
    for hook in ("#lead-form", "#lead-stage-form", "#lead-owner-form", "#lead-tags-form",
                 "#lead-note-form"):  # fmt: skip
        assert page.locator(hook).count() == 0, hook
