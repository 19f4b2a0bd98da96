"""Outcome advantage estimators over per-sample scalar rewards.

Every estimator maps ``rewards: Tensor[B]`` (one scalar per response, e.g. one agent's credit per episode) and a
grouping of the samples (``group_ids``: the rollouts that share a baseline -- a prompt for the Thinker, a
``(prompt, thought)`` pair for the Solver) to ``advantages: Tensor[B]``. The trainer broadcasts them over the
response tokens. Math, with group g(i), its size n_g, mean μ_g and unbiased std σ_g:

==========================  =====================================================  ============================
name                        A_i                                                    source
==========================  =====================================================  ============================
``grpo``                    (r_i − μ_g) / (σ_g + ε)                                DeepSeekMath (GRPO)
``dr_grpo``                 r_i − μ_g                                              Dr.GRPO (Liu et al., 2025)
``rloo``                    r_i − (Σ_{j∈g, j≠i} r_j) / (n_g − 1)                   Ahmadian et al., 2024
``reinforce_pp``            (r_i − μ_B) / (σ_B + ε)    (whole batch B)             REINFORCE++ (Hu, 2025)
``reinforce_pp_baseline``   a_i / (σ_B(a) + ε),  a_i = r_i − μ_g                   REINFORCE++-baseline
==========================  =====================================================  ============================

Conventions (and why):

* **std is unbiased** (Bessel, ``n−1``), as ``torch.std`` in verl's ``compute_grpo_outcome_advantage`` and
  ``masked_whiten`` and in TRL's GRPO trainer -- so results match those libraries on the same data.
* **Constant groups give exactly 0**, never NaN and never a ±1e-10 residue: a group whose rewards are all equal
  (``max == min``, which includes every group of size 1) carries no learning signal. Float rounding makes
  ``r − mean`` only *nearly* zero there (0.3+0.3+0.3 ≠ 3·0.3) and dividing by ``σ + ε ≈ ε`` would amplify
  it, so these groups are zeroed explicitly. Singletons therefore get 0 for every group estimator (verl instead
  leaves a singleton's raw reward in for ``grpo``/``reinforce_pp_baseline``; we consider a baseline-free
  reward a bug, not a signal).
* ``reinforce_pp_baseline`` divides the group-centred values by their batch std without subtracting their batch
  mean again: that mean is 0 by construction (every group is centred), so re-subtracting it would only add float
  noise and un-zero the constant groups.
* Batch-level ``reinforce_pp`` ignores ``group_ids`` (may be ``None``).
* Math runs in float64 (B scalars, negligible cost) and is cast back to the rewards' floating dtype (float32 for
  integer rewards). Non-finite rewards are not rejected: they propagate to their group (to the whole batch for
  the batch-whitened estimators) and the loss reports ``nonfinite`` so the trainer skips that update.

**Already-baselined signals**. A credit method such as ``ccpo_tree`` may return a Thinker signal
Δ_j = V(t_j) − V_solo that *is* a counterfactual advantage (its baseline is the solo rollouts) and has already
been scaled by the credit's global-history normalizer. Centring it again on its group mean would cancel V_solo
and turn it back into a plain per-thought value. With ``baselined=True``:

* group estimators (``grpo``, ``dr_grpo``, ``rloo``, ``reinforce_pp_baseline``) return the signal **unchanged**;
* ``reinforce_pp`` only **scales** it by the batch std, A_i = r_i / (σ_B + ε), never subtracting μ_B
  (a batch whose values are all equal is returned unchanged -- dividing by ε would blow it up).

Custom estimators: ``@register_estimator("name")`` on ``fn(rewards, group_index, *, baselined, eps, **kw)``
where ``rewards`` is float ``Tensor[B]`` and ``group_index`` a contiguous ``LongTensor[B]`` of ids ``0..G-1``
(the mapping from arbitrary keys is done by :func:`compute_advantages`). The estimator must honour ``baselined``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from ccpo_agents.config.algo import EstimatorConfig
from ccpo_env.registry import Registry

__all__ = [
    "estimate_advantages",
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
]

#: Anything that names a group per sample: an int tensor/array (1-D, or 2-D whose rows are composite keys), or a
#: sequence of hashables such as ``(prompt_id, thought_id)`` tuples.
GroupIds = Tensor | np.ndarray | Sequence[Hashable]


class AdvantageEstimator(Protocol):
    """Signature of a registered estimator."""

    def __call__(
        self, rewards: Tensor, group_ids: Any, *, baselined: bool = False, eps: float = 1e-6, **kwargs: Any
    ) -> Tensor: ...


ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator")


def register_estimator(
    name: str, fn: AdvantageEstimator | None = None, *, overwrite: bool = False
) -> Callable[[AdvantageEstimator], AdvantageEstimator] | AdvantageEstimator:
    """Register an advantage estimator under ``name`` (usable as ``@register_estimator("name")``)."""
    return ESTIMATORS.register(name, fn, overwrite=overwrite)


def get_estimator(name: str) -> AdvantageEstimator:
    """The estimator registered under ``name``; unknown names raise an error listing the valid ones."""
    return ESTIMATORS.get(name)


def list_estimators() -> list[str]:
    """Names of all registered estimators."""
    return ESTIMATORS.names()


# --------------------------------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------------------------------


def group_index(group_ids: GroupIds, *, device: torch.device | str | None = None) -> tuple[Tensor, int]:
    """Map per-sample group keys to contiguous ids.

    Args:
        group_ids: integer tensor/array ``[B]`` (or ``[B, K]``, rows are composite keys), or a sequence of
            hashable keys (strings, ints, tuples such as ``(prompt, thought)``).
        device: device of the returned index (default: the input tensor's device, else CPU).

    Returns:
        ``(index, G)``: ``LongTensor[B]`` with values in ``0..G-1`` and the number of groups ``G``. Tensor keys
        are numbered in sorted order, Python keys in first-appearance order (only equality of ids matters).
    """
    if isinstance(group_ids, np.ndarray):
        if group_ids.dtype.kind in "biu":
            group_ids = torch.from_numpy(np.ascontiguousarray(group_ids))
        else:  # strings / objects: rows of 2-D arrays become tuple keys
            group_ids = [tuple(k) if isinstance(k, list) else k for k in group_ids.tolist()]
    if isinstance(group_ids, Tensor):
        if group_ids.is_floating_point() or group_ids.is_complex():
            raise TypeError("tensor group ids must be integer (or bool); map float keys to ints first")
        if group_ids.dim() not in (1, 2):
            raise ValueError(f"tensor group ids must be 1-D or 2-D, got shape {tuple(group_ids.shape)}")
        if group_ids.numel() == 0:
            return torch.zeros(0, dtype=torch.long, device=device or group_ids.device), 0
        uniq, inverse = torch.unique(group_ids, return_inverse=True, dim=0 if group_ids.dim() == 2 else None)
        return inverse.to(device=device or group_ids.device, dtype=torch.long), int(uniq.shape[0])
    # Python keys: hashing is inherently a per-sample loop; the math after this is vectorised.
    mapping: dict[Hashable, int] = {}
    try:
        ids = [mapping.setdefault(k, len(mapping)) for k in group_ids]
    except TypeError as e:
        raise TypeError(f"group ids must be hashable (use tuples, not lists): {e}") from None
    return torch.tensor(ids, dtype=torch.long, device=device), len(mapping)


class _Prepared(NamedTuple):
    r: Tensor  # float64 rewards [B]
    out_dtype: torch.dtype  # dtype of the returned advantages


def _prepare(rewards: Tensor | Sequence[float]) -> _Prepared:
    r = torch.as_tensor(rewards)
    if r.dim() != 1:
        raise ValueError(f"rewards must be 1-D (one scalar per sample), got shape {tuple(r.shape)}")
    out_dtype = r.dtype if r.is_floating_point() else torch.get_default_dtype()
    return _Prepared(r.to(torch.float64), out_dtype)


def _index(group_ids: GroupIds | None, r: Tensor) -> tuple[Tensor, int]:
    if group_ids is None:
        raise ValueError("this estimator needs group_ids (one group key per sample)")
    idx, n_groups = group_index(group_ids, device=r.device)
    if idx.shape[0] != r.shape[0]:
        raise ValueError(f"got {r.shape[0]} rewards but {idx.shape[0]} group ids")
    return idx, n_groups


class _GroupStats(NamedTuple):
    """Per-sample gathered statistics of the sample's group."""

    count: Tensor  # n_g
    mean: Tensor  # μ_g
    std: Tensor  # σ_g, unbiased; 0 for singletons
    constant: Tensor  # bool: max_g == min_g (all equal, includes n_g == 1)


def _group_stats(r: Tensor, idx: Tensor, n_groups: int) -> _GroupStats:
    zeros = r.new_zeros(n_groups)
    count = zeros.index_add(0, idx, torch.ones_like(r))  # n_g
    mean = zeros.index_add(0, idx, r) / count.clamp(min=1)  # μ_g = Σ r / n_g
    dev = r - mean[idx]
    var = zeros.index_add(0, idx, dev * dev) / (count - 1).clamp(min=1)  # σ_g² = Σ (r − μ_g)² / (n_g − 1)
    gmin = r.new_full((n_groups,), float("inf")).scatter_reduce(0, idx, r, "amin")
    gmax = r.new_full((n_groups,), float("-inf")).scatter_reduce(0, idx, r, "amax")
    return _GroupStats(count[idx], mean[idx], var.sqrt()[idx], (gmax == gmin)[idx])


def _batch_std(x: Tensor) -> Tensor:
    """Unbiased std of a 1-D tensor; 0 (not NaN) for B ≤ 1."""
    dev = x - x.mean()
    return ((dev * dev).sum() / max(x.shape[0] - 1, 1)).sqrt()


def _passthrough(p: _Prepared) -> Tensor:
    return p.r.to(p.out_dtype).clone()


# --------------------------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------------------------


@register_estimator("grpo")
def grpo_advantages(
    rewards: Tensor | Sequence[float],
    group_ids: GroupIds,
    *,
    baselined: bool = False,
    eps: float = 1e-6,
    norm_by_std: bool = True,
) -> Tensor:
    """GRPO: A_i = (r_i − μ_g) / (σ_g + ε), unbiased σ_g; constant groups (incl. size 1) -> 0.

    ``norm_by_std=False`` drops the division (= ``dr_grpo``). ``baselined=True`` returns ``rewards`` unchanged.
    """
    p = _prepare(rewards)
    idx, n_groups = _index(group_ids, p.r)
    if baselined:  # already a counterfactual advantage, already scaled: centring would cancel its baseline
        return _passthrough(p)
    s = _group_stats(p.r, idx, n_groups)
    adv = p.r - s.mean
    if norm_by_std:
        adv = adv / (s.std + eps)
    return torch.where(s.constant, 0.0, adv).to(p.out_dtype)


@register_estimator("dr_grpo")
def dr_grpo_advantages(
    rewards: Tensor | Sequence[float], group_ids: GroupIds, *, baselined: bool = False, eps: float = 1e-6
) -> Tensor:
    """Dr.GRPO: A_i = r_i − μ_g (no std division, which biases towards easy/hard prompts).

    ``eps`` is unused (kept for a uniform signature). ``baselined=True`` returns ``rewards`` unchanged.
    """
    return grpo_advantages(rewards, group_ids, baselined=baselined, eps=eps, norm_by_std=False)


@register_estimator("rloo")
def rloo_advantages(
    rewards: Tensor | Sequence[float], group_ids: GroupIds, *, baselined: bool = False, eps: float = 1e-6
) -> Tensor:
    """RLOO: A_i = r_i − (Σ_g r − r_i) / (n_g − 1), the leave-one-out mean; size-1 groups -> 0.

    Equals n_g/(n_g−1) · (r_i − μ_g). ``baselined=True`` returns ``rewards`` unchanged.
    """
    del eps
    p = _prepare(rewards)
    if baselined:
        return _passthrough(p)
    s = _group_stats(p.r, *_index(group_ids, p.r))
    loo_mean = (s.count * s.mean - p.r) / (s.count - 1).clamp(min=1)  # (Σ_g r − r_i) / (n_g − 1)
    return torch.where(s.constant, 0.0, p.r - loo_mean).to(p.out_dtype)


@register_estimator("reinforce_pp")
def reinforce_pp_advantages(
    rewards: Tensor | Sequence[float],
    group_ids: GroupIds | None = None,
    *,
    baselined: bool = False,
    eps: float = 1e-6,
) -> Tensor:
    """REINFORCE++: global batch whitening A_i = (r_i − μ_B) / (σ_B + ε); ``group_ids`` is ignored.

    ``baselined=True``: scale only, A_i = r_i / (σ_B + ε) -- the counterfactual baseline is kept. A batch of
    identical values gives 0 (``baselined=False``) or is returned unchanged (``baselined=True``).
    """
    del group_ids
    p = _prepare(rewards)
    r = p.r
    if r.numel() == 0:
        return r.to(p.out_dtype)
    constant = r.max() == r.min()
    std = _batch_std(r)
    if baselined:
        return torch.where(constant, r, r / (std + eps)).to(p.out_dtype)
    return torch.where(constant, 0.0, (r - r.mean()) / (std + eps)).to(p.out_dtype)


@register_estimator("reinforce_pp_baseline")
def reinforce_pp_baseline_advantages(
    rewards: Tensor | Sequence[float], group_ids: GroupIds, *, baselined: bool = False, eps: float = 1e-6
) -> Tensor:
    """REINFORCE++-baseline: a_i = r_i − μ_g, then A_i = a_i / (σ_B(a) + ε) over the whole batch.

    The batch mean of ``a`` is 0 by construction, so it is not subtracted again (see module notes).
    ``baselined=True`` returns ``rewards`` unchanged.
    """
    p = _prepare(rewards)
    idx, n_groups = _index(group_ids, p.r)
    if baselined:
        return _passthrough(p)
    s = _group_stats(p.r, idx, n_groups)
    a = torch.where(s.constant, 0.0, p.r - s.mean)
    if a.numel() == 0:
        return a.to(p.out_dtype)
    all_zero = (a == 0).all()
    return torch.where(all_zero, a, a / (_batch_std(a) + eps)).to(p.out_dtype)


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------


def compute_advantages(
    name: str,
    rewards: Tensor | Sequence[float],
    group_ids: GroupIds | None,
    *,
    baselined: bool = False,
    eps: float = 1e-6,
    **kwargs: Any,
) -> Tensor:
    """Advantages ``Tensor[B]`` for per-sample scalar ``rewards`` with the estimator registered as ``name``.

    Args:
        name: a registered estimator (see :func:`list_estimators`).
        rewards: ``[B]`` rewards/credit signals, one per sample.
        group_ids: one group key per sample (any hashable, e.g. ``(prompt, thought)`` tuples, or an int
            tensor); may be ``None`` only for ``reinforce_pp``.
        baselined: the signal is already a counterfactual advantage (e.g. ``ccpo_tree``'s Thinker Δ_j); group
            estimators then pass it through and ``reinforce_pp`` only scales it. See the module docstring.
        eps: ε added to standard deviations.
        **kwargs: estimator-specific options (e.g. ``norm_by_std`` for ``grpo``).

    Returns:
        ``Tensor[B]`` in the rewards' floating dtype, on the rewards' device.
    """
    fn = get_estimator(name)
    r = torch.as_tensor(rewards)
    if group_ids is not None:
        group_ids, _ = group_index(group_ids, device=r.device)  # arbitrary keys -> contiguous LongTensor once
    return fn(r, group_ids, baselined=baselined, eps=eps, **kwargs)


def estimate_advantages(
    config: EstimatorConfig, rewards: Tensor | Sequence[float], group_ids: GroupIds | None, *, baselined: bool = False
) -> Tensor:
    """Advantages ``Tensor[B]`` under an :class:`~ccpo_agents.config.algo.EstimatorConfig`; ``baselined`` comes
    from the credit method that produced ``rewards`` (honoured unless ``config.respect_baselined`` is off)."""
    kwargs: dict[str, Any] = {"norm_by_std": False} if config.name == "grpo" and not config.norm_by_std else {}
    return compute_advantages(config.name, rewards, group_ids, baselined=baselined and config.respect_baselined,
                              eps=config.eps, **kwargs)
