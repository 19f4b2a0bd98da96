"""The verifier as a TRL-style reward function ``(prompts, completions, **columns) -> list[float]``.

>>> reward = make_trl_reward("answer")
>>> reward(prompts=["1+1?"], completions=["\\\\boxed{2}"], answer=["2"])
[1.0]

Works with TRL's ``GRPOTrainer(reward_funcs=[reward])``: completions may be plain strings or chat messages
(``[{"role": "assistant", "content": ...}]``, the content possibly a list of ``{"type": "text"}`` parts); the
gold answers come from the dataset column ``answer_column``. No TRL import is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .api import ANSWER_TYPES, DEFAULT_TIMEOUT, _check_type, verify_batch
from .extract import TRAINING_EXTRACTION, check_extraction


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, a message dict, or a list of chat messages (last assistant turn)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content", "")
        if isinstance(content, list):  # multimodal-style parts
            return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        return "" if content is None else str(content)
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        chosen = assistant or messages
        return completion_text(chosen[-1]) if chosen else ""
    return str(completion)


def make_trl_reward(
    answer_column: str = "answer",
    *,
    correct: float = 1.0,
    incorrect: float = 0.0,
    no_answer: float | None = None,
    answer_type: str = "math",
    answer_type_column: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int | None = None,
    extraction: str = TRAINING_EXTRACTION,
) -> Callable[..., list[float]]:
    """Build a TRL reward function backed by :func:`~ccpo_env.verify.verify_batch`.

    Args:
        answer_column: dataset column holding the gold answers (passed by TRL as a keyword argument).
        correct: reward for a correct answer.
        incorrect: reward for a wrong answer (and for timeouts).
        no_answer: reward when no final answer could be extracted (default: ``incorrect``), e.g. a small
            format penalty.
        answer_type: ``"math"`` or ``"label"`` for every row, unless ``answer_type_column`` is given.
        answer_type_column: optional column with a per-row answer type.
        timeout, workers: passed to :func:`verify_batch`.
        extraction: answer extraction mode (see :mod:`ccpo_env.verify.extract`); default ``"anchored"``, the
            training setting: no reward for a number guessed from unfinished prose. ``"boxed"`` makes the box a
            hard format requirement.

    Returns:
        ``fn(prompts, completions, **columns) -> list[float]`` with ``fn.__name__`` set
        (TRL logs rewards under the function's name).

    Raises:
        ValueError: unknown ``answer_type`` or ``extraction``. The returned function raises ``KeyError`` when the answer
            column is missing from its keyword arguments.
    """
    _check_type(answer_type)
    check_extraction(extraction)
    no_answer_reward = incorrect if no_answer is None else no_answer

    def reward(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        if answer_column not in columns:
            available = sorted(k for k in columns if not k.startswith("trainer"))
            raise KeyError(f"reward needs the gold column {answer_column!r}; got columns {available}")
        golds = list(columns[answer_column])
        texts = [completion_text(c) for c in completions]
        if answer_type_column is not None:
            types = [str(t) for t in columns[answer_type_column]]
        else:
            types = [answer_type] * len(texts)
        verdicts = verify_batch(
            texts, golds, answer_types=types, timeout=timeout, workers=workers, extraction=extraction
        )
        return [
            correct if v.correct else (no_answer_reward if v.reason == "no_answer" else incorrect)
            for v in verdicts
        ]

    reward.__name__ = f"ccpo_verifier_{answer_column}"
    reward.__qualname__ = reward.__name__
    return reward


__all__ = ["ANSWER_TYPES", "completion_text", "make_trl_reward"]
