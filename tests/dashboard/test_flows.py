"""The dashboard's flows page: owners and admins check and save the conversation flows (YAML) as
numbered versions, every problem named with its line; earlier versions are read and restored;
the follow-up settings; agents and viewers only read; nothing crosses companies."""

from __future__ import annotations

import html
import re
from datetime import time
from typing import Any

import pytest
from django.test import Client
from django.utils import translation
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.audit.models import AuditLog
from apps.dashboard.flows import EXAMPLE
from apps.flows.models import FlowVersion
from apps.flows.services import flow_version_save, flows_active
from apps.followups.models import FollowUpSettings
from apps.tenants.models import Company
from tests.conftest import host, logged_in, member, owner

pytestmark = pytest.mark.django_db

FLOWS = "/dashboard/flows/"
FOLLOWUPS = "/dashboard/flows/followups/"

VALID = """\
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Hola! Soy el asistente."
      actions: ["identificar_necesidad"]
  precios:
    - trigger: {keyword: [precio, cuánto cuesta]}
      message: "Te cuento los precios."
      actions: [{tag: precio}]
      once: false
"""
OTHER = """\
flows:
  despedida:
    - trigger: {intent: despedida}
      message: "¡Hasta pronto!"
"""
INVALID = """\
flows:
  onboarding:
    - trigger: "nuevo_usuari"
      message: "Hola"
      actions: ["identificar_necesidad", "bailar_salsa"]
"""
DEFAULT_SETTINGS = (True, time(21, 0), time(8, 0), "", True, "", 2)
TRIGGER_PROBLEM = "unknown trigger 'nuevo_usuari' (did you mean 'nuevo_usuario'?)"
ACTION_PROBLEM = "unknown action 'bailar_salsa'"


