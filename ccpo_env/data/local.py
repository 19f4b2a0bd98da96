"""Reading ``<name>.jsonl`` files and turning records into :class:`Problem` items.

A record is a JSON object with at least ``id``, ``problem`` and ``answer``; ``source`` is the
dataset name; every other field goes to :attr:`Problem.extras`. Records whose gold answer is empty
are skipped and counted (e.g. two items of gaokao2023en), because they cannot be scored.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ccpo_env.data.dataset import Dataset
from ccpo_env.data.problem import Problem

logger = logging.getLogger("ccpo_env.data")

#: Fields that map onto Problem attributes rather than extras.
_CORE_FIELDS = frozenset({"id", "problem", "answer", "source", "answer_type"})


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (blank lines allowed). Errors name the file and line."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            records.append(rec)
    return records


def answer_to_str(value: Any) -> str:
    """A gold answer as a string: ints as is, integral floats without ``.0`` (AMC's ``27.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def records_to_dataset(
    records: Iterable[Mapping[str, Any]],
    *,
    name: str,
    split: str = "test",
    answer_type: str = "math",
    origin: str = "",
) -> Dataset:
    """Normalise records to a :class:`Dataset`, skipping (and counting) empty gold answers.

    Raises:
        ValueError: a record lacks ``id`` or ``problem``, or two records share an id.
    """
    problems: list[Problem] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for k, rec in enumerate(records):
        where = f"{origin or name}: record {k}"
        for field in ("id", "problem"):
            if rec.get(field) in (None, ""):
                raise ValueError(f"{where} has no {field!r} field (fields: {sorted(rec)})")
        if "answer" not in rec:
            raise ValueError(f"{where} has no 'answer' field (fields: {sorted(rec)})")
        pid = str(rec["id"])
        if pid in seen:
            raise ValueError(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        answer = answer_to_str(rec["answer"])
        if not answer:
            skipped.append(pid)
            continue
        extras = {key: val for key, val in rec.items() if key not in _CORE_FIELDS}
        problems.append(
            Problem(
                id=pid,
                problem=str(rec["problem"]),
                answer=answer,
                source=name,
                answer_type=str(rec.get("answer_type") or answer_type),
                extras=extras,
            )
        )
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        logger.info("%s: skipped %d item(s) with an empty gold answer: %s", name, len(skipped), shown)
    return Dataset(problems, name=name, split=split, skipped=len(skipped), skipped_ids=skipped, origin=origin)
