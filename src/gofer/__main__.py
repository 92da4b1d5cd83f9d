"""The ``gofer`` command: ``gofer bench`` (benchmarks) and, later, ``gofer serve``."""

from __future__ import annotations

import sys

USAGE = """usage: gofer COMMAND [ARGS]

commands:
  bench    run the benchmark suites side by side with the peers (gofer bench --help)
  serve    serve a WSGI application or native HTTP handler (gofer serve --help)
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd == "bench":
        from gofer.bench.runner import main as bench_main

        return bench_main(rest)
    if cmd == "serve":
        from gofer.http.cli import main as serve_main

        return serve_main(rest)
    print(f"gofer: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
