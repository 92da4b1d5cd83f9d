"""Coroutine-local attributes: ``gofer.local()`` is ``threading.local`` per coroutine.

Each coroutine (and each thread's main code) sees its own set of attributes.
As with ``threading.local``, a subclass's ``__init__`` runs again, with the
original arguments, the first time a new coroutine touches the object. The
per-coroutine dicts are kept in a weak dictionary keyed by the coroutine, so
they go away with the coroutine.
"""

from __future__ import annotations

import weakref
from typing import Any

from greenlet import getcurrent

from gofer._core import Worker


def _owner() -> Any:
    """The running Task (workers are reused, so not the greenlet), or the greenlet."""
    g = getcurrent()
    if g.__class__ is Worker:
        t = g.task
        if t is not None:
            return t
    return g  # a worker between tasks (a finalizer, say) is its own owner

__all__ = ["local"]


class local:
    """Attributes private to the running coroutine."""

    __slots__ = ("__weakref__", "_gofer_args", "_gofer_dicts")

    def __new__(cls, *args: Any, **kw: Any) -> local:
        if (args or kw) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported")
        self = object.__new__(cls)
        object.__setattr__(self, "_gofer_args", (args, kw))
        object.__setattr__(self, "_gofer_dicts", weakref.WeakKeyDictionary())
        object.__getattribute__(self, "_gofer_dicts")[_owner()] = {}
        return self

    def _gofer_dict(self) -> dict[str, Any]:
        dicts = object.__getattribute__(self, "_gofer_dicts")
        g = _owner()
        d = dicts.get(g)
        if d is None:
            d = dicts[g] = {}
            init = type(self).__init__
            if init is not object.__init__:
                args, kw = object.__getattribute__(self, "_gofer_args")
                init(self, *args, **kw)
        return d  # type: ignore[no-any-return]

    def __getattribute__(self, name: str) -> Any:
        if name in ("__class__", "__dict__", "_gofer_dict"):
            if name == "__dict__":
                return object.__getattribute__(self, "_gofer_dict")()
            return object.__getattribute__(self, name)
        d = object.__getattribute__(self, "_gofer_dict")()
        if name in d:
            return d[name]
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("__dict__", "_gofer_args", "_gofer_dicts"):
            raise AttributeError(f"{type(self).__name__!r} object attribute {name!r} is read-only")
        object.__getattribute__(self, "_gofer_dict")()[name] = value

    def __delattr__(self, name: str) -> None:
        d = object.__getattribute__(self, "_gofer_dict")()
        try:
            del d[name]
        except KeyError:
            raise AttributeError(name) from None
