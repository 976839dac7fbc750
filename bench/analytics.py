"""Benchmark: the analytics page, the dashboard and the read API of a company with a year of
traffic.

Seeds one company, fast (COPY, with a fixed random seed), with:

* `--conversations` conversations (default 100,000), each with its own contact, spread over
  the last 365 days (traffic growing over the year, quieter weekends, business hours in the
  company's time zone) on the channels web / whatsapp / telegram / api, a context page for the
  web ones; about 7% asked for a person (the recent ones wait in the inbox or are with the owner);
* `--messages` messages (default 1,000,000; about 10 per conversation, alternating visitor and
  assistant). Replies are gpt-4o-mini on openai with input/output tokens, cost (the product's
  price table), time to first token and latency drawn from realistic distributions; 0.5% are the
  offline responder's fallback after the model failed;
* `--leads` leads (default 50,000): the contact of every second conversation joined to one, with
  names, emails and phones (about 83% reachable), scores and stages (about 29% qualified, some
  contacted, meetings, won, lost), their history (LeadEvent) and the owner's notifications;
* the analytics event log the product would have written for that traffic (conversation.started,
  message.received, reply.completed, lead.created, lead.captured, lead.qualified, lead.stage,
  handoff.requested; kinds and data as the services emit them), in time order.

Then it times the analytics rollup over the whole log (`rollup_run`), checks its totals against
the seeded data, and times, through Django's test client (the whole view: middleware, queries,
templates; no network), over `--runs` runs each (default 20, after one warm-up request):

* the analytics page (30 days, a year, one channel), its CSV export, GET /v1/analytics;
* the dashboard's home, leads list and search, a lead, the inbox, notifications, flows, the A/B
  tests and one test with 20,000 assignments;
* GET /v1/leads, /v1/conversations and /v1/conversations/<id> with a `read` API key.

It prints p50 / p95 / max in milliseconds and the SQL queries of each, names the cases above
the target (p95 <= 200 ms) and lists their slowest queries (`--explain`: with EXPLAIN ANALYZE).

It never touches your data: it creates a scratch database (`chapi_bench_analytics`) on the
server of DATABASE_URL, migrates it (`setup_platform --no-demo`), and drops it at the end.
Without DATABASE_URL it starts (and afterwards releases) the embedded PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        DEBUG=true .venv/bin/python bench/analytics.py
    .venv/bin/python bench/analytics.py --conversations 10000 --messages 100000 --leads 5000 \\
        --runs 5                                                     # quicker

Options: --leads N, --conversations N, --messages N, --runs N, --database NAME,
--keep-database, --explain.
"""

# The SQL below names only tables of the product's models (from model metadata).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.company_create import in_scratch_database, percentile  # noqa: E402
from bench.inbox import (  # noqa: E402
    COMPANIES,
    FIRST,
    LAST,
    TAGS,
    bench_company,
    logged_in_client,
    measure,
)

SEED = 1
TARGET_P95_MS = 200.0
DAYS = 365
ASSIGNMENTS = 20_000

CHANNELS = {"web": 55, "whatsapp": 25, "telegram": 10, "api": 10}
SITE = "https://www.bench-shop.example"
PAGES = {
    "/": 30, "/precios": 18, "/planes/empresas": 9, "/planes/pymes": 7, "/contacto": 6,
    "/demo": 6, "/blog/como-elegir-un-crm": 5, "/blog/ventas-por-whatsapp": 4,
    "/integraciones": 4, "/casos/retail": 3, "/casos/seguros": 3, "/en/pricing": 3,
    "/en/": 2, "/ayuda/facturacion": 2, "/ayuda/api": 1, "/nosotros": 1,
}  # fmt: skip
REFERRERS = ["", "", "https://www.google.com/", "https://www.bing.com/", "https://t.co/x"]
# Visitor messages per local hour (0-23): quiet nights, busy mornings and afternoons.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 6, 10, 14, 15, 14, 11, 12, 14, 14, 13, 11, 9, 8, 7, 5, 3, 2]
HANDOFF_REASONS = {"visitor_asked": 60, "qualified_price": 20, "assistant_cannot_answer": 15,
                   "flow": 5}  # fmt: skip
