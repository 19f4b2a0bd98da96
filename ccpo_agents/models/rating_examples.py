"""SEPO rating examples for a warm start, and the check that the ratings a model writes are usable.

SEPO asks each role, after the verifier, for ``{"outcome": ..., "pair": [a, 1 - a]}`` with ``a`` the
Thinker's share of the credit (right answer) or blame (wrong answer). A tiny model has never seen that
format, so untaught it writes nothing parseable and SEPO degenerates into ``shared`` (every rating neutral).
These examples teach the format with targets that follow from two facts the data generator knows:

- whether the thought holds the right intermediate steps (:func:`~ccpo_env.data.arith_thought_correct`);
- whether the team's answer is right (the verifier's outcome, shown in the prompt).

``a = 0.7`` when they agree (a good thought and a right answer: the Thinker earned the credit; a bad thought
and a wrong answer: the Thinker earns the blame), ``a = 0.3`` when they disagree (the Solver got it right
despite a bad thought, or wrong despite a good one). Both roles are taught the same targets: ratings are on
the Thinker's-share scale whoever rates.

:func:`evaluate_ratings` measures what SEPO needs before it can be studied: the share of ratings that parse,
and whether they are informative (they side with the thought-quality rule more often than chance).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ccpo_agents.credit.sepo import RATING_TEMPLATES, build_rating_prompt, parse_rating
from ccpo_env.data import Problem, arith_corrupt_thought, arith_oracle_thought
from ccpo_env.topology import SOLVER, THINKER

__all__ = ["AGREE_SHARE", "DISAGREE_SHARE", "evaluate_ratings", "rating_cases", "rating_target"]

#: The Thinker's share when thought quality and outcome agree, and when they disagree.
AGREE_SHARE, DISAGREE_SHARE = 0.7, 0.3


def rating_target(thought_ok: bool, outcome_correct: bool) -> str:
    """The JSON reply a rater is taught for this case (see the module docstring)."""
    a = AGREE_SHARE if thought_ok == outcome_correct else DISAGREE_SHARE
    outcome = "correct" if outcome_correct else "incorrect"
    return f'{{"outcome": "{outcome}", "pair": [{a}, {round(1 - a, 1)}]}}'


def rating_cases(
    problems: Sequence[Problem], seed: int, template: str = "default"
) -> list[tuple[str, str, bool, bool]]:
    """Four cases per problem: ``(rating role, rating prompt, thought_ok, outcome_correct)`` for every
    combination of a good or corrupted thought and a right or wrong answer; the rating role is drawn per case.
    ``template`` names a :data:`~ccpo_agents.credit.sepo.RATING_TEMPLATES` preset."""
    cases = []
    for problem in problems:
        rng = random.Random(f"rate|{seed}|{problem.problem}")  # str seeds: no hash salt
        good = arith_oracle_thought(problem)
        for thought_ok in (True, False):
            thought = good if thought_ok or not good else arith_corrupt_thought(good, rng)
            thought_ok = thought_ok or not good  # a problem with no intermediate step has no bad thought
            for outcome_correct in (True, False):
                wrong = int(problem.answer) + rng.choice([d for d in range(-9, 10) if d])
                answer = f"\\boxed{{{problem.answer if outcome_correct else wrong}}}"
                role = rng.choice((THINKER, SOLVER))
                prompt = build_rating_prompt(role, problem.problem, thought, answer, outcome_correct,
                                             template=RATING_TEMPLATES[template])
                cases.append((role, prompt, thought_ok, outcome_correct))
    return cases


def evaluate_ratings(
    policies: dict[str, Any], problems: Sequence[Problem], *, seed: int = 0, template: str = "default"
) -> dict[str, float]:
    """Rate :func:`rating_cases` of ``problems`` with ``{role: policy}``.

    Returns ``parsed`` (share of replies that parse), ``agrees`` (among parsed ones, the share on the side of
    the thought-quality rule: ``a > 0.5`` exactly when thought quality and outcome agree; 0.5 is chance),
    ``corr`` (Pearson correlation of ``a`` with the rule's target; NaN if constant) and ``n``.
    """
    cases = rating_cases(problems, seed, template)
    replies: list[str] = [""] * len(cases)
    for role in (THINKER, SOLVER):
        idx = [i for i, c in enumerate(cases) if c[0] == role]
        if idx:
            seeds = [seed + i for i in idx]
            for i, g in zip(idx, policies[role]([cases[i][1] for i in idx], seeds=seeds)):
                replies[i] = getattr(g, "text", g)
    parsed = [parse_rating(r) for r in replies]
    valid = [(a, ok_t == ok_o) for (a, ok), (_, _, ok_t, ok_o) in zip(parsed, cases) if ok]
    out = {"n": float(len(cases)), "parsed": sum(ok for _, ok in parsed) / len(cases)}
    if valid:
        a = np.array([v[0] for v in valid])
        target = np.array([AGREE_SHARE if agree else DISAGREE_SHARE for _, agree in valid])
        out["agrees"] = float(np.mean((a > 0.5) == (target > 0.5)))
        out["corr"] = float(np.corrcoef(a, target)[0, 1]) if a.std() > 0 and target.std() > 0 else float("nan")
    return out
