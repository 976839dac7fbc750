"""A local CRM receiving CHAPI's lead webhooks: it checks each request's signature as a
receiver would (HMAC-SHA256 of "<timestamp>.<body>", written here independently of the
product's code), records what came, and answers from a script (status, headers, body, delay)
so tests can make it fail, hang or ask to retry later."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import LocalServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = '{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a hung CRM)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeCrm(LocalServer):
    def __init__(self, secret: str = "") -> None:
        super().__init__()
        self.secret = secret
        self.received: list[Received] = []
        self.script: list[Answer] = []

    def answer(self, *answers: Answer) -> None:
        """The next requests' answers, in order (then 200 again)."""
        self.script.extend(answers)

    def hook_url(self, path: str = "/hooks/chapi") -> str:
        return f"{self.url}{path}"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp = headers.get("X-Chapi-Timestamp", "")
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(headers.get("X-Chapi-Signature", ""), f"sha256={expected}")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        self.received.append(
            Received(
                path=request.path_qs,
                headers=headers,
                body=body,
                signature_valid=self.verify(headers, body),
            )
        )
        answer = self.script.pop(0) if self.script else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)
