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

from . import advantages as _advantages
from . import kl as _kl
from . import losses as _losses
from . import masked as _masked
from .advantages import *
from .kl import *
from .losses import *
from .masked import *

# Each module's __all__ is its public API; the package re-exports all of them.
__all__ = [
    *_advantages.__all__, *_losses.__all__, *_kl.__all__, *_masked.__all__,
    "EstimatorConfig", "LossConfig", "Registry", "UnknownNameError",
]  # fmt: skip
