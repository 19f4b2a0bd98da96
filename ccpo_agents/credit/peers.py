"""Peer methods for the same problem, registered under the same budget so the study can compare them.

Each turns the joint outcome into one advantage per agent with a different baseline. All three return every
role **baselined** (the estimator passes the signal through unchanged), so what they compute does not depend
on ``algo.estimator``. "A role's samples" are what the trainer trains on: the Thinker has one sample per
*thought* (its message is shared by the thought's m answers) with value ``V(t_j)`` = the mean joint reward of
those answers; every other role has one sample per episode with value ``R``. Groups with a single member, or
whose values are all equal, get advantage exactly 0 (no signal), as in the group estimators.

=========  ===========================================================  =======================================
name       advantage of a sample                                         reduces to
=========  ===========================================================  =======================================
``c3``     Thinker: V(t_j) − mean_{j'≠j} V(t_j') over the prompt's       Thinker: ``shared`` under ``rloo``;
           thoughts; Solver: R_jk − mean_{k'≠k} R_jk' over the answers   Solver: ``ccpo_tree``'s Solver under
           to the *same* thought (context-matched replay)                ``rloo`` (grouped by thought)
``magrpo`` R − mean over the prompt's joint episodes, the same for       ``shared`` under ``dr_grpo``, exactly
           every agent (Thinker: mean over its thought's answers)
``drmas``  (v − μ_i)/(σ_i + ε) with agent i's own mean and std over      ``shared`` under ``grpo``, exactly (the
           its samples of the prompt; ``pooled=True``: μ, σ over all     default estimator already normalises per
           agents' samples of the prompt (the global baseline it fixes)  role); ``pooled=True`` differs
=========  ===========================================================  =======================================

Sources:

* **C3** (Chen et al., 2026, arXiv 2603.06859), "reward-only" variant: freeze an agent's context, replay
  alternatives to its decision with the downstream agents sampled as usual, and baseline each alternative by
  the leave-one-out mean of its siblings. Unlike ``ccpo_tree`` it never removes the Thinker: its baseline for a
  thought is the other thoughts to the same prompt, not the Solver alone, and it samples no solo answers. It
  argues that removing an agent measures the Solver off its usual input; ``c3`` against ``ccpo_tree`` is the
  test of that for the Think–Solve removal. The critic-assisted variant (a learned Q mixed into the baseline)
  is not implemented.
* **MAGRPO** (Liu et al., 2025, arXiv 2508.04652; CoMLRL): every agent's advantage is the joint reward minus
  the mean over the group of joint actions sampled for the same prompt, without std scaling.
* **Dr. MAS** (Feng et al., 2026, arXiv 2602.08847): GRPO with one *global* baseline over all agents'
  samples of a prompt mis-scales agents whose reward distributions differ; normalise each agent with its own
  mean and std instead. In the Think–Solve dyad both agents act once per episode, so the agent-wise and
  pooled means coincide and ``pooled`` changes only the Thinker's scale: the std of its per-thought averages
  ``V(t_j)`` (at most the std of R) against the std of both agents' samples pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import DYAD_ROLES, CreditBatch, CreditResult, group_mean
from .registry import register_credit

__all__ = [
    "C3Config",
    "MAGRPOConfig",
    "DrMASConfig",
    "c3_credit",
    "magrpo_credit",
    "drmas_credit",
    "group_loo_mean",
    "group_std",
]

T, S = DYAD_ROLES
_BASELINES = ("loo", "mean")


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, inverse, counts = np.unique(np.asarray(keys), return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def group_loo_mean(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per-element mean of the *other* elements sharing its key; a group of one gets its own value."""
    values = np.asarray(values, dtype=np.float64)
    inverse, counts = _groups(keys)
    sums = np.bincount(inverse, weights=values, minlength=len(counts))[inverse]
    n = counts[inverse]
    return np.where(n > 1, (sums - values) / np.maximum(n - 1, 1), values)


