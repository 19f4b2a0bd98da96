"""``shared``: the ReMA baseline, every agent gets ``R_joint``."""

from __future__ import annotations

from dataclasses import dataclass

from .batch import CreditBatch, CreditResult
from .registry import register_credit

__all__ = ["SharedConfig", "shared_credit"]


@dataclass(frozen=True)
class SharedConfig:
    """``shared`` has no options."""


@register_credit("shared", baselined_roles=(), config_cls=SharedConfig)
def shared_credit(batch: CreditBatch, config: SharedConfig | None = None) -> CreditResult:
    """Every role gets ``R_joint``, grouped by prompt; not baselined (estimators centre it)."""
    r = batch.joint_reward
    return CreditResult(
        rewards={role: r.copy() for role in batch.roles},
        group_keys={role: batch.group for role in batch.roles},
        baselined={role: False for role in batch.roles},
    )
