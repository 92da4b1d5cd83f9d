"""The public API contract (../shared/DESIGN.md): every promised name exists."""

from __future__ import annotations

import gofer

CONTRACT = ["run", "go", "Task", "current", "sleep", "yield_now", "Cancelled", "timeout", "scope", "to_thread", "Chan", "Closed", "select", "default", "after", "tick", "Ticker", "Timer", "race", "WaitGroup", "Mutex", "RwLock", "Semaphore", "Event", "Condition", "Barrier", "Once", "socket", "net", "http"]


def test_contract_names_exist():
    missing = [n for n in CONTRACT if not hasattr(gofer, n)]
    assert missing == []


def test_all_is_accurate():
    for name in gofer.__all__:
        assert hasattr(gofer, name), name


def test_task_and_chan_methods():
    for m in ("join", "cancel", "done", "cancelled", "result", "exception"):
        assert callable(getattr(gofer.Task, m))
    ch = gofer.Chan(1)
    for m in ("send", "recv", "recv_ok", "try_send", "try_recv", "close"):
        assert callable(getattr(ch, m))
    assert len(ch) == 0
    for attr in ("listen", "connect", "serve"):
        assert callable(getattr(gofer.net, attr))
