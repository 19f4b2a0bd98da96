"""Advantage estimators, policy losses, KL/entropy terms and their configs (group-relative estimators as in GRPO/Dr.GRPO/RLOO/REINFORCE++; PPO-clip and GSPO losses).

Pure functions on tensors, selectable by name through registries::

    from ccpo_agents.algos import compute_advantages, compute_policy_objective, LossConfig

    adv = compute_advantages("grpo", rewards, group_ids=[(p, t) for p, t in keys])
    loss, metrics = compute_policy_objective(logprobs, old_logprobs, adv, mask, LossConfig(name="gspo"))
    if not metrics["nonfinite"]:
        loss.backward()
"""

from ccpo_agents.config.algo import EstimatorConfig, LossConfig
from ccpo_env.registry import Registry, UnknownNameError

from .advantages import (
    ESTIMATORS,
    AdvantageEstimator,
    GroupIds,
    compute_advantages,
    dr_grpo_advantages,
    estimate_advantages,
    get_estimator,
    group_index,
    grpo_advantages,
    list_estimators,
    register_estimator,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)
from .kl import KL_KINDS, entropy_from_logits, kl_penalty
from .losses import (
    AGG_MODES,
    LOSSES,
    LossSpec,
    TokenLoss,
    TokenLossFn,
    agg_loss,
    apply_truncation_mask,
    clipped_surrogate,
    compute_policy_objective,
    get_loss,
    gspo_token_loss,
    list_losses,
    policy_loss,
    ppo_token_loss,
    register_loss,
    resolved_agg,
)
from .masked import as_bool_mask, masked_mean, masked_sum

__all__ = [
    # advantages
    "GroupIds",
    "AdvantageEstimator",
    "ESTIMATORS",
    "register_estimator",
    "get_estimator",
    "list_estimators",
    "group_index",
    "compute_advantages",
    "grpo_advantages",
    "dr_grpo_advantages",
    "rloo_advantages",
    "reinforce_pp_advantages",
    "reinforce_pp_baseline_advantages",
    # losses
    "AGG_MODES",
    "LOSSES",
    "LossSpec",
    "TokenLoss",
    "TokenLossFn",
    "register_loss",
    "get_loss",
    "list_losses",
    "agg_loss",
    "clipped_surrogate",
    "ppo_token_loss",
    "gspo_token_loss",
    "apply_truncation_mask",
    "policy_loss",
    "compute_policy_objective",
    "estimate_advantages",
    "resolved_agg",
    # kl / entropy / masked
    "KL_KINDS",
    "kl_penalty",
    "entropy_from_logits",
    "as_bool_mask",
    "masked_sum",
    "masked_mean",
    # config
    "EstimatorConfig",
    "LossConfig",
    # registry
    "Registry",
    "UnknownNameError",
]
