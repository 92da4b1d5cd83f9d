"""The current thread's hub: a leaf every kernel module may import.

The hub lives in a thread-local next to a small owner object whose
``__del__`` closes the hub's fds when the thread exits. Keeping this in a
leaf module (as gevent's ``_hub_local`` does) lets the parking code find
the hub without importing the hub module lazily.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gofer._core._hub import Hub

__all__ = ["OSThreadLocal", "forget_hub", "hub_if_any", "os_lock", "set_hub"]

# The real classes, taken when gofer is imported, which is always before any
# gofer.patch(). A gofer module imported after patching runs its body with
# the patched threading (patch's import hook hands it the unpatched modules
# only once it has run), so its module-level per-OS-thread state and locks
# are made with these (``threading.local`` becomes per coroutine there).
OSThreadLocal = threading.local
os_lock = _thread.allocate_lock

_tls = threading.local()


class _HubOwner:
    """Lives in the thread-local next to the hub; closes its fds at thread exit."""

    __slots__ = ("hub",)

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.hub._release()


def hub_if_any() -> Hub | None:
    """This thread's hub, or None if it has none (yet)."""
    return getattr(_tls, "hub", None)


def set_hub(hub: Hub) -> None:
    """Install ``hub`` as this thread's hub (``get_hub``, and ``run(clock=...)``)."""
    old = getattr(_tls, "hub", None)
    if old is not None and old is not hub:
        raise RuntimeError("this thread already has a hub")
    _tls.hub = hub
    _tls.owner = _HubOwner(hub)


def forget_hub(hub: Hub) -> None:
    """``hub`` is closing: if it is this thread's, the thread gets a new one when needed."""
    if getattr(_tls, "hub", None) is hub:
        del _tls.hub
        del _tls.owner


def _after_fork_in_child() -> None:
    hub = hub_if_any()
    if hub is not None and not hub.closed:
        hub._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
