"""``serve(..., workers=N)``: N forked worker processes sharing one port.

The supervisor (the calling process) binds the address, forks N workers and
then only watches: a worker that exits is replaced (with a growing delay if
workers keep dying right after they start), SIGTERM is forwarded to every
worker (each stops gracefully: no new connections, ``grace`` seconds for
running ones) and SIGINT too (each stops at once). The supervisor returns
once all workers are gone, killing stragglers ``grace + 5`` seconds after a
stop.

Sharing the port: on Linux, with ``SO_REUSEPORT``, each worker listens on
its own socket bound to the same address and the kernel spreads new
connections over them; the supervisor keeps a bound, non-listening socket to
hold the port (so port 0 works). Elsewhere, and for Unix-domain addresses,
the supervisor's listening socket is inherited by every worker.

The supervisor makes no gofer call (a hub's epoll fd must not be shared with
forked children), so call ``serve(workers=N)`` from the main program.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket as _stdsocket
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gofer.net")

__all__ = ["Supervisor"]

_FAST_EXIT = 1.0  # a worker that dies sooner than this after starting counts as failing
# Linux spreads connections over SO_REUSEPORT listeners; BSD and macOS accept
# the option but hand every connection to one socket, so they share one.
_BALANCING_REUSEPORT = sys.platform == "linux" and hasattr(_stdsocket, "SO_REUSEPORT")


class Supervisor:
    """Forks and supervises the workers of one server (see the module docstring)."""

    def __init__(
        self,
        addr: Any,
        handler: Callable[[Any], Any],
        workers: int,
        *,
        grace: float | None = 10.0,
        backlog: int = 1024,
        ssl: Any = None,
        raw: bool = False,
        worker_init: Callable[[], Any] | None = None,
    ) -> None:
        self.addr = addr
        self.handler = handler
        self.nworkers = workers
        self.grace = grace
        self.backlog = backlog
        self.ssl = ssl
        self.raw = raw
        self.worker_init = worker_init
        self.pids: dict[int, tuple[int, float]] = {}  # pid -> (slot, start time)
        self.address: Any = None
        self._sock: _stdsocket.socket | None = None
        self._reuse_port = False
        self._unlink: str | None = None

    # -- the port -----------------------------------------------------------------
    def _bind(self) -> None:
        from gofer.net import _remove_stale_socket, parse_address

        family, sa = parse_address(self.addr)
        if family != _stdsocket.AF_UNIX:
            host = sa[0] or None
            infos = _stdsocket.getaddrinfo(host, sa[1], family, _stdsocket.SOCK_STREAM, 0, _stdsocket.AI_PASSIVE)
            family, sa = infos[0][0], infos[0][4]
        sock = _stdsocket.socket(family, _stdsocket.SOCK_STREAM)
        try:
            if family == _stdsocket.AF_UNIX:
                if not sa.startswith("\0"):
                    _remove_stale_socket(sa)
                    self._unlink = sa
            else:
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
                if _BALANCING_REUSEPORT:
                    sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
                    self._reuse_port = True
            sock.bind(sa)
            if not self._reuse_port:
                sock.listen(self.backlog)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.address = sock.getsockname()

    def _worker_socket(self) -> Any:
        from gofer import socket as gsocket

        assert self._sock is not None
        if not self._reuse_port:
            s = self._sock
            return gsocket.socket(s.family, s.type, s.proto, fileno=os.dup(s.fileno()))
        sock = gsocket.socket(self._sock.family, _stdsocket.SOCK_STREAM)
        sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
        sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
        sock.bind(self.address)
        sock.listen(self.backlog)
        return sock

    # -- workers --------------------------------------------------------------------
    def _spawn(self, slot: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._worker_main(slot)  # never returns
        self.pids[pid] = (slot, time.monotonic())
        log.info("gofer.net: worker %d started (pid %d)", slot, pid)

    def _worker_main(self, slot: int) -> None:
        code = 1
        parent = self._supervisor_pid
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            os.close(self._pipe[0])
            os.close(self._pipe[1])
            os.close(self._ready[0])
            _die_with_parent(parent)
            _reset_after_fork()
            if self.worker_init is not None:
                self.worker_init()
            import gofer
            from gofer._serve import Server

            srv = Server(self._worker_socket(), self.handler, ssl=self.ssl, raw=self.raw)
            if self._sock is not None:
                self._sock.close()
            os.write(self._ready[1], b"r")  # listening: tell the supervisor
            os.close(self._ready[1])
            gofer.run(srv.serve_forever, grace=self.grace, handle_signals=True)
            code = 0
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            log.exception("gofer.net: worker %d failed", slot)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def run(self, ready: Callable[[Any], Any] | None = None) -> None:
        """Bind, start the workers and supervise them until stopped by a signal."""
        _check_no_hub()
        self._supervisor_pid = os.getpid()
        self._bind()
        self._pipe = os.pipe()  # signal wake-ups
        self._ready = os.pipe()  # one byte per worker that listens
        for fd in (*self._pipe, *self._ready):
            os.set_blocking(fd, False)
        stop: list[int] = []
        old_wakeup = signal.set_wakeup_fd(self._pipe[1])
        old = {sig: signal.signal(sig, lambda s, f: stop.append(s)) for sig in (signal.SIGTERM, signal.SIGINT)}
        old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda s, f: None)
        try:
            for slot in range(self.nworkers):
                self._spawn(slot)
            self._supervise(stop, ready)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, h in old.items():
                signal.signal(sig, h)
            self._kill_all(signal.SIGKILL)
            for fd in (*self._pipe, *self._ready):
                os.close(fd)
            if self._sock is not None:
                self._sock.close()
            if self._unlink:
                with contextlib.suppress(OSError):
                    os.unlink(self._unlink)

    def _supervise(self, stop: list[int], ready: Callable[[Any], Any] | None) -> None:
        pending: list[tuple[float, int]] = []  # (when, slot) restarts to do
        listening = 0  # workers that reported; ready() once all first ones did
        failures = 0
        forwarded: set[int] = set()
        deadline = None
        while True:
            now = time.monotonic()
            timeout = 1.0
            if pending:
                timeout = max(0.0, min(timeout, min(w for w, _ in pending) - now))
            with contextlib.suppress(InterruptedError):
                select.select([self._pipe[0], self._ready[0]], [], [], timeout)
            with contextlib.suppress(OSError):
                os.read(self._pipe[0], 512)
            with contextlib.suppress(OSError):
                got = len(os.read(self._ready[0], 512))
                if listening < self.nworkers <= listening + got and ready is not None:
                    ready(self.address)
                listening += got
            now = time.monotonic()
            for pid, status in _reap(list(self.pids)):
                slot, started = self.pids.pop(pid, (-1, now))
                if slot < 0:
                    continue
                if stop:
                    continue
                failures = failures + 1 if now - started < _FAST_EXIT else 0
                delay = 0.0 if failures == 0 else min(5.0, 0.1 * 2 ** (failures - 1))
                log.warning("gofer.net: worker %d (pid %d) %s; restarting in %.1fs", slot, pid, _describe(status), delay)
                pending.append((now + delay, slot))
            for sig in stop:
                if sig not in forwarded:
                    forwarded.add(sig)
                    log.info("gofer.net: %s received, stopping %d worker(s)", signal.Signals(sig).name, len(self.pids))
                    self._kill_all(sig)
                    if sig == signal.SIGTERM and self.grace is None:
                        continue  # no time limit: wait as long as the connections last
                    limit = 5.0 if sig == signal.SIGINT else (self.grace or 0.0) + 5.0
                    deadline = now + limit if deadline is None else min(deadline, now + limit)
            if stop:
                if not self.pids:
                    return
                if deadline is not None and now > deadline:
                    log.warning("gofer.net: killing %d worker(s) that did not stop in time", len(self.pids))
                    self._kill_all(signal.SIGKILL)
                continue
            due = [p for p in pending if p[0] <= now]
            for p in due:
                pending.remove(p)
                self._spawn(p[1])

    def _kill_all(self, sig: int) -> None:
        for pid in list(self.pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.pids.pop(pid, None)
        if sig == signal.SIGKILL:
            for pid in list(self.pids):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                self.pids.pop(pid, None)


def _reap(pids: list[int]) -> list[tuple[int, int]]:
    """``(pid, status)`` of the workers among ``pids`` that have exited."""
    out: list[tuple[int, int]] = []
    for pid in pids:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0  # already reaped elsewhere
        if done:
            out.append((pid, status))
    return out


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def _check_no_hub() -> None:
    """Forking with a live hub would share its epoll fd with the workers: refuse."""
    from greenlet import getcurrent

    from gofer._hub import hub_if_any

    if getcurrent().parent is not None:
        raise RuntimeError(
            "serve(workers=N) forks worker processes: call it from the main program, not from a coroutine"
        )
    hub = hub_if_any()
    if hub is not None and not hub.closed:
        if hub.tasks:
            raise RuntimeError("serve(workers=N) must start before any coroutine runs in this thread")
        hub.close()


def _die_with_parent(parent: int) -> None:
    """Linux: get SIGTERM if the supervisor dies without stopping us (e.g. SIGKILL)."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _reset_after_fork() -> None:
    # The parent's to_thread pool (if any) has no threads in the child.
    from gofer import threads

    if getattr(threads, "_pool", None) is not None:
        threads._pool = None