# Final stage of a qualified lead: the path the team moved it along (lead_stage_set).
QUALIFIED_PATHS = {
    "qualified": (40, []),
    "contacted": (20, ["contacted"]),
    "meeting_booked": (15, ["contacted", "meeting_booked"]),
    "won": (15, ["contacted", "meeting_booked", "won"]),
    "lost": (10, ["contacted", "lost"]),
}
VISITOR_TEXTS = [
    "Hola, quisiera saber los precios del plan para empresas",
    "¿Tienen integración con WhatsApp Business?",
    "Somos una tienda con 3 sucursales, ¿nos sirve?",
    "¿Cuánto cuesta al mes con 5 usuarios?",
    "Mi correo es el que dejé en el formulario, escríbanme por favor",
    "¿Puedo probarlo gratis antes de pagar?",
    "Necesitamos empezar el mes que viene",
    "¿Aceptan pago con tarjeta a meses sin intereses?",
    "Hi, do you have an English version of the assistant?",
    "What is the price for the business plan?",
    "Gracias, ¿me pueden llamar mañana en la mañana?",
    "Quiero hablar con un asesor",
    "El presupuesto que tenemos es de unos 2 millones de pesos",
    "ok perfecto",
]
ASSISTANT_TEXTS = [
    "¡Hola! Con gusto te ayudo. El plan Empresas cuesta US$ 49 al mes por usuario e incluye el "
    "asistente en tu web y WhatsApp, la bandeja de leads y reportes. ¿Cuántas personas de tu "
    "equipo lo usarían?",
    "Sí, nos conectamos con WhatsApp Business mediante la API oficial: los mensajes llegan a la "
    "misma bandeja que los de tu web. ¿Ya tienes un número verificado?",
    "Claro que sí. Puedes probarlo 14 días sin tarjeta. ¿Te comparto el enlace para crear tu "
    "cuenta o prefieres que alguien del equipo te acompañe en una demo?",
    "Perfecto, lo anoto. ¿A qué correo o teléfono te podemos escribir para enviarte la propuesta?",
    "Gracias por los datos. Con 3 sucursales te recomiendo el plan Empresas: cada sucursal tiene "
    "su propio canal y ves todo en un solo lugar. ¿Para cuándo quieren empezar?",
    "Sure! The assistant answers in English and Spanish. The business plan is US$ 49 per user "
    "per month. How many people would use it?",
    "Entiendo. Te conecto con una persona del equipo comercial; mientras tanto sigo aquí para lo "
    "que necesites.",
]
WELCOME_A = "¡Hola! Soy el asistente de Bench Shop. ¿En qué te puedo ayudar hoy?"
WELCOME_B = "¡Hola! 👋 Este mes tienes 10% de descuento en el plan Empresas. ¿Te cuento más?"
FLOWS = """\
# Conversation flows of Bench Shop.
flows:
  onboarding:
    - trigger: "nuevo_usuario"
      message: "¡Bienvenido a Bench Shop! Te ayudo a elegir el plan para tu equipo."
      actions: ["identificar_necesidad", "calificar_presupuesto"]
  precios:
    - trigger: {keyword: [precio, precios, cuánto cuesta, cotización, price]}
      actions: [{tag: precio}]
  seguimiento:
    - trigger: "7_dias_sin_actividad"
      message: "¿Sigues interesado en Bench Shop? Puedo prepararte una propuesta hoy."
      actions: ["re_engagement", "descuento_especial"]
discount:
  code: "BENCH10"
  text: "Usa el código {code} y obtén un 10% de descuento este mes."
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time analytics and the dashboard at scale.")
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database", default="chapi_bench_analytics")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slow cases' slowest queries"
    )
    args = parser.parse_args(argv)
    if not args.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    if args.conversations < 2 or args.leads < 1 or args.runs < 1:
        parser.error("--conversations must be at least 2, --leads and --runs at least 1")
    if args.messages < 2 * args.conversations:
        parser.error("--messages must be at least twice --conversations (a question, a reply)")
    return args


# --------------------------------------------------------------------------- COPY


def copy_rows(model: Any, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY `rows` (values of `columns`, attribute names) into `model`'s table; every other
    column gets its field's default. Returns the number of rows."""
    from django.db import connection
    from django.db.models import JSONField

    fields = {f.attname: f for f in model._meta.concrete_fields}
    rest = [f for name, f in fields.items() if name not in columns and not f.primary_key]
    defaults = []
    for f in rest:
        value = f.get_default()
        if value is None and not f.null:
            raise ValueError(f"{model.__name__}.{f.attname} has no default: give it")
        defaults.append(json.dumps(value) if isinstance(f, JSONField) else value)
    tail = tuple(defaults)
    names = ", ".join(f'"{fields[c].column}"' for c in columns)
    names += "".join(f', "{f.column}"' for f in rest)
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(row + tail)
            count += 1
    return count


