"""gofer.debug: the all-hubs dump, the SIGUSR1 dump and the debug server's life (issue 13).

The endpoints themselves are tested beside a real ``gofer serve`` in
tests/test_metrics.py.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import urllib.request

import pytest

import gofer
import gofer.debug


def parked_here(ch: gofer.Chan) -> None:
    ch.recv_ok()  # PARKED LINE


def test_dump_all_shows_every_hubs_coroutines() -> None:
    started = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        def body() -> None:
            t = gofer.go(parked_here, gofer.Chan())
            t.name = "other-thread-task"
            gofer.yield_now()
            started.set()
            while not done.is_set():
                gofer.sleep(0.005)
            t.cancel()

        gofer.run(body)

    th = threading.Thread(target=other_thread, name="dump-other")
    th.start()
    started.wait()

    def main() -> str:
        ch: gofer.Chan = gofer.Chan()
        t = gofer.go(parked_here, ch)
        t.name = "here-task"
        gofer.yield_now()
        buf = io.StringIO()
        text = gofer.debug.dump_all(buf)
        ch.close()
        return text if buf.getvalue() == text else "file differs"

    try:
        text = gofer.run(main)
    finally:
        done.set()
        th.join()
    assert "here-task: parked on" in text
    assert "other-thread-task: parked on" in text
    assert "dump-other" in text
    assert text.count("PARKED LINE") == 2


def test_sigusr1_dumps_and_the_program_goes_on(tmp_path) -> None:
    out = open(tmp_path / "dump.txt", "w")  # noqa: SIM115 - the handler writes into it
    old = signal.getsignal(signal.SIGUSR1)
    try:
        gofer.debug.install_signal(file=out)

        def main() -> str:
            ch: gofer.Chan = gofer.Chan()
            t = gofer.go(parked_here, ch)
            t.name = "sig-task"
            gofer.yield_now()
            os.kill(os.getpid(), signal.SIGUSR1)
            gofer.sleep(0.01)  # the handler runs at the next bytecode boundary
            ch.close()
            t.join()
            return "went on"

        assert gofer.run(main) == "went on"
    finally:
        signal.signal(signal.SIGUSR1, old)
        out.close()
    text = (tmp_path / "dump.txt").read_text()
    assert "sig-task: parked on" in text and "PARKED LINE" in text


def test_debug_server_starts_answers_and_closes() -> None:
    with gofer.debug.start_server(("127.0.0.1", 0)) as srv:
        host, port = srv.address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/debug/", timeout=30) as r:
            assert b"/debug/tasks" in r.read()
    assert not srv._thread.is_alive()


def test_debug_server_reports_a_bad_address() -> None:
    with pytest.raises(OSError):
        gofer.debug.start_server(("256.0.0.1", 0))
