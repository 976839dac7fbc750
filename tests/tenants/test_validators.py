"""Company subdomains (slugs) and the schema names derived from them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django_tenants.postgresql_backend.base import is_valid_schema_name

from apps.tenants.validators import (
    RESERVED_SLUGS,
    SLUG_MAX_LENGTH,
    slug_to_schema_name,
    validate_slug,
)

INVALID = (
    "Use only lowercase letters, digits and single hyphens, "
    "starting and ending with a letter or digit."
)


@pytest.mark.parametrize(
    ("slug", "schema"),
    [
        ("acme", "t_acme"),
        ("acme-co", "t_acme_co"),
        ("a-b-c", "t_a_b_c"),
        ("123", "t_123"),
        ("a" * SLUG_MAX_LENGTH, "t_" + "a" * SLUG_MAX_LENGTH),
    ],
)
def test_slug_to_schema_name(slug: str, schema: str) -> None:
    assert slug_to_schema_name(slug) == schema
    assert is_valid_schema_name(schema)


def test_schema_names_never_collide_with_the_platform_schemas() -> None:
    for slug in ("public", "tenant-template", "template", "pg-catalog", "information-schema"):
        schema = slug_to_schema_name(slug)
        assert schema.startswith("t_")
        assert schema not in {"public", "tenant_template", "pg_catalog", "information_schema"}


def test_distinct_valid_slugs_give_distinct_schemas() -> None:
    slugs = ["acme", "acme-co", "acmeco", "acme-c-o", "ac-me-co"]
    for slug in slugs:
        validate_slug(slug)
    assert len({slug_to_schema_name(slug) for slug in slugs}) == len(slugs)


@pytest.mark.parametrize(
    "slug",
    ["abc", "a1b", "123", "a-b", "acme-seguros-2026", "x" * SLUG_MAX_LENGTH, "0-9"],
)
def test_validate_slug_accepts(slug: str) -> None:
    validate_slug(slug)  # raises if refused


@pytest.mark.parametrize(
    ("slug", "code", "message"),
    [
        ("", "short", "The subdomain must have at least 3 characters."),
        ("a", "short", "The subdomain must have at least 3 characters."),
        ("ab", "short", "The subdomain must have at least 3 characters."),
        ("x" * (SLUG_MAX_LENGTH + 1), "long", "The subdomain can have at most 40 characters."),
        ("-abc", "invalid", INVALID),
        ("abc-", "invalid", INVALID),
        ("ab--c", "invalid", INVALID),
        ("xn--abc", "invalid", INVALID),
        ("ab_c", "invalid", INVALID),
        ("Acme", "invalid", INVALID),
        ("ac me", "invalid", INVALID),
        (" acme", "invalid", INVALID),
        ("acme.co", "invalid", INVALID),
        ("acmé", "invalid", INVALID),
        pytest.param("acme\n", "invalid", INVALID, id="trailing-newline"),
        ("---", "invalid", INVALID),
        ("www", "reserved", "This subdomain is reserved."),
        ("api", "reserved", "This subdomain is reserved."),
        ("admin", "reserved", "This subdomain is reserved."),
        ("public", "reserved", "This subdomain is reserved."),
        ("template", "reserved", "This subdomain is reserved."),
    ],
)
def test_validate_slug_rejects(slug: str, code: str, message: str) -> None:
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        validate_slug(slug)

    assert excinfo.value.code == code
    with translation.override("en"):
        assert excinfo.value.messages == [message]


def test_every_reserved_slug_is_rejected_as_reserved() -> None:
    for slug in RESERVED_SLUGS:
        with pytest.raises(ValidationError) as excinfo:
            validate_slug(slug)
        assert excinfo.value.code == ("short" if len(slug) < 3 else "reserved"), slug
