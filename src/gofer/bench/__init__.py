"""``gofer bench``: side-by-side benchmark suites against gofer's peers.

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

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SUITE_MODULES", "Suite", "all_suites", "find_suite"]

# Modules that define SUITES; later issues add theirs here.
SUITE_MODULES = [
    "gofer.bench.core",
    "gofer.bench.echo",
    "gofer.bench.chan",
    "gofer.bench.chan_select",
    "gofer.bench.http",
    "gofer.bench.http_mem",
    "gofer.bench.https",
    "gofer.bench.interop",
]


@dataclass
class Suite:
    """One workload measured on several systems.

    ``metric`` names the figure that ranks the systems (its unit in
    ``unit``); ``lower_is_better`` says which way is good. ``params`` are the
    full-run parameters, ``quick`` overrides them for ``--quick``.
    ``systems`` maps a system name to a *reference* "module:function" so that
    the subprocess can import just that.
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


def resolve(ref: str) -> Callable[[dict[str, Any]], dict[str, float]]:
    mod, _, fn = ref.partition(":")
    return getattr(importlib.import_module(mod), fn)
