"""pytest plugin: gofer fixtures and a leak check around every test.

Enable with ``-p gofer.testing.plugin`` (or ``pytest_plugins = [...]``).

* ``vrun``: ``gofer.testing.run``, i.e. ``gofer.run`` on a virtual clock.
* ``poller_name``: the poller in use (``GOFER_POLLER`` selects it); a test
  marked ``@pytest.mark.poller("epoll")`` runs on that poller only.
* Leak check (on by default; mark a test ``@pytest.mark.no_leak_check`` to
  skip it): after each test, this thread's hub must have no live coroutine,
  and no file descriptor or non-pool thread made by the test may remain.
* ``GOFER_PATCH=1`` in the environment applies ``gofer.patch()`` at start-up,
  before any test module is imported, so that a whole suite can be run once
  with the stdlib patched (the plugin itself keeps the originals). A test
  marked ``@pytest.mark.unpatched`` checks the unpatched stdlib (a blocking
  ``time.sleep``, ``type(s) is ssl.SSLSocket``) and is skipped then.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gofer._core import hub_if_any, ignore_thread
from gofer._core import poller_name as _poller_name
from gofer.testing import run as _vrun


def _is_timeout_watchdog(ident: int, th: threading.Thread | None) -> bool:
    """pytest-timeout's watchdog thread, which never wakes a hub."""
    return th is not None and th.daemon and th.name.startswith("pytest_timeout")


def pytest_configure(config: pytest.Config) -> None:
    # A hub whose coroutines all wait forever raises Deadlock only when no
    # other thread could still wake it; that watchdog cannot.
    ignore_thread(_is_timeout_watchdog)
    config.addinivalue_line("markers", "no_leak_check: skip gofer's fd/thread/task leak check")
    config.addinivalue_line("markers", "unpatched: the test checks the unpatched stdlib; skipped under GOFER_PATCH=1")
    if _patched_run():
        import warnings

        from gofer.patch import PatchWarning, patch

        with warnings.catch_warnings():
            # pytest's own objects predate the patch; they are no test's concern.
            warnings.simplefilter("ignore", PatchWarning)
            patch()


def _patched_run() -> bool:
    return os.environ.get("GOFER_PATCH", "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    patched = _patched_run()
    skip = pytest.mark.skip(reason="checks the unpatched stdlib (GOFER_PATCH=1)")
    current = _poller_name()
    for item in items:
        if patched and item.get_closest_marker("unpatched"):
            item.add_marker(skip)
        m = item.get_closest_marker("poller")
        if m is not None and m.args and m.args[0] != current:
            item.add_marker(pytest.mark.skip(reason=f"runs on the {m.args[0]} poller only (this run: {current})"))


def _fds() -> set[int]:
    try:
        return {int(x) for x in os.listdir("/proc/self/fd")}
    except FileNotFoundError:  # not Linux: nothing to compare
        return set()


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None and not t.name.startswith("gofer-worker")}


@pytest.fixture
def vrun() -> Callable[..., Any]:
    """``gofer.run`` on a fresh hub with a virtual clock."""
    return _vrun


@pytest.fixture
def poller_name() -> str:
    return _poller_name()


@pytest.fixture(autouse=True)
def _gofer_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("no_leak_check"):
        yield
        return
    fds0 = _fds()
    threads0 = _threads()
    yield
    problems = []
    hub = hub_if_any()
    if hub is not None:
        if hub.tasks:
            problems.append(f"coroutines left running: {sorted(t._label() for t in hub.tasks)}")
        hub.close()
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        new_fds = _fds() - fds0
        new_threads = _threads() - threads0
        if not (new_fds or new_threads) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if new_fds:
        desc = []
        for fd in sorted(new_fds):
            try:
                desc.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
            except OSError:
                desc.append(str(fd))
        problems.append(f"file descriptors leaked: {desc}")
    if new_threads:
        names = [t.name for t in threading.enumerate() if t.ident in new_threads]
        problems.append(f"threads leaked: {names}")
    if problems:
        pytest.fail("gofer leak check: " + "; ".join(problems), pytrace=False)