def group_std(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per-element unbiased (n − 1) std of the elements sharing its key; a group of one gets 0."""
    values = np.asarray(values, dtype=np.float64)
    inverse, counts = _groups(keys)
    dev = values - group_mean(values, keys)
    ss = np.bincount(inverse, weights=dev * dev, minlength=len(counts))[inverse]
    n = counts[inverse]
    return np.sqrt(np.where(n > 1, ss / np.maximum(n - 1, 1), 0.0))


def _constant(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """True where the element's group holds a single value (size 1 included): no learning signal."""
    inverse, counts = _groups(keys)
    hi = np.full(len(counts), -np.inf)
    lo = np.full(len(counts), np.inf)
    np.maximum.at(hi, inverse, values)
    np.minimum.at(lo, inverse, values)
    return (hi == lo)[inverse]


def _role_samples(batch: CreditBatch, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, groups, episode -> sample index)`` of what ``role`` trains on (see the module docstring)."""
    if role == T and batch.thought is not None:
        _, first, inverse = np.unique(batch.thought, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        v = np.bincount(inverse, weights=batch.joint_reward) / np.bincount(inverse)  # V(t_j)
        return v, batch.group[first], inverse
    return batch.joint_reward.astype(np.float64), batch.group, np.arange(batch.num_episodes)


def _baselined(rewards: dict[str, np.ndarray], batch: CreditBatch, keys: dict[str, np.ndarray] | None = None,
               metrics: dict[str, float] | None = None) -> CreditResult:  # fmt: skip
    return CreditResult(
        rewards=rewards,
        group_keys={role: batch.group if keys is None else keys.get(role, batch.group) for role in rewards},
        baselined={role: True for role in rewards},
        metrics=metrics or {},
    )


# ---------------------------------------------------------------------------------------------- c3
@dataclass(frozen=True)
class C3Config:
    """Options of ``c3``.

    Attributes:
        baseline: ``"loo"`` (default, the paper's) subtracts the mean of the *other* siblings; ``"mean"``
            subtracts the siblings' mean including itself (the paper's ``full_mean`` ablation).
    """

    baseline: str = "loo"

    def __post_init__(self) -> None:
        if self.baseline not in _BASELINES:
            raise ValueError(f"C3Config.baseline must be one of {_BASELINES}, got {self.baseline!r}")


@register_credit("c3", team=DYAD_ROLES, baselined_roles=("*",), needs=("thoughts",), config_cls=C3Config)
def c3_credit(batch: CreditBatch, config: C3Config) -> CreditResult:
    """C3 (reward-only): each decision against the leave-one-out mean of its context-matched siblings.

    For prompt p with thoughts j = 1..n and answers k = 1..m to each thought::

        A_thinker(t_j) = V(t_j) − (1/(n−1)) Σ_{j'≠j} V(t_j')      siblings: the prompt's other thoughts
        A_solver(j,k)  = R_jk  − (1/(m−1)) Σ_{k'≠k} R_jk'          siblings: the other answers to thought j

    with ``V(t_j)`` the mean of thought j's m joint rewards. ``baseline="mean"`` uses the siblings' mean with
    the decision itself included (``V(t_j) − mean_j V``, ``R_jk − V(t_j)``). A LOO advantage is the centred one
    times ``n/(n−1)``. No solo answers are sampled.
    """
    if set(batch.roles) != set(DYAD_ROLES):
        raise ValueError(f"c3 is a Think–Solve method: roles must be {DYAD_ROLES}, got {batch.roles}")
    baseline = group_loo_mean if config.baseline == "loo" else group_mean
    v, g, inverse = _role_samples(batch, T)
    a_thinker = np.where(_constant(v, g), 0.0, v - baseline(v, g))
    r = batch.joint_reward.astype(np.float64)
    a_solver = np.where(_constant(r, batch.thought), 0.0, r - baseline(r, batch.thought))
    n_thoughts = np.bincount(_groups(g)[0]).astype(np.float64)
    return _baselined({T: a_thinker[inverse], S: a_solver}, batch, keys={S: batch.thought}, metrics={
        "credit/thoughts_per_prompt": float(n_thoughts.mean()),
        "credit/thinker_signal_frac": float((a_thinker != 0).mean()),
        "credit/solver_signal_frac": float((a_solver != 0).mean()),
    })


# ------------------------------------------------------------------------------------------ magrpo
@dataclass(frozen=True)
class MAGRPOConfig:
    """Options of ``magrpo``.

    Attributes:
        baseline: ``"mean"`` (default, MAGRPO's) subtracts the joint group's mean; ``"loo"`` the mean of the
            other joint episodes of the prompt.
    """

    baseline: str = "mean"

    def __post_init__(self) -> None:
        if self.baseline not in _BASELINES:
            raise ValueError(f"MAGRPOConfig.baseline must be one of {_BASELINES}, got {self.baseline!r}")


@register_credit("magrpo", baselined_roles=("*",), config_cls=MAGRPOConfig)
def magrpo_credit(batch: CreditBatch, config: MAGRPOConfig) -> CreditResult:
    """MAGRPO: every agent's advantage is ``Â = R − mean(R over the prompt's joint episodes)``.

    The same ``Â`` goes to every agent of an episode (no std scaling); a Thinker sample (one per thought)
    is the mean of its answers' ``Â``, i.e. ``V(t_j) − μ_p``. ``baseline="loo"`` uses the other episodes'
    mean instead.
    """
    r = batch.joint_reward.astype(np.float64)
    baseline = group_loo_mean if config.baseline == "loo" else group_mean
    adv = np.where(_constant(r, batch.group), 0.0, r - baseline(r, batch.group))
    return _baselined({role: adv.copy() for role in batch.roles}, batch, metrics={
        "credit/signal_frac": float((adv != 0).mean()),
    })


# ------------------------------------------------------------------------------------------- drmas
@dataclass(frozen=True)
class DrMASConfig:
    """Options of ``drmas``.

    Attributes:
        pooled: False (default, Dr. MAS) normalises each agent with its own statistics; True uses one mean and
            std over all agents' samples of the prompt: the global baseline Dr. MAS replaces (an ablation).
        eps: ``ε`` added to σ (default 1e-6, as the ``grpo`` estimator).
    """

    pooled: bool = False
    eps: float = 1e-6


@register_credit("drmas", baselined_roles=("*",), config_cls=DrMASConfig)
def drmas_credit(batch: CreditBatch, config: DrMASConfig) -> CreditResult:
    """Dr. MAS: agent-wise normalised advantage ``A_i = (v − μ_{i,p}) / (σ_{i,p} + ε)``.

    ``μ_{i,p}``, ``σ_{i,p}`` (unbiased) are over agent i's own samples of prompt p: the Thinker's per-thought
    values ``V(t_j)``, every other agent's episode rewards. With ``pooled=True`` they are over the union of all
    agents' samples of p instead.
    """
    samples = {role: _role_samples(batch, role) for role in batch.roles}
    if config.pooled:
        values = np.concatenate([v for v, _, _ in samples.values()])
        groups = np.concatenate([g for _, g, _ in samples.values()])
        mu, sd, const = group_mean(values, groups), group_std(values, groups), _constant(values, groups)
    rewards, scale, start = {}, {}, 0
    for role, (v, g, inverse) in samples.items():
        if config.pooled:
            sl = slice(start, start + len(v))
            m, s, c = mu[sl], sd[sl], const[sl]
            start += len(v)
        else:
            m, s, c = group_mean(v, g), group_std(v, g), _constant(v, g)
        a = np.where(c, 0.0, (v - m) / (s + config.eps))
        rewards[role] = a[inverse]
        scale[f"credit/{role}/sigma"] = float(np.mean(s))
    return _baselined(rewards, batch, metrics=scale)
