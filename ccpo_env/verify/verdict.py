"""The verifier's result type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The verifier's judgement of one response.

    Attributes:
        correct: whether the extracted answer matches the gold.
        pred: the extracted final answer, or ``None`` when none was found.
        reason: a short machine-readable reason, e.g. ``"exact"``, ``"rational"``, ``"math_verify"``,
            ``"mismatch"``, ``"no_answer"``, ``"timeout"``, ``"label"``, ``"error:<Type>"``.
    """

    correct: bool
    pred: str | None
    reason: str
