"""The stdlib as it was before patching, and gofer's own view of it.

``gofer.patch()`` rebinds attributes of stdlib modules (``socket.socket``,
``threading.Lock``, ``select.select``...). gofer itself must keep using the
originals: its hub needs a real OS lock and a real epoll object, and
``gofer.socket.socket`` calls ``socket.socket.__init__`` of the class it
extends, not of the class that replaced it. So before the first change this
module takes a snapshot of every module it is about to patch, and gives each
``gofer.*`` module (already imported, or imported later through a small
import hook) a *view* in place of its global that names a patched module: a
module object that answers the original for each name patching replaced,
and the live module's attribute for everything else (so a test that
monkeypatches ``os.sendfile`` is still seen by gofer).

``original(module, name)`` is the public way to reach an unpatched object
(``gofer.patch.original("time", "sleep")``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

from greenlet import getcurrent

from gofer._core import Worker, hub_if_any

__all__ = ["original", "save", "shield_gofer", "thread_may_block"]  # and _views

_snapshots: dict[str, dict[str, Any]] = {}
_views: dict[str, _View] = {}


class _View(types.ModuleType):
    """A stdlib module as it was before patching (see the module docstring)."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__, real.__doc__)
        object.__setattr__(self, "_gofer_real", real)

    def __getattr__(self, name: str) -> Any:
        # Only names patching replaced are in the view's own __dict__.
        return getattr(object.__getattribute__(self, "_gofer_real"), name)


class _Patcher:
    """Sets attributes of a live module, keeping each original for gofer's view."""

    __slots__ = ("_mod", "_view")

    def __init__(self, mod: types.ModuleType, view: _View) -> None:
        object.__setattr__(self, "_mod", mod)
        object.__setattr__(self, "_view", view)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mod, name)

    def __setattr__(self, name: str, value: Any) -> None:
        view = self._view
        if name not in view.__dict__ and hasattr(self._mod, name):
            view.__dict__[name] = getattr(self._mod, name)
        setattr(self._mod, name, value)


def save(modname: str) -> Any:
    """Snapshot ``modname`` (once, before any change); a setter for its attributes."""
    mod = sys.modules.get(modname)
    if mod is None:
        __import__(modname)
        mod = sys.modules[modname]
    if modname not in _snapshots:
        _snapshots[modname] = dict(mod.__dict__)
        _views[modname] = _View(mod)
        shield_gofer()
    return _Patcher(mod, _views[modname])


def original(modname: str, name: str) -> Any:
    """The object ``modname.name`` was before ``gofer.patch()`` changed it."""
    snap = _snapshots.get(modname)
    if snap is not None and name in snap:
        return snap[name]
    return getattr(__import__(modname), name)


def _shield_module(mod: types.ModuleType) -> None:
    name = getattr(mod, "__name__", "")
    if not name.startswith("gofer") or name.startswith("gofer.patch"):
        return
    g = mod.__dict__
    for key, value in list(g.items()):
        if isinstance(value, types.ModuleType) and not isinstance(value, _View):
            view = _views.get(value.__name__)
            if view is not None:
                g[key] = view


def shield_gofer() -> None:
    """Give every imported ``gofer.*`` module the views instead of patched modules."""
    for name, mod in list(sys.modules.items()):
        if (name == "gofer" or name.startswith("gofer.")) and mod is not None:
            _shield_module(mod)
    if not any(isinstance(f, _GoferFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _GoferFinder())


class _ShieldingLoader(importlib.abc.Loader):
    """Runs the real loader, then shields the new gofer module."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.inner.exec_module(module)
        _shield_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # get_source, get_resource_reader...


class _GoferFinder(importlib.abc.MetaPathFinder):
    """Import hook: gofer modules imported after patching get the views too."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not fullname.startswith("gofer.") or fullname.startswith("gofer.patch"):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ShieldingLoader(spec.loader)
                return spec
        return None


def thread_may_block() -> bool:
    """True if the caller is a thread's plain code with no coroutine to starve.

    Such a caller makes the original blocking call (a sleep, a select, a
    lookup, a join, a waitpid): that is exact, it needs no hub, and a pool
    thread calling a patched function must not queue work for the pool.
    Inside the hub it is False, so that gofer's own error is raised.
    """
    g = getcurrent()
    if g.__class__ is Worker:
        return False
    hub = hub_if_any()
    if hub is None or hub.closed:
        return True
    if g is hub:
        return False
    return len(hub.workers) == len(hub.idle_workers)  # no worker is running a task