def client_for(company: Company, user: User) -> Client:
    client = logged_in(company, user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def page_of(response: Any) -> str:
    return html.unescape(response.content.decode())


def section(response: Any, element_id: str) -> str:
    match = re.search(rf'<section class="card" id="{element_id}">(.*?)</section>',
                      response.content.decode(), re.S)  # fmt: skip
    assert match, f"no section #{element_id} on the page"
    return match.group(1)


def rules_in(fragment: str) -> list[tuple[str, str, str, list[str]]]:
    """(flow #n, trigger, message, actions) of each row of a rules table."""
    rows = re.findall(
        r'<tr data-testid="flow-rule"><td>(.*?)</td><td><code>(.*?)</code></td><td>(.*?)</td>'
        r"<td>(.*?)</td></tr>",
        fragment,
    )
    return [
        (
            html.unescape(re.sub(r"<.*?>", "", flow)).strip(),
            html.unescape(trigger),
            html.unescape(message),
            [html.unescape(a) for a in re.findall(r"<code>(.*?)</code>", actions)],
        )
        for flow, trigger, message, actions in rows
    ]


def checked_rules(response: Any) -> list[tuple[str, str, str, list[str]]]:
    match = re.search(r"<h2>What these flows will do</h2>(.*?)</section>",
                      response.content.decode(), re.S)  # fmt: skip
    assert match, "no 'What these flows will do' table"
    return rules_in(match.group(1))


def problems_listed(response: Any) -> list[tuple[int, str]]:
    match = re.search(r'<div class="errors" role="alert" id="flow-problems".*?</div>',
                      response.content.decode(), re.S)  # fmt: skip
    assert match, "no #flow-problems on the page"
    items = re.findall(r'<li data-line="(\d+)">(.*?)</li>', match.group(0))
    return [(int(line), html.unescape(text)) for line, text in items]


def numbered_lines(response: Any) -> list[tuple[int, bool, str]]:
    """(number, marked as a problem, text) of each line of the numbered listing."""
    match = re.search(r'<ol class="source-lines" data-testid="flow-numbered">(.*?)</ol>',
                      response.content.decode(), re.S)  # fmt: skip
    assert match, "no numbered listing on the page"
    items = re.findall(r'<li value="(\d+)"( class="problem")?[^>]*><code>(.*?)</code></li>',
                       match.group(1))  # fmt: skip
    return [(int(n), bool(marked), html.unescape(text)) for n, marked, text in items]


def messages_shown(response: Any) -> list[str]:
    found = re.findall(r'<p class="message [^"]*">(.*?)</p>', response.content.decode())
    return [html.unescape(text) for text in found]


def textarea(response: Any) -> str:
    """The editor's text as a browser reads it: one newline right after <textarea> is dropped."""
    match = re.search(r'<textarea id="flows-source"[^>]*>(.*?)</textarea>',
                      response.content.decode(), re.S)  # fmt: skip
    assert match, "no editor on the page"
    text = match.group(1)
    return html.unescape(text[1:] if text.startswith("\n") else text)


def read_only_source(response: Any) -> str:
    """The <pre> source as a browser reads it (one newline after <pre> is dropped)."""
    match = re.search(r'<pre class="code" data-testid="flows-source">(.*?)</pre>',
                      response.content.decode(), re.S)  # fmt: skip
    assert match, "no read-only source on the page"
    text = match.group(1)
    return html.unescape(text[1:] if text.startswith("\n") else text)


def versions(company: Company) -> list[tuple[int, str, int | None, str, int | None]]:
    """(number, source, author id, note, restored_from), oldest first."""
    with tenant_context(company):
        return list(
            FlowVersion.objects.order_by("number").values_list(
                "number", "source", "author_id", "note", "restored_from"
            )
        )


def audited(company: Company, action: str) -> list[tuple[str, dict[str, Any]]]:
    with tenant_context(company):
        return list(
            AuditLog.objects.filter(action=action)
            .order_by("id")
            .values_list("actor_email", "changes")
        )


def save(company: Company, source: str, user: User | None = None, note: str = "") -> int:
    with tenant_context(company):
        return flow_version_save(source=source, author=user, note=note).number


def followup_form(**overrides: str) -> dict[str, str]:
    return {
        "followups-enabled": "on",
        "followups-quiet_start": "22:00",
        "followups-quiet_end": "07:00",
        "followups-time_zone": "America/Lima",
        "followups-email": "on",
        "followups-whatsapp_template": "",
        "followups-max_unanswered": "3",
        **overrides,
    }


def followup_settings(company: Company) -> tuple[Any, ...]:
    with tenant_context(company):
        row = FollowUpSettings.objects.filter(pk=1).first()
        if row is None:
            return ()
        return (row.enabled, row.quiet_start, row.quiet_end, row.time_zone, row.email,
                row.whatsapp_template, row.max_unanswered)  # fmt: skip


# --- The editor --------------------------------------------------------------------------------


def test_with_nothing_saved_the_editor_holds_the_documentations_example(alpha: Company) -> None:
    response = client_for(alpha, owner(alpha)).get(FLOWS)

    assert response.status_code == 200
    assert textarea(response) == EXAMPLE
    page = page_of(response)
    assert "<h2>No flows yet</h2>" in page
    assert "The editor holds the example from the product's documentation" in page
    assert '<form method="post" id="flows-form">' in page
    assert "No rules." in section(response, "flows-rules")
    assert "Nothing saved yet." in section(response, "flows-versions")
    assert "flow-problems" not in page


def test_checking_valid_flows_lists_their_rules_and_saves_nothing(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(alpha, owner(alpha))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(FLOWS, {"action": "check", "source": VALID, "note": "x"})

    assert response.status_code == 200
    assert messages_shown(response) == ["The flows are valid: 2 rules."]
    assert checked_rules(response) == [
        ("onboarding #1", "nuevo_usuario", "¡Hola! Soy el asistente.", ["identificar_necesidad"]),
        ("precios #1 every time", "keyword: precio, cuanto cuesta", "Te cuento los precios.",
         ["tag"]),
    ]  # fmt: skip
    assert textarea(response) == VALID  # the checked text stays in the editor
    assert "<h2>No flows yet</h2>" in page_of(response)
    assert "No rules." in section(response, "flows-rules")
    assert versions(alpha) == []
    assert audited(alpha, "flows.save") == []


def test_checking_the_example_says_it_has_two_rules(alpha: Company) -> None:
    response = client_for(alpha, owner(alpha)).post(FLOWS, {"action": "check", "source": EXAMPLE})

    assert response.status_code == 200
    assert messages_shown(response) == ["The flows are valid: 2 rules."]
    assert checked_rules(response) == [
        ("onboarding #1", "nuevo_usuario", "¡Bienvenido! Soy tu asistente de ventas...",
         ["identificar_necesidad", "calificar_presupuesto"]),
        ("seguimiento #1", "7_dias_sin_actividad", "¿Sigues interesado en nuestros servicios?",
         ["re_engagement", "descuento_especial"]),
    ]  # fmt: skip
    assert versions(alpha) == []


def test_saving_invalid_flows_lists_every_problem_by_line_and_saves_nothing(
    alpha: Company,
) -> None:
    client = client_for(alpha, owner(alpha))

    response = client.post(FLOWS, {"action": "save", "source": INVALID, "note": "broken"})

    assert response.status_code == 400
    assert messages_shown(response) == ["The flows have 2 problems: nothing was saved."]
    assert problems_listed(response) == [
        (3, f"Line 3: {TRIGGER_PROBLEM}"),
        (5, f"Line 5: {ACTION_PROBLEM}"),
    ]
    assert numbered_lines(response) == [
        (1, False, "flows:"),
        (2, False, "  onboarding:"),
        (3, True, '    - trigger: "nuevo_usuari"'),
        (4, False, '      message: "Hola"'),
        (5, True, '      actions: ["identificar_necesidad", "bailar_salsa"]'),
    ]
    page = page_of(response)
    assert f'<li value="3" class="problem" title="{TRIGGER_PROBLEM}">' in page
    assert f'<li value="5" class="problem" title="{ACTION_PROBLEM}">' in page
    assert textarea(response) == INVALID  # the text is kept to be fixed
    assert versions(alpha) == []
    assert audited(alpha, "flows.save") == []


def test_a_check_of_invalid_flows_is_refused_the_same_way(alpha: Company) -> None:
    response = client_for(alpha, owner(alpha)).post(FLOWS, {"action": "check", "source": INVALID})

    assert response.status_code == 400
    assert [line for line, _text in problems_listed(response)] == [3, 5]
    assert "What these flows will do" not in page_of(response)
    assert versions(alpha) == []


def test_saving_valid_flows_makes_version_1_in_use_and_audits_it(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)
    client.get(FLOWS)  # the page was open: the flows in use (none) were read before the save

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            FLOWS, {"action": "save", "source": VALID, "note": "  first flows  "}
        )

    assert response.status_code == 302
    assert response["Location"] == FLOWS
    assert versions(alpha) == [(1, VALID, boss.pk, "first flows", None)]
    assert audited(alpha, "flows.save") == [(boss.email, {"version": 1, "restored_from": None})]
    page = client.get(FLOWS)
    assert page.status_code == 200
    assert messages_shown(page) == ["Saved as version 1: it is in use now."]
    assert "<h2>Flows in use: version 1</h2>" in page_of(page)
    assert textarea(page) == VALID
    assert rules_in(section(page, "flows-rules")) == [
        ("onboarding #1", "nuevo_usuario", "¡Hola! Soy el asistente.", ["identificar_necesidad"]),
        ("precios #1 every time", "keyword: precio, cuanto cuesta", "Te cuento los precios.",
         ["tag"]),
    ]  # fmt: skip
    listed = section(page, "flows-versions")
    assert re.findall(r'data-testid="flow-version" data-number="(\d+)"', listed) == ["1"]
    assert '<span class="badge ok">in use</span>' in listed
    assert "first flows" in listed
    with tenant_context(alpha):
        assert [rule.key for rule in flows_active().rules] == ["onboarding:0", "precios:0"]


def test_saving_the_same_text_again_changes_nothing(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss, note="first")
    client = client_for(alpha, boss)

    # A browser sends a textarea with CRLF line ends: the same text all the same.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            FLOWS, {"action": "save", "source": VALID.replace("\n", "\r\n"), "note": "again"}
        )

    assert response.status_code == 302
    assert response["Location"] == FLOWS
    assert messages_shown(client.get(FLOWS)) == ["Nothing changed."]
    assert versions(alpha) == [(1, VALID, boss.pk, "first", None)]
    assert audited(alpha, "flows.save") == [("", {"version": 1, "restored_from": None})]


