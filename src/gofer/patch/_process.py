"""Patching ``subprocess`` and the ``os.wait*`` family.

A coroutine waiting for a child process parks: ``os.waitpid(pid, 0)`` for
one pid waits on a pidfd (Linux 5.3+) on the hub, then reaps with
``WNOHANG``; the other waits (any child, ``WUNTRACED``...) run in the thread
pool. ``Popen.wait(timeout)`` waits on the pidfd with the timeout instead of
the stdlib's polling loop, and ``Popen.communicate()`` always takes the
stdlib's selector path (on the patched ``selectors``), including the cases
where the stdlib would read a single pipe with a blocking ``read()``.

A thread's plain code with no coroutine to starve makes the original calls
(see ``_orig.thread_may_block``). Starting a process (``fork_exec`` and the
short wait for ``exec``) still blocks for that moment.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from gofer.patch._orig import save, thread_may_block
from gofer.patch._select import PollSelector, wait_fd
from gofer.threads import to_thread

__all__ = ["patch_os", "patch_subprocess"]

_orig_waitpid = os.waitpid
_orig_wait = getattr(os, "wait", None)
_orig_wait3 = getattr(os, "wait3", None)
_orig_wait4 = getattr(os, "wait4", None)
_pidfd_open = getattr(os, "pidfd_open", None)
_WNOHANG = getattr(os, "WNOHANG", 1)
_ONLY_EXIT = ~(getattr(os, "WUNTRACED", 0) | getattr(os, "WCONTINUED", 0))


def _open_pidfd(pid: int, options: int) -> int | None:
    """A pidfd for ``pid`` if a wait for its exit can use one, else None."""
    if _pidfd_open is None or pid <= 0 or options & ~_ONLY_EXIT:
        return None
    try:
        return int(_pidfd_open(pid))
    except OSError:
        return None  # gone already, or no pidfd support: the original says why


def _reap(pid: int, options: int, reap: Any) -> Any:
    fd = _open_pidfd(pid, options)
    if fd is None:
        return to_thread(reap, pid, options)
    try:
        while True:
            r = reap(pid, options | _WNOHANG)
            if r[0] != 0:
                return r
            wait_fd(fd, None)
    finally:
        os.close(fd)


def waitpid(pid: int, options: int) -> tuple[int, int]:
    """Cooperative :func:`os.waitpid`."""
    if options & _WNOHANG or thread_may_block():
        return _orig_waitpid(pid, options)
    return _reap(pid, options, _orig_waitpid)  # type: ignore[no-any-return]


def wait() -> tuple[int, int]:
    """Cooperative :func:`os.wait` (in the thread pool)."""
    if thread_may_block():
        return _orig_wait()  # type: ignore[misc,no-any-return]
    return to_thread(_orig_wait)  # type: ignore[arg-type,no-any-return]


def wait3(options: int) -> Any:
    """Cooperative :func:`os.wait3`."""
    if options & _WNOHANG or thread_may_block():
        return _orig_wait3(options)  # type: ignore[misc]
    return to_thread(_orig_wait3, options)  # type: ignore[arg-type]


def wait4(pid: int, options: int) -> Any:
    """Cooperative :func:`os.wait4`."""
    if options & _WNOHANG or thread_may_block():
        return _orig_wait4(pid, options)  # type: ignore[misc]
    return _reap(pid, options, _orig_wait4)


def patch_os() -> None:
    mod = save("os")
    mod.waitpid = waitpid
    for name, fn in (("wait", wait), ("wait3", wait3), ("wait4", wait4)):
        if hasattr(mod, name):
            setattr(mod, name, fn)


# -- subprocess ------------------------------------------------------------------

_Popen: Any = subprocess.Popen
_orig_popen_wait = _Popen._wait
_orig_communicate = _Popen.communicate
_time: Any = subprocess._time  # type: ignore[attr-defined]


def _popen_wait(self: Any, timeout: float | None) -> Any:
    """``Popen._wait``: park on the child's pidfd (with the timeout) instead of polling."""
    if self.returncode is not None or thread_may_block():
        return _orig_popen_wait(self, timeout)
    fd = _open_pidfd(self.pid, 0)
    if fd is None:
        if timeout is None:
            return to_thread(_orig_popen_wait, self, None)
        return _orig_popen_wait(self, timeout)  # polls with the patched sleep
    try:
        exited = wait_fd(fd, timeout)
    finally:
        os.close(fd)
    if not exited:
        raise subprocess.TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
    return _orig_popen_wait(self, None)  # it has exited: waitpid returns at once


def _communicate(self: Any, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
    """``Popen.communicate`` through the selector path only (see the module docstring)."""
    if thread_may_block():
        return _orig_communicate(self, input, timeout)  # type: ignore[no-any-return]
    if self._communication_started and input:
        raise ValueError("Cannot send input after starting communication")
    endtime = None if timeout is None else _time() + timeout
    try:
        stdout, stderr = self._communicate(input, endtime, timeout)
    except KeyboardInterrupt:
        # As the stdlib: give the child a moment to exit on the same Ctrl-C.
        if timeout is not None:
            sigint_timeout = min(self._sigint_wait_secs, self._remaining_time(endtime))
        else:
            sigint_timeout = self._sigint_wait_secs
        self._sigint_wait_secs = 0
        try:
            self._wait(timeout=sigint_timeout)
        except subprocess.TimeoutExpired:
            pass
        raise
    finally:
        self._communication_started = True
    self.wait(timeout=self._remaining_time(endtime))
    return stdout, stderr


def patch_subprocess() -> None:
    mod = save("subprocess")
    _Popen._wait = _popen_wait
    _Popen.communicate = _communicate
    if getattr(mod, "_PopenSelector", None) is not None:
        mod._PopenSelector = PollSelector
