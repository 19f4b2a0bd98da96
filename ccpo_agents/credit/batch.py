"""Input and output types of the credit assigners.

A credit assigner maps a :class:`CreditBatch` (the joint episodes of one training step, plus
any counterfactual rollouts and ratings) to a :class:`CreditResult` (one scalar reward per joint
episode for every role, the grouping key the advantage estimator should use for that role, and
whether the signal is already a baselined advantage).

Everything is numpy. Torch tensors are accepted on input (they are moved to CPU and converted);
outputs are always numpy arrays.

Reward convention: ``R_joint`` takes the two values ``reward_low``/``reward_high`` (``-1``/``+1``
by default, ``0``/``1`` also common). The paper writes its tests as ``R > 0`` assuming ``±1``; here
a reward counts as a **success** when ``R > midpoint`` and as a **failure** when ``R < midpoint``
with ``midpoint = (reward_low + reward_high) / 2``. For binary rewards this is exactly ``R > 0``
(±1) or ``R == 1`` ({0,1}); a reward equal to the midpoint is neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CreditBatch",
    "CreditResult",
    "SepoRatings",
    "as_numpy",
    "group_mean",
    "DYAD_ROLES",
]

#: Role names the Think–Solve methods expect (the agents of ``ccpo_env.ThinkSolveEnv``).
DYAD_ROLES: tuple[str, str] = ("thinker", "solver")


def as_numpy(x: Any, *, dtype: Any = None, name: str = "array") -> np.ndarray:
    """``x`` as a numpy array; torch tensors are detached and moved to CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} could not be converted to a numpy array ({dtype=}): {e}") from None