def test_a_spanish_member_reads_the_problems_in_spanish(alpha: Company) -> None:
    client = logged_in(alpha, owner(alpha))  # no Accept-Language: the company's Spanish

    response = client.post(FLOWS, {"action": "save", "source": INVALID})

    assert response.status_code == 400
    page = page_of(response)
    assert '<html lang="es">' in page
    with translation.override("es"):
        trigger = translation.gettext("unknown trigger '%(name)s'") % {"name": "nuevo_usuari"}
        hint = translation.gettext(" (did you mean '%(word)s'?)") % {"word": "nuevo_usuario"}
        action = translation.gettext("unknown action '%(name)s'") % {"name": "bailar_salsa"}
        line = translation.gettext("Line %(line)s")
    # The problems come in the member's language (locale/es has no text for them yet: then
    # the English text is what Spanish shows, and this test will follow the translation).
    assert problems_listed(response) == [
        (3, f"{line % {'line': 3}}: {trigger}{hint}"),
        (5, f"{line % {'line': 5}}: {action}"),
    ]
    assert [n for n, marked, _text in numbered_lines(response) if marked] == [3, 5]
    assert versions(alpha) == []


def test_a_yaml_syntax_error_is_named_at_its_line(alpha: Company) -> None:
    source = 'flows:\n  onboarding:\n    - trigger: "nuevo_usuario\n      message: Hola\n'

    response = client_for(alpha, owner(alpha)).post(FLOWS, {"action": "save", "source": source})

    assert response.status_code == 400
    ((line, text),) = problems_listed(response)
    assert (line, text) == (5, "Line 5: YAML syntax: found unexpected end of stream")
    # The end of the text is marked: an empty line after the last one.
    assert numbered_lines(response)[-2:] == [(4, False, "      message: Hola"), (5, True, "")]
    assert versions(alpha) == []


