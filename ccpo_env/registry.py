"""One small name -> object registry for every registry in the project.

Datasets (:mod:`ccpo_env.data`), topologies (:mod:`ccpo_env.topology`), and in ``ccpo_agents`` the model
names, credit assigners, advantage estimators and policy losses are all :class:`Registry` instances, so
they register, list and fail the same way. An unknown name raises :class:`UnknownNameError` (a
``ValueError``) that lists every valid name and, when one is close, a ``difflib`` suggestion: config typos
are the most common failure and should be fixable in one read. Torch-free, like all of ``ccpo_env``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError", "unknown_name_message"]


class UnknownNameError(ValueError):
    """A name is not in a registry; the message lists the valid names."""


def unknown_name_message(kind: str, name: object, valid: list[str]) -> str:
    """``unknown <kind> <name>; valid names: ...`` with a close-match suggestion when there is one."""
    msg = f"unknown {kind} {name!r}; valid names: {', '.join(repr(n) for n in valid)}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        if close:
            msg += f". Did you mean {close[0]!r}?"
    return msg


class Registry(Generic[T]):
    """Ordered mapping ``name -> T`` with decorator-style registration and aliases.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"advantage estimator"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    @overload
    def register(self, name: str, obj: None = None, *, overwrite: bool = False) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T: ...

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False):
        """Register ``obj`` under ``name``; without ``obj`` returns a decorator.

        Re-registering the *same* object is a no-op (module reloads); a different object under a taken name
        is an error unless ``overwrite=True``: silently replacing a built-in would change results.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def decorator(o: T) -> T:
            old = self._items.get(name)
            if old is not None and old is not o and not overwrite:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered ({old!r}); pass overwrite=True to replace it"
                )
            self._items[name] = o
            return o

        return decorator if obj is None else decorator(obj)

    def alias(self, alias: str, name: str) -> None:
        """Let ``alias`` resolve to the registered ``name`` (kept out of :meth:`names`)."""
        self.get(name)
        self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for (itself, or the target of an alias)."""
        name = self._aliases.get(name, name) if isinstance(name, str) else name
        if name not in self._items:
            raise UnknownNameError(self._unknown_message(name))
        return name

    def get(self, name: str) -> T:
        """The object registered under ``name`` (or an alias of it); :class:`UnknownNameError` otherwise."""
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        """Registered names in registration order (aliases excluded)."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, object)`` pairs in registration order."""
        return iter(list(self._items.items()))

    def unregister(self, name: str) -> T:
        """Remove ``name`` (and aliases pointing at it); returns what was registered."""
        name = self.canonical(name)
        self._aliases = {a: n for a, n in self._aliases.items() if n != name}
        return self._items.pop(name)

    def copy(self) -> Registry[T]:
        """An independent copy (e.g. for a test that registers things and must leave the global one clean)."""
        new: Registry[T] = Registry(self.kind)
        new._items, new._aliases = dict(self._items), dict(self._aliases)
        return new

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __len__(self) -> int:
        return len(self._items)

    def _unknown_message(self, name: object) -> str:
        msg = unknown_name_message(self.kind, name, list(self._items))
        if "Did you mean" not in msg and isinstance(name, str):
            close = difflib.get_close_matches(name, list(self._aliases), n=1, cutoff=0.6)
            if close:
                msg += f". Did you mean {close[0]!r}?"
        return msg
