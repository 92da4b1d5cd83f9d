"""Subprocess entry of the benchmark runner: run one system of one suite, print JSON."""

from __future__ import annotations

import json
import sys

from bench import find_suite, resolve


def main() -> None:
    suite_name, system, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    suite = find_suite(suite_name)
    try:
        fn = resolve(suite.systems[system])
        result = fn(params)
    except ImportError as exc:
        print(json.dumps({"skip": f"not installed ({exc.name or exc})"}))
        return
    print(json.dumps(result))


if __name__ == "__main__":
    main()
