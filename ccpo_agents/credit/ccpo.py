"""Counterfactual marginal credit for the Think–Solve dyad: ``Δ = R_joint − R_¬thinker``.

``R_¬thinker`` is the Solver answering alone (the Thinker removed through the env's counterfactual
hook). Three variants:

* ``ccpo_paired`` (paper v1): joint rollout k paired with solo rollout k of the same prompt;
  history-normalised and shaped (tanh for the Thinker, a history gate for the Solver). The trainer
  samples a pair with common random numbers (``rollout.common_random_numbers``, on by default for this
  method): the solo answer reuses the joint answer's sampling noise, so ``Δ_k`` measures the Thinker's
  message rather than two independent draws.
* ``ccpo_event`` (reference code's current default): a ±λ bonus for the Thinker when the joint
  outcome beats / loses to the prompt's solo mean. Known flaw: the solo mean is constant within a
  prompt group, so after group-mean centring the Thinker's advantage is the shared-reward advantage
  times 1+λ/2 (tested in ``tests/test_credit.py``).
* ``ccpo_tree`` (ours): n thoughts × m answers per prompt plus k solo answers. The Thinker's credit
  ``Δ_j = V(t_j) − V_solo`` is its advantage (the counterfactual *is* the baseline); the Solver is
  baselined within its own thought.

All three expect ``batch.roles == ("thinker", "solver")`` (in any order).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .batch import DYAD_ROLES, CreditBatch, CreditResult, group_mean
from .normalizer import GlobalHistoryNormalizer
from .registry import register_credit

__all__ = [
    "CCPOPairedConfig",
    "CCPOEventConfig",
    "CCPOTreeConfig",
    "ccpo_paired",
    "ccpo_event",
    "ccpo_tree",
    "pair_solo_rewards",
]

T, S = DYAD_ROLES


def _check_dyad(batch: CreditBatch, method: str) -> None:
    if set(batch.roles) != set(DYAD_ROLES):
        raise ValueError(f"{method} is a Think–Solve method: roles must be {DYAD_ROLES}, got {batch.roles}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def pair_solo_rewards(batch: CreditBatch) -> tuple[np.ndarray, np.ndarray]:
    """``(R_solo[E], paired[E])``: the solo rollout with the same ``(group, pair_index)`` as each
    joint episode. An episode without such a partner gets its group's solo mean (``paired=False``),
    as the reference does when there are fewer solo than joint rollouts."""
    lut: dict[tuple, int] = {}
    for i, key in enumerate(zip(batch.solo_group.tolist(), batch.solo_pair_index.tolist())):
        if key in lut:
            raise ValueError(f"two solo rollouts share (group, pair_index) = {key}")
        lut[key] = i
    fallback = batch.solo_group_mean()  # also raises for groups without any solo rollout
    idx = np.array([lut.get(k, -1) for k in zip(batch.group.tolist(), batch.pair_index.tolist())])
    paired = idx >= 0
    r_solo = np.where(paired, batch.solo_reward[np.maximum(idx, 0)], fallback)
    return r_solo, paired


# ------------------------------------------------------------------------------------ ccpo_paired
@dataclass(frozen=True)
class CCPOPairedConfig:
    """Options of ``ccpo_paired`` (defaults from the reference ``HistoricalRewardNormalizer``).

    Attributes:
        alpha: tanh sensitivity ``α`` of the Thinker's shaped credit (default 1.0).
        eta: gate sharpness ``η`` of the Solver's joint/solo mix (default 1.0).
        eps: ``ε`` added to every σ in the formulas (default 1e-6).
        gate_clip: the gate logit is clipped to ``±gate_clip`` before the sigmoid (default 20).
    """

    alpha: float = 1.0
    eta: float = 1.0
    eps: float = 1e-6
    gate_clip: float = 20.0


@register_credit("ccpo_paired", team=DYAD_ROLES, baselined_roles=(), needs=("solo",), num_solo="paired",
                 needs_normalizer=True, config_cls=CCPOPairedConfig)
def ccpo_paired(batch: CreditBatch, config: CCPOPairedConfig, normalizer: GlobalHistoryNormalizer) -> CreditResult:
    """Paper v1: history-normalised paired counterfactual credit (not baselined; estimators centre).

    With ``Δ = R_joint − R_solo`` per pair and EMA statistics from before this batch::

        r_thinker = tanh(α·(Δ − μ_Δ)/(σ_Δ + ε))
        g         = sigmoid(clip(η·μ_Δ/(σ_Δ + ε), ±20))
        r_solver  = g·(R_joint − μ_J)/(σ_J + ε) + (1 − g)·(R_solo − μ_S)/(σ_S + ε)

    Pairs. The solo rollout of pair ``k`` should be drawn with the joint rollout's sampling noise (common
    random numbers: the trainer does this by default, see ``RolloutConfig.common_random_numbers``). Then
    ``Δ_k`` is the effect of the Thinker's message on *this* Solver draw, ``Var(Δ) = Var(R_J) + Var(R_S) −
    2 Cov(R_J, R_S)`` is reduced by the pair's positive covariance, and ``z_solo`` in the Solver's credit is
    the outcome of its own draw without the thought. Without common noise ``Δ_k`` is a difference of
    independent draws and ``z_solo`` is unrelated to the joint answer being trained.

    First batch (no history for the episode's source): ``r_thinker = Δ``, ``r_solver = R_joint``
    (the reference's pass-through; reported gate 1). The normalizer is then updated with the raw
    ``Δ``, ``R_joint``, ``R_solo`` under ``ccpo_paired/{delta,joint,solo}``.
    """
    _check_dyad(batch, "ccpo_paired")
    cfg, n = config, batch.num_episodes
    r_joint = batch.joint_reward
    r_solo, paired = pair_solo_rewards(batch)
    delta = r_joint - r_solo  # Δ: the Thinker's marginal contribution on this pair

    mu_d, sd_d, known_d = normalizer.lookup("ccpo_paired/delta", batch.source, n)
    mu_j, sd_j, known_j = normalizer.lookup("ccpo_paired/joint", batch.source, n)
    mu_s, sd_s, known_s = normalizer.lookup("ccpo_paired/solo", batch.source, n)
    known = known_d & known_j & known_s  # the three are always updated together

    r_thinker = np.where(known, np.tanh(cfg.alpha * (delta - mu_d) / (sd_d + cfg.eps)), delta)
    # The gate trusts the joint signal when the Thinker has helped on average (μ_Δ > 0) and leans
    # on the solo signal, keeping the Solver able to work alone, when it has not.
    gate = np.where(known, _sigmoid(np.clip(cfg.eta * mu_d / (sd_d + cfg.eps), -cfg.gate_clip, cfg.gate_clip)), 1.0)
    z_joint = (r_joint - mu_j) / (sd_j + cfg.eps)
    z_solo = (r_solo - mu_s) / (sd_s + cfg.eps)
    r_solver = np.where(known, gate * z_joint + (1.0 - gate) * z_solo, r_joint)

    normalizer.update("ccpo_paired/delta", delta, batch.source)
    normalizer.update("ccpo_paired/joint", r_joint, batch.source)
    normalizer.update("ccpo_paired/solo", r_solo, batch.source)

    return CreditResult(
        rewards={T: r_thinker, S: r_solver},
        group_keys={T: batch.group, S: batch.group},
        baselined={T: False, S: False},
        metrics={
            "credit/delta_mean": float(delta.mean()),
            "credit/delta_pos_frac": float((delta > 0).mean()),
            "credit/delta_neg_frac": float((delta < 0).mean()),
            "credit/gate": float(gate.mean()),
            "credit/unpaired_frac": float((~paired).mean()),
            "credit/passthrough_frac": float((~known).mean()),
        },
    )


# ------------------------------------------------------------------------------------- ccpo_event
@dataclass(frozen=True)
class CCPOEventConfig:
    """Options of ``ccpo_event``.

    Attributes:
        lam: bonus size ``λ`` (default 0.2, the reference's ``counterfactual_lambda``).
    """

    lam: float = 0.2


@register_credit("ccpo_event", team=DYAD_ROLES, baselined_roles=(), needs=("solo",), num_solo="per_prompt",
                 config_cls=CCPOEventConfig)
def ccpo_event(batch: CreditBatch, config: CCPOEventConfig) -> CreditResult:
    """Reference default: ``r_thinker = R_joint + λ·(helped − hurt)``, ``r_solver = R_joint``.

    ``b`` = the group mean of the solo rewards; ``helped = [R_joint > 0 ∧ b < 0]``,
    ``hurt = [R_joint < 0 ∧ b > 0]`` (0 replaced by the reward midpoint for {0,1} rewards).
    Because ``b`` is constant within a prompt group, ``r_thinker`` is an affine function of
    ``R_joint`` inside each group (slope 1 + λ/2 for ±1 rewards when ``b ≠ 0``). Reductions: under
    ``grpo`` (centre and divide by the group std) the Thinker's advantage **is** ``shared``'s; under
    ``dr_grpo``/``rloo`` it is ``shared``'s times 1 + λ/2; only batch whitening (``reinforce_pp``) makes it differ.
    """
    _check_dyad(batch, "ccpo_event")
    r_joint = batch.joint_reward
    b = batch.solo_group_mean()
    mid = batch.midpoint
    helped = batch.success() & (b < mid)
    hurt = batch.failure() & (b > mid)
    r_thinker = r_joint + config.lam * (helped.astype(np.float64) - hurt.astype(np.float64))
    return CreditResult(
        rewards={T: r_thinker, S: r_joint.copy()},
        group_keys={T: batch.group, S: batch.group},
        baselined={T: False, S: False},
        metrics={
            "credit/helped_rate": float(helped.mean()),
            "credit/hurt_rate": float(hurt.mean()),
            "credit/solo_baseline_mean": float(b.mean()),
        },
    )


# -------------------------------------------------------------------------------------- ccpo_tree
@dataclass(frozen=True)
class CCPOTreeConfig:
    """Options of ``ccpo_tree``.

    Attributes:
        center: ablation: subtract the group mean of ``Δ_j`` over the prompt's thoughts (this cancels
            ``V_solo`` and leaves a plain per-thought value). Default False.
        scale: ``"history"`` divides ``Δ_j`` by its global-history std (never re-centred; first
            batch unscaled), ``"none"`` leaves it raw. Default ``"history"``.
        eps: ``ε`` added to σ (default 1e-6).
        allow_single_answer: accept thoughts with a single Solver answer (m = 1) with a warning
            instead of an error; their Solver advantage is then zero (one-member group).
    """

    center: bool = False
    scale: str = "history"
    eps: float = 1e-6
    allow_single_answer: bool = False

    def __post_init__(self) -> None:
        if self.scale not in ("history", "none"):
            raise ValueError(f"CCPOTreeConfig.scale must be 'history' or 'none', got {self.scale!r}")


@register_credit("ccpo_tree", team=DYAD_ROLES, baselined_roles=(T,), needs=("solo", "thoughts"),
                 num_solo="per_prompt",
                 needs_normalizer=True, config_cls=CCPOTreeConfig)
def ccpo_tree(batch: CreditBatch, config: CCPOTreeConfig, normalizer: GlobalHistoryNormalizer) -> CreditResult:
    """Ours: the Thinker's credit is ``Δ_j = V(t_j) − V_solo`` (baselined); the Solver's is
    ``R_joint`` grouped by thought, so the estimator computes ``R_joint − V(t_j)``.

    ``V(t_j)`` = mean ``R_joint`` over the m answers to thought j; ``V_solo`` = mean over the k solo
    answers of the prompt. ``Δ_j`` differs across thoughts and its sign says whether the thought
    beat solving alone. It is scaled by the global-history std of ``Δ_j`` (one sample per thought,
    signal ``ccpo_tree/delta``) and **not** re-centred. With ``center=True`` (ablation) the group
    mean over thoughts is subtracted first (signal ``ccpo_tree/delta_centered``); the result is still
    zero-mean per group, so it stays ``baselined``: the ablation differs only by the centring. Reductions:
    with ``center=True`` the Thinker's signal is ``V(t_j) − mean_j V``, i.e. ``shared`` under ``dr_grpo`` up to
    the global-history scale (centring cancels ``V_solo``); the Solver's is ``shared`` grouped by thought.
    """
    _check_dyad(batch, "ccpo_tree")
    cfg = config
    r_joint = batch.joint_reward
    ids, first, inverse, m = np.unique(batch.thought, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    single = int((m < 2).sum())
    if single:
        msg = (f"ccpo_tree: {single} of {len(ids)} thoughts have a single Solver answer (m = 1), so the "
               "Solver baseline V(t_j) is its own reward; sample m >= 2 answers per thought")
        if not cfg.allow_single_answer:
            raise ValueError(msg + " (or set allow_single_answer=True to accept it with a warning)")
        warnings.warn(msg, stacklevel=3)

    v_thought = np.bincount(inverse, weights=r_joint, minlength=len(ids)) / m  # V(t_j)
    v_solo = batch.solo_group_mean()[first]  # V_solo of each thought's prompt
    delta_raw = v_thought - v_solo  # Δ_j
    thought_group = batch.group[first]
    delta = delta_raw - group_mean(delta_raw, thought_group) if cfg.center else delta_raw
    if cfg.scale == "history":
        if normalizer is None:
            raise ValueError("ccpo_tree with scale='history' needs a GlobalHistoryNormalizer")
        name = "ccpo_tree/delta_centered" if cfg.center else "ccpo_tree/delta"
        sources = None if batch.source is None else batch.source[first]
        delta = normalizer.normalize(name, delta, sources, center=False)

    return CreditResult(
        rewards={T: delta[inverse], S: r_joint.copy()},
        group_keys={T: batch.group, S: batch.thought},
        baselined={T: True, S: False},
        metrics={
            "credit/thoughts": float(len(ids)),
            "credit/answers_per_thought": float(m.mean()),
            "credit/delta_mean": float(delta_raw.mean()),
            "credit/delta_pos_frac": float((delta_raw > 0).mean()),
            "credit/delta_neg_frac": float((delta_raw < 0).mean()),
            "credit/v_solo_mean": float(v_solo.mean()),
        },
    )
