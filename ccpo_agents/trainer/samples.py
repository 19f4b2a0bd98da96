"""From episode records and credit to per-role training samples.

A role trains on what it generated: the Thinker once per *thought* (its message is shared by the
``m`` Solver answers, so it is one sample with the thought's mean credit), the Solver once per joint
episode, each voter once per episode. Counterfactual (Thinker-removed) episodes feed the credit; with
``credit.train_solo`` (:func:`add_solo_answers`) the Solver also trains on its solo answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ccpo_agents.credit import CreditResult
from ccpo_env.records import Episode, Generation
from ccpo_env.topology import SOLVER, THINKER, VOTER, Topology

__all__ = ["RoleBatch", "add_solo_answers", "apply_thought_cost", "build_role_batches"]


@dataclass
class RoleBatch:
    """The samples one role trains on in one step.

    Attributes:
        role: the role (``"thinker"``, ``"solver"``, ``"voter"``).
        generations: what the policy sampled (token ids, log-probs), one per sample.
        rewards: credit per sample ``[B]``.
        group_keys: grouping key per sample for the advantage estimator.
        baselined: the credit is already a baselined advantage (scale only, never centre).
    """

    role: str
    generations: list[Generation] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    group_keys: list[Any] = field(default_factory=list)
    baselined: bool = False

    def __len__(self) -> int:
        return len(self.generations)

    @property
    def reward_array(self) -> np.ndarray:
        return np.asarray(self.rewards, dtype=np.float64)


def _generation(ep: Episode, agent: str) -> Generation:
    turn = ep.turn(agent)
    if turn is None:
        raise ValueError(f"episode {ep.uid} has no turn for {agent!r}")
    if not isinstance(turn.output, Generation) or turn.output.token_ids is None:
        raise TypeError(
            f"training needs token ids: the policy for {agent!r} must return ccpo_env.Generation with token_ids "
            f"(e.g. HFPolicy), got {type(turn.output).__name__}"
        )
    return turn.output


def _key(value: Any) -> Any:
    """Numpy scalars/arrays to hashable Python values."""
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_role_batches(
    joint: list[Episode],
    credit: CreditResult,
    thought: np.ndarray,
    *,
    topology: Topology,
    roles: tuple[str, ...] | None = None,
) -> dict[str, RoleBatch]:
    """Per-role samples from the joint episodes of this process and their credit.

    Args:
        joint: the joint episodes, aligned with the arrays of ``credit``.
        credit: the credit result (rewards, group keys, baselined flags per agent/role).
        thought: thought id per joint episode (``CreditBatch.thought``).
        topology: the team's :class:`~ccpo_env.topology.Topology`.
        roles: the roles to build batches for (default: all of the topology's).
    """
    roles = topology.roles if roles is None else roles
    out: dict[str, RoleBatch] = {}
    if topology.group_by_thought:
        if THINKER in roles:
            ids, mean, first = credit.per_thought(THINKER, thought)
            batch = RoleBatch(THINKER, baselined=bool(credit.baselined[THINKER]))
            for i, r in zip(first, mean):
                batch.generations.append(_generation(joint[i], THINKER))
                batch.rewards.append(float(r))
                batch.group_keys.append(_key(credit.group_keys[THINKER][i]))
            out[THINKER] = batch
        if SOLVER in roles:
            batch = RoleBatch(SOLVER, baselined=bool(credit.baselined[SOLVER]))
            for i, ep in enumerate(joint):
                batch.generations.append(_generation(ep, SOLVER))
                batch.rewards.append(float(credit.rewards[SOLVER][i]))
                batch.group_keys.append(_key(credit.group_keys[SOLVER][i]))
            out[SOLVER] = batch
        return out
    # Several agents sharing one role (voters): every agent's turn is a sample of that role.
    if VOTER in roles:
        agents = list(credit.rewards)
        flags = {bool(credit.baselined[a]) for a in agents}
        if len(flags) != 1:
            raise ValueError("voters with mixed baselined flags cannot share one role")
        batch = RoleBatch(VOTER, baselined=flags.pop())
        for i, ep in enumerate(joint):
            for agent in agents:
                if ep.turn(agent) is None:
                    continue
                batch.generations.append(_generation(ep, agent))
                batch.rewards.append(float(credit.rewards[agent][i]))
                batch.group_keys.append(_key(credit.group_keys[agent][i]))
        out[VOTER] = batch
    return out


def add_solo_answers(batch: RoleBatch, solo: list[Episode], agent: str, *, reward_low: float = 0.0,
                     reward_high: float = 1.0) -> int:  # fmt: skip
    """Append the Solver's Thinker-removed answers to its batch (``credit.train_solo``); returns how many.

    Each solo answer's reward is its own verified outcome (``reward_high`` if correct, else ``reward_low``)
    and its group key is ``("solo", prompt group)``: the estimator compares it with the other solo answers
    to the same prompt only, never with the joint answers (which saw a thought). ``batch`` must hold rewards,
    not baselined advantages.
    """
    if batch.baselined:
        raise ValueError("solo answers carry rewards; they cannot join a batch of baselined advantages")
    n = 0
    for ep in solo:
        if ep.turn(agent) is None:
            continue
        batch.generations.append(_generation(ep, agent))
        batch.rewards.append(float(reward_high if ep.correct else reward_low))
        batch.group_keys.append(("solo", int(ep.group)))
        n += 1
    return n



def apply_thought_cost(batch: RoleBatch, cost: float) -> float:
    """Charge ``cost`` per token to the Thinker's samples, centred per group (``credit.thought_cost``).

    Sample j's reward gains ``−cost·(ℓ_j − ℓ̄_g)``: ``ℓ_j`` is its length in tokens, ``ℓ̄_g`` the mean over the
    samples of its group (the prompt's thoughts). Returns the mean length.
    """
    lengths = np.array([len(g.token_ids or []) for g in batch.generations], dtype=np.float64)
    if not len(lengths) or cost == 0:
        return float(lengths.mean()) if len(lengths) else 0.0
    keys = [_key(k) for k in batch.group_keys]
    means: dict[Any, list[float]] = {}
    for k, n in zip(keys, lengths):
        means.setdefault(k, []).append(float(n))
    centred = lengths - np.array([np.mean(means[k]) for k in keys])
    batch.rewards = [float(r - cost * d) for r, d in zip(batch.rewards, centred)]
    return float(lengths.mean())
