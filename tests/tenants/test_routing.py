from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import logged_in, owner


def test_unknown_host_gets_a_plain_404_page(db: None) -> None:
    response = Client(HTTP_HOST="nobody.localhost").get("/dashboard/")
    assert response.status_code == 404
    assert b"There is no company at this address" in response.content
    assert b"Traceback" not in response.content


@pytest.mark.parametrize(
    "hostname", ["localhost", "alpha.localhost", "nobody.localhost", "10.0.0.7"]
)
def test_healthz_answers_on_every_host(db: None, hostname: str) -> None:
    response = Client(HTTP_HOST=hostname).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check(client_public: Client) -> None:
    body = client_public.get("/readyz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis"}
    assert all(check["ok"] for check in body["checks"].values())


def test_owner_sees_their_dashboard(alpha, owner_alpha) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(alpha, owner_alpha).get("/dashboard/")
    assert response.status_code == 200
    assert b"Alpha" in response.content


def test_owner_of_alpha_is_a_stranger_on_beta(alpha, beta) -> None:  # type: ignore[no-untyped-def]
    client = logged_in(alpha, owner(alpha))
    client.defaults["HTTP_HOST"] = "beta.localhost"
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
