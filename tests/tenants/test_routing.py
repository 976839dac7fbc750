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


def _database_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError

    from apps.tenants.middleware import CompanyMiddleware

    def refuse(self: object, domain_model: object, hostname: str) -> None:
        raise OperationalError("connection failed: FATAL:  sorry, too many clients already")

    monkeypatch.setattr(CompanyMiddleware, "get_tenant", refuse)


def test_without_the_database_the_api_answers_503_in_its_error_shape(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _database_refuses(monkeypatch)
    response = Client(HTTP_HOST="localhost").post(
        "/v1/chat",
        data={"message": "hola", "session_id": "s-1"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer ck_whatever",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "The service is briefly unavailable. Try again in a few seconds.",
        }
    }


def test_without_the_database_a_page_says_to_try_again(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _database_refuses(monkeypatch)
    response = Client(HTTP_HOST="alpha.localhost").get("/dashboard/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Service unavailable" in response.content
    assert b"too many clients" not in response.content and b"Traceback" not in response.content


def test_a_database_error_inside_the_api_is_a_503_only_when_it_is_transient() -> None:
    from django.db import InterfaceError, OperationalError, ProgrammingError

    from apps.api.errors import exception_handler

    for transient in (OperationalError("pool timeout"), InterfaceError("connection closed")):
        response = exception_handler(transient, {})
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response.data["error"]["code"] == "service_unavailable"
    bug = exception_handler(ProgrammingError('relation "x" does not exist'), {})
    assert bug.status_code == 500
    assert bug.data == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
