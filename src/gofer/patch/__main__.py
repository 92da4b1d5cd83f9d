"""``python -m gofer.patch``: run a script patched, or CPython's tests under patch.

``python -m gofer.patch script.py [args]`` (or ``-m module [args]``) calls
``gofer.patch()`` first, then runs the script as ``__main__`` inside
``gofer.run``, like ``python -m gevent.monkey``: its blocking calls park only
the coroutine that makes them, and it may start coroutines with
``gofer.go``. ``--no AREA`` (repeatable) leaves an area unpatched.

``python -m gofer.patch --stdlib-tests [options] [modules]`` runs modules of
CPython's own test suite unpatched and patched and compares them (see
``gofer.patch._stdlib``).
"""

from __future__ import annotations

import os
import runpy
import sys

USAGE = """usage: python -m gofer.patch [--no AREA]... script.py [args...]
       python -m gofer.patch [--no AREA]... -m module [args...]
       python -m gofer.patch --stdlib-tests [--help] [modules...]"""


def main(argv: list[str]) -> int:
    if argv[:1] == ["--stdlib-tests"]:
        from gofer.patch._stdlib import main as stdlib_main

        return int(stdlib_main(argv[1:]))
    skip: dict[str, bool] = {}
    while argv[:1] == ["--no"] and len(argv) >= 2:
        skip[argv[1]] = False
        argv = argv[2:]
    if not argv or argv[0] in ("-h", "--help") or (argv[0] == "-m" and len(argv) < 2):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    import gofer
    from gofer.patch import patch

    try:
        patch(**skip)
    except TypeError as exc:
        print(f"python -m gofer.patch: {exc}", file=sys.stderr)
        return 2
    if argv[0] == "-m":
        sys.argv = argv[1:]
        gofer.run(runpy.run_module, argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    sys.argv = argv
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    gofer.run(runpy.run_path, script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
