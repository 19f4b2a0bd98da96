"""Per-token KL estimators to a reference policy, and categorical entropy.

The estimators follow J. Schulman, "Approximating KL divergence" (2020) and verl's ``kl_penalty``: with
samples y ~ π_θ and log-ratio ``δ = log π_ref(y) − log π_θ(y)``,

* ``k1``  = −δ = log π_θ − log π_ref            (unbiased, high variance, can be negative)
* ``k2``  = ½ δ²                                 (biased, low variance, ≥ 0)
* ``k3``  = e^δ − δ − 1                          (unbiased, low variance, ≥ 0 -- the GRPO paper's choice)
* ``low_var_kl`` is verl's name for ``k3``; both get verl's clamps (δ to ±20 before exp, result to ≤ 10)
  so a single far-off-policy token cannot dominate the loss.
* ``abs`` = |δ|.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ccpo_agents.config.algo import KL_KINDS

__all__ = ["KL_KINDS", "kl_penalty", "entropy_from_logits"]


# verl's stability clamps for k3: the log-ratio before exp, and the resulting per-token KL.
_K3_LOG_RATIO_CLAMP = 20.0
_K3_VALUE_CLAMP = 10.0


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, kind: str = "k3") -> Tensor:
    """Per-token KL(π_θ ‖ π_ref) estimate from sampled-token log-probs.

    Args:
        logprobs: log π_θ(y_t) of the sampled tokens, any shape (typically ``[B, T]``).
        ref_logprobs: log π_ref(y_t), same shape.
        kind: one of :data:`KL_KINDS`.

    Returns:
        Tensor of the same shape. Differentiable w.r.t. ``logprobs`` (used as a loss term).
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and ref_logprobs {tuple(ref_logprobs.shape)} differ"
        )
    if kind == "k1":
        return logprobs - ref_logprobs
    if kind == "k2":
        return 0.5 * (logprobs - ref_logprobs).square()
    if kind == "abs":
        return (logprobs - ref_logprobs).abs()
    if kind in ("k3", "low_var_kl"):
        delta = (ref_logprobs - logprobs).clamp(-_K3_LOG_RATIO_CLAMP, _K3_LOG_RATIO_CLAMP)  # δ
        return (torch.exp(delta) - delta - 1.0).clamp(min=-_K3_VALUE_CLAMP, max=_K3_VALUE_CLAMP)
    raise ValueError(f"unknown kl kind {kind!r}; valid kinds: {', '.join(KL_KINDS)}")


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy H = −Σ_v p_v log p_v of the categorical over the last dim of ``logits``.

    Computed as Σ p·log p with ``log_softmax`` (stable for large logits). Vocabulary entries with logit
    ``-inf`` (masked tokens) have p = 0 and contribute 0 instead of ``0 · (−inf) = NaN``. Runs in the
    logits' dtype; call ``logits.float()`` first for bf16 models if exact entropy matters.

    Args:
        logits: ``[..., V]``.

    Returns:
        ``[...]`` entropies in nats (uniform over V entries -> log V).
    """
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    # Double `where` so that neither the value nor the gradient sees 0 * (-inf).
    finite = p > 0
    safe_logp = torch.where(finite, logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    return -(p * safe_logp).sum(dim=-1)
