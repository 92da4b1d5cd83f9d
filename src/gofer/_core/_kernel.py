"""Which kernel runs: the compiled one where it was built, or the pure-Python one.

The kernel's modules are plain Python, the reference and the default.
``GOFER_COMPILE=1 pip install`` (``setup.py``) also compiles them with
Cython into extension modules of the same names beside the sources, which
Python then imports first. This module, imported by the face before any of
them, decides:

* ``GOFER_PURE_PYTHON=1`` (any value but empty or ``0``) makes every kernel
  module load from its ``.py`` source, compiled modules or not;
* in a source checkout, a compiled module older than its source would run
  code that is no longer there: then the whole kernel loads from source
  (never half of it), with one warning saying how to rebuild.

:func:`kernel` says which kernel runs: ``"compiled"``, ``"pure"``, or
``"mixed"`` where only some modules compiled. The two behave the same;
docs/kernel.md has what each costs.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMPILED", "NATIVE", "PURE_REQUESTED", "kernel"]

# The modules setup.py compiles (tests/kernel/test_kernel_build.py keeps the two lists equal).
COMPILED = (
    "gofer._core._cancel",
    "gofer._core._hub",
    "gofer._core._io",
    "gofer._core._local",
    "gofer._core._lot",
    "gofer._core._park",
    "gofer._core._poll",
    "gofer._core._registry",
    "gofer._core._run",
    "gofer._core._slice",
    "gofer._core._task",
    "gofer._core._timers",
    "gofer._core._waitq",
    "gofer._core._wakeup",
)

# Extension modules with no pure-Python twin, built from ``.pyx`` with the
# compiled kernel (setup.py's NATIVE); ``gofer._core`` loads them only when
# the compiled kernel runs. They only make it faster.
NATIVE = ("gofer._core._members",)

_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXT = tuple(importlib.machinery.EXTENSION_SUFFIXES)
PURE_REQUESTED = os.environ.get("GOFER_PURE_PYTHON", "") not in ("", "0")


def _source(name: str) -> str:
    return os.path.join(_SRC, *name.split(".")) + (".pyx" if name in NATIVE else ".py")


def _compiled_file(name: str) -> str | None:
    base = os.path.join(_SRC, *name.split("."))
    for suffix in _EXT:
        if os.path.exists(base + suffix):
            return base + suffix
    return None


class _FromSource:
    """A meta-path finder that loads the kernel's modules from their sources."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(name, _source(name))


def _stale() -> list[str]:
    """Compiled modules older than their source, in a checkout (setup.py beside src/)."""
    if not os.path.exists(os.path.join(os.path.dirname(_SRC), "setup.py")):
        return []  # an installed copy: built from the sources it came with
    out = []
    for name in COMPILED + NATIVE:
        so = _compiled_file(name)
        if so is not None and os.path.getmtime(so) < os.path.getmtime(_source(name)):
            out.append(os.path.relpath(_source(name)))
    return out


def _choose() -> None:
    if not PURE_REQUESTED:
        stale = _stale()
        if not stale:
            return
        warnings.warn(
            "gofer: the compiled kernel is older than its sources ("
            + ", ".join(stale)
            + "); running the pure-Python kernel. Rebuild it with `pip install -e .` "
            "or `python setup.py build_ext --inplace`.",
            RuntimeWarning,
            stacklevel=4,
        )
    sys.meta_path.insert(0, _FromSource())


def kernel() -> str:
    """``"compiled"``, ``"pure"`` or ``"mixed"``: how the kernel's modules were loaded."""
    loaded = [sys.modules.get(name) for name in COMPILED]
    compiled = sum(
        1 for m in loaded if m is not None and (m.__file__ or "").endswith(_EXT)
    )
    if compiled == 0:
        return "pure"
    return "compiled" if compiled == len(COMPILED) else "mixed"


_choose()