def sequence_reset(*models: Any) -> None:
    """After COPY with explicit ids: the next id the database gives follows the last one."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                f'(SELECT coalesce(max(id), 0) + 1 FROM "{table}"), false)',
                [f'"{table}"'],
            )


def next_id(model: Any) -> int:
    from django.db.models import Max

    return (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1


# --------------------------------------------------------------------------- the plan


@dataclass(slots=True)
class LeadPlan:
    id: int
    name: str
    email: str
    phone: str
    company: str
    score: int
    tags: list[str]
    capture_turn: int | None  # the visitor message that gave an email or a phone
    qualify_turn: int | None  # the visitor message after which the score reached 60
    path: list[str]  # stages the team moved it to, in order (after qualification)
    lost_unqualified: bool
    stage: str = "new"
    captured_at: datetime | None = None
    qualified_at: datetime | None = None
    moves: list[tuple[str, str, datetime]] = field(default_factory=list)  # (old, new, at)


@dataclass(slots=True)
class Plan:
    index: int
    id: int
    contact_id: int
    first_message_id: int
    channel: str
    session_id: str
    language: str
    context: dict[str, Any]
    start: datetime
    pairs: int
    handoff_reason: str
    lead: LeadPlan | None
    mode: str = "bot"
    last_at: datetime | None = None
    handoff_at: datetime | None = None


@dataclass(slots=True)
class Turn:
    visitor_at: datetime
    reply_created: datetime
    reply_completed: datetime
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal
    ttft_ms: int
    latency_ms: int
    fallback: bool
    error: str
    intent: str


def turns(plan: Plan) -> list[Turn]:
    """The conversation's exchanges, the same every time for the same conversation."""
    from apps.assistants.pricing import usage_cost

    rng = random.Random(SEED * 1_000_003 + plan.index)  # noqa: S311 - reproducible data
    at = plan.start
    result = []
    for j in range(plan.pairs):
        queued = timedelta(milliseconds=rng.randint(40, 250))
        if rng.random() < 0.005:  # the model failed after its retries: the offline responder
            ttft = rng.randint(8_000, 16_000)
            latency = ttft + rng.randint(20, 120)
            provider = model = "offline"
            tokens_in = tokens_out = 0
            cost = Decimal("0.000000")
            fallback, error, intent = True, rng.choice(["timeout", "server_error"]), "faq"
        else:
            tokens_in = max(300, int(900 + 260 * j + rng.gauss(0, 80)))
            tokens_out = min(600, max(15, int(rng.lognormvariate(math.log(110), 0.45))))
            ttft = int(rng.lognormvariate(math.log(520), 0.45))
            if rng.random() < 0.02:  # a slow tail: the provider under load
                ttft += rng.randint(2_000, 8_000)
            ttft = max(120, ttft)
            latency = ttft + int(tokens_out / rng.uniform(55, 110) * 1000) + rng.randint(10, 60)
            provider, model = "openai", "gpt-4o-mini"
            cost = usage_cost(model, tokens_in, tokens_out)
            fallback, error, intent = False, "", ""
        created = at + queued
        completed = created + timedelta(milliseconds=latency)
        result.append(Turn(at, created, completed, provider, model, tokens_in, tokens_out, cost,
                           ttft, latency, fallback, error, intent))  # fmt: skip
        think = min(600.0, rng.lognormvariate(math.log(35), 0.8)) + 3
        at = completed + timedelta(seconds=think)
    return result


def _weighted(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    return rng.choices(list(weights), weights=list(weights.values()), k=k)


def _pairs(rng: random.Random, conversations: int, messages: int) -> list[int]:
    """Question/answer pairs per conversation, 1 to 2 x the mean - 1, adding up exactly."""
    total = messages // 2
    mean = total / conversations
    top = max(1, round(2 * mean - 1))
    pairs = [rng.randint(1, top) for _ in range(conversations)]
    diff = sum(pairs) - total
    while diff:
        i = rng.randrange(conversations)
        if diff > 0 and pairs[i] > 1:
            step = min(diff, pairs[i] - 1, 3)
            pairs[i] -= step
            diff -= step
        elif diff < 0:
            step = min(-diff, 3)
            pairs[i] += step
            diff += step
    return pairs


def _later(rng: random.Random, after: datetime, now: datetime, mean_days: float) -> datetime:
    """A moment after `after`, about `mean_days` later, always before `now`."""
    room = max(1.0, (now - after).total_seconds() * 0.5)
    return after + timedelta(seconds=min(rng.expovariate(1 / (mean_days * 86400)), room))


def plan_build(args: argparse.Namespace, zone: Any, now: datetime) -> list[Plan]:
    from apps.conversations.models import Contact, Conversation, Message
    from apps.leads.models import Lead

    rng = random.Random(SEED)  # noqa: S311 - reproducible data, not secrets
    count = args.conversations
    today = now.astimezone(zone).date()
    day_weights = []
    for d in range(DAYS):
        day = today - timedelta(days=d)
        growth = 0.5 + (DAYS - d) / DAYS  # a year ago a third of today's traffic
        day_weights.append(growth * (0.55 if day.weekday() >= 5 else 1.0))
    days = rng.choices(range(DAYS), weights=day_weights, k=count)
    hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=count)
    starts = []
    for d, h in zip(days, hours, strict=True):
        local = datetime.combine(today - timedelta(days=d), clock(h), tzinfo=zone)
        start = local + timedelta(seconds=rng.uniform(0, 3600))
        while start > now - timedelta(hours=2):
            start -= timedelta(days=1)
        starts.append(start.astimezone(UTC))
    starts.sort()
    channels = _weighted(rng, CHANNELS, count)
    pages = _weighted(rng, PAGES, count)
    reasons = _weighted(rng, HANDOFF_REASONS, count)
    pairs = _pairs(rng, count, args.messages)
    conversation_id, contact_id = next_id(Conversation), next_id(Contact)
    message_id, lead_id = next_id(Message), next_id(Lead)
    plans = []
    for i in range(count):
        channel = channels[i]
        context: dict[str, Any] = {}
        if channel == "web":
            page = pages[i]
            url = SITE + page + ("?utm_source=google&utm_medium=cpc" if rng.random() < 0.2 else "")
            context = {"page": url, "title": f"Bench Shop · {page.strip('/') or 'Inicio'}",
                       "referrer": rng.choice(REFERRERS), "language": "es"}  # fmt: skip
        lead = None
        if i % 2 == 0 and i // 2 < args.leads:
            lead = _lead_plan(rng, lead_id + i // 2, i // 2, pairs[i])
        plans.append(
            Plan(
                index=i, id=conversation_id + i, contact_id=contact_id + i,
                first_message_id=message_id, channel=channel,
                session_id=f"{rng.getrandbits(64):016x}-{i}",
                language="es" if rng.random() < 0.8 else "en",
                context=context, start=starts[i], pairs=pairs[i],
                handoff_reason=reasons[i] if rng.random() < 0.07 else "", lead=lead,
            )
        )  # fmt: skip
        message_id += 2 * pairs[i]
    for plan in plans:
        _timeline(plan, rng, now)
    return plans


def _lead_plan(rng: random.Random, pk: int, n: int, pairs: int) -> LeadPlan:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}.{n}@example.com" if rng.random() < 0.7 else ""
    phone = f"+57 3{rng.randrange(10**8, 10**9)}" if rng.random() < 0.45 else ""
    reachable = bool(email or phone)
    qualified = reachable and rng.random() < 0.35
    path: list[str] = []
    if qualified:
        stage = _weighted(rng, {k: w for k, (w, _p) in QUALIFIED_PATHS.items()}, 1)[0]
        path = QUALIFIED_PATHS[stage][1]
        score = rng.randint(60, 100)
    else:
        score = rng.randint(10, 59) if reachable else rng.randint(0, 35)
    capture = min(1, pairs - 1) if reachable else None
    return LeadPlan(
        id=pk, name=f"{first} {last}", email=email, phone=phone,
        company=rng.choice(COMPANIES), score=score, tags=rng.sample(TAGS, rng.randrange(0, 3)),
        capture_turn=capture, qualify_turn=min(2, pairs - 1) if qualified else None, path=path,
        lost_unqualified=not qualified and rng.random() < 0.1,
    )  # fmt: skip


