"""The assistant configuration a reply reads, kept per process until the company changes it.

Tests run inside a transaction, where nothing is kept (it could be rolled back): `keeping`
lets these tests see what a worker, outside any transaction, does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from pytest_django.fixtures import Settings

from apps.assistants import services
from apps.assistants.models import BusinessFact, FaqEntry
from apps.assistants.services import assistant_config_get, assistant_profile_get
from apps.tenants.models import Company


@pytest.fixture
def keeping(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(services, "_may_keep", lambda: True)
    services._CONFIGS.clear()
    yield
    services._CONFIGS.clear()


def config_queries() -> tuple[object, int]:
    """The configuration, and the queries reading it cost (the profile exists beforehand,
    and the schema's search path is set)."""
    assistant_profile_get()
    with CaptureQueriesContext(connection) as queries:
        config = assistant_config_get(company_name="Alpha")
    return config, len(queries.captured_queries)


def test_the_configuration_is_kept_until_the_profile_a_fact_or_a_faq_entry_changes(
    alpha: Company, keeping: None
) -> None:
    with tenant_context(alpha):
        first, loading = config_queries()
        again, kept = config_queries()
        assert again is first
        assert (loading, kept) == (3, 0)

        BusinessFact.objects.create(title="Plan anual", price="$1,200 MXN")
        with_fact = assistant_config_get(company_name="Alpha")
        assert [fact.title for fact in with_fact.facts] == ["Plan anual"]

        profile = assistant_profile_get()
        profile.bot_name = "Lucía"
        profile.save()
        assert assistant_config_get(company_name="Alpha").bot_name == "Lucía"

        entry = FaqEntry.objects.create(question="¿Hacen envíos?", answer="Sí, a todo el país.")
        assert [f.question for f in assistant_config_get(company_name="Alpha").faq] == [
            "¿Hacen envíos?"
        ]
        entry.delete()
        assert assistant_config_get(company_name="Alpha").faq == ()
        assert config_queries()[1] == 0


def test_each_company_keeps_its_own(alpha: Company, beta: Company, keeping: None) -> None:
    for company, name in ((alpha, "Alfa bot"), (beta, "Beta bot")):
        with tenant_context(company):
            profile = assistant_profile_get()
            profile.bot_name = name
            profile.save()
    for _ in range(2):
        with tenant_context(alpha):
            assert assistant_config_get(company_name="Alpha").bot_name == "Alfa bot"
        with tenant_context(beta):
            assert assistant_config_get(company_name="Beta").bot_name == "Beta bot"
    with tenant_context(beta):
        BusinessFact.objects.create(title="Solo de Beta")
    with tenant_context(alpha):
        assert assistant_config_get(company_name="Alpha").facts == ()


def test_the_platform_key_and_the_company_name_are_read_again_when_they_change(
    alpha: Company, keeping: None, settings: Settings
) -> None:
    settings.OPENAI_API_KEY = ""
    with tenant_context(alpha):
        assert assistant_config_get(company_name="Alpha").provider == "offline"
        settings.OPENAI_API_KEY = "sk-platform-0123456789"
        assert assistant_config_get(company_name="Alpha").provider == "openai"
        assert assistant_config_get(company_name="Alpha SA").company_name == "Alpha SA"


def test_a_configuration_is_kept_for_a_bounded_time_whatever_happens(
    alpha: Company, keeping: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(alpha):
        assistant_config_get(company_name="Alpha")
        monkeypatch.setattr(services, "CONFIG_KEEP_SECONDS", 0)
        assert config_queries()[1] == 3


def test_without_the_cache_it_is_loaded_every_time(
    alpha: Company, keeping: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise ConnectionError("redis is down")

    with tenant_context(alpha):
        monkeypatch.setattr(cache, "get", down)
        first, loading = config_queries()
        second, again = config_queries()
        assert (loading, again) == (3, 3)
        assert second == first and second is not first
        assert services._CONFIGS == {}


def test_inside_a_transaction_nothing_is_kept(alpha: Company) -> None:
    services._CONFIGS.clear()
    with tenant_context(alpha):
        assert config_queries()[1] == 3
        assert config_queries()[1] == 3
    assert services._CONFIGS == {}
