"""A/B tests (apps.experiments): creating and starting tests, sticky weighted assignment, the
variants reaching visitors (welcome, system prompt, a flow's message), results with their
verdict, stop and promote, the dashboard pages, and isolation between companies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.accounts.models import Role
from apps.assistants.prompting import assistant_config_load
from apps.assistants.services import assistant_profile_get
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import message_receive
from apps.experiments import hooks
from apps.experiments.models import Assignment, Experiment, Variant
from apps.experiments.services import (
    ExperimentError,
    experiment_create,
    experiment_promote,
    experiment_results,
    experiment_start,
    experiment_stop,
    variant_text,
)
from apps.flows.services import flow_version_current, flow_version_save, flows_active
from apps.flows.spec import message_replaced
from apps.leads.models import Lead
from apps.tenants.models import Company
from tests.conftest import logged_in, member, owner

FLOWS = """\
# Our flows
flows:
  onboarding:
    - trigger: {keyword: precio}
      message: "Te cuento los precios"   # the control
      actions: [{tag: precio}]
"""


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(transaction, "on_commit", lambda f, using=None, robust=False: f())
    settings.OPENAI_API_KEY = ""


@pytest.fixture
def company(alpha: Company) -> Iterator[Company]:
    with tenant_context(alpha):
        yield alpha


def welcome_test(
    *texts: tuple[str, int], start: bool = True, name: str = "Welcome", **kwargs: Any
) -> Experiment:
    experiment = experiment_create(name=name, target="welcome", metric="leads",
                                   texts=list(texts), **kwargs)  # fmt: skip
    return experiment_start(experiment=experiment) if start else experiment


def test_a_test_needs_a_name_two_to_four_different_variants_and_valid_weights(
    company: Company,
) -> None:
    cases = [
        ({"name": " "}, "Give the test a name."),
        ({"texts": [("Hola", 50)]}, "A test has 2 to 4 variants, each with a text."),
        ({"texts": [("a", 1)] * 1 + [("b", 1), ("c", 1), ("d", 1), ("e", 1)]},
         "A test has 2 to 4 variants, each with a text."),
        ({"texts": [("Hola", 50), ("Hola", 50)]}, "Each variant needs a different text."),
        ({"texts": [("Hola", 0), ("Buenas", 50)]}, "Traffic weights go from 1 to 100."),
        ({"texts": [("Hola", 50), ("x" * 501, 50)]}, "A variant's text is too long."),
        ({"target": "flow_message", "flow_rule": "nope:0"},
         "Choose a flow rule that sends a message."),
        ({"metric": "revenue"}, "Choose the result that decides the winner."),
    ]  # fmt: skip
    for changes, error in cases:
        texts = [("Hola", 50), ("¡Hola! ¿Buscas un seguro?", 50)]
        arguments = {"name": "T", "target": "welcome", "metric": "leads", "texts": texts} | changes
        with pytest.raises(ExperimentError) as caught, override_english():
            experiment_create(**arguments)
        assert str(caught.value) == error
    assert not Experiment.objects.exists()


def override_english() -> Any:
    from django.utils import translation

    return translation.override("en")


def test_one_running_test_per_target(company: Company) -> None:
    first = welcome_test(("Hola", 50), ("Buenas", 50))
    second = welcome_test(("Hola", 50), ("Qué tal", 50), start=False)
    with pytest.raises(ExperimentError, match="already tests this"), override_english():
        experiment_start(experiment=second)
    experiment_stop(experiment=first)
    assert experiment_start(experiment=second).status == "running"


def test_assignment_is_sticky_and_follows_the_weights(company: Company) -> None:
    experiment = welcome_test(("Control", 80), ("Challenger", 20))

    picks = Counter(
        variant_text(target="welcome", channel="web", session_id=f"s{i}") for i in range(1000)
    )

    assert 740 <= picks["Control"] <= 860  # 80% of 1000, the hash spreads sessions evenly
    assert picks["Control"] + picks["Challenger"] == 1000
    again = {variant_text(target="welcome", channel="web", session_id=f"s{i}") for i in range(3)}
    first = {Assignment.objects.get(session_id=f"s{i}").variant.text for i in range(3)}
    assert again == first
    assert Assignment.objects.filter(experiment=experiment).count() == 1000
    assert variant_text(target="welcome", channel="test", session_id="dashboard") is None
    assert variant_text(target="system_prompt", channel="web", session_id="s1") is None


def test_the_offline_responder_greets_a_visitor_with_their_welcome_variant(
    company: Company,
) -> None:
    welcome_test(("¡Hola! ¿Cómo puedo ayudarte?", 1), ("¡Hola! ¿Buscas proteger tu hogar?", 100))
    message_receive(channel="web", session_id="visitor-1", text="Hola")

    reply = Message.objects.filter(role="assistant").get()
    assignment = Assignment.objects.get(session_id="visitor-1")
    assert assignment.conversation == Conversation.objects.get(session_id="visitor-1")
    # The responder introduces itself inside the welcome: "¡Hola! Soy CHAPI, … ¿Buscas …?"
    assert assignment.variant.key == "B"
    assert reply.text.startswith("¡Hola! Soy CHAPI")
    assert reply.text.endswith("¿Buscas proteger tu hogar?")


def test_the_system_prompt_variant_is_the_one_the_model_is_given(company: Company) -> None:
    experiment = experiment_create(
        name="Prompt", target="system_prompt", metric="qualified",
        texts=[("Eres un asesor formal.", 1), ("Eres un asesor cercano y directo.", 100)],
    )  # fmt: skip
    experiment_start(experiment=experiment)
    message_receive(channel="api", session_id="api-1", text="Hola", generate=False)
    chat = Conversation.objects.get(session_id="api-1")
    config = assistant_config_load(profile=assistant_profile_get(), company_name="Alpha")

    configured = hooks.configure(config, chat)

    variant = Assignment.objects.get(session_id="api-1").variant
    assert configured.system_prompt == variant.text
    assert configured.welcome_message == config.welcome_message


def test_a_flow_message_variant_is_sent_instead_of_the_rules_message(company: Company) -> None:
    flow_version_save(source=FLOWS, author=None)
    experiment = experiment_create(
        name="Precios", target="flow_message", flow_rule="onboarding:0", metric="leads",
        texts=[("Te cuento los precios", 1), ("Te paso la lista de precios al momento", 100)],
    )  # fmt: skip
    experiment_start(experiment=experiment)
    message_receive(channel="web", session_id="v-9", text="¿Qué precio tiene?")
    texts = list(Message.objects.filter(intent="flow").values_list("text", flat=True))
    assert texts == [Assignment.objects.get(session_id="v-9").variant.text]


def _arm(experiment: Experiment, key: str, total: int, qualified: int) -> None:
    """`total` conversations of variant `key`, `qualified` of them with a qualified lead."""
    variant = Variant.objects.get(experiment=experiment, key=key)
    for i in range(total):
        lead = Lead.objects.create(qualified_at=timezone.now() if i < qualified else None,
                                   email=f"{key}{i}@x.example" if i % 2 else "")  # fmt: skip
        contact = Contact.objects.create(channel="web", external_id=f"{key}-{i}", lead=lead)
        chat = Conversation.objects.create(contact=contact, channel="web", session_id=f"{key}-{i}")
        Assignment.objects.create(experiment=experiment, variant=variant, channel="web",
                                  session_id=chat.session_id, conversation=chat)  # fmt: skip


def test_results_count_each_variant_and_say_who_wins(company: Company) -> None:
    experiment = experiment_create(name="Prompt", target="system_prompt", metric="qualified",
                                   texts=[("A text", 50), ("B text", 50)])  # fmt: skip
    _arm(experiment, "A", 1000, 200)
    _arm(experiment, "B", 1000, 250)

    with override_english():
        results = experiment_results(experiment)

    a, b = results.variants
    assert (a.conversations, a.qualified, a.leads, b.qualified) == (1000, 200, 500, 250)
    assert a.comparison is None and b.comparison is not None
    assert b.comparison.verdict == "better"
    assert b.comparison.p_value == pytest.approx(0.0074, abs=1e-4)
    assert (a.low, a.high) == pytest.approx((0.1763, 0.2259), abs=1e-4)
    assert results.verdict.startswith(
        "Variant B wins on qualified leads: 25.0% against 20.0% for A"
    )
    assert "p = 0.007" in results.verdict


def test_small_tests_say_there_is_not_enough_data(company: Company) -> None:
    experiment = experiment_create(name="Prompt", target="system_prompt", metric="qualified",
                                   texts=[("A text", 50), ("B text", 50)])  # fmt: skip
    _arm(experiment, "A", 12, 2)
    _arm(experiment, "B", 40, 20)
    with override_english():
        verdict = experiment_results(experiment).verdict
    assert verdict.startswith("Not enough data yet to tell")
    assert "variant A has 12 conversations" in verdict


def test_stopping_gives_everybody_the_current_text_and_promoting_writes_it(
    company: Company,
) -> None:
    experiment = welcome_test(("¡Hola!", 50), ("¡Hola! ¿Buscas un seguro?", 50))
    experiment_stop(experiment=experiment)
    assert variant_text(target="welcome", channel="web", session_id="later") is None

    winner = Variant.objects.get(experiment=experiment, key="B")
    experiment_promote(experiment=experiment, variant=winner)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner_id) == ("promoted", winner.pk)
    assert assistant_profile_get().welcome_message == "¡Hola! ¿Buscas un seguro?"
    with pytest.raises(ExperimentError), override_english():
        experiment_promote(experiment=experiment, variant=winner)


def test_promoting_a_flow_message_saves_a_new_flows_version_keeping_the_rest(
    company: Company,
) -> None:
    flow_version_save(source=FLOWS, author=None)
    experiment = experiment_create(
        name="Precios", target="flow_message", flow_rule="onboarding:0", metric="leads",
        texts=[("Te cuento los precios", 50), ('Precios "al día": mira', 50)],
    )  # fmt: skip
    experiment_start(experiment=experiment)

    experiment_promote(
        experiment=experiment, variant=Variant.objects.get(experiment=experiment, key="B")
    )

    current = flow_version_current()
    assert current is not None and current.number == 2
    assert current.source == FLOWS.replace(
        '"Te cuento los precios"', '"Precios \\"al día\\": mira"'
    )
    assert flows_active().rules[0].message == 'Precios "al día": mira'
    assert "# the control" in current.source and "# Our flows" in current.source


def test_message_replaced_refuses_a_rule_that_is_not_there() -> None:
    with pytest.raises(KeyError):
        message_replaced(FLOWS, "onboarding:3", "x")
    with pytest.raises(KeyError):
        message_replaced(FLOWS, "other:0", "x")


# --- The dashboard -----------------------------------------------------------------------------


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_an_owner_creates_starts_and_promotes_from_the_dashboard(company: Company) -> None:
    client = english(logged_in(company, owner(company)))
    assistant_profile_get()  # the current welcome: the control when A is left empty

    response = client.post("/dashboard/experiments/", {
        "name": "Bienvenida corta", "target": "welcome", "metric": "leads",
        "text_a": "", "weight_a": "50", "text_b": "¿Te ayudo a cotizar?", "weight_b": "50",
    })  # fmt: skip

    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/experiments/{experiment.pk}/"
    assert [v.text for v in experiment.variants.all()] == [
        assistant_profile_get().welcome_message, "¿Te ayudo a cotizar?",
    ]  # fmt: skip
    assert client.post(f"/dashboard/experiments/{experiment.pk}/start/").status_code == 302
    page = client.get(f"/dashboard/experiments/{experiment.pk}/").content.decode()
    assert 'data-status="running"' in page
    assert "No results yet." in page or "Not enough data yet" in page
    b = experiment.variants.get(key="B")
    client.post(f"/dashboard/experiments/{experiment.pk}/promote/", {"variant": b.pk})
    assert assistant_profile_get().welcome_message == "¿Te ayudo a cotizar?"


def test_a_bad_test_is_refused_with_the_reason(company: Company) -> None:
    client = english(logged_in(company, owner(company)))
    response = client.post("/dashboard/experiments/", {
        "name": "x", "target": "welcome", "metric": "leads", "text_a": "Hola", "weight_a": "50",
    })  # fmt: skip
    assert response.status_code == 400
    assert "A test has 2 to 4 variants, each with a text." in response.content.decode()
    assert not Experiment.objects.exists()


def test_agents_and_viewers_read_but_cannot_change(company: Company) -> None:
    experiment = welcome_test(("Hola", 50), ("Buenas", 50), start=False)
    for role in (Role.AGENT, Role.VIEWER):
        client = logged_in(company, member(company, role))
        assert client.get("/dashboard/experiments/").status_code == 200
        assert client.get(f"/dashboard/experiments/{experiment.pk}/").status_code == 200
        assert client.post("/dashboard/experiments/", {"name": "x"}).status_code == 403
        assert client.post(f"/dashboard/experiments/{experiment.pk}/start/").status_code == 403
    assert Experiment.objects.get().status == "draft"


def test_another_companys_tests_are_not_found(company: Company, beta: Company) -> None:
    with tenant_context(beta):
        theirs = welcome_test(("Hola", 50), ("Buenas", 50), start=False, name="Beta only test")
    client = logged_in(company, owner(company))
    assert client.get(f"/dashboard/experiments/{theirs.pk}/").status_code == 404
    assert client.post(f"/dashboard/experiments/{theirs.pk}/start/").status_code == 404
    assert "Beta only test" not in client.get("/dashboard/experiments/").content.decode()
    with tenant_context(beta):
        assert Experiment.objects.get(pk=theirs.pk).status == "draft"
