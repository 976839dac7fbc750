"""Serve a demo web page with the widget snippet, from another origin than the product (a
different port), so every `dev.py run` exercises the widget's cross-origin path. Development
only: it creates (once) a widget key for the demo company allowing that page's origins."""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.tenants.selectors import company_by_slug
from apps.widget.models import WidgetKey
from apps.widget.services import widget_config, widget_key_create, widget_snippet

DEMO_KEY_NAME = "Demo page (development)"

PAGE = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{company} — demo</title>
<style>body{{font:17px/1.6 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1.5rem;
color:#1d2330}}code,pre{{background:#f1f3f8;border-radius:6px}}pre{{padding:1rem;overflow:auto;
font-size:.8rem}}</style></head>
<body>
<h1>{company}</h1>
<p>This page is served from <code>{origin}</code>, another origin than CHAPI (<code>{api}</code>),
like a customer's website. The chat button at the bottom right is the widget, loaded with the
snippet below; open it and talk to the demo company's assistant.</p>
<pre>{snippet_text}</pre>
{snippet}
</body></html>
"""

MISSING = """<!doctype html><meta charset="utf-8"><title>CHAPI widget demo</title>
<p>The demo company does not exist (setup_platform --no-demo): nothing to show.</p>"""


class Command(BaseCommand):
    help = "Serve a page with the demo company's widget on another port (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--api", default="http://localhost:8000", help="CHAPI's public URL.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The widget demo page is for development (DEBUG=true) only.")
        port, api = options["port"], options["api"].rstrip("/")
        origins = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
        company = company_by_slug(slug="demo")
        if company is None:
            body = MISSING
        else:
            widget_key = WidgetKey.objects.filter(
                company=company, name=DEMO_KEY_NAME, revoked_at=None
            ).first() or widget_key_create(company=company, name=DEMO_KEY_NAME, origins=origins)
            socket = "ws" + api.removeprefix("http") + f"/ws/widget/?key={widget_key.key}"
            snippet = widget_snippet(
                script_url=f"{api}{settings.STATIC_URL}chapi-widget.js",
                widget_key=widget_key,
                config=widget_config(widget_key, socket),
            )
            body = PAGE.format(
                company=html.escape(company.name),
                origin=f"http://localhost:{port}",
                api=api,
                snippet=snippet,
                snippet_text=html.escape(snippet),
            )
        payload = body.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in {"/", "/index.html"}:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            server = ThreadingHTTPServer((options["host"], port), Handler)
        except OSError as exc:
            # Not worth stopping the product for: say so and stay out of the way.
            self.stderr.write(f"widget demo page not served: port {port}: {exc}")
            threading.Event().wait()
            return
        self.stdout.write(f"widget demo page on http://localhost:{port}/", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        finally:
            server.server_close()
