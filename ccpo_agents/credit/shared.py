"""``shared``: the ReMA baseline, every agent gets ``R_joint``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import DYAD_ROLES, CreditBatch, CreditResult
from .registry import register_credit

__all__ = ["SharedConfig", "shared_credit", "solver_only_credit"]


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


@register_credit("solver_only", team=DYAD_ROLES, baselined_roles=(), config_cls=SharedConfig)
def solver_only_credit(batch: CreditBatch, config: SharedConfig | None = None) -> CreditResult:
    """Positive control of a free-riding probe: the Thinker gets no credit (0), the Solver ``R_joint``.

    A constant 0 has no advantage under any estimator, so the Thinker learns nothing from the outcome; with
    ``credit.thought_cost`` the cost is the only signal left on it, and a probe that can detect free-riding
    must see its thoughts collapse. Think–Solve only.
    """
    if set(batch.roles) != set(DYAD_ROLES):
        raise ValueError(f"solver_only is a Think–Solve method: roles must be {DYAD_ROLES}, got {batch.roles}")
    r = batch.joint_reward
    return CreditResult(
        rewards={"thinker": np.zeros_like(r), "solver": r.copy()},
        group_keys={role: batch.group for role in batch.roles},
        baselined={role: False for role in batch.roles},
    )