def test_what_a_member_wrote_is_shown_escaped_never_as_markup(alpha: Company) -> None:
    source = INVALID.replace("nuevo_usuari", "<b>nuevo</b>")

    response = client_for(alpha, owner(alpha)).post(FLOWS, {"action": "check", "source": source})

    assert response.status_code == 400
    page = response.content.decode()
    assert "<b>" not in page
    assert "unknown trigger &#x27;&lt;b&gt;nuevo&lt;/b&gt;&#x27;" in page
    assert problems_listed(response)[0] == (3, "Line 3: unknown trigger '<b>nuevo</b>'")
    assert textarea(response) == source


def test_flows_that_start_with_a_blank_line_keep_it_in_the_editor(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    boss = owner(alpha)
    source = "\n" + VALID
    save(alpha, source, boss)
    client = client_for(alpha, boss)

    shown = textarea(client.get(FLOWS))
    assert shown == source
    # Saving the editor's text untouched is no change (the browser sends it with CRLF).
    with django_capture_on_commit_callbacks(execute=True):
        client.post(FLOWS, {"action": "save", "source": shown.replace("\n", "\r\n")})
    assert messages_shown(client.get(FLOWS)) == ["Nothing changed."]
    assert [number for number, *_rest in versions(alpha)] == [1]
    viewer = client_for(alpha, member(alpha, Role.VIEWER))
    assert read_only_source(viewer.get(FLOWS)) == source


# --- Versions ----------------------------------------------------------------------------------


def test_a_versions_page_shows_its_source_lines(alpha: Company) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss, note="first")
    save(alpha, OTHER, boss)
    client = client_for(alpha, boss)

    response = client.get(f"{FLOWS}versions/1/")

    assert response.status_code == 200
    page = response.content.decode()
    listing = re.search(r'<ol class="source-lines" data-testid="flow-version-source">(.*?)</ol>',
                        page, re.S)  # fmt: skip
    assert listing
    lines = re.findall(r"<li><code>(.*?)</code></li>", listing.group(1))
    assert [html.unescape(text) for text in lines] == VALID.splitlines()
    assert "<h1>Flows version 1</h1>" in page
    assert " first</p>" in page
    assert 'id="flow-restore"' in page
    assert client.get(f"{FLOWS}versions/3/").status_code == 404