def _timeline(plan: Plan, rng: random.Random, now: datetime) -> None:
    """Fill in the conversation's times (moving it back if it would end in the future), its
    mode, handoff and lead milestones."""
    exchanges = turns(plan)
    overshoot = exchanges[-1].reply_completed - (now - timedelta(minutes=5))
    if overshoot > timedelta(0):
        plan.start -= overshoot
        exchanges = turns(plan)
    plan.last_at = exchanges[-1].reply_completed
    if plan.handoff_reason:
        plan.handoff_at = exchanges[-1].visitor_at + timedelta(milliseconds=5)
        age = now - plan.handoff_at
        if age < timedelta(days=2):
            plan.mode = "pending_human"
        elif age < timedelta(days=7):
            plan.mode = "human"
        else:
            plan.mode = "closed" if rng.random() < 0.8 else "bot"
    lead = plan.lead
    if lead is None:
        return
    if lead.capture_turn is not None:
        lead.captured_at = exchanges[lead.capture_turn].visitor_at + timedelta(milliseconds=2)
    at = plan.last_at
    if lead.qualify_turn is not None:
        lead.qualified_at = exchanges[lead.qualify_turn].visitor_at + timedelta(milliseconds=3)
        lead.stage, at = "qualified", max(at, lead.qualified_at)
        for new in lead.path:
            at = _later(rng, at, now, 2.0)
            lead.moves.append((lead.stage, new, at))
            lead.stage = new
    elif lead.lost_unqualified:
        at = _later(rng, at, now, 5.0)
        lead.moves.append(("new", "lost", at))
        lead.stage = "lost"


# --------------------------------------------------------------------------- seeding


def _ms(at: datetime, ms: int) -> datetime:
    return at + timedelta(milliseconds=ms)


