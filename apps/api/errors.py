"""One error shape for the whole API: {"error": {"code", "message", "field"?}}."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = 400,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = http_status
        self.error_code = code
        self.message = message
        self.field = field
        self.extra_headers = headers or {}


# The database could not be reached or shed the query: the client should try again shortly.
UNAVAILABLE_MESSAGE = "The service is briefly unavailable. Try again in a few seconds."
UNAVAILABLE_RETRY_AFTER = 5


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def _first_field_error(detail: Any, path: str = "") -> tuple[str, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if not path else f"{path}.{key}"
            if key == "non_field_errors":
                name = path or "body"
            return _first_field_error(value, name)
    if isinstance(detail, list) and detail:
        return _first_field_error(detail[0], path)
    return path or "body", str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler, reshaped; anything unexpected becomes a logged 500 with the
    same shape (and never leaks internals)."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, exc.message, exc.field)
        headers.update(exc.extra_headers)
        code = exc.status_code
    elif isinstance(exc, exceptions.ValidationError):
        field, message = _first_field_error(exc.detail)
        body = error_body("invalid_request", f"{field}: {message}", field)
        code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.ParseError):
        body = error_body("invalid_json", "The request body is not valid JSON.")
        code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        body = error_body("unsupported_media_type", "Send JSON (Content-Type: application/json).")
        code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        body = error_body("missing_credentials", "Send 'Authorization: Bearer <API key>'.")
        code = status.HTTP_401_UNAUTHORIZED
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, exceptions.PermissionDenied):
        body = error_body("forbidden", str(exc.detail))
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(exc, Http404 | exceptions.NotFound):
        body = error_body("not_found", "Not found.")
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, exceptions.MethodNotAllowed):
        body = error_body("method_not_allowed", str(exc.detail))
        code = status.HTTP_405_METHOD_NOT_ALLOWED
    elif isinstance(exc, exceptions.NotAcceptable):
        body = error_body("not_acceptable", str(exc.detail))
        code = status.HTTP_406_NOT_ACCEPTABLE
    elif isinstance(exc, exceptions.Throttled):
        body = error_body("rate_limited", "Too many requests.")
        code = status.HTTP_429_TOO_MANY_REQUESTS
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
    elif isinstance(exc, exceptions.APIException):
        body = error_body(str(exc.default_code), str(exc.detail))
        code = exc.status_code
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database could not be reached or shed the query (connection refused, too many
        # clients, a pool timeout, a cancelled statement): worth a retry, unlike a bug's error.
        logger.warning("database unavailable: %s", exc)
        body = error_body("service_unavailable", UNAVAILABLE_MESSAGE)
        code = status.HTTP_503_SERVICE_UNAVAILABLE
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    else:
        logger.exception("unhandled API error")
        body = error_body("internal_error", "Something went wrong on our side.")
        code = status.HTTP_500_INTERNAL_SERVER_ERROR
    return Response(body, status=code, headers=headers)
