"""The web widget's budget and safety rules (docs/widget.md, Engineering).

The widget is hand-written JavaScript with no build step: these checks read the files as they
are served. Sizes are gzip level 9, what a browser downloads from a compressing server.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"
LOADER = STATIC / "chapi-widget.js"
APP = STATIC / "chapi-widget-app.js"
FILES = [LOADER, APP]

LOADER_MAX = 6 * 1024
TOTAL_MAX = 35 * 1024

# Ways to turn a string into markup or code. The widget builds every node with createElement
# and textContent, so none of these may appear, not even in a comment.
FORBIDDEN = {
    "innerHTML": re.compile(r"innerHTML"),
    "outerHTML": re.compile(r"outerHTML"),
    "insertAdjacentHTML": re.compile(r"insertAdjacentHTML"),
    "eval(": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\b"),
    "document.write": re.compile(r"document\s*\.\s*write"),
    "a style attribute (blocked by a strict CSP)": re.compile(r"setAttribute\(\s*['\"]style"),
}
# `window.X = …`, `globalThis.X.y = …`, `self.X = …` (not `==` / `===`).
GLOBAL_ASSIGNMENT = re.compile(
    r"\b(?:window|globalThis|self)\s*\.\s*([A-Za-z_$][\w$]*)[\w$.]*\s*=(?!=)"
)
LEADING_COMMENT = re.compile(r"\A\s*/\*.*?\*/\s*", re.DOTALL)


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def test_the_loader_is_at_most_6_kb_gzipped() -> None:
    size = gzipped_size(LOADER)
    assert size <= LOADER_MAX, f"{LOADER.name} is {size} bytes gzipped; the budget is {LOADER_MAX}"


def test_the_whole_widget_is_at_most_35_kb_gzipped() -> None:
    sizes = {path.name: gzipped_size(path) for path in FILES}
    total = sum(sizes.values())
    assert total <= TOTAL_MAX, f"the widget is {total} bytes gzipped {sizes}; budget {TOTAL_MAX}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_nothing_becomes_markup_or_code(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN.items() if pattern.search(source)]
    assert found == [], f"{path.name} uses {found}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_only_global_is_chapi_assistant(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assigned = set(GLOBAL_ASSIGNMENT.findall(source))
    assert assigned <= {"ChapiAssistant"}, f"{path.name} assigns globals {sorted(assigned)}"
    # Everything else is local: the code is one strict-mode arrow function called at once, so
    # a top-level declaration or a stray assignment cannot create a global either.
    code = LEADING_COMMENT.sub("", source, count=1).strip()
    assert code.startswith("(() => {\n  'use strict';"), f"{path.name} is not wrapped"
    assert code.endswith("})();"), f"{path.name} is not wrapped"


def test_the_loader_defines_chapi_assistant_and_the_app_registers_on_it() -> None:
    assert GLOBAL_ASSIGNMENT.findall(LOADER.read_text(encoding="utf-8")) == ["ChapiAssistant"]
    app = APP.read_text(encoding="utf-8")
    assert GLOBAL_ASSIGNMENT.findall(app) == []
    assert "C._app = " in app
