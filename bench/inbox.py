"""Benchmark: the sales inbox with 100,000 leads in one company.

Seeds one company (`--leads`, default 100,000 leads, a quarter of them unassigned, the rest
spread over 5 agents and the owner; stages, scores, channels, tags and dates at random, with
a fixed seed) plus `--conversations` conversations (default 2,000, 10 messages each) on the
first leads, then times, through Django's test client (the whole view: middleware, queries,
templates; no network), over `--runs` runs each (default 20; exports 3):

* the leads list: default (newest first), filtered (two stages + a minimum score), searched
  (a surname), sorted by score, page 200, an agent's own leads;
* a lead's page (3 conversations, 30 messages, events);
* the CSV export of every lead (the whole stream read), and of the filtered leads.

It prints p50 / p95 / max in milliseconds and the number of SQL queries of each.

It never touches your data: it creates a scratch database (`chapi_bench_inbox`) on the
server of DATABASE_URL, migrates it (`setup_platform --no-demo`), and drops it at the end.
Without DATABASE_URL it starts (and afterwards releases) the embedded PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/9 \\
        DEBUG=true .venv/bin/python bench/inbox.py
    .venv/bin/python bench/inbox.py --leads 20000 --runs 10     # quicker

Options: --leads N, --conversations N, --runs N, --export-runs N, --database NAME,
--keep-database.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.company_create import in_scratch_database, percentile  # noqa: E402

FIRST = [
    "Ana",
    "Luis",
    "María",
    "Carlos",
    "Sofía",
    "Jorge",
    "Valentina",
    "Andrés",
    "Laura",
    "Diego",
    "Camila",
    "Juan",
    "Isabel",
    "Pedro",
    "Lucía",
    "John",
    "Emma",
    "Olivia",
]
LAST = [
    "Gómez",
    "Rodríguez",
    "Martínez",
    "López",
    "García",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Smith",
    "Johnson",
    "Brown",
    "Castro",
    "Vargas",
]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Stark", "Wayne"]
TAGS = ["vip", "demo", "pricing", "partner", "event", "b2b", "retail"]
CHANNELS = ["web", "whatsapp", "telegram", "api"]
STAGES = ["new"] * 5 + ["qualified"] * 2 + ["contacted", "meeting_booked", "won", "lost"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the sales inbox with many leads.")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--database", default="chapi_bench_inbox")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    if not args.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return args


def seed(args: argparse.Namespace, company: object, owner: object) -> dict[str, int]:
    from django.utils import timezone

    from apps.accounts.models import Role
    from apps.accounts.services import user_create
    from apps.conversations.models import Contact, Conversation, Message
    from apps.leads.models import Lead, LeadEvent

    rng = random.Random(1)  # noqa: S311 - reproducible data, not secrets
    agents = [
        user_create(
            email=f"agent{i}@bench.example.com", name=f"Agent {i}", password=None, role=Role.AGENT
        )
        for i in range(5)
    ]
    owners: list[Any] = [None] * 2 + [*agents, owner]
    now = timezone.now()
    began = time.perf_counter()
    batch: list[Lead] = []
    for i in range(args.leads):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        batch.append(
            Lead(
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{i}@example.com",
                phone=f"+57 3{rng.randrange(10**8, 10**9)}",
                company_name=rng.choice(COMPANIES),
                stage=rng.choice(STAGES),
                score=rng.randrange(0, 101),
                owner=rng.choice(owners),
                source_channel=rng.choice(CHANNELS),
                tags=rng.sample(TAGS, rng.randrange(0, 3)),
            )
        )
        if len(batch) == 5000:
            Lead.objects.bulk_create(batch)
            batch = []
    Lead.objects.bulk_create(batch)
    # auto_now(_add) overwrote the dates: set them back in one statement.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_lead SET created_at = now() - (id % 525600) * interval '1 minute', "
            "updated_at = now() - (id % 43200) * interval '1 minute'"
        )
    print(f"seeded {args.leads} leads in {time.perf_counter() - began:.1f} s")

    began = time.perf_counter()
    lead_ids = list(Lead.objects.order_by("id").values_list("id", flat=True)[: args.conversations])
    contacts = Contact.objects.bulk_create(
        [
            Contact(channel="web", external_id=f"bench-{i}", lead_id=lead_ids[i // 3 * 3])
            for i in range(len(lead_ids))
        ]
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(
                contact=c,
                channel="web",
                session_id=f"bench-{c.pk}",
                mode=rng.choice(["bot", "bot", "pending_human", "human", "closed"]),
                handoff_requested_at=now,
                last_message_at=now,
            )
            for c in contacts
        ]
    )
    messages = []
    for conversation in conversations:
        for j in range(10):
            messages.append(Message(conversation=conversation, channel="web",
                                    role="visitor" if j % 2 == 0 else "assistant",
                                    text=f"Mensaje {j} de la conversación {conversation.pk}",
                                    status="completed"))  # fmt: skip
    Message.objects.bulk_create(messages, batch_size=5000)
    events = [LeadEvent(lead_id=lead_ids[0], kind="field", field="email", old="", new=f"x{i}",
                        source="extractor") for i in range(40)]  # fmt: skip
    LeadEvent.objects.bulk_create(events)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {len(conversations)} conversations, {len(messages)} messages in "
        f"{time.perf_counter() - began:.1f} s"
    )
    return {"lead": lead_ids[0], "agent": agents[0].pk}


def measure(
    client: object, url: str, runs: int, *, stream: bool = False
) -> tuple[list[float], int]:
    from django.db import connection, reset_queries

    times = []
    queries = 0
    for _ in range(runs):
        reset_queries()
        began = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        if stream:
            size = sum(len(part) for part in response.streaming_content)
            assert size > 0
        else:
            assert response.status_code == 200, (url, response.status_code)
        times.append((time.perf_counter() - began) * 1000)
        queries = len(connection.queries)
    return times, queries


def bench_company(name: str, slug: str) -> tuple[Any, Any]:
    """Migrate the scratch database and create one company: (company, its owner)."""
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from apps.accounts.models import User
    from apps.tenants.services import company_create

    call_command("setup_platform", demo=False, verbosity=0)
    email = f"owner@{slug}.example.com"
    company = company_create(name=name, slug=slug, owner_email=email, owner_name="Bench Owner",
                             owner_password=None).company  # fmt: skip
    with tenant_context(company):
        return company, User.objects.get(email=email)


def logged_in_client(company: Any, user: Any) -> Any:
    """A test client on the company's host, signed in as `user`, reading English."""
    from django.conf import settings
    from django.test import Client
    from django_tenants.utils import tenant_context

    client = Client(HTTP_HOST=f"{company.slug}.{settings.ROOT_DOMAIN}", HTTP_ACCEPT_LANGUAGE="en")
    with tenant_context(company):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings
    from django_tenants.utils import schema_context, tenant_context

    from apps.accounts.models import User

    company, owner = bench_company("Bench Inbox", "bench-inbox")
    try:
        with tenant_context(company):
            ids = seed(args, company, owner)
            agent = User.objects.get(pk=ids["agent"])
        manager, agent_client = logged_in_client(company, owner), logged_in_client(company, agent)
        cases: list[tuple[str, Callable[[], tuple[list[float], int]]]] = [
            ("list, default", lambda: measure(manager, "/dashboard/leads/", args.runs)),
            (
                "list, filtered (2 stages, score>=50)",
                lambda: measure(
                    manager, "/dashboard/leads/?stage=qualified&stage=won&score_min=50", args.runs
                ),
            ),
            (
                "list, searched (q=vargas)",
                lambda: measure(manager, "/dashboard/leads/?q=vargas", args.runs),
            ),
            (
                "list, searched (q=luis globex)",
                lambda: measure(manager, "/dashboard/leads/?q=luis+globex", args.runs),
            ),
            (
                "list, sorted by score",
                lambda: measure(manager, "/dashboard/leads/?sort=-score", args.runs),
            ),
            (
                "list, sorted by name",
                lambda: measure(manager, "/dashboard/leads/?sort=name", args.runs),
            ),
            ("list, page 200", lambda: measure(manager, "/dashboard/leads/?page=200", args.runs)),
            (
                "list, an agent's own leads",
                lambda: measure(agent_client, "/dashboard/leads/", args.runs),
            ),
            (
                "lead page (3 conversations)",
                lambda: measure(manager, f"/dashboard/leads/{ids['lead']}/", args.runs),
            ),
            ("inbox queue", lambda: measure(manager, "/dashboard/inbox/", args.runs)),
            (
                f"export, all {args.leads} leads",
                lambda: measure(
                    manager, "/dashboard/leads/export.csv", args.export_runs, stream=True
                ),
            ),
            (
                "export, filtered leads",
                lambda: measure(
                    manager,
                    "/dashboard/leads/export.csv?stage=won&score_min=50",
                    args.export_runs,
                    stream=True,
                ),
            ),
            (
                "export, conversations",
                lambda: measure(
                    manager, "/dashboard/leads/conversations.csv", args.export_runs, stream=True
                ),
            ),
        ]
        rows = []
        with override_settings(DEBUG=True):
            for label, case in cases:
                case()  # warm-up, not counted
                times, queries = case()
                rows.append((label, statistics.median(times), percentile(times, 0.95),
                             max(times), queries, len(times)))  # fmt: skip
        print()
        print(f"Sales inbox, {args.leads} leads, milliseconds per request (test client):")
        print(f"| {'case':<38} | {'p50':>8} | {'p95':>8} | {'max':>8} | queries | runs |")
        print(f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|{'-' * 10}|---------|------|")
        for label, p50, p95, worst, queries, n in rows:
            print(f"| {label:<38} | {p50:8.1f} | {p95:8.1f} | {worst:8.1f} | {queries:7d} | "
                  f"{n:4d} |")  # fmt: skip
    finally:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            company.delete(force_drop=True)
        connection.close()


def main(argv: list[str]) -> int:
    return in_scratch_database(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
