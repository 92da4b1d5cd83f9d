"""Build gofer; with ``GOFER_COMPILE=1``, also compile its kernel with Cython.

The kernel (``gofer._core``) is plain Python, the reference, and what a
plain install runs. ``GOFER_COMPILE=1 pip install .`` also compiles the same
sources (typed by the ``.pxd`` files beside them) into extension modules of
the same names, beside the ``.py`` files, which Python then imports first.
It is not the default: it runs fewer instructions per operation, but it is
slower on the clock where coroutines switch most (echo, spawn): its C
frames make every parked coroutine's saved C stack 0.6-1.2 KB larger, which
greenlet copies on each switch, and it reads untyped objects' attributes
through the generic lookup (docs/kernel.md has the profile and figures).
``GOFER_PURE_PYTHON=1`` at run time makes gofer import the ``.py`` sources
even where compiled modules exist (``gofer/_core/_kernel.py``). A failed
compile only warns: the install then has the pure-Python kernel, which
behaves the same.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# Compiled modules, as dotted names under src/. Keep in step with
# gofer._core._kernel.COMPILED (tests/kernel/test_kernel_build.py checks).
COMPILED = [
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
]

# Extension modules with no pure-Python twin, built with the kernel: they
# only make the compiled kernel faster (gofer._core.__init__ loads them).
NATIVE = ["gofer._core._members"]

# Annotations stay annotations: typing comes from the .pxd files beside the
# sources, never from a Python type hint changing what a call accepts.
DIRECTIVES = {
    "language_level": 3,
    "annotation_typing": False,
    "binding": True,
    "embedsignature": True,
}


def _compile() -> bool:
    def on(name: str) -> bool:
        return os.environ.get(name, "") not in ("", "0")

    return on("GOFER_COMPILE") and not on("GOFER_PURE_PYTHON")


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: gofer runs without the compiled kernel."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:  # pip asks for no parallelism: compile on every core
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers...
            self._warn(f"compiling the kernel failed ({exc}); gofer will use its pure-Python kernel")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(f"compiling {ext.name} failed ({exc}); it stays pure Python")

    @staticmethod
    def _warn(msg: str) -> None:
        print(f"gofer setup: {msg}", file=sys.stderr)


def extensions() -> list:  # type: ignore[type-arg]
    if not _compile():
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print("gofer setup: GOFER_COMPILE=1 but Cython is not installed; pure-Python kernel", file=sys.stderr)
        return []
    import greenlet

    # greenlet.h, for the kernel's greenlet subclasses (the .pxd files).
    inc = [os.path.dirname(os.path.dirname(greenlet.__file__))]
    exts = [
        Extension(name, [os.path.join("src", *name.split(".")) + ".py"], include_dirs=inc)
        for name in COMPILED
    ] + [Extension(name, [os.path.join("src", *name.split(".")) + ".pyx"], include_dirs=inc) for name in NATIVE]
    try:
        return cythonize(
            exts,
            compiler_directives=DIRECTIVES,
            build_dir=os.path.join("build", "cython"),
            nthreads=os.cpu_count() or 1,
            quiet=True,
        )
    except Exception as exc:  # Cython's CompileError: a .pxd out of step with its source
        print(f"gofer setup: Cython failed ({exc}); pure-Python kernel", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