def seed(args: argparse.Namespace, owner: Any) -> dict[str, Any]:
    """Seed the company (inside its schema); returns what the cases need."""
    import zoneinfo

    from django.db import connection
    from django.utils import timezone

    from apps.conversations.models import Contact, Conversation, Message
    from apps.leads.models import Lead, LeadEvent, Notification
    from apps.leads.services import _company_time_zone

    zone = zoneinfo.ZoneInfo(_company_time_zone())
    now = timezone.now()
    began = time.perf_counter()
    plans = plan_build(args, zone, now)
    print(f"planned {len(plans)} conversations in {time.perf_counter() - began:.1f} s")

    step = time.perf_counter()
    led = [p for p in plans if p.lead is not None]
    lead_rows = []
    for p in led:
        lead = p.lead
        assert lead is not None and p.last_at is not None
        sources = {"name": "model"} | ({"email": "extractor"} if lead.email else {})
        sources |= {"phone": "extractor"} if lead.phone else {}
        updated = max([p.last_at, *(at for _o, _n, at in lead.moves)])
        worked = lead.stage not in {"new", "qualified"}
        lead_rows.append((
            lead.id, lead.name, lead.email, lead.phone, lead.company, p.channel,
            p.context.get("page", ""), lead.stage, owner.pk if worked else None, lead.tags,
            lead.score, json.dumps(sources), lead.qualified_at, p.pairs, p.start,
            updated, p.last_at,
        ))  # fmt: skip
    extra = max(0, args.leads - len(lead_rows))  # more leads than conversations to join
    rng = random.Random(SEED + 1)  # noqa: S311 - reproducible data, not secrets
    first_extra = (led[-1].lead.id + 1) if led and led[-1].lead else next_id(Lead)
    for n in range(extra):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = now - timedelta(seconds=rng.uniform(3600, DAYS * 86400))
        lead_rows.append((
            first_extra + n, f"{first} {last}", f"{first.lower()}.{last.lower()}.x{n}@example.com",
            "", rng.choice(COMPANIES), "api", "", "new", None, [], rng.randint(0, 40), "{}", None,
            0, created, created, None,
        ))  # fmt: skip
    copy_rows(
        Lead,
        ["id", "name", "email", "phone", "company_name", "source_channel", "first_page", "stage",
         "owner_id", "tags", "score", "field_sources", "qualified_at", "visitor_messages",
         "created_at", "updated_at", "last_activity_at"],
        lead_rows,
    )  # fmt: skip
    del lead_rows
    copy_rows(
        Contact,
        ["id", "channel", "external_id", "lead_id", "created_at", "last_seen_at"],
        (
            (p.contact_id, p.channel, _external_id(p), p.lead.id if p.lead else None, p.start,
             p.last_at)
            for p in plans
        ),
    )  # fmt: skip
    copy_rows(
        Conversation,
        ["id", "contact_id", "channel", "session_id", "mode", "agent_id", "handoff_requested_at",
         "context", "language", "created_at", "updated_at", "last_message_at"],
        (
            (p.id, p.contact_id, p.channel, p.session_id, p.mode,
             owner.pk if p.mode == "human" else None, p.handoff_at, json.dumps(_context(p)),
             p.language, p.start, p.last_at, p.last_at)
            for p in plans
        ),
    )  # fmt: skip
    print(
        f"seeded {args.leads} leads, {len(plans)} contacts and conversations in "
        f"{time.perf_counter() - step:.1f} s"
    )

    step = time.perf_counter()
    messages = copy_rows(
        Message,
        ["id", "conversation_id", "channel", "role", "text", "status", "external_id",
         "reply_to_id", "provider", "model", "input_tokens", "output_tokens", "cost", "ttft_ms",
         "latency_ms", "fallback", "error", "intent", "created_at", "completed_at"],
        _message_rows(plans),
    )  # fmt: skip
    print(f"seeded {messages} messages in {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    history = copy_rows(
        LeadEvent,
        ["lead_id", "kind", "field", "old", "new", "source", "actor_id", "conversation_id",
         "data", "created_at"],
        _lead_event_rows(led, owner.pk),
    )  # fmt: skip
    notifications = copy_rows(
        Notification,
        ["user_id", "kind", "text", "url", "lead_id", "conversation_id", "created_at", "read_at"],
        _notification_rows(plans, owner.pk, now),
    )  # fmt: skip
    print(
        f"seeded {history} lead events, {notifications} notifications in "
        f"{time.perf_counter() - step:.1f} s"
    )

    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_event (seq bigint, kind varchar(64), conversation_id bigint, "
            "message_id bigint, channel varchar(16), data jsonb, created_at timestamptz)"
        )
        with cursor.copy("COPY bench_event FROM STDIN") as copy:
            for seq, row in enumerate(_event_rows(plans)):
                copy.write_row((seq, *row))
        # In time order, as the product writes them (ids follow commits).
        cursor.execute(
            "INSERT INTO analytics_event (kind, conversation_id, message_id, channel, data, "
            "created_at) SELECT kind, conversation_id, message_id, channel, data, created_at "
            "FROM bench_event ORDER BY created_at, seq"
        )
        events = cursor.rowcount
        cursor.execute("DROP TABLE bench_event")
    print(f"seeded {events} analytics events in {time.perf_counter() - step:.1f} s")
    sequence_reset(Lead, Contact, Conversation, Message)
    print(f"seeding took {time.perf_counter() - began:.1f} s in all")

    won = next((p for p in led if p.lead and p.lead.stage == "won"), led[0])
    assert won.lead is not None
    expected = _expected(plans, now)
    return {
        "plans": plans,
        "expected": expected,
        "events": events,
        "lead": won.lead.id,
        "conversation": won.id,
        "surname": won.lead.name.split()[-1].lower(),
        "today": now.astimezone(zone).date(),
    }


def _external_id(plan: Plan) -> str:
    if plan.channel == "whatsapp":
        return f"57{3000000000 + plan.index}"
    if plan.channel == "telegram":
        return str(700_000_000 + plan.index)
    return plan.session_id


