"""Public verifier API: :func:`verify`, :func:`verify_batch`, :func:`equivalent` and the verdict cache.

Flow for one item (``answer_type="math"``):

1. extract the final answer (:func:`~ccpo_env.verify.extract.extract_answer`, strictness ``extraction``:
   ``"boxed"``, ``"anchored"`` or the default ``"lenient"``; a gold that is an option letter lets lenient
   extraction look for the picked letter in prose); none -> ``"no_answer"``;
2. normalise prediction and gold (:func:`~ccpo_env.verify.normalize.normalize_math`);
3. look up the bounded LRU cache keyed on ``(answer_type, normalised pred, normalised gold)``;
4. decide in-process when possible (:func:`~ccpo_env.verify.compare.decide`: exact match, exact rationals,
   decimal approximations (:mod:`~ccpo_env.verify.approx`), choices, equations, relations vs intervals,
   tuples, size guards) - microseconds, no sympy in this process;
5. otherwise run math-verify in a worker process with a hard timeout (:mod:`ccpo_env.verify.pool`).

``DEFAULT_TIMEOUT`` (5 s) bounds step 5 per item. Timeouts are not cached (they can depend on load).
Arguments that are not strings are treated as text (``None`` as empty); only bad *arguments* raise.

Which extraction mode where: :func:`verify` defaults to ``"lenient"`` (reads answers the way ecosystem
checkers do, for evaluation); RL rewards should use ``"anchored"`` (:data:`~ccpo_env.verify.TRAINING_EXTRACTION`,
the default of :func:`~ccpo_env.verify.make_trl_reward`), which never rewards a number guessed from prose,
or ``"boxed"`` when the prompt makes the box a format requirement. A boxed answer scores the same in
every mode.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence

from . import pool as _pool
from .compare import CHOICE_GOLD_RE, MAX_ANSWER_CHARS, Decision, decide
from .extract import DEFAULT_EXTRACTION, check_extraction, extract_answer, extract_label
from .normalize import compact, normalize_label, normalize_math
from .verdict import Verdict

ANSWER_TYPES = ("math", "label")
DEFAULT_TIMEOUT = 5.0
CACHE_SIZE = 100_000


class _LRU:
    """A small thread-safe LRU map with hit/miss counters."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


_CACHE = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    """Empty the verdict cache and reset its counters."""
    _CACHE.clear()


def cache_info() -> dict[str, int]:
    """``{"hits", "misses", "size", "maxsize"}`` of the verdict cache."""
    return {"hits": _CACHE.hits, "misses": _CACHE.misses, "size": len(_CACHE), "maxsize": _CACHE.maxsize}


def shutdown() -> None:
    """Stop the verifier's worker processes now (they restart on demand; also done at exit)."""
    _pool.shutdown_pool()


def _check_type(answer_type: str) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; valid: {', '.join(ANSWER_TYPES)}")


def _text(x: object) -> str:
    if x is None:
        return ""
    return x if isinstance(x, str) else str(x)


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _label_decision(pred: str, gold: str) -> Decision:
    p, g = normalize_label(pred), normalize_label(gold)
    if g is None:  # a gold that is not a label: fall back to a case-insensitive string match
        g = compact(normalize_math(gold)).lower()
        p = compact(normalize_math(pred)).lower()
    return (True, "label") if p is not None and p == g else (False, "mismatch")


class _Job:
    """One verify item on its way through the pipeline."""

    __slots__ = ("pred", "verdict", "key", "pred_norm", "gold_norm")

    def __init__(self) -> None:
        self.pred: str | None = None
        self.verdict: Verdict | None = None
        self.key: tuple | None = None
        self.pred_norm = self.gold_norm = ""


def _prepare(response: object, gold: object, answer_type: str, extraction: str) -> _Job:
    """Extraction, normalisation, cache and in-process decision; sets ``job.verdict`` when done."""
    job = _Job()
    response, gold = _text(response), _text(gold)
    if answer_type == "label":
        job.pred = extract_label(response, extraction)
        if job.pred is None:
            job.verdict = Verdict(False, None, "no_answer")
        else:
            correct, reason = _label_decision(job.pred, gold)
            job.verdict = Verdict(correct, job.pred, reason)
        return job
    gold_norm = normalize_math(gold)
    choices = CHOICE_GOLD_RE.fullmatch(compact(gold_norm)) is not None
    pred = extract_answer(response, extraction, choices=choices)
    if pred is None:
        job.verdict = Verdict(False, None, "no_answer")
        return job
    if len(pred) > MAX_ANSWER_CHARS:
        job.verdict = Verdict(False, pred[:MAX_ANSWER_CHARS], "answer_too_long")
        return job
    job.pred = pred
    job.pred_norm, job.gold_norm = normalize_math(pred), gold_norm
    if not job.gold_norm:
        job.verdict = Verdict(False, pred, "no_gold")
        return job
    if not job.pred_norm:
        job.verdict = Verdict(False, pred, "no_answer")
        return job
    job.key = (answer_type, job.pred_norm, job.gold_norm)
    hit = _CACHE.get(job.key)
    if hit is None:
        hit = decide(job.pred_norm, job.gold_norm)
        if hit is not None:
            _CACHE.put(job.key, hit)
    if hit is not None:
        job.verdict = Verdict(hit[0], pred, hit[1])
    return job


