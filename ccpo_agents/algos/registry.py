"""A tiny name -> object registry shared by the estimator and loss registries.

Unknown names raise :class:`UnknownNameError` (a ``ValueError``) that lists every valid name and, when one is
close, a ``difflib`` suggestion -- config typos are the most common failure and should be fixed in one read.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar, overload

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(ValueError):
    """Raised when a name is not in a registry; the message lists the valid names."""


class Registry(Generic[T]):
    """Ordered mapping ``name -> T`` with decorator-style registration.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"advantage estimator"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str, obj: None = None, *, overwrite: bool = False) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T: ...

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False):
        """Register ``obj`` under ``name``; without ``obj`` returns a decorator.

        Re-registering the *same* object is a no-op (module reloads); a different object under a taken name
        is an error unless ``overwrite=True`` -- silently replacing a built-in would change results.
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

    def get(self, name: str) -> T:
        """Return the object registered under ``name`` or raise :class:`UnknownNameError`."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self._unknown_message(name)) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def _unknown_message(self, name: object) -> str:
        valid = ", ".join(repr(n) for n in self._items)
        msg = f"unknown {self.kind} {name!r}; valid names: {valid}"
        if isinstance(name, str):
            close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.6)
            if close:
                msg += f". Did you mean {close[0]!r}?"
        return msg
