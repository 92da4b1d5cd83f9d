"""gofer's benchmarks: side-by-side suites against its peers, run from a checkout.

``python -m bench`` in a gofer checkout (or ``gofer bench`` with gofer
installed from it in editable mode) runs them; they are not part of the
installed package, and measure whichever ``gofer`` is importable (the
checkout's ``src/`` where none is).

A *suite* measures one workload on several *systems* (gofer, asyncio,
uvloop, trio, gevent, threads, ...). Every single measurement runs in a fresh
subprocess (so that gevent's or uvloop's imports cannot touch the others, and
memory figures start clean), and the runner interleaves the systems round by
round in a shuffled order, so that a noisy machine hurts them alike. It
reports the median of each system and its ratio to gofer.

Suites live in modules named in :data:`SUITE_MODULES`; each defines ``SUITES``,
a list of :class:`Suite`. A system is a function ``fn(params) -> dict`` of
metric name to value that runs in the subprocess; raising ``ImportError``
means "not installed" and the system is skipped with that reason.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "SUITE_MODULES", "Suite", "all_suites", "child_env", "find_suite", "systems"]

# The checkout: bench/ is a top-level package beside src/.
ROOT = Path(__file__).resolve().parent.parent
_PATHS = [str(ROOT)]
if importlib.util.find_spec("gofer") is None:  # not installed: the checkout's own
    _PATHS.append(str(ROOT / "src"))
    sys.path.insert(0, _PATHS[-1])

# Modules that define SUITES; later issues add theirs here.
SUITE_MODULES = [
    "bench.core",
    "bench.spawn_alive",
    "bench.echo",
    "bench.chan",
    "bench.chan_select",
    "bench.http",
    "bench.http_mem",
    "bench.https",
    "bench.interop",
]


@dataclass
class Suite:
    """One workload measured on several systems.

    ``metric`` names the figure that ranks the systems (its unit in
    ``unit``); ``lower_is_better`` says which way is good. ``params`` are the
    full-run parameters, ``quick`` overrides them for ``--quick``.
    ``systems`` maps a system name to a *reference* "module:function" (or
    "module:function:name", see :func:`resolve`) so that the subprocess can
    import just that.
    """

    name: str
    description: str
    metric: str
    unit: str
    systems: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    lower_is_better: bool = True
    rounds: int = 5
    quick_rounds: int = 3
    timeout: float = 120.0
    goal: str = ""  # the figure an issue asks for, shown with the results

    def params_for(self, quick: bool) -> dict[str, Any]:
        p = dict(self.params)
        if quick:
            p.update(self.quick)
        return p


def all_suites() -> list[Suite]:
    out: list[Suite] = []
    for mod in SUITE_MODULES:
        out.extend(importlib.import_module(mod).SUITES)
    return out


def find_suite(name: str) -> Suite:
    for s in all_suites():
        if s.name == name:
            return s
    raise KeyError(f"no benchmark suite named {name!r}")


def systems(module: str, prefix: str, *names: str) -> dict[str, str]:
    """``{name: "module:prefix_name"}`` (dashes in a name become underscores), in order."""
    return {name: f"{module}:{prefix}_{name.replace('-', '_')}" for name in names}


def child_env(**extra: str) -> dict[str, str]:
    """This environment for a child process (worker, server) that imports ``bench`` or ``gofer``.

    Children start in other directories (a test's temporary one), so the
    checkout goes on their ``PYTHONPATH``.
    """
    env = dict(os.environ, **extra)
    old = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in _PATHS]
    env["PYTHONPATH"] = os.pathsep.join([*_PATHS, *old])
    return env


def resolve(ref: str) -> Callable[[dict[str, Any]], dict[str, float]]:
    """The system a reference names: ``module:function``, or ``module:function:name``.

    The second form is for one function that measures several systems,
    ``function(name, params)``.
    """
    mod, fn, *name = ref.split(":", 2)
    func = getattr(importlib.import_module(mod), fn)
    return functools.partial(func, name[0]) if name else func
