"""Benchmark: what one visitor message costs the pipeline's Python, stage by stage, in process.

The widget benchmark (bench/widget_ws.py) measures the whole product over real websockets, but
its CPU figures move by a quarter from one run to the next on a shared virtual machine, more
than most changes to the pipeline. This one runs the pipeline's three stages for each visitor
message in one thread, against the fake OpenAI-compatible upstream (tests.fakes.openai_server,
no latency), and counts, per message and stage:

* receive: `message_receive` as the widget calls it (contact, conversation, message, event);
* reply:   `reply_generate`, the worker's reply task (lead reading by rules, hooks, prompt,
           the streamed model call, the stored reply; the channel layer's publishes included);
* reading: `lead_model_extract`, the model's reading of the lead once the conversation pauses;

the SQL statements run (exact, the same every run) and the CPU time of this thread (the fake
upstream runs in another thread and is not counted), as the median over the messages. A last
row, "reply to first token", counts the part of the reply task before its first delta is
published (what the worker adds to the visitor's time to the first token).

Side by side with a baseline in one run: `--baseline REF` checks REF out into a temporary git
worktree and runs the same measurement on that code and on this checkout alternately, each
`--repeat` times (3) in its own process and scratch database; the table shows both and the
difference. Each conversation (`--conversations`, 40) has four visitor messages, so the first
message of a conversation (which creates the contact, conversation and lead) is a quarter of
them. Django runs with DEBUG off (production's query path; secrets generated for the run).

It never touches your data: each run creates and drops a scratch database
(`chapi_bench_reply`) on DATABASE_URL's server; without DATABASE_URL / REDIS_URL it starts (and
afterwards releases) the embedded PostgreSQL / Redis. Run from the repository root:

    .venv/bin/python bench/reply_path.py --baseline 10826ac
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/reply_path.py --baseline HEAD~3

Options: --conversations N, --baseline REF, --repeat K, --database NAME, --show-sql (print the
statements of each run's last message, stage by stage).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
STAGES = ("receive", "reply", "reading")
# Part of the reply stage: from the task's start to the first delta published to the visitor
# (what the worker adds to the time to the first token).
FIRST = "reply to first token"
MESSAGES = (
    "Hola, busco un seguro de auto para los vehículos de mi empresa",
    "Somos 20 personas y tenemos un presupuesto de 5000 USD al mes",
    "Me llamo Ana Pérez, soy gerente de compras en Acme Logística",
    "¿Pueden llamarme mañana por la tarde? Mi correo es ana{n}@acme.example",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=40, help="four messages each")
    parser.add_argument("--baseline", default="", help="git ref to compare with, side by side")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each code, alternated")
    parser.add_argument("--database", default="chapi_bench_reply", help="scratch database")
    parser.add_argument(
        "--show-sql", action="store_true", help="print the statements of the last message"
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)  # code dir of one run
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- one run (child)


def measure(args: argparse.Namespace) -> None:
    """In the child process: the code under measurement is first on sys.path."""
    import django

    django.setup()

    from django.db import connection
    from django.test.utils import override_settings
    from django_tenants.utils import tenant_context

    from apps.assistants.models import Provider
    from apps.assistants.services import assistant_profile_get
    from apps.conversations.models import Channel
    from apps.conversations.realtime import Publisher
    from apps.conversations.services import message_receive, reply_generate
    from apps.leads.extract_model import lead_model_extract
    from bench.inbox import bench_company
    from tests.fakes.openai_server import FakeOpenAI

    company, _owner = bench_company("Bench Reply", "bench-reply")
    fake = FakeOpenAI()
    fake.start()
    statements = [0]
    shown: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        shown.append(sql)
        return execute(sql, params, many, context)

    costs: dict[str, list[tuple[int, float]]] = {stage: [] for stage in (*STAGES, FIRST)}
    began_at = [0.0]
    first: list[tuple[int, float]] = []
    publish = Publisher._send

    async def send(self: Publisher, event: dict[str, Any], *, final: bool = False) -> None:
        if not first and event["type"] == "reply.delta":
            first.append((statements[0], (time.thread_time() - began_at[0]) * 1000))
            shown.append("-- the first delta is published here --")
        await publish(self, event, final=final)

    Publisher._send = send  # type: ignore[method-assign]

    last: dict[str, list[str]] = {}

    def stage(name: str, run: Any) -> Any:
        statements[0] = 0
        shown.clear()
        first.clear()
        began = began_at[0] = time.thread_time()
        result = run()
        costs[name].append((statements[0], (time.thread_time() - began) * 1000))
        if name == "reply" and first:
            costs[FIRST].append(first[0])
        last[name] = list(shown)
        return result

    try:
        with tenant_context(company), override_settings(LEAD_MODEL_READING_DELAY_SECONDS=0):
            profile = assistant_profile_get()
            profile.provider = Provider.AUTO
            profile.api_base_url = fake.base_url
            profile.api_key = "sk-bench-" + "0" * 40
            profile.save()
            # One unmeasured conversation: imports, connections and the SDK's client.
            for n, text in enumerate(MESSAGES):
                received = message_receive(channel=Channel.WEB, session_id="warm-up",
                                           text=text.format(n=0), external_id=f"warm-up:{n}",
                                           generate=False, caller_replies=True)  # fmt: skip
                reply_generate(message_id=received.message.pk)
                lead_model_extract(message_id=received.message.pk)
            with connection.execute_wrapper(count):
                for c in range(args.conversations):
                    session = f"bench-{c:04d}"
                    for n, text in enumerate(MESSAGES):
                        received = stage("receive", lambda s=session, n=n, t=text, c=c: (
                            message_receive(channel=Channel.WEB, session_id=s,
                                            text=t.format(n=c), external_id=f"{s}:{n}",
                                            generate=False, caller_replies=True)))  # fmt: skip
                        message_id = received.message.pk
                        stage("reply", lambda m=message_id: reply_generate(message_id=m))
                        stage("reading", lambda m=message_id: lead_model_extract(message_id=m))
    finally:
        fake.stop()
        connection.close()
    result = {
        name: {
            "queries": statistics.median(q for q, _ in values),
            "queries_first": values[0][0],
            "cpu_ms": statistics.median(ms for _, ms in values),
        }
        for name, values in costs.items()
    }
    if args.show_sql:
        for name, sqls in last.items():
            for sql in sqls:
                print(f"SQL {name:<8} {sql[:150]}")
    print("RESULT " + json.dumps(result))


def child_main(args: argparse.Namespace) -> int:
    code = Path(args.child)
    sys.path.insert(0, str(code))
    os.chdir(code)
    from bench.company_create import in_scratch_database

    return in_scratch_database(args, measure)


# --------------------------------------------------------------------------- runs (parent)


def production_env() -> dict[str, str]:
    """DEBUG off, as in production: the secrets it insists on, made up for this run."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "JWT_SECRET": secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SECURE_SSL_REDIRECT": "false",
        "DJANGO_SETTINGS_MODULE": "chapi.settings",
        "PYTHONUNBUFFERED": "1",
    }