def _context(plan: Plan) -> dict[str, Any]:
    if not plan.handoff_at:
        return plan.context
    handoff = {"requested_at": plan.handoff_at.isoformat(), "reason": plan.handoff_reason}
    return {**plan.context, "handoff": handoff}


def _message_rows(plans: list[Plan]) -> Iterator[tuple[Any, ...]]:
    for p in plans:
        pk = p.first_message_id
        external = p.channel in {"whatsapp", "telegram"}
        for j, t in enumerate(turns(p)):
            text = VISITOR_TEXTS[(p.index + j) % len(VISITOR_TEXTS)]
            if p.lead is not None and j == p.lead.capture_turn:
                text = f"Claro, soy {p.lead.name}: {p.lead.email or p.lead.phone}"
            yield (pk, p.id, p.channel, "visitor", text, "received",
                   f"{p.channel}.{pk}" if external else None, None, "", "", 0, 0, Decimal(0),
                   None, None, False, "", "", t.visitor_at, None)  # fmt: skip
            yield (pk + 1, p.id, p.channel, "assistant",
                   ASSISTANT_TEXTS[(p.index + j) % len(ASSISTANT_TEXTS)], "completed", None, pk,
                   t.provider, t.model, t.input_tokens, t.output_tokens, t.cost, t.ttft_ms,
                   t.latency_ms, t.fallback, t.error, t.intent, t.reply_created,
                   t.reply_completed)  # fmt: skip
            pk += 2


def _lead_event_rows(plans: list[Plan], owner_id: int) -> Iterator[tuple[Any, ...]]:
    for p in plans:
        lead = p.lead
        assert lead is not None
        yield (lead.id, "created", "", "", "", "", None, p.id, "{}", _ms(p.start, 1))
        yield (lead.id, "field", "name", "", lead.name, "model", None, p.id, "{}",
               _ms(p.start, 900))  # fmt: skip
        if lead.captured_at is not None:
            for name in ("email", "phone"):
                value = getattr(lead, name)
                if value:
                    yield (lead.id, "field", name, "", value, "extractor", None, p.id, "{}",
                           lead.captured_at)  # fmt: skip
        if lead.qualified_at is not None:
            at = lead.qualified_at
            yield (lead.id, "score", "", "0", str(lead.score), "", None, p.id, "{}", at)
            yield (lead.id, "qualified", "", "", str(lead.score), "", None, p.id, "{}", at)
            yield (lead.id, "stage", "stage", "new", "qualified", "", None, p.id, "{}", at)
        if p.handoff_at is not None:
            yield (lead.id, "handoff", "", "", "requested", "", None, p.id,
                   json.dumps({"reason": p.handoff_reason}), p.handoff_at)  # fmt: skip
        for old, new, at in lead.moves:
            yield (lead.id, "stage", "stage", old, new, "", owner_id, None, "{}", at)


def _notification_rows(
    plans: list[Plan], owner_id: int, now: datetime
) -> Iterator[tuple[Any, ...]]:
    def read(at: datetime) -> datetime | None:
        return at + timedelta(minutes=30) if at < now - timedelta(days=3) else None

    for p in plans:
        lead = p.lead
        if lead is not None and lead.qualified_at is not None:
            at = lead.qualified_at + timedelta(seconds=10)
            yield (owner_id, "lead.qualified",
                   f"Lead {lead.name} is qualified (score {lead.score}).",
                   f"/dashboard/leads/{lead.id}/", lead.id, None, at, read(at))  # fmt: skip
        if p.handoff_at is not None:
            at = p.handoff_at + timedelta(seconds=1)
            who = lead.name if lead is not None else "A visitor"
            yield (owner_id, "handoff", f"{who} asked to talk to a person.",
                   f"/dashboard/inbox/conversations/{p.id}/", None, p.id, at, read(at))  # fmt: skip


def _event_rows(plans: list[Plan]) -> Iterator[tuple[Any, ...]]:
    """The analytics events of the traffic, as apps.conversations.services (message_receive,
    reply_store, handoff_request) and apps.leads.services emit them."""
    for p in plans:
        lead, pk, channel = p.lead, p.first_message_id, p.channel
        for j, t in enumerate(turns(p)):
            kind = "conversation.started" if j == 0 else "message.received"
            yield (kind, p.id, pk, channel, "{}", t.visitor_at)
            if lead is not None:
                if j == 0:
                    data = {"lead_id": lead.id}
                    yield ("lead.created", p.id, None, channel, json.dumps(data),
                           _ms(t.visitor_at, 1))  # fmt: skip
                if j == lead.capture_turn:
                    data = {"lead_id": lead.id}
                    yield ("lead.captured", p.id, None, channel, json.dumps(data),
                           _ms(t.visitor_at, 2))  # fmt: skip
                if j == lead.qualify_turn:
                    data = {"lead_id": lead.id, "score": lead.score}
                    yield ("lead.qualified", p.id, None, "", json.dumps(data), _ms(t.visitor_at, 3))
            if p.handoff_at is not None and j == p.pairs - 1:
                data = {"reason": p.handoff_reason}
                yield ("handoff.requested", p.id, None, channel, json.dumps(data), p.handoff_at)
            reply = {
                "provider": t.provider, "model": t.model, "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens, "cost": str(t.cost), "ttft_ms": t.ttft_ms,
                "latency_ms": t.latency_ms, "fallback": t.fallback, "error": t.error,
                "refused": False,
            }  # fmt: skip
            yield ("reply.completed", p.id, pk + 1, channel, json.dumps(reply), t.reply_completed)
            pk += 2
        if lead is not None:
            for old, new, at in lead.moves:
                data = {"lead_id": lead.id, "old": old, "new": new}
                yield ("lead.stage", None, None, "", json.dumps(data), at)


