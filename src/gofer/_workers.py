"""The one pre-fork supervisor: N worker processes, one listener each, SIGHUP reload.

Used by ``gofer.net.serve(workers=N)`` and by ``gofer serve``. The
supervisor (the calling process) binds the listeners, forks N workers and
then only watches. What a worker does is a *body*, ``body(sock, ready)``:
it gets its listening socket (a stdlib socket), calls ``ready()`` once it is
about to accept, and serves until SIGTERM (graceful: close the listener at
once, finish what is in progress) or SIGINT (at once).

Listeners are per *slot* and held by the supervisor. On Linux a TCP address
gets one ``SO_REUSEPORT`` socket per slot, so the kernel spreads new
connections over the workers; elsewhere (BSD and macOS accept the option but
hand every connection to one socket), and for Unix addresses, every slot
shares one socket. Because the supervisor keeps each slot's socket open, a
worker that stops never takes queued connections down with it: its
successor in the slot accepts them.

Signals to the supervisor:

* SIGTERM: the supervisor closes its copies of the listeners at once and
  forwards SIGTERM; as each worker closes its own, the port refuses new
  connections. Workers still running ``grace + 5`` s later are killed.
* SIGINT: forwarded; workers stop at once (killed after 5 s).
* SIGHUP: reload. A new generation of N workers is forked on the same
  slots; once every one of them is ready, the old ones get SIGTERM and
  finish their requests. A new worker that cannot start (exit code 3,
  see below) aborts the reload and the old workers keep serving.

A worker that dies is replaced in its slot, with a growing delay if workers
keep dying right after they start. A worker whose body (or
``worker_init``) raises before it is ready exits with code 3
(:data:`EXIT_CANNOT_START`: the application cannot be loaded); while no
worker has ever started, the supervisor then stops and ``run()`` returns 3
(later it is replaced like any worker that dies).

The supervisor makes no gofer call (a hub's epoll fd must not be shared with
forked children), so call it from the main program. Each forked worker gets
the same post-fork reset (:func:`_reset_after_fork`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from gofer import _listen

__all__ = ["EXIT_CANNOT_START", "Supervisor"]

# In a worker process: the slot it serves (0 .. workers-1), kept across
# restarts and reloads; None in the supervisor and outside serve().
worker_slot: int | None = None

EXIT_CANNOT_START = 3
_FAST_EXIT = 1.0  # a worker that dies sooner than this after starting counts as failing
# Linux spreads connections over SO_REUSEPORT listeners; BSD and macOS accept
# the option but hand every connection to one socket, so they share one.
_BALANCING_REUSEPORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)

Body = Callable[[socket.socket, Callable[[], None]], Any]


class _Worker:
    __slots__ = ("gen", "ready", "retiring", "slot", "started")

    def __init__(self, slot: int, gen: int) -> None:
        self.slot = slot
        self.gen = gen
        self.started = time.monotonic()
        self.ready = False
        self.retiring = False


class Supervisor:
    """Forks and supervises the workers of one server (see the module docstring)."""

    def __init__(
        self,
        addr: Any,
        workers: int,
        body: Body,
        *,
        grace: float | None = 10.0,
        backlog: int = _listen.DEFAULT_BACKLOG,
        worker_init: Callable[[], Any] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.addr = addr
        self.nworkers = workers
        self.body = body
        self.grace = grace
        self.backlog = backlog
        self.worker_init = worker_init
        self.log = log or logging.getLogger("gofer.net")
        self.address: Any = None
        self.workers: dict[int, _Worker] = {}  # pid -> worker
        self.gen = 0  # the generation that serves; a reload makes gen + 1
        self.exit_code = 0
        self._listeners: list[socket.socket] = []  # one per slot (maybe the same socket)
        self._unlink: str | None = None
        self._pending: list[tuple[float, int, int]] = []  # (when, slot, generation) restarts to do
        self._kills: dict[int, float] = {}  # retiring pid -> when it gets SIGKILL
        self._failures = 0
        self._reload_gen = 0  # > gen while a reload is under way
        self._first_ready = False  # the whole first generation has reported ready
        self._any_ready = False  # some worker has ever reported ready
        self._stop_sig = 0
        self._deadline: float | None = None

    # -- listeners ----------------------------------------------------------------------
    def bind(self) -> None:
        """Bind the listeners now (``run()`` does it if not done); sets ``address``."""
        if self._listeners:
            return
        family = _listen.parse_address(self.addr)[0]
        reuse = _BALANCING_REUSEPORT and family != socket.AF_UNIX
        first, self._unlink = _listen.bind(self.addr, backlog=self.backlog, reuse_port=reuse)
        self._listeners = [first]
        self.address = first.getsockname()
        for _ in range(1, self.nworkers):
            if reuse:  # the same address, the real port if 0 was asked for
                self._listeners.append(_listen.bind(self.address, backlog=self.backlog, reuse_port=True)[0])
            else:
                self._listeners.append(first)

    def _close_listeners(self) -> None:
        for s in {id(s): s for s in self._listeners}.values():
            s.close()
        self._listeners = []
        path, self._unlink = self._unlink, None
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)

    # -- workers --------------------------------------------------------------------------
    def _spawn(self, slot: int, gen: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._worker_main(slot)  # never returns
        self.workers[pid] = _Worker(slot, gen)
        self.log.info("worker %d started (pid %d)", slot, pid)

    def _worker_main(self, slot: int) -> None:
        global worker_slot
        worker_slot = slot
        code = 1
        ready = False
        try:
            sock = self._listeners[slot]
            _reset_after_fork(self._supervisor_pid, keep=sock, close=(*self._listeners, *self._pipe))
            wfd = self._ready[1]
            os.close(self._ready[0])

            def tell_ready() -> None:
                nonlocal ready
                if not ready:
                    ready = True
                    os.write(wfd, b"%d\n" % os.getpid())  # atomic: shorter than PIPE_BUF
                    os.close(wfd)

            if self.worker_init is not None:
                self.worker_init()
            self.body(sock, tell_ready)
            code = 0
        except KeyboardInterrupt:
            code = 0
        except SystemExit as exc:
            if not ready:
                if exc.code not in (None, 0):
                    print(exc.code, file=sys.stderr)
                code = EXIT_CANNOT_START
            else:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            self.log.exception("worker %d failed%s", slot, "" if ready else " to start")
            if not ready:
                code = EXIT_CANNOT_START
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    # -- the supervisor's loop ---------------------------------------------------------------
    def run(self, ready: Callable[[Any], Any] | None = None) -> int:
        """Bind, start the workers and supervise them until stopped; the exit code.

        ``ready(address)`` is called once every first worker is ready.
        """
        _check_no_hub()
        self._supervisor_pid = os.getpid()
        self.bind()
        self._pipe = os.pipe()  # signal wake-ups
        self._ready = os.pipe()  # a line with its pid per worker that is ready
        for fd in (*self._pipe, *self._ready):
            os.set_blocking(fd, False)
        sigs: list[int] = []
        old_wakeup = signal.set_wakeup_fd(self._pipe[1])
        old = {sig: signal.signal(sig, lambda s, f: sigs.append(s)) for sig in _SIGNALS}
        try:
            for slot in range(self.nworkers):
                self._spawn(slot, self.gen)
            self._supervise(sigs, ready)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, h in old.items():
                signal.signal(sig, h)
            self._kill_all(signal.SIGKILL)
            for fd in (*self._pipe, *self._ready):
                os.close(fd)
            self._close_listeners()
        return self.exit_code

    def _supervise(self, sigs: list[int], ready: Callable[[Any], Any] | None) -> None:
        buf = b""
        while True:
            timeout = 1.0
            if self._pending:
                timeout = max(0.0, min(timeout, min(p[0] for p in self._pending) - time.monotonic()))
            with contextlib.suppress(InterruptedError):
                select.select([self._pipe[0], self._ready[0]], [], [], timeout)
            with contextlib.suppress(OSError):
                os.read(self._pipe[0], 512)
            with contextlib.suppress(OSError):
                buf += os.read(self._ready[0], 4096)
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._on_ready(int(line), ready)
            while sigs:
                self._on_signal(sigs.pop(0))
            self._reap()
            now = time.monotonic()
            if self._stop_sig:
                if not self.workers:
                    return
                if self._deadline is not None and now > self._deadline:
                    self.log.warning("killing %d worker(s) that did not stop in time", len(self.workers))
                    self._kill_all(signal.SIGKILL)
                continue
            for p in [p for p in self._pending if p[0] <= now]:
                self._pending.remove(p)
                self._spawn(p[1], p[2])

    def _on_ready(self, pid: int, ready: Callable[[Any], Any] | None) -> None:
        w = self.workers.get(pid)
        if w is None:
            return
        w.ready = True
        self._any_ready = True
        if w.gen == self._reload_gen and w.gen > self.gen:
            new = [x for x in self.workers.values() if x.gen == w.gen]
            if len(new) == self.nworkers and all(x.ready for x in new):
                self._retire_old(w.gen)
        elif w.gen == 0 and not self._first_ready and self.nworkers == sum(
            1 for x in self.workers.values() if x.gen == 0 and x.ready
        ):
            self._first_ready = True
            self.log.info("%d worker(s) ready", self.nworkers)
            if ready is not None:
                ready(self.address)

    def _on_signal(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return  # a wake-up: _reap looks
        if sig == signal.SIGHUP:
            if self._stop_sig:
                return
            if self._reload_gen > self.gen:
                self.log.warning("SIGHUP received during a reload; ignored")
                return
            self._reload_gen = self.gen + 1
            self.log.info("SIGHUP received: starting %d new worker(s)", self.nworkers)
            for slot in range(self.nworkers):
                self._spawn(slot, self._reload_gen)
            return
        if self._stop_sig == sig or self._stop_sig == signal.SIGINT:
            return
        self._stop_sig = sig
        self._close_listeners()  # with the workers' copies closed, the port refuses connections
        self._pending.clear()
        self._kill_all(sig)
        self.log.info("%s received, stopping %d worker(s)", signal.Signals(sig).name, len(self.workers))
        if sig == signal.SIGTERM and self.grace is None:
            return  # no time limit: wait as long as the connections last
        limit = 5.0 if sig == signal.SIGINT else (self.grace or 0.0) + 5.0
        self._deadline = time.monotonic() + limit

    def _retire_old(self, gen: int) -> None:
        self.gen = gen
        old = [pid for pid, w in self.workers.items() if w.gen < gen and not w.retiring]
        self.log.info("reload: %d new worker(s) ready, stopping %d old one(s)", self.nworkers, len(old))
        self._pending = [p for p in self._pending if p[2] >= gen]  # no restarts in the old generation
        for pid in old:
            self._retire(pid)

    def _retire(self, pid: int) -> None:
        self.workers[pid].retiring = True
        _kill(pid, signal.SIGTERM)
        if self.grace is not None:  # killed if still there long after its grace
            self._kills[pid] = time.monotonic() + self.grace + 5.0

    def _reap(self) -> None:
        now = time.monotonic()
        for pid, when in list(self._kills.items()):
            if pid not in self.workers:
                del self._kills[pid]
            elif now > when:
                _kill(pid, signal.SIGKILL)
        for pid, status in _reaped(list(self.workers)):
            # A stop decided earlier in this loop (_on_signal -> _kill_all) may
            # already have forgotten a worker that had exited.
            w = self.workers.pop(pid, None)
            if w is None or w.retiring or self._stop_sig:
                continue
            code = os.waitstatus_to_exitcode(status)
            if w.gen > self.gen:  # a worker of a reload that has not taken over
                if code == EXIT_CANNOT_START and not w.ready:
                    self._abort_reload(w.gen)
                else:
                    self._restart(w, pid, status, now)
                continue
            if code == EXIT_CANNOT_START and not self._any_ready:
                self.log.error("worker %d cannot start: stopping", w.slot)
                self.exit_code = EXIT_CANNOT_START
                self._on_signal(signal.SIGTERM)
                continue
            self._restart(w, pid, status, now)

    def _restart(self, w: _Worker, pid: int, status: int, now: float) -> None:
        self._failures = self._failures + 1 if now - w.started < _FAST_EXIT else 0
        delay = 0.0 if self._failures == 0 else min(5.0, 0.1 * 2 ** (self._failures - 1))
        self.log.warning("worker %d (pid %d) %s; restarting in %.1fs", w.slot, pid, _describe(status), delay)
        self._pending.append((now + delay, w.slot, w.gen))

    def _abort_reload(self, gen: int) -> None:
        self.log.error("reload failed: a new worker cannot start; the old workers keep serving")
        for pid, w in list(self.workers.items()):
            if w.gen == gen:
                self._retire(pid)
        self._pending = [p for p in self._pending if p[2] != gen]
        self._reload_gen = self.gen

    def _kill_all(self, sig: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.workers.pop(pid, None)
        if sig == signal.SIGKILL:
            for pid in list(self.workers):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                self.workers.pop(pid, None)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reaped(pids: list[int]) -> list[tuple[int, int]]:
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

    from gofer._core import hub_if_any

    if getcurrent().parent is not None:
        raise RuntimeError(
            "serve(workers=N) forks worker processes: call it from the main program, not from a coroutine"
        )
    hub = hub_if_any()
    if hub is not None and not hub.closed:
        if hub.tasks:
            raise RuntimeError("serve(workers=N) must start before any coroutine runs in this thread")
        hub.close()


def _reset_after_fork(parent: int, keep: socket.socket, close: tuple[Any, ...]) -> None:
    """The one post-fork reset of a worker: signals, inherited fds, thread pool, parent death."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the supervisor's business
    signal.set_wakeup_fd(-1)
    for x in {id(x): x for x in close}.values():
        if x is keep:
            continue
        if isinstance(x, int):
            os.close(x)
        else:
            x.close()
    _die_with_parent(parent)
    from gofer import threads

    # The parent's to_thread pool (if any) has no threads in the child.
    if getattr(threads, "_pool", None) is not None:
        threads._pool = None


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
