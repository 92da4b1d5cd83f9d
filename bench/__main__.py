"""``python -m bench``: run gofer's benchmark suites from a checkout (see :mod:`bench.runner`)."""

from __future__ import annotations

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