def _expected(plans: list[Plan], now: datetime) -> dict[str, int]:
    """What the rollup must count over the whole log, from the plan."""
    leads = [p.lead for p in plans if p.lead is not None]
    moves = [new for lead in leads for _old, new, _at in lead.moves]
    return {
        "conversations": len(plans),
        "visitor_messages": sum(p.pairs for p in plans),
        "replies": sum(p.pairs for p in plans),
        "engaged": sum(1 for p in plans if p.pairs >= 2),
        "leads": sum(1 for lead in leads if lead.captured_at is not None),
        "qualified": sum(1 for lead in leads if lead.qualified_at is not None),
        "meetings": moves.count("meeting_booked"),
        "won": moves.count("won"),
        "handoffs": sum(1 for p in plans if p.handoff_at is not None),
        "first_responses": len(plans),
    }


def extras_seed(plans: list[Plan], owner: Any) -> tuple[int, int]:
    """Two flows versions, and a running A/B test of the welcome with ASSIGNMENTS
    conversations (the latest), about half on each variant. Returns the test's id and its
    number of assignments."""
    from django.db import connection

    from apps.dashboard.flows import EXAMPLE
    from apps.experiments.models import Assignment, Experiment
    from apps.experiments.services import experiment_create, experiment_start
    from apps.flows.services import flow_version_save

    flow_version_save(source=EXAMPLE, author=None)
    flow_version_save(source=FLOWS, author=owner, note="Bench Shop")
    experiment = experiment_create(
        name="Bienvenida con descuento", target=Experiment.Target.WELCOME,
        metric=Experiment.Metric.QUALIFIED, texts=[(WELCOME_A, 50), (WELCOME_B, 50)],
        author=owner,
    )  # fmt: skip
    experiment = experiment_start(experiment=experiment)
    variants = list(experiment.variants.order_by("key").values_list("pk", flat=True))
    rng = random.Random(SEED + 2)  # noqa: S311 - reproducible data, not secrets
    chosen = plans[-ASSIGNMENTS:]
    copy_rows(
        Assignment,
        ["experiment_id", "variant_id", "channel", "session_id", "conversation_id", "created_at"],
        ((experiment.pk, rng.choice(variants), p.channel, p.session_id, p.id, p.start)
         for p in chosen),
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE experiments_experiment SET started_at = %s, created_at = %s WHERE id = %s",
            [chosen[0].start - timedelta(minutes=5), chosen[0].start - timedelta(days=1),
             experiment.pk],
        )  # fmt: skip
    return experiment.pk, len(chosen)


def rollup_time(expected: dict[str, int], events: int) -> None:
    from django.db.models import Sum

    from apps.analytics.models import HourlyStat
    from apps.analytics.rollup import rollup_run

    began = time.perf_counter()
    counted = rollup_run(lag=timedelta(0), max_batches=10**6)
    elapsed = time.perf_counter() - began
    print(
        f"rollup: {counted} events in {elapsed:.1f} s, {counted / elapsed:,.0f} events/s "
        f"(of {events} written)"
    )
    totals = HourlyStat.objects.aggregate(**{name: Sum(name) for name in expected})
    wrong = {k: (totals[k], v) for k, v in expected.items() if (totals[k] or 0) != v}
    if wrong:
        print(f"  ROLLUP MISMATCH (counted, seeded): {wrong}")
    else:
        print("  rollup totals match the seeded data: " + ", ".join(
            f"{k} {v}" for k, v in expected.items()))  # fmt: skip


def vacuum() -> None:
    """Statistics and visibility maps as autovacuum would have left them in production."""
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"VACUUM ANALYZE in {time.perf_counter() - began:.1f} s")


# --------------------------------------------------------------------------- measuring