def group_mean(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per-element mean of ``values`` over the elements sharing its key (``[N] -> [N]``)."""
    values = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values, minlength=len(counts))
    return (sums / counts)[inverse]


def _vector(x: Any, name: str, *, dtype: Any = None, length: int | None = None) -> np.ndarray:
    arr = as_numpy(x, dtype=dtype, name=name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if length is not None and len(arr) != length:
        raise ValueError(f"{name} has length {len(arr)}, expected {length} (one per episode)")
    return arr


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _rank_within(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... in order of appearance within each key."""
    out = np.empty(len(keys), dtype=np.int64)
    seen: dict[Any, int] = {}
    for i, k in enumerate(keys.tolist()):
        out[i] = seen.get(k, 0)
        seen[k] = out[i] + 1
    return out


@dataclass
class SepoRatings:
    """SEPO ratings of the Thinker's share of the outcome, one pair per joint episode.

    Both raters answer ``{"outcome": ..., "pair": [a, 1 - a]}`` where ``a`` is always the
    **Thinker's** share (``1 - a`` the Solver's), ``a`` in ``{0.1, ..., 0.9}``.

    Attributes:
        by_thinker: ``[E]`` float, ``a`` as rated by the Thinker (its *self* rating).
        by_solver: ``[E]`` float, ``a`` as rated by the Solver (the *peer* rating of the Thinker).
        valid_thinker: ``[E]`` bool, False where the Thinker's rating could not be parsed; the
            value is then ignored and ``a = 0.5`` is used. Default: all valid.
        valid_solver: ``[E]`` bool, same for the Solver's rating.
    """

    by_thinker: np.ndarray
    by_solver: np.ndarray
    valid_thinker: np.ndarray | None = None
    valid_solver: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.by_thinker = _vector(self.by_thinker, "ratings.by_thinker", dtype=np.float64)
        n = len(self.by_thinker)
        self.by_solver = _vector(self.by_solver, "ratings.by_solver", dtype=np.float64, length=n)
        for attr in ("valid_thinker", "valid_solver"):
            v = getattr(self, attr)
            v = np.ones(n, dtype=bool) if v is None else _vector(v, f"ratings.{attr}", dtype=bool, length=n)
            setattr(self, attr, v)
        for vals, ok, who in ((self.by_thinker, self.valid_thinker, "by_thinker"),
                              (self.by_solver, self.valid_solver, "by_solver")):
            bad = ok & ~((vals >= 0.1 - 1e-9) & (vals <= 0.9 + 1e-9))  # NaN fails too
            if bad.any():
                raise ValueError(
                    f"ratings.{who}: {int(bad.sum())} rating(s) marked valid lie outside [0.1, 0.9] "
                    f"(first: {vals[bad][0]!r}); mark unparsable ratings invalid instead"
                )

    def effective(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a_thinker, a_solver)`` with invalid ratings replaced by 0.5 (the neutral split)."""
        return (np.where(self.valid_thinker, self.by_thinker, 0.5),
                np.where(self.valid_solver, self.by_solver, 0.5))

    @property
    def num_invalid(self) -> int:
        return int((~self.valid_thinker).sum() + (~self.valid_solver).sum())


@dataclass
class CreditBatch:
    """The joint episodes of one step plus their counterfactuals, as flat arrays.

    ``E`` joint episodes, ``S`` solo (Thinker-removed) rollouts. Ids (``group``, ``thought``,
    ``solo_group``) may be ints or strings; only equality matters.

    Attributes:
        joint_reward: ``[E]`` float, ``R_joint`` of each joint episode (the verifier's reward).
        group: ``[E]`` prompt-group id (all rollouts of one prompt share it).
        thought: ``[E]`` id of the Thinker message the episode answers; with ``m`` answers per
            thought, ``m`` episodes share it. Unique across the batch (a thought never spans two
            groups). Default ``None``: every episode is its own thought (``m = 1``).
        pair_index: ``[E]`` int, index of the episode within its group, used by ``ccpo_paired``
            to pair joint episode ``k`` with solo rollout ``k``. Default: order of appearance.
        solo_reward: ``[S]`` float, ``R_solo`` of the Solver answering with the Thinker removed.
        solo_group: ``[S]`` prompt-group id of each solo rollout (required with ``solo_reward``).
        solo_pair_index: ``[S]`` int, index within the group (default: order of appearance).
        source: ``[E]`` data-source name per episode (for a per-source normalizer). Default: none.
        ratings: SEPO ratings per joint episode (``sepo`` only).
        loo_reward: ``[E, N]`` float, ``R_¬i``: the joint reward with agent ``roles[i]`` left out
            (``VotingEnv.counterfactual_rewards()``); column ``i`` belongs to ``roles[i]``.
        coalition_reward: ``[E, 2^N]`` float, ``v(S)``: the joint reward of the agents in ``S`` alone
            (``VotingEnv.coalition_rewards()``); column ``Σ_{i∈S} 2^i`` holds coalition ``S`` (bit ``i`` is
            ``roles[i]``), so column 0 is the empty coalition and column ``2^N − 1`` the whole team.
        roles: the agents that receive credit, e.g. ``("thinker", "solver")`` or the voters.
        reward_low: the failure value of ``R_joint`` (default ``-1.0``).
        reward_high: the success value of ``R_joint`` (default ``+1.0``).
    """

    joint_reward: np.ndarray
    group: np.ndarray
    thought: np.ndarray | None = None
    pair_index: np.ndarray | None = None
    solo_reward: np.ndarray | None = None
    solo_group: np.ndarray | None = None
    solo_pair_index: np.ndarray | None = None
    source: np.ndarray | None = None
    ratings: SepoRatings | None = None
    loo_reward: np.ndarray | None = None
    coalition_reward: np.ndarray | None = None
    roles: tuple[str, ...] = DYAD_ROLES
    reward_low: float = -1.0
    reward_high: float = 1.0

    def __post_init__(self) -> None:
        self.joint_reward = _finite(_vector(self.joint_reward, "joint_reward", dtype=np.float64), "joint_reward")
        e = len(self.joint_reward)
        if e == 0:
            raise ValueError("CreditBatch has no joint episodes (joint_reward is empty)")
        self.group = _vector(self.group, "group", length=e)
        self.roles = tuple(str(r) for r in self.roles)
        if not self.roles or len(set(self.roles)) != len(self.roles):
            raise ValueError(f"roles must be non-empty and unique, got {self.roles}")
        self.reward_low, self.reward_high = float(self.reward_low), float(self.reward_high)
        if not self.reward_low < self.reward_high:
            raise ValueError(f"need reward_low < reward_high, got {self.reward_low} and {self.reward_high}")

        if self.thought is not None:
            self.thought = _vector(self.thought, "thought", length=e)
            self._check_thoughts_within_groups()
        self.pair_index = (_rank_within(self.group) if self.pair_index is None
                           else _vector(self.pair_index, "pair_index", dtype=np.int64, length=e))
        if self.source is not None:
            self.source = _vector(self.source, "source", length=e).astype(str)

        if (self.solo_reward is None) != (self.solo_group is None):
            raise ValueError("solo_reward and solo_group must be given together")
        if self.solo_reward is not None:
            self.solo_reward = _finite(_vector(self.solo_reward, "solo_reward", dtype=np.float64), "solo_reward")
            s = len(self.solo_reward)
            self.solo_group = _vector(self.solo_group, "solo_group")
            if len(self.solo_group) != s:
                raise ValueError(f"solo_group has length {len(self.solo_group)}, solo_reward has {s}")
            self.solo_pair_index = (_rank_within(self.solo_group) if self.solo_pair_index is None else
                                    _vector(self.solo_pair_index, "solo_pair_index", dtype=np.int64))
            if len(self.solo_pair_index) != s:
                raise ValueError(f"solo_pair_index has length {len(self.solo_pair_index)}, solo_reward has {s}")
        elif self.solo_pair_index is not None:
            raise ValueError("solo_pair_index given without solo_reward")

        if self.ratings is not None:
            if not isinstance(self.ratings, SepoRatings):
                raise TypeError(f"ratings must be a SepoRatings, got {type(self.ratings).__name__}")
            if len(self.ratings.by_thinker) != e:
                raise ValueError(f"ratings cover {len(self.ratings.by_thinker)} episodes, batch has {e}")
        if self.loo_reward is not None:
            loo = _finite(as_numpy(self.loo_reward, dtype=np.float64, name="loo_reward"), "loo_reward")
            if loo.shape != (e, len(self.roles)):
                raise ValueError(f"loo_reward must have shape [E, N] = {(e, len(self.roles))} "
                                 f"(one column per role, in roles order), got {loo.shape}")
            self.loo_reward = loo
        if self.coalition_reward is not None:
            v = _finite(as_numpy(self.coalition_reward, dtype=np.float64, name="coalition_reward"), "coalition_reward")
            if v.shape != (e, 2 ** len(self.roles)):
                raise ValueError(f"coalition_reward must have shape [E, 2^N] = {(e, 2 ** len(self.roles))} "
                                 f"(column Σ 2^i over the roles i in the coalition), got {v.shape}")
            self.coalition_reward = v

    def _check_thoughts_within_groups(self) -> None:
        owner: dict[Any, Any] = {}
        for t, g in zip(self.thought.tolist(), self.group.tolist()):
            if owner.setdefault(t, g) != g:
                raise ValueError(f"thought {t!r} appears in groups {owner[t]!r} and {g!r}; "
                                 "thought ids must be unique across the batch")

    # ----------------------------------------------------------------- helpers
    @property
    def num_episodes(self) -> int:
        return len(self.joint_reward)

    @property
    def midpoint(self) -> float:
        """``(reward_low + reward_high) / 2``: the success threshold."""
        return 0.5 * (self.reward_low + self.reward_high)

    def success(self, r: np.ndarray | None = None) -> np.ndarray:
        """``R > midpoint`` (``R > 0`` for ±1 rewards) for ``r`` (default ``joint_reward``)."""
        return np.asarray(self.joint_reward if r is None else r) > self.midpoint

    def failure(self, r: np.ndarray | None = None) -> np.ndarray:
        """``R < midpoint`` (``R < 0`` for ±1 rewards)."""
        return np.asarray(self.joint_reward if r is None else r) < self.midpoint

    @property
    def has_solo(self) -> bool:
        return self.solo_reward is not None and len(self.solo_reward) > 0

    def solo_group_mean(self) -> np.ndarray:
        """``[E]``: mean ``R_solo`` of each episode's group (``V_solo``, the ``b`` of ``ccpo_event``).

        Raises ValueError naming the groups that have joint episodes but no solo rollout.
        """
        if not self.has_solo:
            raise ValueError("no solo rollouts in the batch (solo_reward is empty)")
        sums: dict[Any, float] = {}
        counts: dict[Any, int] = {}
        for g, r in zip(self.solo_group.tolist(), self.solo_reward.tolist()):
            sums[g] = sums.get(g, 0.0) + r
            counts[g] = counts.get(g, 0) + 1
        groups = self.group.tolist()
        missing = sorted({g for g in groups if g not in counts}, key=str)
        if missing:
            raise ValueError(f"{len(missing)} group(s) have joint episodes but no solo rollout: "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
        return np.array([sums[g] / counts[g] for g in groups], dtype=np.float64)


@dataclass
class CreditResult:
    """What a credit assigner returns.

    Attributes:
        rewards: role -> ``[E]`` float, the scalar credit of each joint episode for that role. For
            a role that acts once per thought (the Thinker), all episodes of a thought carry the
            same value or the trainer averages them (:meth:`per_thought`).
        group_keys: role -> ``[E]`` the key the advantage estimator must group by for that role
            (the prompt group, or the thought for ``ccpo_tree``'s Solver).
        baselined: role -> True when ``rewards[role]`` is already a baseline-subtracted advantage:
            estimators must then only scale it, never subtract a group mean again.
        metrics: scalar diagnostics (finite floats), keys prefixed ``credit/``.
    """

    rewards: dict[str, np.ndarray]
    group_keys: dict[str, np.ndarray]
    baselined: dict[str, bool]
    metrics: dict[str, float] = field(default_factory=dict)

    def validate(self, roles: Sequence[str], num_episodes: int) -> CreditResult:
        """Check shapes/finiteness and that every role is covered; returns ``self``."""
        for part in ("rewards", "group_keys", "baselined"):
            got = getattr(self, part)
            if not isinstance(got, Mapping):
                raise TypeError(f"CreditResult.{part} must be a dict keyed by role")
            missing = [r for r in roles if r not in got]
            if missing:
                raise ValueError(f"CreditResult.{part} is missing role(s) {missing}")
        for role in roles:
            r = np.asarray(self.rewards[role], dtype=np.float64)
            if r.shape != (num_episodes,):
                raise ValueError(f"rewards[{role!r}] has shape {r.shape}, expected ({num_episodes},)")
            if not np.all(np.isfinite(r)):
                raise ValueError(f"rewards[{role!r}] contains NaN or inf")
            self.rewards[role] = r
            if len(self.group_keys[role]) != num_episodes:
                raise ValueError(f"group_keys[{role!r}] has length {len(self.group_keys[role])}, "
                                 f"expected {num_episodes}")
            self.baselined[role] = bool(self.baselined[role])
        return self

    def per_thought(self, role: str, thought: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Average ``role``'s reward over the episodes of each thought.

        Returns ``(thought_ids, mean_reward, first_episode_index)``; index ``group_keys[role]``
        with the last array to get each thought's group key.
        """
        ids, first, inverse = np.unique(np.asarray(thought), return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        sums = np.bincount(inverse, weights=self.rewards[role], minlength=len(ids))
        return ids, sums / np.bincount(inverse, minlength=len(ids)), first
