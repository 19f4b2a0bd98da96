"""SEPO's ratings in training: after the verifier, each role rates every joint (thought, answer) pair.

The ratings are generated, never trained on, with their own settings (``credit.rating_*``): a token limit,
a prompt preset, and optionally greedy decoding. They are counted in the step's generated tokens like every
other generation; :func:`write_ratings` also reports their own share, as decoded (a greedy rater decodes the
rating of a repeated prompt once, so counting returned texts would overstate it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ccpo_agents.credit import RATING_TEMPLATES, build_rating_prompt
from ccpo_env.topology import SOLVER, THINKER

__all__ = ["rate", "write_ratings"]


def rate(policy: Any, prompts: Sequence[str], seeds: Sequence[int] | None = None, *, max_new_tokens: int,
         greedy: bool = False) -> list[Any]:  # fmt: skip
    """``policy`` answering rating ``prompts`` with at most ``max_new_tokens`` tokens (greedy if ``greedy``,
    else with its own sampling settings); its generation settings are restored afterwards."""
    saved = policy.generation
    policy.generation = saved.replace(max_new_tokens=max_new_tokens, do_sample=saved.do_sample and not greedy)
    try:
        return policy(list(prompts), seeds=seeds)
    finally:
        policy.generation = saved


def write_ratings(
    policies: Mapping[str, Any], dataset: Any, joint: Sequence[Any], *, template: str, max_new_tokens: int,
    greedy: bool, seed_for: Callable[[str, int], int],
) -> tuple[list[str], list[str], int]:  # fmt: skip
    """Both roles' rating replies for the ``joint`` episodes of a Think–Solve env over ``dataset``.

    ``template`` names a rating prompt preset; ``seed_for(role, i)`` seeds the ``i``-th rating of ``role``.
    Returns the Thinker's and the Solver's reply texts (one per episode) and the tokens decoded for them.
    """
    texts: dict[str, list[str]] = {}
    decoded = 0
    for role in (THINKER, SOLVER):
        prompts = [
            build_rating_prompt(role, dataset[ep.problem_index].problem, ep.turn(THINKER).action,
                                ep.turn(SOLVER).action, bool(ep.correct), template=RATING_TEMPLATES[template])
            for ep in joint
        ]  # fmt: skip
        policy = policies[role]
        before = policy.stats.completion_tokens
        generations = rate(policy, prompts, [seed_for(role, i) for i in range(len(prompts))],
                           max_new_tokens=max_new_tokens, greedy=greedy)  # fmt: skip
        texts[role] = [g.text for g in generations]
        decoded += policy.stats.completion_tokens - before
    return texts[THINKER], texts[SOLVER], decoded