def profile(client: Any, url: str, company: Any, *, explain: bool, top: int = 3) -> None:
    """The slowest queries of one request (and their plans with --explain)."""
    from django.db import connection, reset_queries
    from django_tenants.utils import tenant_context

    reset_queries()
    began = time.perf_counter()
    client.get(url)
    total = (time.perf_counter() - began) * 1000
    queries = [(float(q["time"]) * 1000, q["sql"]) for q in connection.queries]
    sql = sum(ms for ms, _ in queries)
    print(f"\n{url}: {total:.1f} ms, {len(queries)} queries, {sql:.1f} ms in SQL")
    for ms, text in sorted(queries, reverse=True)[:top]:
        print(f"  {ms:8.1f} ms  {text[:400]}")
        if explain and text.lstrip().upper().startswith("SELECT"):
            with tenant_context(company), connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {text}")
                for (line,) in cursor.fetchall():
                    print(f"      {line}")


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django_tenants.utils import schema_context, tenant_context

    from apps.api.services import api_key_create

    company, owner = bench_company("Bench Analytics", "bench-analytics")
    try:
        with tenant_context(company):
            ids = seed(args, owner)
            ids["experiment"], ids["assignments"] = extras_seed(ids["plans"], owner)
            rollup_time(ids.pop("expected"), ids["events"])
            del ids["plans"]
            vacuum()
        key = api_key_create(company=company, name="Bench", scopes=["read"]).key
        manager = logged_in_client(company, owner)
        api = Client(HTTP_HOST=settings.ROOT_DOMAIN, HTTP_AUTHORIZATION=f"Bearer {key}")
        today: date = ids["today"]
        year = f"from={(today - timedelta(days=DAYS)).isoformat()}&to={today.isoformat()}"
        cases: list[tuple[str, Any, str]] = [
            ("analytics, 30 days (default)", manager, "/dashboard/analytics/"),
            ("analytics, a year", manager, f"/dashboard/analytics/?{year}"),
            ("analytics, 30 days, whatsapp", manager, "/dashboard/analytics/?channel=whatsapp"),
            ("analytics CSV export, a year", manager, f"/dashboard/analytics/export.csv?{year}"),
            ("GET /v1/analytics, 30 days", api, "/v1/analytics"),
            ("GET /v1/analytics, a year", api, f"/v1/analytics?{year}"),
            ("home", manager, "/dashboard/"),
            ("leads list", manager, "/dashboard/leads/"),
            (f"leads, searched (q={ids['surname']})", manager,
             f"/dashboard/leads/?q={ids['surname']}"),
            ("lead page", manager, f"/dashboard/leads/{ids['lead']}/"),
            ("inbox queue", manager, "/dashboard/inbox/"),
            ("notifications", manager, "/dashboard/notifications/"),
            ("flows", manager, "/dashboard/flows/"),
            ("A/B tests", manager, "/dashboard/experiments/"),
            (f"A/B test ({ids['assignments']} assignments)", manager,
             f"/dashboard/experiments/{ids['experiment']}/"),
            ("GET /v1/leads", api, "/v1/leads"),
            ("GET /v1/conversations", api, "/v1/conversations"),
            ("GET /v1/conversations/<id>", api, f"/v1/conversations/{ids['conversation']}"),
        ]  # fmt: skip
        limits = {"API_RATE_LIMIT_PER_KEY": 10**6, "API_RATE_LIMIT_PER_IP": 10**6}
        with override_settings(**limits):
            figures = api.get(f"/v1/analytics?{year}").json()
        read = (figures["totals"]["conversations"], figures["unique_visitors"])
        verdict = "as seeded" if read == (args.conversations,) * 2 else "NOT AS SEEDED"
        print(f"GET /v1/analytics for the year: {read[0]} conversations, {read[1]} unique "
              f"visitors ({verdict})")  # fmt: skip
        print("load average before measuring: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        rows = []
        with override_settings(DEBUG=True, **limits):
            for label, client, url in cases:
                measure(client, url, 1)  # warm-up, not counted
                times, queries = measure(client, url, args.runs)
                rows.append((label, url, client, statistics.median(times),
                             percentile(times, 0.95), max(times), queries, len(times)))  # fmt: skip
            slow = [row for row in rows if row[4] > TARGET_P95_MS]
            if slow:
                print("\nThe slowest queries of the cases above the target:")
            for _label, url, client, *_rest in slow:
                profile(client, url, company, explain=args.explain)
        print()
        print("load average after measuring: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print(
            f"Analytics and dashboard, {args.conversations} conversations, {args.messages} "
            f"messages, {args.leads} leads; milliseconds per request (test client):"
        )
        print(f"| {'case':<38} | {'p50':>8} | {'p95':>8} | {'max':>8} | queries | runs |")
        print(f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|{'-' * 10}|---------|------|")
        for label, _url, _client, p50, p95, worst, queries, n in rows:
            print(f"| {label:<38} | {p50:8.1f} | {p95:8.1f} | {worst:8.1f} | {queries:7d} | "
                  f"{n:4d} |")  # fmt: skip
        if slow:
            names = ", ".join(f"{row[0]} ({row[4]:.0f} ms)" for row in slow)
            print(f"\nAbove the target p95 <= {TARGET_P95_MS:.0f} ms: {names}")
        else:
            print(f"\nEvery case is within the target p95 <= {TARGET_P95_MS:.0f} ms.")
    finally:
        if not args.keep_database:
            with schema_context(settings.PUBLIC_SCHEMA_NAME):
                company.delete(force_drop=True)
        connection.close()


def main(argv: list[str]) -> int:
    return in_scratch_database(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
