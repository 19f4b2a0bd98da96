"""``voting`` (aliases ``voting_loo``, ``loo``): leave-one-out counterfactual credit for N voters.

``Δ_i = R_joint − R_¬i`` where ``R_¬i`` is the joint reward of the plurality re-vote with voter i's
vote left out (``VotingEnv.counterfactual_rewards()``: no extra decoding). ``Δ_i > 0``: the voter was
pivotal for a success; ``Δ_i < 0``: pivotal for a failure; 0: its vote did not change the outcome.
``Δ_i`` is a counterfactual difference, i.e. already an advantage: every role is baselined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import CreditBatch, CreditResult
from .normalizer import GlobalHistoryNormalizer
from .registry import _REGISTRY, register_credit

__all__ = ["VotingConfig", "voting_loo"]


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


for _alias in ("voting_loo", "loo"):
    _REGISTRY.alias(_alias, "voting")