def test_restoring_version_1_after_version_2_makes_version_3_in_use(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss, note="first")
    save(alpha, OTHER, boss, note="second")
    client = client_for(alpha, boss)
    with tenant_context(alpha):
        assert [rule.key for rule in flows_active().rules] == ["despedida:0"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{FLOWS}versions/1/restore/")

    assert response.status_code == 302
    assert response["Location"] == FLOWS
    assert versions(alpha) == [
        (1, VALID, boss.pk, "first", None),
        (2, OTHER, boss.pk, "second", None),
        (3, VALID, boss.pk, "restored v1", 1),
    ]
    assert audited(alpha, "flows.restore") == [(boss.email, {"version": 3, "restored_from": 1})]
    with tenant_context(alpha):
        assert [rule.key for rule in flows_active().rules] == ["onboarding:0", "precios:0"]
    page = client.get(FLOWS)
    assert messages_shown(page) == ["Version 1 restored as version 3."]
    assert "<h2>Flows in use: version 3</h2>" in page_of(page)
    assert textarea(page) == VALID
    # The version in use has nothing to restore; the others do.
    current = client.get(f"{FLOWS}versions/3/").content.decode()
    assert '<span class="badge ok">in use</span>' in current
    assert 'id="flow-restore"' not in current
    assert "/restore/" not in current
    assert 'id="flow-restore"' in client.get(f"{FLOWS}versions/2/").content.decode()


def test_restoring_a_missing_version_is_not_found(alpha: Company) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss)

    response = client_for(alpha, boss).post(f"{FLOWS}versions/9/restore/")

    assert response.status_code == 404
    assert [number for number, *_rest in versions(alpha)] == [1]


def test_restore_only_answers_post(alpha: Company) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss)
    save(alpha, OTHER, boss)

    assert client_for(alpha, boss).get(f"{FLOWS}versions/1/restore/").status_code == 405
    assert [number for number, *_rest in versions(alpha)] == [1, 2]


# --- Roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_read_the_flows_but_change_nothing(alpha: Company, role: str) -> None:
    boss = owner(alpha)
    save(alpha, VALID, boss, note="first")
    save(alpha, OTHER, boss, note="second")
    client = client_for(alpha, member(alpha, role))

    response = client.get(FLOWS)

    assert response.status_code == 200
    page = page_of(response)
    assert '<form id="flows-form"' not in page and 'id="flows-form"' not in page
    assert read_only_source(response) == OTHER
    assert "<h2>Flows in use: version 2</h2>" in page
    assert 'action="/dashboard/flows/followups/"' not in page
    version = client.get(f"{FLOWS}versions/1/")
    assert version.status_code == 200
    assert 'id="flow-restore"' not in version.content.decode()

    assert client.post(FLOWS, {"action": "save", "source": VALID}).status_code == 403
    assert client.post(FLOWS, {"action": "check", "source": VALID}).status_code == 403
    assert client.post(f"{FLOWS}versions/1/restore/").status_code == 403
    assert client.post(FOLLOWUPS, followup_form()).status_code == 403
    assert [number for number, *_rest in versions(alpha)] == [1, 2]
    assert followup_settings(alpha) == DEFAULT_SETTINGS  # as the page's first read made them
    assert audited(alpha, "followup_settings.update") == []


def test_an_admin_edits_the_flows_like_the_owner(
    alpha: Company, django_capture_on_commit_callbacks: Any
) -> None:
    admin = member(alpha, Role.ADMIN)
    client = client_for(alpha, admin)

    assert 'id="flows-form"' in client.get(FLOWS).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(FLOWS, {"action": "save", "source": VALID})

    assert response.status_code == 302
    assert versions(alpha) == [(1, VALID, admin.pk, "", None)]


# --- Follow-up settings ------------------------------------------------------------------------


