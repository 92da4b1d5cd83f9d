"""The ``gofer`` command: ``gofer serve``, and ``gofer bench`` from a checkout.

The benchmarks are not part of the installed package: they live in the
repository's top-level ``bench/`` package (``python -m bench``).
``gofer bench`` finds that checkout -- the one this ``gofer`` was imported
from (an editable install, ``PYTHONPATH=src``), else the current directory
-- and hands over to its runner; without one it says how to get it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

USAGE = """usage: gofer COMMAND [ARGS]

commands:
  bench    run the benchmark suites side by side with the peers, from a gofer checkout
           (the same as python -m bench there; gofer bench --help)
  serve    serve a WSGI application or native HTTP handler (gofer serve --help)
"""

NO_BENCH = """gofer bench: no benchmarks here. They are not part of the installed package:
gofer bench runs from a gofer checkout, with gofer installed from it in editable
mode, or from the checkout's top directory:
    git clone <the gofer repository> gofer && cd gofer
    python3 -m venv .venv && .venv/bin/pip install -e '.[bench,http]'
    .venv/bin/python -m bench --quick      (or: .venv/bin/gofer bench --quick)
"""


def bench_checkout(start: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The checkout holding ``bench/``: above this ``gofer`` (``src/gofer``), or ``cwd``; None if neither."""
    here = (start or Path(__file__)).resolve().parent  # .../src/gofer
    for root in (here.parent.parent, cwd or Path.cwd()):
        if (root / "bench" / "runner.py").is_file() and (root / "src" / "gofer").is_dir():
            return root
    return None


def _bench(args: list[str]) -> int:
    root = bench_checkout()
    if root is None:
        print(NO_BENCH, file=sys.stderr, end="")
        return 2
    sys.path.insert(0, str(root))
    # Imported by name at run time: bench/ sits outside the package, which never imports it.
    runner = importlib.import_module("bench.runner")
    code: int = runner.main(args, prog="gofer bench")
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd == "bench":
        return _bench(rest)
    if cmd == "serve":
        from gofer.http.cli import main as serve_main

        return serve_main(rest)
    print(f"gofer: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