def one_run(code: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(code),
               "--conversations", str(args.conversations), "--database", args.database,
               *(["--show-sql"] if args.show_sql else [])]  # fmt: skip
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("SQL "):
            print(f"  {line}")
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"the run on {code} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=HERE, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def table(results: dict[str, list[dict[str, Any]]], n: int) -> None:
    names = list(results)
    print(f"\nPer visitor message, median over {n} messages per run; CPU: this thread, ms, the "
          "median of the runs [their range]; SQL: statements (a conversation's first message "
          "in parentheses):")  # fmt: skip
    header = f"{'stage':<22}" + "".join(f"{name:>40}" for name in names)
    if len(names) == 2:
        header += f"{'difference':>26}"
    print(header)
    totals: dict[str, list[float]] = {name: [0.0] * len(results[name]) for name in names}
    for stage_name in (*STAGES, "total", FIRST):
        row = f"{stage_name:<22}"
        medians = []
        for name in names:
            runs = results[name]
            if stage_name == "total":
                cpu = totals[name]
                queries = sum(runs[0][s]["queries"] for s in STAGES)
                first = sum(runs[0][s]["queries_first"] for s in STAGES)
            else:
                cpu = [run[stage_name]["cpu_ms"] for run in runs]
                for i, value in enumerate(cpu):
                    totals[name][i] += value
                queries = runs[0][stage_name]["queries"]
                first = runs[0][stage_name]["queries_first"]
            median = statistics.median(cpu)
            medians.append((median, queries))
            cell = f"{median:6.2f} [{min(cpu):.2f}-{max(cpu):.2f}] ms, {queries:g} ({first}) SQL"
            row += f"{cell:>40}"
        if len(names) == 2:
            (cpu_a, q_a), (cpu_b, q_b) = medians
            change = (cpu_b - cpu_a) / cpu_a * 100 if cpu_a else 0.0
            row += f"{f'{change:+.0f}% CPU, {q_b - q_a:+g} SQL':>26}"
        print(row)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    from bench.chat_api import scratch_run  # noqa: F401 - same servers' handling below
    from chapi import embedded

    env = dict(os.environ, **production_env())
    releases = []
    worktree = None
    try:
        if not env.get("DATABASE_URL"):
            releases.append(embedded.release_postgres)
            env["DATABASE_URL"] = embedded.start_postgres()
        if not env.get("REDIS_URL"):
            releases.append(embedded.release_redis)
            env["REDIS_URL"] = embedded.start_redis()
        codes = {f"this checkout ({git('rev-parse', '--short', 'HEAD')})": HERE}
        if args.baseline:
            worktree = Path(tempfile.mkdtemp(prefix="chapi-bench-baseline-"))
            git("worktree", "add", "--detach", "--force", str(worktree), args.baseline)
            # The baseline's code with this checkout's virtualenv.
            (worktree / ".venv").symlink_to(HERE / ".venv")
            label = f"baseline ({git('rev-parse', '--short', args.baseline)})"
            codes = {label: worktree, **codes}
        print(f"code: {', '.join(codes)}; {args.conversations} conversations of "
              f"{len(MESSAGES)} messages per run, {args.repeat} runs each, alternated")  # fmt: skip
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
        for i in range(args.repeat):
            for name, code in codes.items():
                results[name].append(one_run(code, args, env))
                print(f"  run {i + 1} of {name}: done")
        table(results, args.conversations * len(MESSAGES))
    finally:
        if worktree is not None:
            git("worktree", "remove", "--force", str(worktree))
        for release in releases:
            release()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main(sys.argv[1:]))
