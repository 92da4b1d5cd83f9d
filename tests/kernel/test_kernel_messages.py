"""What the kernel tells a user: dump_tasks, Deadlock messages, argument errors, exit warnings."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

import gofer


def test_dump_tasks_from_a_coroutine_shows_it_running_with_its_stack(vrun):
    # repro/dump_quirk.py: the caller was listed as "not started".
    def child():
        gofer.sleep(1)

    def dumper():
        return gofer.dump_tasks(file=io.StringIO())

    def main():
        c = gofer.go(child)
        t = gofer.go(dumper)
        t.name = "dumper"
        text = t.join()
        c.cancel()
        return text

    text = vrun(main)
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("- dumper:"))
    assert lines[i] == "- dumper: running"
    assert "in dumper" in "\n".join(lines[i + 1 : i + 8])
    assert any("child): parked on <timer" in ln for ln in lines)


def test_dump_tasks_shows_a_queued_coroutine_as_not_started(vrun):
    def main():
        gofer.go(lambda: None).join()  # leaves an idle worker to be reused
        t = gofer.go(lambda: None)  # on the reused worker, not run yet
        t.name = "queued"
        text = gofer.dump_tasks(file=io.StringIO())
        t.join()
        return text

    assert "- queued: not started" in vrun(main)


def test_deadlock_message_names_the_mutex_its_state_and_where_it_was_made(vrun):
    def main():
        mu = gofer.Mutex()  # this line is named in the message
        mu.acquire()
        t = gofer.go(mu.acquire)
        t.join()

    with pytest.raises(gofer.Deadlock) as ei:
        vrun(main)
    msg = str(ei.value)
    assert "Mutex.acquire on <gofer.Mutex locked waiters=1>" in msg
    assert f"created at {__file__}:" in msg


def _busy_waitgroup() -> gofer.WaitGroup:
    wg = gofer.WaitGroup()
    wg.add(1)
    return wg


@pytest.mark.parametrize("make", [gofer.Event, _busy_waitgroup, lambda: gofer.Semaphore(0)])
def test_other_primitives_say_where_they_were_made(vrun, make):
    def main():
        prim = make()
        wait = prim.acquire if isinstance(prim, gofer.Semaphore) else prim.wait
        t = gofer.go(wait)
        gofer.yield_now()
        text = gofer.dump_tasks(file=io.StringIO())
        t.cancel()
        return text

    text = vrun(main)
    assert f"created at {__file__}:" in text
    assert f"on <gofer.{type(make()).__name__}" in text


@pytest.mark.parametrize("bad", ["1", None, [1], b"1"])
def test_sleep_names_a_bad_argument(bad):
    with pytest.raises(TypeError, match=r"sleep\(\) takes a number of seconds, not "):
        gofer.sleep(bad)


def test_sleep_rejects_negative_and_nan():
    with pytest.raises(ValueError, match="must be >= 0"):
        gofer.sleep(-1)
    with pytest.raises(ValueError, match="must be >= 0"):
        gofer.sleep(float("nan"))


def _run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_go_in_plain_code_that_never_runs_is_named_at_exit():
    r = _run_script(
        """
        import gofer
        def forgotten():
            print("ran")
        gofer.go(forgotten)
        """
    )
    assert r.returncode == 0
    assert "ran" not in r.stdout
    assert "RuntimeWarning" in r.stderr and "never ran" in r.stderr
    assert "(forgotten)" in r.stderr


def test_no_exit_warning_when_the_coroutines_ran():
    r = _run_script(
        """
        import gofer
        gofer.go(print, "ran")
        gofer.sleep(0)
        """
    )
    assert r.returncode == 0
    assert r.stdout == "ran\n"
    assert "never ran" not in r.stderr


def test_gofer_http_without_httptools_names_the_extra():
    r = _run_script(
        """
        import sys
        sys.modules["httptools"] = None  # as if it were not installed
        try:
            import gofer.http
        except ModuleNotFoundError as e:
            print(e)
        """
    )
    assert "pip install 'gofer[http]'" in r.stdout, r.stderr


def test_a_raw_thread_that_will_wake_main_is_no_deadlock():
    # A thread started with _thread (not listed by threading.enumerate())
    # sets the event later: the hub must wait for it, not raise Deadlock.
    import _thread
    import time

    def main():
        ev = gofer.Event()

        def later():
            time.sleep(0.6)  # longer than the hub's 0.25 s look-again
            ev.set()

        _thread.start_new_thread(later, ())
        ev.wait()
        return "woken"

    assert gofer.run(main) == "woken"


def test_a_virtual_clock_run_after_plain_code_waits_gets_a_fresh_hub():
    from gofer.testing import run as vrun

    gofer.sleep(0.001)  # plain code: this thread now has an idle hub
    assert vrun(lambda: (gofer.sleep(100), "done")[1]) == "done"  # virtual: no real 100 s


def test_a_virtual_clock_run_is_refused_while_the_hub_has_coroutines():
    from gofer.testing import run as vrun

    t = gofer.go(gofer.sleep, 0.001)
    try:
        with pytest.raises(RuntimeError, match="already has a hub in use"):
            vrun(lambda: None)
    finally:
        t.join()


def test_dump_tasks_shows_names_waits_and_stacks(vrun):
    def napper():
        gofer.sleep(50)

    def main():
        t = gofer.go(napper)
        t.name = "napper-1"
        gofer.yield_now()
        buf = io.StringIO()
        text = gofer.dump_tasks(buf)
        assert buf.getvalue() == text
        assert "napper-1: parked on <timer" in text
        assert "in napper" in text  # its stack
        assert "main: running" in text
        t.cancel()

    vrun(main)
