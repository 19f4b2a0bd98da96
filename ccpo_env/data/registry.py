"""The dataset registry and :func:`load_dataset`.

The benchmark sets resolve in this order, never silently falling back to other data:

1. ``data_dir=`` argument: ``<data_dir>/<name>.jsonl``;
2. the ``CCPO_DATA_DIR`` environment variable: the same file name there;
3. the Hugging Face Hub through ``datasets`` (see :mod:`ccpo_env.data.hub` for ids and columns).

If all three fail, :class:`DatasetNotFoundError` says what was tried and how to fix it.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccpo_env.data.arith import load_arith
from ccpo_env.data.dataset import (
    Dataset,
    DatasetArgumentError,
    DatasetNotFoundError,
    UnknownDatasetError,
    _check_limit,
)
from ccpo_env.data.hub import HUB_SPECS, HubUnavailable, load_hub_records
from ccpo_env.data.local import read_jsonl, records_to_dataset
from ccpo_env.data.problem import Problem
from ccpo_env.registry import Registry

logger = logging.getLogger("ccpo_env.data")

DATA_DIR_ENV = "CCPO_DATA_DIR"

Loader = Callable[..., "Dataset | Sequence[Problem]"]


@dataclass(frozen=True)
class _Entry:
    loader: Loader
    description: str
    splits: tuple[str, ...] | None


_REGISTRY: Registry[_Entry] = Registry("dataset")


def register_dataset(
    name: str, loader: Loader, *, description: str = "", splits: Sequence[str] | None = None, overwrite: bool = False
) -> None:
    """Add a dataset to the registry.

    Args:
        name: the registry name.
        loader: called as ``loader(split=..., **options)``; it also receives ``data_dir=`` and
            ``limit=`` when it accepts them (or ``**kwargs``). It returns a :class:`Dataset` or a
            sequence of :class:`Problem` (wrapped into a ``Dataset`` named ``name``).
        description: one line shown by :func:`describe_datasets`.
        splits: the splits it has (checked before loading, so a wrong one fails fast); ``None``: not declared.
        overwrite: replace an existing entry instead of raising ``ValueError``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    if not callable(loader):
        raise TypeError(f"loader for {name!r} must be callable, got {type(loader).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY.register(name, _Entry(loader, description, None if splits is None else tuple(splits)), overwrite=True)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY.names())


def describe_datasets() -> dict[str, str]:
    """``{name: one-line description}`` for every registered dataset, sorted by name."""
    return {n: _REGISTRY.get(n).description for n in list_datasets()}


def _unknown(name: str) -> UnknownDatasetError:
    names = list_datasets()
    lowered = {n.lower(): n for n in names}  # case-insensitive suggestions: "MATH500" -> "math500"
    close = [lowered[c] for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.5)]
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return UnknownDatasetError(f"unknown dataset {name!r}.{hint} Valid names: {', '.join(names)}.")


def _loader_kwargs(
    name: str, split: str, data_dir: Any, limit: int | None, options: dict[str, Any]
) -> tuple[Loader, dict[str, Any]]:
    """The loader of ``name`` and the keyword arguments it will get; bad names, splits and options raise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _unknown(name)
    entry = _REGISTRY.get(name)
    if entry.splits is not None and split not in entry.splits:
        raise DatasetArgumentError(
            f"dataset {name!r} has no split {split!r}; its splits: {', '.join(map(repr, entry.splits))}"
            + (". For training data use 'math_train' or 'arith' (split='train')" if entry.splits == ("test",) else "")
        )
    kwargs: dict[str, Any] = dict(options)
    params = _parameters(entry.loader)
    takes_all = params is None or any(p.kind is p.VAR_KEYWORD for p in params.values())
    # split/data_dir/limit reach the loader only if it takes them; a non-default value it cannot take
    # is an error rather than silently ignored.
    for key, val, default in (("split", split, "test"), ("data_dir", data_dir, None), ("limit", limit, None)):
        if takes_all or key in params:  # type: ignore[operator]
            kwargs[key] = val
        elif val != default and key != "limit":  # limit is applied by load_dataset in any case
            raise DatasetArgumentError(f"dataset {name!r} does not take {key} (got {val!r})")
    if params is not None and not takes_all:
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            valid = sorted(set(params) - {"split", "data_dir", "limit"})
            raise DatasetArgumentError(
                f"dataset {name!r} does not take option(s) {unknown}; its options: {valid or 'none'}"
            )
    return entry.loader, kwargs


def dataset_splits(name: str) -> tuple[str, ...] | None:
    """The splits a registered dataset declares (``None``: not declared)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY.get(name).splits


def pick_split(name: str, preferred: str) -> str:
    """``preferred`` if dataset ``name`` has it (or declares no splits), else its only split.

    ``pick_split("arith", "train") == "train"``; ``pick_split("math500", "train") == "test"`` (an evaluation set
    has only its test split); ``pick_split("math_train", "test") == "train"``.
    """
    splits = dataset_splits(name)
    if splits is None or preferred in splits or len(splits) != 1:
        return preferred
    return splits[0]


def check_dataset_args(name: str, *, split: str = "test", options: dict[str, Any] | None = None) -> None:
    """Raise the error :func:`load_dataset` would raise for this name, split and options, without loading.

    Raises:
        UnknownDatasetError: ``name`` is not registered (the message lists the valid names).
        DatasetArgumentError: a split the dataset does not have, or an option its loader does not take.
    """
    _loader_kwargs(name, split, None, None, dict(options or {}))


