"""The immutable sequence of :class:`Problem` every loader returns, and the data errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from ccpo_env.data.problem import Problem
from ccpo_env.registry import UnknownNameError


class DatasetArgumentError(TypeError, ValueError):
    """A split or option that a dataset does not take; the message lists what it does take.

    Both a ``TypeError`` (an unexpected keyword) and a ``ValueError`` (a bad value), so either ``except`` works.
    """


class DatasetNotFoundError(FileNotFoundError):
    """No source could provide a dataset (no local file and the Hub step failed).

    Attributes:
        name: the dataset asked for.
        tried: one line per resolution step, saying what was looked at and why it failed.
    """

    def __init__(self, message: str, *, name: str = "", tried: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.tried = list(tried)

    def __str__(self) -> str:  # FileNotFoundError would format (errno, strerror) otherwise
        return str(self.args[0]) if self.args else ""


class UnknownDatasetError(KeyError, UnknownNameError):
    """A dataset name that is not registered. Both a ``KeyError`` and a ``ValueError``."""

    def __str__(self) -> str:  # KeyError would repr() the message, escaping the newlines
        return str(self.args[0]) if self.args else ""


class Dataset(Sequence[Problem]):
    """An immutable, indexable sequence of :class:`Problem` with a name and a split.

    Environments pick problems by position (``ds[i]``) or by id (``ds[ds.index_of(pid)]``).

    Attributes:
        name: the registry name (e.g. ``"math500"``).
        split: ``"test"`` for the benchmark sets; ``"train"``/``"test"`` for ``arith``.
        skipped: how many source items were dropped because their gold answer was empty.
        skipped_ids: the ids of those items.
        origin: where the items came from (a file path, ``hf://<repo>``, ``generated``, ...).
    """

    def __init__(
        self,
        problems: Iterable[Problem] = (),
        *,
        name: str,
        split: str = "test",
        skipped: int = 0,
        skipped_ids: Sequence[str] = (),
        origin: str = "",
    ) -> None:
        items = tuple(problems)
        for k, p in enumerate(items):
            if not isinstance(p, Problem):
                raise TypeError(f"dataset {name!r}: item {k} is a {type(p).__name__}, not a Problem")
        self._problems = items
        self._name = name
        self._split = split
        self._skipped = int(skipped)
        self._skipped_ids = tuple(skipped_ids)
        self._origin = origin
        self._ids: dict[str, int] | None = None  # built on first index_of()

    # -- metadata -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def split(self) -> str:
        return self._split

    @property
    def skipped(self) -> int:
        return self._skipped

    @property
    def skipped_ids(self) -> tuple[str, ...]:
        return self._skipped_ids

    @property
    def origin(self) -> str:
        return self._origin

    # -- sequence protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._problems)

    def _get(self, index: int) -> Problem:
        """The item at a non-negative, in-range index (subclasses generate lazily here)."""
        return self._problems[index]

    @overload
    def __getitem__(self, index: int) -> Problem: ...
    @overload
    def __getitem__(self, index: slice) -> Dataset: ...
    def __getitem__(self, index: int | slice) -> Problem | Dataset:
        n = len(self)
        if isinstance(index, slice):
            return self._derive([self._get(i) for i in range(*index.indices(n))])
        try:
            i = index.__index__()
        except AttributeError:
            raise TypeError(f"dataset indices must be int or slice, not {type(index).__name__}") from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for dataset {self._name!r} of length {n}")
        return self._get(i)

    def __iter__(self) -> Iterator[Problem]:
        for i in range(len(self)):
            yield self._get(i)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, Problem):
            return False
        try:
            return self._get(self.index_of(item.id)) == item
        except KeyError:
            return False

    def index(self, value: Problem, start: int = 0, stop: int | None = None) -> int:  # type: ignore[override]
        """Position of ``value`` (looked up by id, so it is O(1) and works on generated datasets)."""
        if value in self:
            i = self.index_of(value.id)
            if start <= i and (stop is None or i < stop):
                return i
        raise ValueError(f"{value.id!r} is not in dataset {self._name!r}")

    def count(self, value: Problem) -> int:  # type: ignore[override]
        return int(value in self)  # ids are unique within a dataset

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self._name!r}, split={self._split!r}, n={len(self)}, "
            f"skipped={self._skipped})"
        )

    # -- lookup and truncation ------------------------------------------------------------------
    def index_of(self, problem_id: str) -> int:
        """The position of the problem with this id.

        Raises:
            KeyError: the id is not in this dataset; the message shows what ids look like and the
                closest matches.
        """
        if self._ids is None:
            self._ids = {p.id: i for i, p in enumerate(self._problems)}
        try:
            return self._ids[problem_id]
        except KeyError:
            raise KeyError(self._missing_id_message(problem_id)) from None

    def _missing_id_message(self, problem_id: str) -> str:
        ids = list(self._ids or ())
        close = difflib.get_close_matches(str(problem_id), ids, n=3, cutoff=0.6)
        msg = f"problem id {problem_id!r} is not in dataset {self._name!r} (split {self._split!r}, {len(self)} items)"
        if problem_id in self._skipped_ids:
            msg += "; it was skipped at load time because its gold answer is empty"
        if close:
            msg += f"; did you mean {', '.join(map(repr, close))}?"
        elif ids:
            msg += f"; ids look like {', '.join(map(repr, ids[:3]))}"
        return msg

    def take(self, n: int) -> Dataset:
        """The first ``n`` items (deterministic truncation), as a dataset of the same name/split."""
        n = _check_limit(n)
        if n >= len(self):
            return self
        return self._derive(self._problems[:n])

    def _derive(self, problems: Iterable[Problem]) -> Dataset:
        return Dataset(
            problems,
            name=self._name,
            split=self._split,
            skipped=self._skipped,
            skipped_ids=self._skipped_ids,
            origin=self._origin,
        )


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    return limit
