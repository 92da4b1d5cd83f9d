"""Patching ``time.sleep``: the calling coroutine parks; signals still interrupt it.

The patched sleep validates its argument as the stdlib does and then calls
:func:`gofer.sleep`. In a thread's main code the hub waits in the poller, so
a signal handler that raises interrupts the sleep with its exception, and
one that returns lets the sleep go on to its full length (PEP 475), as with
the stdlib's sleep.
"""

from __future__ import annotations

import operator
from typing import Any

from gofer._task import sleep as _gofer_sleep
from gofer.patch._orig import save

__all__ = ["patch_time", "sleep"]


def sleep(secs: Any) -> None:
    """Cooperative :func:`time.sleep`: same argument checks, parks the caller."""
    s = secs if isinstance(secs, float) else float(operator.index(secs))
    if s != s:
        raise ValueError("Invalid value NaN (not a number)")
    if s < 0:
        raise ValueError("sleep length must be non-negative")
    _gofer_sleep(s)


def patch_time() -> None:
    mod = save("time")
    mod.sleep = sleep