def _finish(jobs: list[_Job], timeout: float, workers: int, symmetric: bool = False) -> None:
    """Send undecided jobs (deduplicated by cache key) to the worker pool and fill in their verdicts."""
    todo: dict[tuple, list[_Job]] = {}
    for job in jobs:
        if job.verdict is None:
            assert job.key is not None
            todo.setdefault(job.key, []).append(job)
    if not todo:
        return
    keys = list(todo)
    tasks = [(todo[k][0].pred_norm, todo[k][0].gold_norm, symmetric) for k in keys]
    decisions = _pool.get_pool().run(tasks, timeout=timeout, workers=workers)
    for key, (correct, reason) in zip(keys, decisions):
        if reason != "timeout" and not reason.startswith("error:Worker"):
            _CACHE.put(key, (correct, reason))
        for job in todo[key]:
            job.verdict = Verdict(correct, job.pred, reason)


def verify(
    response: str,
    gold: str,
    *,
    answer_type: str = "math",
    timeout: float = DEFAULT_TIMEOUT,
    extraction: str = DEFAULT_EXTRACTION,
) -> Verdict:
    """Judge one response against its gold answer.

    Args:
        response: the model's full response; the final answer is extracted from it
            (last ``\\boxed{}``, then documented fallbacks; see :mod:`ccpo_env.verify.extract`).
        gold: the gold answer (LaTeX allowed; ``$`` delimiters optional).
        answer_type: ``"math"`` (default) or ``"label"`` (FOLIO True/False/Uncertain).
        timeout: hard limit in seconds for the math-verify step (only used when the cheap in-process
            checks cannot decide). Works from any thread.
        extraction: how strictly the answer is located: ``"boxed"`` (only a box counts), ``"anchored"``
            (box, "answer is", an answer-only last line: what the training environments use) or
            ``"lenient"`` (default; also answers stated in prose, as ecosystem checkers read them).

    Returns:
        A :class:`Verdict` ``(correct, pred, reason)``. Never raises on any string content.

    Raises:
        ValueError: unknown ``answer_type`` or ``extraction``, or a non-positive ``timeout``.
    """
    return verify_batch(
        [response], [gold], answer_types=[answer_type], timeout=timeout, workers=1, extraction=extraction
    )[0]


def verify_batch(
    responses: Sequence[str],
    golds: Sequence[str],
    *,
    answer_types: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int | None = None,
    extraction: str = DEFAULT_EXTRACTION,
) -> list[Verdict]:
    """Judge many responses; same result per item as :func:`verify`, order preserved.

    Items decided in-process never touch the pool; the rest are deduplicated, looked up in the cache and
    fanned out over ``workers`` processes (default ``min(2, cpu_count)``) with ``timeout`` seconds each.

    Raises:
        ValueError: mismatched lengths, an unknown answer type or extraction mode, ``timeout <= 0`` or
            ``workers < 1``.
    """
    check_extraction(extraction)
    if isinstance(responses, str) or isinstance(golds, str):
        raise ValueError("verify_batch takes sequences of responses and golds; use verify() for one item")
    responses, golds = list(responses), list(golds)
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    types = ["math"] * len(responses) if answer_types is None else list(answer_types)
    if len(types) != len(responses):
        raise ValueError(f"{len(types)} answer_types for {len(responses)} responses")
    for t in set(types):
        _check_type(t)
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    workers = _default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    jobs = [_prepare(r, g, t, extraction) for r, g, t in zip(responses, golds, types)]
    _finish(jobs, timeout, workers)
    return [job.verdict for job in jobs]  # type: ignore[misc]


def answer_classes(preds: Sequence[str | None], *, answer_type: str = "math") -> list[list[int]]:
    """Group extracted answers into equivalence classes: lists of positions in ``preds``.

    Classes are in order of first appearance; each answer joins the first class whose representative
    (its first member) is :func:`equivalent` to it. ``None`` answers (abstentions) join no class.
    """
    classes: list[list[int]] = []
    for i, p in enumerate(preds):
        if p is None:
            continue
        for cls in classes:
            if equivalent(preds[cls[0]], p, answer_type=answer_type):  # type: ignore[arg-type]
                cls.append(i)
                break
        else:
            classes.append([i])
    return classes


def equivalent(a: str, b: str, *, answer_type: str = "math", timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether two *extracted answers* denote the same value (symmetric: ``equivalent(a, b) == equivalent(b, a)``).

    Used to group votes into classes. Uses the same normalisation and guards as :func:`verify`; when
    math-verify is needed it must agree in both directions. Empty/``None`` answers are never equivalent.

    Raises:
        ValueError: unknown ``answer_type`` or a non-positive ``timeout``.
    """
    _check_type(answer_type)
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    a, b = _text(a), _text(b)
    if answer_type == "label":
        la, lb = normalize_label(a), normalize_label(b)
        if la is None or lb is None:
            return bool(a.strip()) and compact(a).lower() == compact(b).lower()
        return la == lb
    if len(a) > MAX_ANSWER_CHARS or len(b) > MAX_ANSWER_CHARS:
        return False
    na, nb = normalize_math(a), normalize_math(b)
    if not na or not nb:
        return False
    na, nb = min(na, nb), max(na, nb)  # order-free cache key and worker call
    key = ("equivalent", na, nb)
    hit = _CACHE.get(key)
    if hit is None:
        one, two = decide(na, nb), decide(nb, na)
        if one is not None and two is not None:
            hit = (one[0] and two[0], "decided")
        elif (one is not None and not one[0]) or (two is not None and not two[0]):
            hit = (False, "mismatch")
        if hit is not None:
            _CACHE.put(key, hit)
    if hit is None:
        job = _Job()
        job.key, job.pred, job.pred_norm, job.gold_norm = key, a, na, nb
        _finish([job], timeout, workers=1, symmetric=True)
        assert job.verdict is not None
        return job.verdict.correct
    return hit[0]