def load_dataset(
    name: str,
    *,
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    **options: Any,
) -> Dataset:
    """Load a registered dataset as a :class:`Dataset`.

    Args:
        name: a name from :func:`list_datasets`.
        split: ``"test"`` for the benchmark sets (the only split they have); ``"train"``/``"test"`` for arith.
        data_dir: a folder holding ``<name>.jsonl`` (checked before ``CCPO_DATA_DIR`` and the Hub).
        limit: keep only the first ``limit`` items (deterministic).
        **options: passed to the loader. Benchmark sets take ``hub_path`` (a local file/folder or Hub id
            replacing the default Hub dataset) and ``cache_dir`` (for ``datasets``); ``arith`` takes
            ``level``, ``seed``, ``variant``, ``size`` and ``easy_fraction``.

    Raises:
        UnknownDatasetError: (a ``KeyError`` and ``ValueError``) ``name`` is not registered.
        DatasetNotFoundError: (a ``FileNotFoundError``) no source could provide the data.
        DatasetArgumentError: (a ``TypeError`` and ``ValueError``) a split or option the dataset does not take.
        ValueError: a bad ``limit``.
    """
    if limit is not None:
        limit = _check_limit(limit)
    loader, kwargs = _loader_kwargs(name, split, data_dir, limit, options)
    result = loader(**kwargs)
    ds = result if isinstance(result, Dataset) else Dataset(result, name=name, split=split)
    return ds if limit is None else ds.take(limit)


def _parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins / C callables: pass everything
        return None


# --------------------------------------------------------------------------------------------------
# The benchmark sets
# --------------------------------------------------------------------------------------------------
_BENCHMARKS: dict[str, tuple[str, str]] = {
    # name: (answer_type, description)
    "math500": ("math", "MATH-500 test split (500 problems, Lightman et al. subset of MATH)"),
    "aime24": ("math", "AIME 2024 I and II (30 problems, integer answers)"),
    "aime25": ("math", "AIME 2025 I and II (30 problems, integer answers)"),
    "amc23": ("math", "AMC 2023 (40 problems)"),
    "gaokao2023en": ("math", "Gaokao 2023 maths, English (385 items, 383 with a gold answer)"),
    "minerva_math": ("math", "Minerva OCWCourses (272 problems)"),
    "gsm8k": ("math", "GSM8K test split (1319 word problems)"),
    "folio": ("label", "FOLIO v0.0 validation (204 items; answer True/False/Uncertain)"),
    "math_train": ("math", "MATH training split (7500 problems; answer = last \\boxed{} of the solution); split='train'"),
}

# The one split each set provides (the evaluation sets are test sets; math_train is for RL training).
_SPLIT_OF: dict[str, str] = {"math_train": "train"}


def _file_in(folder: str | os.PathLike[str], name: str) -> Path:
    return Path(folder).expanduser() / f"{name}.jsonl"


def _benchmark_loader(name: str, answer_type: str) -> Loader:
    only_split = _SPLIT_OF.get(name, "test")

    def load(
        split: str = only_split,
        data_dir: str | os.PathLike[str] | None = None,
        hub_path: str | os.PathLike[str] | None = None,
        cache_dir: str | None = None,
    ) -> Dataset:
        # load_dataset has checked split against the registered splits.
        tried: list[str] = []
        candidates: list[tuple[str, Path | None]] = []
        if data_dir is not None:
            candidates.append(("data_dir argument", _file_in(data_dir, name)))
        else:
            tried.append("data_dir argument: not given")
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if env:
            candidates.append((f"{DATA_DIR_ENV}={env}", _file_in(env, name)))
        else:
            candidates.append((f"{DATA_DIR_ENV}", None))
        for label, path in candidates:
            if path is None:
                tried.append(f"{label}: not set")
            elif path.is_file():
                recs = read_jsonl(path)
                return records_to_dataset(
                    recs, name=name, split=split, answer_type=answer_type, origin=str(path)
                )
            else:
                tried.append(f"{label}: {path} does not exist")
                # An explicit location without the file is worth a word before trying the next step.
                logger.warning("%s: %s not found (%s); trying the next source", name, path, label)
        spec = HUB_SPECS[name]
        hub_label = (
            f"Hugging Face Hub {str(hub_path) if hub_path is not None else spec.repo!r} via `datasets`"
        )
        try:
            recs, origin = load_hub_records(name, hub_path=hub_path, cache_dir=cache_dir)
        except HubUnavailable as e:
            tried.append(f"{hub_label}: {e}")
        else:
            return records_to_dataset(recs, name=name, split=split, answer_type=answer_type, origin=origin)
        raise DatasetNotFoundError(_not_found_message(name, tried), name=name, tried=tried)

    load.__doc__ = f"Load {name!r} from data_dir, ${DATA_DIR_ENV} or the Hugging Face Hub."
    return load


def _not_found_message(name: str, tried: list[str]) -> str:
    lines = [f"dataset {name!r} could not be loaded from any source. Tried, in order:"]
    lines += [f"  {k}. {t}" for k, t in enumerate(tried, 1)]
    lines += [
        "Fix it with one of:",
        f"  - pass data_dir=<folder containing {name}.jsonl> to load_dataset(...);",
        f"  - set the {DATA_DIR_ENV} environment variable to such a folder "
        "(JSON lines with id, problem, answer, source);",
        "  - `pip install datasets` (or `pip install ccpo[hub]`) with network access to the Hugging Face Hub, "
        "or a copy already in the HF cache and HF_HUB_OFFLINE=1.",
    ]
    return "\n".join(lines)


def _register_builtins() -> None:
    for name, (answer_type, description) in _BENCHMARKS.items():
        register_dataset(name, _benchmark_loader(name, answer_type), description=description,
                         splits=(_SPLIT_OF.get(name, "test"),), overwrite=True)
    register_dataset(
        "arith",
        load_arith,
        description="synthetic multi-step integer arithmetic, levels 1-5, seeded, offline (train/test)",
        splits=("train", "test"),
        overwrite=True,
    )


_register_builtins()
