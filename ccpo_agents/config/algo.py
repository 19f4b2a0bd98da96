"""Typed configuration for advantage estimation and the policy objective.

Fields carry their documentation twice, TRL-style: in the class docstring and as ``metadata["help"]`` (for CLI /
YAML tooling). Values are validated in ``__post_init__`` so that a bad config fails when it is built, with a
message naming the valid choices. This module must not import torch, and the estimator/loss registries live
with the torch code: a name is checked against the registry when that module is loaded (it must be, for a
custom name to have been registered), otherwise against the built-in names.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ccpo_env.registry import UnknownNameError, unknown_name_message

__all__ = ["AGG_MODES", "BUILTIN_ESTIMATORS", "BUILTIN_LOSSES", "KL_KINDS", "EstimatorConfig", "LossConfig"]

#: Loss aggregation modes (see :mod:`ccpo_agents.algos.losses`).
AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
#: KL estimators (see :mod:`ccpo_agents.algos.kl`).
KL_KINDS = ("k1", "k2", "k3", "low_var_kl", "abs")
#: The estimators and losses ccpo_agents.algos registers itself (a test keeps these in sync).
BUILTIN_ESTIMATORS = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")
BUILTIN_LOSSES = ("ppo", "gspo")


def _check_name(kind: str, name: str, module: str, getter: str, builtins: tuple[str, ...]) -> None:
    loaded = sys.modules.get(module)
    if loaded is not None:
        getattr(loaded, getter)(name)  # the registry: built-ins and custom names, with a suggestion
    elif name not in builtins:
        raise UnknownNameError(unknown_name_message(kind, name, list(builtins)))


@dataclass
class EstimatorConfig:
    r"""How per-sample rewards become advantages (one per role; the grouping key is the trainer's choice).

    Parameters:
        name (`str`, *optional*, defaults to `"grpo"`):
            Registered estimator: `"grpo"`, `"dr_grpo"`, `"rloo"`, `"reinforce_pp"`, `"reinforce_pp_baseline"`, or a
            custom one.
        eps (`float`, *optional*, defaults to `1e-6`):
            ε added to standard deviations (verl's default).
        norm_by_std (`bool`, *optional*, defaults to `True`):
            `grpo` only: divide by the group std. `False` gives Dr.GRPO's mean-only centring.
        respect_baselined (`bool`, *optional*, defaults to `True`):
            Honour credit signals flagged as already baselined (e.g. `ccpo_tree`'s Thinker Δ_j): group estimators
            pass them through, `reinforce_pp` only scales them. `False` centres them anyway -- the ablation
            that cancels the counterfactual baseline (centring removes ccpo_tree's V_solo).
    """

    name: str = field(default="grpo", metadata={"help": "Registered advantage estimator name."})
    eps: float = field(default=1e-6, metadata={"help": "Epsilon added to standard deviations."})
    norm_by_std: bool = field(default=True, metadata={"help": "grpo only: divide by the group std."})
    respect_baselined: bool = field(
        default=True, metadata={"help": "Pass already-baselined credit signals through instead of centring."}
    )

    def __post_init__(self) -> None:
        _check_name("advantage estimator", self.name, "ccpo_agents.algos.advantages", "get_estimator",
                    BUILTIN_ESTIMATORS)
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        if not self.norm_by_std and self.name != "grpo":
            raise ValueError(f"norm_by_std applies to 'grpo' only (name={self.name!r}); use name='dr_grpo'")


@dataclass
class LossConfig:
    r"""The policy objective: clipped policy-gradient loss + optional KL to a reference + entropy bonus.

    Parameters:
        name (`str`, *optional*, defaults to `"ppo"`):
            Registered policy loss: `"ppo"` (token-level clip, GRPO) or `"gspo"` (sequence-level ratio).
        clip_low (`float` or `None`, *optional*, defaults to `None`):
            ε_low, ratio lower bound 1−ε_low. `None` = the loss's default: 0.2 for `ppo`, 3e-4 for `gspo`.
        clip_high (`float` or `None`, *optional*, defaults to `None`):
            ε_high, ratio upper bound 1+ε_high (> ε_low is DAPO's clip-higher). `None` = 0.2 for `ppo`, 4e-4 for
            `gspo`.
        dual_clip (`float` or `None`, *optional*, defaults to `None`):
            Dual-clip constant c > 1 (verl uses 3.0): the loss of a negative-advantage token is capped at −A·c.
            `None` disables it.
        agg (`str` or `None`, *optional*, defaults to `None`):
            `"token-mean"`, `"seq-mean-token-mean"` or `"seq-mean-token-sum-norm"`. `None` = the loss's default:
            `token-mean` for `ppo`, `seq-mean-token-mean` for `gspo`. Also used for the KL and entropy terms.
        norm_len (`int` or `None`, *optional*, defaults to `None`):
            Constant L of `seq-mean-token-sum-norm`. `None` = the padded response width of each batch; set it to the
            generation budget (max_new_tokens) so it is constant across batches.
        kl_coef (`float`, *optional*, defaults to `0.0`):
            β of the KL-to-reference loss term; 0 disables it (no reference model needed).
        kl_kind (`str`, *optional*, defaults to `"k3"`):
            KL estimator: `"k1"`, `"k2"`, `"k3"` (= `"low_var_kl"`), `"abs"`.
        entropy_coef (`float`, *optional*, defaults to `0.0`):
            Weight of the entropy bonus (subtracted from the loss); 0 disables it.
        mask_truncated (`bool`, *optional*, defaults to `False`):
            Give responses truncated at the length limit zero weight in the loss (DAPO's overlong filtering).
    """

    name: str = field(default="ppo", metadata={"help": "Registered policy loss name ('ppo', 'gspo', ...)."})
    clip_low: float | None = field(
        default=None, metadata={"help": "Lower clip epsilon; None = loss default."}
    )
    clip_high: float | None = field(
        default=None, metadata={"help": "Upper clip epsilon; None = loss default."}
    )
    dual_clip: float | None = field(
        default=None, metadata={"help": "Dual-clip constant c > 1, or None (off)."}
    )
    agg: str | None = field(default=None, metadata={"help": "Loss aggregation mode; None = loss default."})
    norm_len: int | None = field(
        default=None, metadata={"help": "L of seq-mean-token-sum-norm; None = padded width T."}
    )
    kl_coef: float = field(default=0.0, metadata={"help": "KL-to-reference coefficient (0 = off)."})
    kl_kind: str = field(default="k3", metadata={"help": "KL estimator: k1, k2, k3/low_var_kl, abs."})
    entropy_coef: float = field(default=0.0, metadata={"help": "Entropy bonus coefficient (0 = off)."})
    mask_truncated: bool = field(
        default=False, metadata={"help": "Zero loss weight for truncated responses."}
    )

    def __post_init__(self) -> None:
        _check_name("policy loss", self.name, "ccpo_agents.algos.losses", "get_loss", BUILTIN_LOSSES)
        if self.clip_low is not None and not 0.0 <= self.clip_low < 1.0:
            raise ValueError(f"clip_low must be in [0, 1), got {self.clip_low}")
        if self.clip_high is not None and self.clip_high < 0.0:
            raise ValueError(f"clip_high must be >= 0, got {self.clip_high}")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 (e.g. 3.0) or None, got {self.dual_clip}")
        if self.agg is not None and self.agg not in AGG_MODES:
            raise ValueError(f"unknown agg {self.agg!r}; valid modes: {', '.join(AGG_MODES)}")
        if self.norm_len is not None and self.norm_len <= 0:
            raise ValueError(f"norm_len must be > 0, got {self.norm_len}")
        if self.kl_kind not in KL_KINDS:
            raise ValueError(f"unknown kl_kind {self.kl_kind!r}; valid kinds: {', '.join(KL_KINDS)}")
        if self.kl_coef < 0 or self.entropy_coef < 0:
            raise ValueError("kl_coef and entropy_coef must be >= 0")
