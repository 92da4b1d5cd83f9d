"""The blocking watchdog and memory watch (gofer.monitor, issue 13).

These tests block a hub on purpose with ``time.sleep``: a real stall is what
the watchdog is for, so the virtual clock cannot stand in. The bounds are
loose: a report must arrive while the stall is still going on (1.5 s after
a 0.1 s threshold), and an idle or cooperative hub must never be reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import gofer
from gofer import _monitor


@pytest.fixture
def reports():
    got: list[object] = []
    m = gofer.monitor(0.1, hook=got.append)
    yield got
    m.threshold = None
    m.hook = None
    m.max_memory = None
    m.stop()


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_a_blocking_call_is_reported_with_the_users_line(reports, caplog) -> None:
    seen_during: list[int] = []

    def blocker() -> None:
        gofer.sleep(0.001)
        time.sleep(1.5)  # BLOCKING LINE
        seen_during.append(len(reports))  # reports made while it blocked

    def main() -> None:
        t = gofer.go(blocker)
        t.name = "blocker"
        t.join()
        gofer.sleep(0.2)  # idle afterwards: no second report

    gofer.run(main)
    stalls = [r for r in reports if isinstance(r, _monitor.StallReport)]
    assert len(stalls) == 1, stalls  # once per stall
    r = stalls[0]
    assert seen_during == [1]  # reported while the stall went on
    assert r.name == "blocker"
    assert r.task is not None and r.task.name == "blocker"
    assert r.duration >= 0.1
    assert "time.sleep(1.5)  # BLOCKING LINE" in "".join(r.stack)
    assert "blocker" in caplog.text and "BLOCKING LINE" in caplog.text


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_two_stalls_make_two_reports(reports) -> None:
    def main() -> None:
        for _ in range(2):
            time.sleep(0.6)
            gofer.sleep(0.05)

    gofer.run(main)
    assert len([r for r in reports if isinstance(r, _monitor.StallReport)]) == 2


def test_idle_and_cooperative_hubs_are_not_reported(reports) -> None:
    def spinner(stop: list[bool]) -> None:
        while not stop:
            sum(range(200))
            gofer.yield_now()

    def main() -> None:
        gofer.sleep(0.5)  # idle in the poller
        stop: list[bool] = []
        for _ in range(3):
            gofer.go(spinner, stop)
        gofer.sleep(0.5)  # busy but cooperative
        stop.append(True)

    gofer.run(main)
    assert reports == []


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_a_callback_in_the_hub_is_named(reports) -> None:
    def main() -> None:
        gofer.get_hub().call_soon(time.sleep, 0.8)
        gofer.sleep(0.01)

    gofer.run(main)
    assert [r.name for r in reports] == ["a hub callback or timer"]


def test_deadlock_is_still_detected_with_the_monitor_on(reports) -> None:
    with pytest.raises(gofer.Deadlock):
        gofer.run(lambda: gofer.Chan().recv())


def test_memory_watch_reports_once(reports) -> None:
    m = gofer.monitor(0.1, hook=reports.append, max_memory=1)
    m.check()
    m.check()
    mem = [r for r in reports if isinstance(r, _monitor.MemoryReport)]
    assert len(mem) == 1 and mem[0].rss > 1
    assert "max_memory" in mem[0].format()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        gofer.monitor(0)
    with pytest.raises(ValueError, match="max_memory"):
        gofer.monitor(0.1, max_memory=-1)


def test_environment_variable_turns_it_on(tmp_path) -> None:
    script = tmp_path / "stall.py"
    script.write_text(
        "import gofer, time\n"
        "def main():\n"
        "    time.sleep(1.0)  # STALL\n"
        "gofer.run(main)\n"
    )
    env = {**os.environ, "GOFER_MONITOR": "0.1"}
    p = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "has blocked the hub" in p.stderr and "STALL" in p.stderr
