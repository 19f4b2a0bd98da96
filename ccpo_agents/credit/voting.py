"""``voting`` (aliases ``voting_loo``, ``loo``): leave-one-out counterfactual credit for N voters.

``Δ_i = R_joint − R_¬i`` where ``R_¬i`` is the joint reward of the plurality re-vote with voter i's
vote left out (``VotingEnv.counterfactual_rewards()``: no extra decoding). ``Δ_i > 0``: the voter was
pivotal for a success; ``Δ_i < 0``: pivotal for a failure; 0: its vote did not change the outcome.
``Δ_i`` is a counterfactual difference, i.e. already an advantage: every role is baselined.

``voting_shapley``: the Shapley value of each voter in the coalition game ``v(S)`` = the joint reward of
the plurality vote of the voters in ``S`` alone (``VotingEnv.coalition_rewards()``, no extra decoding)::

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (N − |S| − 1)! / N! · (v(S ∪ {i}) − v(S))

It averages voter i's marginal contribution over every order in which the team could have formed, where
leave-one-out looks at one order only (i joining last). Efficiency: ``Σ_i φ_i = R_joint − v(∅)``, so ``φ``
splits the outcome among the voters: it is a reward, not an advantage (its mean is the team's success
share, not 0), and the estimator centres it within the prompt group. With N = 3 and ±1 rewards (a lone
wrong voter is a wrong answer, ``v(∅) = −1``), a 2–1 correct majority gives each right voter ``φ = 7/6`` and
the wrong one ``−1/3``, where leave-one-out gives the right ones ``Δ = 1`` (a 1–1 tie is worth 0) and the
wrong one 0; a 3–0 majority gives each voter 2/3 where leave-one-out gives every voter 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .batch import CreditBatch, CreditResult
from .normalizer import GlobalHistoryNormalizer
from .registry import _REGISTRY, register_credit

__all__ = ["VotingConfig", "ShapleyConfig", "voting_loo", "voting_shapley", "shapley_values"]


@dataclass(frozen=True)
class VotingConfig:
    """Options of ``voting``.

    Attributes:
        scale: ``"none"`` (default) keeps ``Δ_i`` raw; ``"history"`` divides it by the global-history
            std of ``Δ`` pooled over voters (signal ``voting/delta``; never re-centred).
        eps: ``ε`` added to σ (default 1e-6).
    """

    scale: str = "none"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.scale not in ("history", "none"):
            raise ValueError(f"VotingConfig.scale must be 'history' or 'none', got {self.scale!r}")


@register_credit("voting", baselined_roles=("*",), needs=("loo",), config_cls=VotingConfig)
def voting_loo(batch: CreditBatch, config: VotingConfig,
               normalizer: GlobalHistoryNormalizer | None = None) -> CreditResult:
    """Leave-one-out marginal credit ``Δ_i = R_joint − R_¬i`` per voter (baselined)."""
    delta = batch.joint_reward[:, None] - batch.loo_reward  # [E, N], column i = roles[i]
    if config.scale == "history":
        if normalizer is None:
            raise ValueError("voting with scale='history' needs a GlobalHistoryNormalizer")
        n_roles = delta.shape[1]
        sources = None if batch.source is None else np.repeat(batch.source, n_roles)
        # One call on the flattened [E*N] array: every voter is scaled with the same pre-batch σ.
        scaled = normalizer.normalize("voting/delta", delta.reshape(-1), sources, center=False)
        delta = scaled.reshape(delta.shape)
    raw = batch.joint_reward[:, None] - batch.loo_reward
    metrics = {
        "credit/pivotal_frac": float((raw != 0).mean()),
        "credit/pivotal_success_frac": float((raw > 0).mean()),
        "credit/pivotal_failure_frac": float((raw < 0).mean()),
    }
    return CreditResult(
        rewards={role: delta[:, i].copy() for i, role in enumerate(batch.roles)},
        group_keys={role: batch.group for role in batch.roles},
        baselined={role: True for role in batch.roles},
        metrics=metrics,
    )


@dataclass(frozen=True)
class ShapleyConfig:
    """``voting_shapley`` has no options (the empty coalition's value comes from the env)."""


def shapley_values(v: np.ndarray) -> np.ndarray:
    """``[E, 2^N]`` coalition values (column ``Σ_{i∈S} 2^i``) -> ``[E, N]`` Shapley values, exactly."""
    v = np.asarray(v, dtype=np.float64)
    n = int(round(math.log2(v.shape[1])))
    if v.ndim != 2 or v.shape[1] != 1 << n:
        raise ValueError(f"coalition values must have shape [E, 2^N], got {v.shape}")
    masks = np.arange(1 << n)
    size = np.array([bin(int(m)).count("1") for m in masks])
    phi = np.zeros((v.shape[0], n))
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]  # S ⊆ N∖{i}
        s = size[without]
        weight = np.array([math.factorial(k) * math.factorial(n - k - 1) for k in s]) / math.factorial(n)
        phi[:, i] = (v[:, without | (1 << i)] - v[:, without]) @ weight
    return phi


@register_credit("voting_shapley", baselined_roles=(), needs=("coalitions",), config_cls=ShapleyConfig)
def voting_shapley(batch: CreditBatch, config: ShapleyConfig) -> CreditResult:
    """Shapley-value credit ``φ_i`` per voter over all coalitions of voters (a reward; the estimator centres it)."""
    phi = shapley_values(batch.coalition_reward)
    loo = batch.joint_reward[:, None] - batch.coalition_reward[:, [(1 << len(batch.roles)) - 1 - (1 << i)
                                                                   for i in range(len(batch.roles))]]
    return CreditResult(
        rewards={role: phi[:, i].copy() for i, role in enumerate(batch.roles)},
        group_keys={role: batch.group for role in batch.roles},
        baselined={role: False for role in batch.roles},
        metrics={
            "credit/shapley_nonzero_frac": float((np.abs(phi) > 1e-12).mean()),
            "credit/pivotal_frac": float((loo != 0).mean()),
        },
    )


for _alias in ("voting_loo", "loo"):
    _REGISTRY.alias(_alias, "voting")
