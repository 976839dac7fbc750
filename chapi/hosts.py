"""URLs on another of the product's hosts (public site, a company's host), as the visitor
reaches this one: same scheme, and the port from the Host header (what the visitor typed),
not the one the app server listens on behind a proxy."""

from __future__ import annotations

from django.http import HttpRequest
from django.http.request import split_domain_port


def url_on_host(request: HttpRequest, host: str, path: str = "") -> str:
    _domain, port = split_domain_port(request.get_host())
    default_port = "443" if request.scheme == "https" else "80"
    netloc = host if not port or port == default_port else f"{host}:{port}"
    return f"{request.scheme}://{netloc}{path}"