def test_the_owner_saves_the_follow_up_settings_and_they_are_audited(alpha: Company) -> None:
    boss = owner(alpha)
    client = client_for(alpha, boss)

    response = client.post(FOLLOWUPS, followup_form())

    assert response.status_code == 302
    assert response["Location"] == FLOWS
    assert followup_settings(alpha) == (True, time(22, 0), time(7, 0), "America/Lima", True, "", 3)
    assert audited(alpha, "followup_settings.update") == [
        (
            boss.email,
            {
                "quiet_start": ["21:00:00", "22:00:00"],
                "quiet_end": ["08:00:00", "07:00:00"],
                "time_zone": ["", "America/Lima"],
                "max_unanswered": [2, 3],
            },
        )
    ]
    page = client.get(FLOWS)
    assert messages_shown(page) == ["Follow-up settings saved."]
    form = section(page, "followup-settings")
    assert 'name="followups-time_zone" value="America/Lima"' in form
    assert 'name="followups-max_unanswered" value="3"' in form
    # The same settings again: saved, nothing to audit.
    assert client.post(FOLLOWUPS, followup_form()).status_code == 302
    assert len(audited(alpha, "followup_settings.update")) == 1


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("time_zone", "America/Atlantis", "Unknown time zone (e.g. America/Mexico_City)."),
        ("max_unanswered", "0", "Between 1 and 10."),
        ("max_unanswered", "11", "Between 1 and 10."),
    ],
)
def test_follow_up_settings_out_of_range_are_refused_naming_the_field(
    alpha: Company, field: str, value: str, error: str
) -> None:
    client = client_for(alpha, owner(alpha))
    client.get(FLOWS)  # the settings row exists, with its defaults
    before = followup_settings(alpha)

    response = client.post(FOLLOWUPS, followup_form(**{f"followups-{field}": value}))

    assert response.status_code == 400
    form = section(response, "followup-settings")
    errors = re.findall(
        r'<div class="field has-error">\s*<label for="id_followups-(\w+)">.*?'
        r'<p class="error" role="alert">(.*?)</p>',
        form,
        re.S,
    )
    assert errors == [(field, error)]
    assert textarea(response) == EXAMPLE  # the rest of the page is still there
    assert followup_settings(alpha) == before == DEFAULT_SETTINGS
    assert audited(alpha, "followup_settings.update") == []


# --- Signed out and isolation ------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_log_in(alpha: Company) -> None:
    save(alpha, VALID)
    client = Client(HTTP_HOST=host(alpha))

    for url in (FLOWS, f"{FLOWS}versions/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    posts = [
        (FLOWS, {"action": "save", "source": OTHER}),
        (f"{FLOWS}versions/1/restore/", {}),
        (FOLLOWUPS, followup_form()),
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    assert [number for number, *_rest in versions(alpha)] == [1]
    assert followup_settings(alpha) == ()


def test_another_companys_flows_are_invisible_and_untouchable(
    alpha: Company, beta: Company
) -> None:
    save(beta, OTHER, owner(beta), note="beta secret note")
    save(beta, VALID, owner(beta))
    beta_settings = followup_settings(beta)
    client = client_for(alpha, owner(alpha))

    page = page_of(client.get(FLOWS))
    assert "beta secret note" not in page
    assert "despedida" not in page
    assert "<h2>No flows yet</h2>" in page
    assert client.get(f"{FLOWS}versions/1/").status_code == 404
    assert client.post(f"{FLOWS}versions/1/restore/").status_code == 404
    # What alpha's owner saves stays in alpha.
    assert (
        client.post(FOLLOWUPS, followup_form(**{"followups-max_unanswered": "7"})).status_code
        == 302
    )
    assert client.post(FLOWS, {"action": "save", "source": EXAMPLE}).status_code == 302
    assert [number for number, *_rest in versions(alpha)] == [1]
    assert [(n, source) for n, source, *_rest in versions(beta)] == [(1, OTHER), (2, VALID)]
    assert followup_settings(beta) == beta_settings
    # Alpha's session is nothing on beta's host.
    client.defaults["HTTP_HOST"] = host(beta)
    for url in (FLOWS, f"{FLOWS}versions/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    response = client.post(FLOWS, {"action": "save", "source": EXAMPLE})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.post(f"{FLOWS}versions/1/restore/").status_code == 302
    assert client.post(FOLLOWUPS, followup_form()).status_code == 302
    assert [(n, source) for n, source, *_rest in versions(beta)] == [(1, OTHER), (2, VALID)]
    assert followup_settings(beta) == beta_settings
