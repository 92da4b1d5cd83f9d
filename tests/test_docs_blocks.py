"""Every complete program in the documentation site runs (issue 13).

A ```python block of a page in mkdocs.yml's nav is a complete program when it
imports gofer and is not a REPL session (``>>>``); each one runs in a fresh
interpreter and must exit 0. A block that imports gofer but cannot run here
(a server that runs until stopped, a snippet of a bigger program, a name to
fill in) is marked on the line before its fence with::

    <!-- docs-test: skip (why) -->

which renders as nothing. Blocks of pages this helper does not own whose
markers are still to be added are listed in SKIP below, each with a text the block contains and the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<ind>[ ]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=ind)```[ ]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*docs-test:\s*skip\b[^>]*-->\s*$")

# (page, text the block contains, why it does not run as a test).
SKIP = [
    ("net.md", 'net.serve("127.0.0.1:8000", handle)', "a server that runs until stopped"),
    ("net.md", '"example.com", 80', "fetches from the internet"),
    ("net.md", "for conn in listener:", "a server that runs until stopped"),
    ("net.md", '"example.com:443"', "fetches from the internet"),
    ("http.md", "gofer.run(http.serve, hello", "a server that runs until stopped"),
    ("http.md", '"https://example.org/"', "fetches from the internet"),
    ("interop.md", '"http://127.0.0.1:8000/', "needs a server on port 8000"),
    ("testing.md", "from gofer.testing import VirtualClock, run", "a test body (its names come from the page)"),
    ("testing.md", "from gofer.testing.services import start_redis", "needs redis-server (tests/test_db_redis.py runs it)"),
    ("kernel.md", "<register me somewhere>", "a sketch with elisions"),
]


def _skip_reason(page: str, body: str) -> str | None:
    return next((why for p, needle, why in SKIP if p == page and needle in body), None)


def _pages() -> list[Path]:
    text = (ROOT / "mkdocs.yml").read_text()
    return [DOCS / m for m in re.findall(r":\s*([\w/.-]+\.md)\s*$", text, re.M)]


def blocks() -> list[tuple[str, int, str, str | None]]:
    """(page, index, code, why it is skipped or None) for every program block."""
    out = []
    for page in _pages():
        text = page.read_text()
        rel = str(page.relative_to(DOCS))
        for i, m in enumerate(FENCE.finditer(text)):
            if m["lang"] not in ("python", "py"):
                continue
            body = m["body"]
            if ">>>" in body or not re.search(r"^\s*(import gofer|from gofer)", body, re.M):
                continue  # a REPL session or a fragment: not a program
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            why = "marked" if MARK.search(before) else _skip_reason(rel, body)
            out.append((rel, i, body, why))
    return out


BLOCKS = blocks()


def test_the_site_has_programs() -> None:
    assert sum(1 for *_, why in BLOCKS if why is None) >= 10


@pytest.mark.parametrize(("page", "index", "code", "why"), BLOCKS, ids=[f"{b[0]}#{b[1]}" for b in BLOCKS])
def test_block_runs(page: str, index: int, code: str, why: str | None, tmp_path: Path) -> None:
    if why is not None:
        pytest.skip(why)
    script = tmp_path / f"block_{index}.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{page} block {index} failed:\n{code}\n--- stderr ---\n{p.stderr[-3000:]}"
