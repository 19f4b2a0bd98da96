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

Taught only the JSON, a 0.49M-parameter model learns the format but not the judgement: its shares side with
the rule at chance (it would have to check the thought's arithmetic and combine that with the outcome in a
single token). With ``check=True`` the reply first works the judgement out in the open, then gives the same
JSON (``parse_rating`` reads the last JSON object, so text before it is allowed)::

    4*4=16 bad correct {"pair": [0.3, 0.7]}

the intermediate results recomputed from the problem (what the Thinker should have written), ``good`` or
``bad`` for whether the thought holds them, the verifier's outcome copied from the prompt, then the share:
``0.7`` exactly when the two words before it agree. The JSON keeps only ``"pair"``: the outcome is already in
the reply, the parser never reads the key, and with this tokenizer ``"outcome": ...`` would cost 18 tokens
(SEPO's ratings are counted in every token budget).

(A first version without the outcome word, ``4*4=16 bad {"pair": ...}``, 600 SFT steps, recomputed the step
98% of the time and gave the right verdict 64% of the time, but wrote the same share whatever the case:
combining the verdict with an outcome far back in the prompt was not learnt.) Each piece is a step the model can take: the
recomputation is the Thinker's own skill, the verdict a comparison with the thought in the prompt, the share
a lookup of two words it has just written.

:func:`evaluate_ratings` measures what SEPO needs before it can be studied: the share of ratings that parse,
and whether they are informative (they side with the thought-quality rule more often than chance).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ccpo_agents.credit.sepo import RATING_TEMPLATES, build_rating_prompt, parse_rating
from ccpo_env.data import Problem, arith_corrupt_thought, arith_oracle_thought, arith_thought_correct
from ccpo_env.topology import SOLVER, THINKER

__all__ = [
    "AGREE_SHARE",
    "DISAGREE_SHARE",
    "evaluate_ratings",
    "evaluate_rollout_ratings",
    "rating_cases",
    "rating_target",
]

#: The Thinker's share when thought quality and outcome agree, and when they disagree.
AGREE_SHARE, DISAGREE_SHARE = 0.7, 0.3


def rating_target(thought_ok: bool, outcome_correct: bool, check: str | None = None) -> str:
    """The reply a rater is taught for this case (see the module docstring): the JSON alone, or with ``check``
    (the right intermediate results, e.g. ``"4*4=16"``; ``""`` for a problem without one) the checked reply
    ``"<check> good|bad correct|incorrect {"pair": [a, 1 - a]}"``."""
    a = AGREE_SHARE if thought_ok == outcome_correct else DISAGREE_SHARE
    pair = f'"pair": [{a}, {round(1 - a, 1)}]'
    outcome = "correct" if outcome_correct else "incorrect"
    if check is None:
        return f'{{"outcome": "{outcome}", {pair}}}'
    verdict = "good" if thought_ok else "bad"
    return " ".join([*([check] if check else []), verdict, outcome, f"{{{pair}}}"])


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
    # The cases do not depend on the reply format: a checked and a plain rater are scored on the same ones.
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
    return _score(replies, [(ok_t, ok_o) for _, _, ok_t, ok_o in cases])


def evaluate_rollout_ratings(
    env: Any, policies: dict[str, Any], problems: Sequence[int], *, num_samples: int = 4, seed: int = 0,
    template: str = "default", raters: dict[str, Any] | None = None,
) -> dict[str, float]:
    """The same measures as :func:`evaluate_ratings` on the policies' own episodes: ``num_samples`` joint
    episodes per problem index of a Think–Solve ``env`` on arith data, each rated by both roles (``raters``,
    default ``policies``: e.g. the same models decoding greedily) as SEPO's trainer asks, each rating scored against the rule with the episode's real thought quality
    (:func:`~ccpo_env.data.arith_thought_correct`) and verified outcome. Adds ``thought_ok`` and
    ``correct``, the shares of good thoughts and right answers among the rated episodes: the rule can only be
    learnt from, and checked on, a mix of both."""
    from ccpo_env import rollout

    episodes = rollout(env, policies, list(problems), num_samples=num_samples, seed=seed)
    joint = [e for e in episodes if not e.removed]
    rule, replies = [], []
    for role in (THINKER, SOLVER):
        prompts = []
        for ep in joint:
            problem = env.dataset[ep.problem_index]
            thought, answer = ep.turn(THINKER).action, ep.turn(SOLVER).action
            prompts.append(build_rating_prompt(role, problem.problem, thought, answer, bool(ep.correct),
                                               template=RATING_TEMPLATES[template]))
            rule.append((arith_thought_correct(problem, thought), bool(ep.correct)))
        seeds = [seed + 7919 * (role == SOLVER) + i for i in range(len(prompts))]
        replies += [getattr(g, "text", g) for g in (raters or policies)[role](prompts, seeds=seeds)]
    out = _score(replies, rule)
    out["thought_ok"] = float(np.mean([ok for ok, _ in rule]))
    out["correct"] = float(np.mean([ok for _, ok in rule]))
    return out


def _score(replies: Sequence[str], rule: Sequence[tuple[bool, bool]]) -> dict[str, float]:
    """``n``, ``parsed``, ``agrees`` and ``corr`` of rating ``replies`` against ``(thought_ok, outcome_ok)``."""
    parsed = [parse_rating(r) for r in replies]
    valid = [(a, ok_t == ok_o) for (a, ok), (ok_t, ok_o) in zip(parsed, rule, strict=True) if ok]
    out = {"n": float(len(replies)), "parsed": sum(ok for _, ok in parsed) / len(replies)}
    if valid:
        a = np.array([v[0] for v in valid])
        target = np.array([AGREE_SHARE if agree else DISAGREE_SHARE for _, agree in valid])
        out["agrees"] = float(np.mean((a > 0.5) == (target > 0.5)))
        out["corr"] = float(np.corrcoef(a, target)[0, 1]) if a.std() > 0 and target.std() > 0 else float("nan")
    return out
