"""WhatsApp through Twilio, with the official `twilio` SDK.

Inbound messages and status callbacks are form posts signed with `X-Twilio-Signature` (HMAC
over the URL Twilio called and the sorted parameters, with the account's auth token). The URL
is the one the product showed to paste into Twilio (`PUBLIC_BASE_URL` + path) or, behind a
proxy, the request's own URL rebuilt from `X-Forwarded-Proto`/`Host` when those are trusted
(TRUST_X_FORWARDED_PROTO / TRUST_X_FORWARDED_HOST).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from apps.channels.adapters.base import (
    Ignored,
    Inbound,
    Parsed,
    SendError,
    SetupError,
    StatusUpdate,
)
from apps.channels.models import ChannelConnection

TWILIO_HOST = "https://api.twilio.com"
# Message bodies are customers' words: keep the SDK's request logging out of the logs.
_SDK_LOGGER = logging.getLogger("chapi.twilio_sdk")
_SDK_LOGGER.setLevel(logging.WARNING)
# Twilio error codes after which the contact cannot be reached (opted out, not on WhatsApp,
# invalid number) and codes that will not succeed on a retry.
UNREACHABLE = {21211, 21408, 21610, 21612, 21614, 63003, 63024}
PERMANENT = {20003, 21617, 63016, 63018} | UNREACHABLE
STATUSES = {
    "queued": "sent",
    "accepted": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
}


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to TWILIO_API_BASE_URL (a local simulator in tests)."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        base = settings.TWILIO_API_BASE_URL.rstrip("/")
        if url.startswith(TWILIO_HOST) and base != TWILIO_HOST:
            url = base + url[len(TWILIO_HOST) :]
        return super().request(method, url, *args, **kwargs)


def twilio_client(connection: ChannelConnection) -> Client:
    return Client(
        connection.account_sid,
        connection.auth_token,
        http_client=_BaseUrlHttpClient(timeout=settings.CHANNEL_HTTP_TIMEOUT, logger=_SDK_LOGGER),
    )


def twilio_webhook_urls(request: HttpRequest) -> list[str]:
    """The URLs Twilio may have signed for this request."""
    urls = [request.build_absolute_uri()]
    if settings.PUBLIC_BASE_URL:
        urls.insert(0, settings.PUBLIC_BASE_URL + request.get_full_path())
    return urls


def _number(value: str) -> str:
    return value.removeprefix("whatsapp:")


class TwilioAdapter:
    kind = "whatsapp_twilio"
    limit = 1600

    def verify(self, request: HttpRequest, connection: ChannelConnection) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not connection.auth_token:
            return False
        validator = RequestValidator(connection.auth_token)
        params = {key: request.POST.get(key) for key in request.POST}
        return any(
            validator.validate(url, params, signature) for url in twilio_webhook_urls(request)
        )

    def parse(self, request: HttpRequest, connection: ChannelConnection) -> list[Parsed]:
        data = request.POST
        sid = data.get("MessageSid") or data.get("SmsSid") or ""
        if not sid:
            raise ValueError("no MessageSid")
        if request.path.rstrip("/").endswith("/status"):
            status = str(data.get("MessageStatus") or data.get("SmsStatus") or "")
            error = str(data.get("ErrorCode") or "")
            return [
                StatusUpdate(
                    provider_id=f"status:{sid}:{status}",
                    provider_message_id=sid,
                    status=STATUSES.get(status, status),
                    error=f"Twilio error {error}" if error else "",
                )
            ]
        sender = _number(str(data.get("From") or ""))
        if not sender:
            raise ValueError("no From")
        attachments = [
            {
                "type": "media",
                "url": data.get(f"MediaUrl{i}", ""),
                "mime_type": data.get(f"MediaContentType{i}", ""),
            }
            for i in range(min(int(data.get("NumMedia") or 0), 10))
        ]
        text = str(data.get("Body") or "")
        kind = "message.text"
        if data.get("Latitude") and data.get("Longitude"):
            attachments.append(
                {"type": "location", "latitude": data["Latitude"], "longitude": data["Longitude"]}
            )
            text = text or f"[Ubicación: {data['Latitude']}, {data['Longitude']}]"
            kind = "message.location"
        elif attachments:
            text = text or "[Archivo adjunto]"
            kind = "message.media"
        if not text:
            return [Ignored(sid, "message.empty", "an empty message")]
        return [
            Inbound(
                provider_id=sid,
                kind=kind,
                chat_id=sender,
                sender_id=sender,
                text=text,
                attachments=attachments,
                name=str(data.get("ProfileName") or ""),
                phone=sender,
            )
        ]

    def send(self, connection: ChannelConnection, chat_id: str, text: str) -> str:
        return self._create(connection, chat_id, body=text)

    def send_template(
        self,
        connection: ChannelConnection,
        chat_id: str,
        template: dict[str, Any],
        variables: dict[str, str],
    ) -> str:
        content_sid = str(template.get("content_sid") or "")
        if not content_sid.startswith("HX"):
            raise SendError(
                f"Template {template.get('name')!r} has no Twilio content_sid (HX…).",
                permanent=True,
            )
        return self._create(
            connection,
            chat_id,
            content_sid=content_sid,
            content_variables=json.dumps(variables),
        )

    def _create(self, connection: ChannelConnection, chat_id: str, **fields: Any) -> str:
        from apps.channels.services import webhook_url

        try:
            message = twilio_client(connection).messages.create(
                from_=connection.sender,
                to=f"whatsapp:{chat_id}",
                status_callback=webhook_url(connection, status=True),
                **fields,
            )
        except TwilioRestException as exc:
            code = int(exc.code or 0)
            if exc.status == 429 or code == 20429:
                raise SendError(
                    f"Twilio rate limit ({code})", retry_after=2.0, code=str(code)
                ) from exc
            if code in PERMANENT or exc.status in {400, 401, 403, 404}:
                raise SendError(
                    f"Twilio error {code}: {exc.msg}",
                    permanent=True,
                    unreachable=code in UNREACHABLE,
                    code=str(code),
                ) from exc
            raise SendError(f"Twilio error {code or exc.status}", code=str(code)) from exc
        except TwilioException as exc:
            raise SendError(f"Twilio unreachable: {type(exc).__name__}") from exc
        except OSError as exc:
            raise SendError(f"Twilio unreachable: {type(exc).__name__}") from exc
        return str(message.sid)

    def typing(self, connection: ChannelConnection, chat_id: str) -> None:
        """WhatsApp through Twilio has no typing indicator."""

    def setup(self, connection: ChannelConnection, webhook_url: str) -> None:
        try:
            twilio_client(connection).api.v2010.accounts(connection.account_sid).fetch()
        except TwilioRestException as exc:
            raise SetupError(
                "Twilio refused the account SID and auth token."
                if exc.status == 401
                else f"Twilio answered: error {exc.code or exc.status}."
            ) from exc
        except (TwilioException, OSError) as exc:
            raise SetupError(f"Twilio could not be reached ({type(exc).__name__}).") from exc

    def teardown(self, connection: ChannelConnection) -> None:
        """Nothing to undo at Twilio: the webhook URL is removed from the Twilio console."""
