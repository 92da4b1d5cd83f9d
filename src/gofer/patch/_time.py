"""Patching ``time.sleep``: the calling coroutine parks; signals still interrupt it.

In a thread's plain code with no coroutine to starve it is the stdlib's
sleep itself. Otherwise it validates its argument as the stdlib does and
calls :func:`gofer.sleep`; the hub then waits in the poller, so in the main
thread a signal handler that raises interrupts the wait with its exception
and one that returns lets it go on (PEP 475), as with the stdlib's sleep.
"""

from __future__ import annotations

import operator
import time as _time
from typing import Any

from gofer._core import sleep as _gofer_sleep
from gofer.patch._orig import save, thread_may_block

_orig_sleep = _time.sleep

__all__ = ["patch_time", "sleep"]


def sleep(secs: Any) -> None:
    """Cooperative :func:`time.sleep`: same argument checks, parks the caller."""
    if thread_may_block():
        _orig_sleep(secs)  # nothing to starve: the stdlib's own sleep, exactly
        return
    s = secs if isinstance(secs, float) else float(operator.index(secs))
    if s != s:
        raise ValueError("Invalid value NaN (not a number)")
    if s < 0:
        raise ValueError("sleep length must be non-negative")
    _gofer_sleep(s)


def patch_time() -> None:
    mod = save("time")
    mod.sleep = sleep
