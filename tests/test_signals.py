"""Signal handlers: their exceptions are raised at the interrupted call, as in the stdlib.

Regression for ``repro/signal_in_run.py``: a handler that raised while the
hub was polling cancelled the whole ``gofer.run``. Now the main coroutine
gets the exception at its park point (the call it was blocked in raises
it) and the program goes on; outside ``run``, the thread's main code does.
Real signals and the real clock: the handler must run while the hub sits in
``epoll_wait``/``poll``.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

import gofer
from gofer import socket


@pytest.fixture
def alarm_raises():
    """A SIGALRM handler raising ZeroDivisionError; ``arm(s)`` schedules it."""

    def handler(*_):
        1 // 0  # noqa: B018 - the point is to raise

    old = signal.signal(signal.SIGALRM, handler)

    def arm(seconds: float = 0.05) -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_handler_error_is_raised_at_the_parked_recv_in_run(alarm_raises):
    def main():
        a, b = socket.socketpair()
        try:
            alarm_raises()
            with pytest.raises(ZeroDivisionError):
                a.recv(1)
            gofer.sleep(0.001)  # later waits work: nothing was cancelled
            b.sendall(b"y")
            return a.recv(1)
        finally:
            a.close()
            b.close()

    assert gofer.run(main) == b"y"


def test_handler_error_is_raised_at_a_channel_wait_and_leaves_other_tasks_alone(alarm_raises):
    def main():
        ch: gofer.Chan[int] = gofer.Chan()
        other = gofer.go(lambda: (gofer.sleep(0.2), 42)[1])
        alarm_raises()
        with pytest.raises(ZeroDivisionError):
            ch.recv()
        assert not other.done()
        return other.join()

    assert gofer.run(main) == 42


def test_uncaught_handler_error_ends_run_with_it(alarm_raises):
    def main():
        alarm_raises()
        gofer.sleep(5)

    t0 = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        gofer.run(main)
    assert time.monotonic() - t0 < 4


def test_handler_error_outside_run_reaches_the_plain_code(alarm_raises):
    a, b = socket.socketpair()
    try:
        alarm_raises()
        with pytest.raises(ZeroDivisionError):
            a.recv(1)
        b.sendall(b"z")
        assert a.recv(1) == b"z"
    finally:
        a.close()
        b.close()


def test_ctrl_c_while_polling_reaches_main_which_may_handle_it():
    def main():
        timer = threading.Timer(0.05, signal.raise_signal, (signal.SIGINT,))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                gofer.sleep(5)
        finally:
            timer.join()
        return "handled"

    assert gofer.run(main) == "handled"


def test_ctrl_c_not_handled_cancels_everything_and_raises():
    finished: list[str] = []

    def child():
        try:
            gofer.sleep(5)
        finally:
            finished.append("child")

    def main():
        gofer.go(child)
        timer = threading.Timer(0.05, signal.raise_signal, (signal.SIGINT,))
        timer.start()
        try:
            gofer.sleep(5)
        finally:
            timer.join()

    with pytest.raises(KeyboardInterrupt):
        gofer.run(main)
    assert finished == ["child"]
