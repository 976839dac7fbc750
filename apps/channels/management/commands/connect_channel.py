"""Connect a messaging channel to a company; prints one JSON object (channel id, webhook URL
and, for Telegram, the secret token; for Meta, the verify token)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from apps.audit.services import SYSTEM
from apps.channels.adapters import SetupError
from apps.channels.models import ChannelConnection
from apps.channels.services import CREDENTIALS, channel_connect, webhook_url
from apps.tenants.selectors import company_by_slug


class Command(BaseCommand):
    help = (
        "Connect a channel: --kind telegram --token TOKEN | --kind whatsapp_twilio "
        "--account-sid SID --auth-token TOKEN --sender whatsapp:+NUMBER | --kind whatsapp_meta "
        "--phone-number-id ID --access-token TOKEN --app-secret SECRET [--verify-token TOKEN]."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company's slug.")
        parser.add_argument("--kind", required=True, choices=list(CREDENTIALS))
        parser.add_argument("--name", default="")
        parser.add_argument("--token", help="Telegram: the bot token from @BotFather.")
        parser.add_argument("--account-sid")
        parser.add_argument("--auth-token")
        parser.add_argument("--sender", help="Twilio: the WhatsApp sender, whatsapp:+NUMBER.")
        parser.add_argument("--phone-number-id")
        parser.add_argument("--access-token")
        parser.add_argument("--app-secret")
        parser.add_argument("--verify-token", help="Meta: optional; generated when omitted.")
        parser.add_argument(
            "--base-url", default="", help="The product's public URL (default: PUBLIC_BASE_URL)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        company = company_by_slug(slug=options["company"])
        if company is None:
            raise CommandError(f"There is no company with slug {options['company']!r}.")
        kind = options["kind"]
        given = {
            "bot_token": options["token"],
            "account_sid": options["account_sid"],
            "auth_token": options["auth_token"],
            "sender": options["sender"],
            "phone_number_id": options["phone_number_id"],
            "access_token": options["access_token"],
            "app_secret": options["app_secret"],
            "verify_token": options["verify_token"],
        }
        optional = {"verify_token"}
        missing = [
            "--" + ("token" if f == "bot_token" else f.replace("_", "-"))
            for f in CREDENTIALS[kind]
            if not given.get(f) and f not in optional
        ]
        if missing:
            raise CommandError(f"--kind {kind} needs {', '.join(missing)}.")
        if kind == ChannelConnection.Kind.WHATSAPP_TWILIO and not str(given["sender"]).startswith(
            "whatsapp:+"
        ):
            raise CommandError("--sender must look like whatsapp:+14155238886.")
        with tenant_context(company):
            try:
                channel = channel_connect(
                    company=company,
                    kind=kind,
                    name=options["name"],
                    credentials={k: v for k, v in given.items() if v},
                    actor=SYSTEM,
                    base_url=options["base_url"] or None,
                )
            except SetupError as exc:
                raise CommandError(str(exc)) from exc
            result: dict[str, Any] = {
                "id": channel.pk,
                "company": company.slug,
                "kind": channel.kind,
                "name": channel.name,
                "webhook_url": webhook_url(channel, base=options["base_url"] or None),
            }
            if kind == ChannelConnection.Kind.TELEGRAM:
                result["secret_token"] = channel.secret_token
                result["bot_username"] = channel.bot_username
            elif kind == ChannelConnection.Kind.WHATSAPP_TWILIO:
                result["status_callback_url"] = webhook_url(
                    channel, status=True, base=options["base_url"] or None
                )
            else:
                result["verify_token"] = channel.verify_token
                result["display_phone_number"] = channel.display_phone_number
        self.stdout.write(json.dumps(result))
