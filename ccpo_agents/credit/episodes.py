"""Build a :class:`CreditBatch` from the rollout driver's episode records.

Duck-typed on ``ccpo_env.records.Episode``: uses ``group``, ``sample``, ``fork``, ``removed``,
``rewards``, ``source``, ``thought_key`` and ``counterfactual_rewards``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .batch import DYAD_ROLES, CreditBatch, SepoRatings

__all__ = ["credit_batch_from_episodes"]


def _team_reward(ep: Any) -> float:
    values = {float(v) for v in ep.rewards.values()}
    if len(values) != 1:
        raise ValueError(f"episode {getattr(ep, 'uid', '?')} has different rewards per agent {ep.rewards}; "
                         "credit assignment expects one shared team reward")
    return values.pop()


def _pair_ranks(episodes: Sequence[Any]) -> np.ndarray:
    """Index of each episode within its group, ordered by ``(sample, fork)``."""
    ranks = np.empty(len(episodes), dtype=np.int64)
    by_group: dict[Any, list[int]] = {}
    for i, ep in enumerate(episodes):
        by_group.setdefault(ep.group, []).append(i)
    for idx in by_group.values():
        for rank, i in enumerate(sorted(idx, key=lambda j: (episodes[j].sample, episodes[j].fork))):
            ranks[i] = rank
    return ranks


def credit_batch_from_episodes(
    joint: Iterable[Any],
    solo: Iterable[Any] = (),
    *,
    roles: Sequence[str] | None = None,
    reward_low: float = -1.0,
    reward_high: float = 1.0,
    ratings: SepoRatings | None = None,
) -> CreditBatch:
    """A :class:`CreditBatch` from joint episodes and (optional) Thinker-removed episodes.

    * ``thought``: one id per ``thought_key`` (episodes answering the same Thinker message).
    * ``pair_index`` / ``solo_pair_index``: rank within the group by ``(sample, fork)``.
    * ``loo_reward``: filled when every joint episode carries ``counterfactual_rewards``.
    * ``coalition_reward``: filled when every joint episode carries ``coalition_rewards``.
    * ``roles``: default ``("thinker", "solver")`` for a dyad, else the agents in reward order.
    """
    joint = list(joint)
    solo = list(solo)
    if not joint:
        raise ValueError("no joint episodes")
    if any(ep.removed for ep in joint):
        raise ValueError("joint episodes must have no removed agent; pass counterfactual ones as `solo`")
    if roles is None:
        agents = tuple(joint[0].rewards)
        roles = DYAD_ROLES if set(agents) == set(DYAD_ROLES) else agents
    roles = tuple(roles)

    thought_ids: dict[Any, int] = {}
    thought = np.array([thought_ids.setdefault(ep.thought_key, len(thought_ids)) for ep in joint])

    loo = None
    if all(getattr(ep, "counterfactual_rewards", None) for ep in joint):
        try:
            loo = np.array([[float(ep.counterfactual_rewards[r]) for r in roles] for ep in joint])
        except KeyError as e:
            raise ValueError(f"counterfactual_rewards lack role {e}; roles are {roles}") from None

    coalitions = None
    if all(getattr(ep, "coalition_rewards", None) for ep in joint):
        coalitions = np.array([_coalition_row(ep.coalition_rewards, roles) for ep in joint])

    kwargs: dict[str, Any] = {}
    if solo:
        kwargs = {
            "solo_reward": np.array([_team_reward(ep) for ep in solo]),
            "solo_group": np.array([ep.group for ep in solo]),
            "solo_pair_index": _pair_ranks(solo),
        }
    return CreditBatch(
        joint_reward=np.array([_team_reward(ep) for ep in joint]),
        group=np.array([ep.group for ep in joint]),
        thought=thought,
        pair_index=_pair_ranks(joint),
        source=np.array([str(ep.source) for ep in joint]),
        ratings=ratings,
        loo_reward=loo,
        coalition_reward=coalitions,
        roles=roles,
        reward_low=reward_low,
        reward_high=reward_high,
        **kwargs,
    )


def _coalition_row(rewards: dict[tuple[str, ...], float], roles: Sequence[str]) -> list[float]:
    """``{agent subset: v(S)}`` as the ``2^N`` row of ``CreditBatch.coalition_reward`` (bit i = roles[i])."""
    bit = {r: 1 << i for i, r in enumerate(roles)}
    row = [float("nan")] * (1 << len(roles))
    for subset, value in rewards.items():
        unknown = [a for a in subset if a not in bit]
        if unknown:
            raise ValueError(f"coalition_rewards name agent(s) {unknown} that are not roles {tuple(roles)}")
        row[sum(bit[a] for a in subset)] = float(value)
    if any(v != v for v in row):
        raise ValueError(f"coalition_rewards must cover all {len(row)} subsets of the roles {tuple(roles)}, "
                         f"got {len(rewards)}")
    return row
