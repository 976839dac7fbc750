"""Benchmark: how well and how fast `apps.leads.extraction.extract` reads lead data.

Loads the labelled chat messages of `tests/leads/fixtures/extraction_labelled.json` (Spanish
and English, with the region and the expected fields of each; `split` says whether the rules
were tuned on a message, "dev", or it was written afterwards and never tuned on, "holdout"),
runs `extract` on every one with `today` = 2026-11-25 (the day the labels were written for) and
prints, per field (email, phone, budget, timeline, name, role, company):

* precision: of the values extracted, the share equal to the label;
* recall:    of the labelled values, the share extracted exactly;
* F1 and support (how many messages have that field labelled).

A value counts as a true positive only when it is exactly equal to the label (budget: amount
AND currency; timeline: date AND precision); a wrong value is both a false positive and a false
negative. Then the micro-averages over all fields, the same table for each split, and the time
`extract` takes per message (mean and p95 over every message of the set, repeated
--repetitions times, and over a 500-character message).

No Django set-up, database or network is needed. Run from the repository root:

    .venv/bin/python bench/lead_extraction.py
    .venv/bin/python bench/lead_extraction.py --errors          # also list every mismatch
    .venv/bin/python bench/lead_extraction.py --repetitions 200 --fixture other.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.leads.extraction import Extraction, extract  # noqa: E402

FIXTURE = ROOT / "tests" / "leads" / "fixtures" / "extraction_labelled.json"
TODAY = date(2026, 11, 25)
FIELDS = ("email", "phone", "budget", "timeline", "name", "role", "company")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Field-level precision/recall of the lead extractors, and their speed."
    )
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="labelled set (JSON)")
    parser.add_argument(
        "--repetitions", type=int, default=50, help="timing passes over the whole set"
    )
    parser.add_argument("--errors", action="store_true", help="list every mismatch")
    return parser.parse_args(argv)


def observed(extraction: Extraction, field: str) -> Any:
    """The extracted value of `field` in the labels' shape; None when nothing was found."""
    if field == "budget":
        budget = extraction.budget
        return None if budget is None else (budget.amount, budget.currency)
    if field == "timeline":
        timeline = extraction.timeline
        if timeline is None:
            return None
        return (timeline.date.isoformat() if timeline.date else None, timeline.precision)
    return getattr(extraction, field) or None


def labelled(expected: dict[str, Any], field: str) -> Any:
    value = expected.get(field)
    if field == "budget":
        return None if value is None else (Decimal(value["amount"]), value["currency"])
    if field == "timeline":
        return None if value is None else (value["date"], value["precision"])
    return value or None


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    support: int = 0

    def add(self, got: Any, want: Any) -> None:
        self.support += want is not None
        if got is not None and got == want:
            self.tp += 1
            return
        self.fp += got is not None
        self.fn += want is not None

    def scores(self) -> tuple[float, float, float]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def evaluate(items: list[dict[str, Any]], show_errors: bool) -> dict[str, Counts]:
    counts = {field: Counts() for field in FIELDS}
    for number, item in enumerate(items):
        extraction = extract(item["text"], today=TODAY, default_region=item["region"])
        for field in FIELDS:
            got, want = observed(extraction, field), labelled(item["expected"], field)
            counts[field].add(got, want)
            if show_errors and got != want:
                print(f"  #{number} {field}: got {got!r}, expected {want!r}")
                print(f"      {item['text']!r} [{item['region'] or '-'}]")
    return counts


def timings_ms(items: list[dict[str, Any]], repetitions: int) -> list[float]:
    samples: list[float] = []
    for _ in range(repetitions):
        for item in items:
            started = time.perf_counter()
            extract(item["text"], today=TODAY, default_region=item["region"])
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def print_table(title: str, counts: dict[str, Counts]) -> None:
    print()
    print(f"{title}:")
    print(f"| {'field':<9} | precision | recall |    F1 | support |  tp |  fp |  fn |")
    print(f"|{'-' * 11}|-----------|--------|-------|---------|-----|-----|-----|")
    total = Counts()
    for field, c in counts.items():
        precision, recall, f1 = c.scores()
        print(
            f"| {field:<9} | {precision:9.3f} | {recall:6.3f} | {f1:5.3f} | {c.support:7d} "
            f"| {c.tp:3d} | {c.fp:3d} | {c.fn:3d} |"
        )
        total.tp, total.fp, total.fn = total.tp + c.tp, total.fp + c.fp, total.fn + c.fn
        total.support += c.support
    precision, recall, f1 = total.scores()
    print(
        f"| {'micro':<9} | {precision:9.3f} | {recall:6.3f} | {f1:5.3f} | {total.support:7d} "
        f"| {total.tp:3d} | {total.fp:3d} | {total.fn:3d} |"
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    items = json.loads(args.fixture.read_text(encoding="utf-8"))
    languages = {lang: sum(i["language"] == lang for i in items) for lang in ("es", "en")}
    print(
        f"{len(items)} labelled messages ({languages['es']} es, {languages['en']} en), "
        f"today = {TODAY.isoformat()}"
    )
    if args.errors:
        print("mismatches:")
    print_table("all messages", evaluate(items, args.errors))
    splits = sorted({item.get("split", "") for item in items} - {""})
    for split in splits:
        subset = [item for item in items if item.get("split") == split]
        print_table(f"split {split!r} ({len(subset)} messages)", evaluate(subset, False))

    extract("warm-up 55 1234 5678", today=TODAY, default_region="MX")
    samples = timings_ms(items, args.repetitions)
    longest = max(len(i["text"]) for i in items)
    print()
    print(
        f"time per message over {len(samples)} calls ({args.repetitions} passes; messages of "
        f"{min(len(i['text']) for i in items)}-{longest} characters): "
        f"mean {statistics.fmean(samples):.3f} ms, median {statistics.median(samples):.3f} ms, "
        f"p95 {p95(samples):.3f} ms, max {max(samples):.3f} ms"
    )
    long_text = " ".join(i["text"] for i in items)[:500]
    long_samples: list[float] = []
    for _ in range(args.repetitions):
        started = time.perf_counter()
        extract(long_text, today=TODAY, default_region="MX")
        long_samples.append((time.perf_counter() - started) * 1000)
    print(
        f"a 500-character message (the set's texts run together), {args.repetitions} calls: "
        f"mean {statistics.fmean(long_samples):.3f} ms, "
        f"median {statistics.median(long_samples):.3f} ms, p95 {p95(long_samples):.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
