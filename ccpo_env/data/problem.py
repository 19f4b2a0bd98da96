"""The one record shape every dataset is normalised to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A benchmark item.

    Attributes:
        id: stable identifier, unique within its dataset.
        problem: the problem statement shown to the agents.
        answer: the gold answer as a string (LaTeX allowed).
        source: the dataset name (e.g. ``"math500"``).
        answer_type: how the verifier compares answers: ``"math"`` or ``"label"`` (FOLIO).
        extras: every other field of the original record (subject, level, solution, ...).
    """

    id: str
    problem: str
    answer: str
    source: str
    answer_type: str = "math"
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
