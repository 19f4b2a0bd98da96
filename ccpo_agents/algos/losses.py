"""Policy-gradient losses on token-level tensors, loss aggregation, and the full objective.

Shapes: ``logprobs``, ``old_logprobs``, ``mask``: ``[B, T]`` (response tokens only; ``mask`` true on real
response tokens); ``advantages``: ``[B]`` (broadcast over tokens) or ``[B, T]``. Every loss is *minimised*.

Losses (registry names)
-----------------------
``ppo``  -- token-level PPO clip, as used by GRPO/DAPO. With r_t = exp(log π_θ − log π_old) (log-ratio clamped to
    ±20 as in verl) and clip range (1−ε_low, 1+ε_high)::

        ℓ_t = max(−A_t · r_t, −A_t · clip(r_t, 1−ε_low, 1+ε_high))              default ε_low = ε_high = 0.2

    ε_high > ε_low is DAPO's "clip-higher". Optional **dual-clip** (Ye et al. 2020, verl's ``clip_ratio_c``):
    for A_t < 0 the loss is capped at −A_t · c (c > 1, typically 3), ``ℓ_t = min(ℓ_t, −A_t · c)``, so one token
    whose ratio exploded cannot produce an unbounded push-down. Default ``None`` (off); verl always applies 3.0.

``gspo`` -- Group Sequence Policy Optimization (Zheng et al. 2025, arXiv:2507.18071). One ratio per *sequence*::

        s_i = exp( (1/|y_i|) Σ_t (log π_θ(y_i,t) − log π_old(y_i,t)) )           (geometric-mean ratio)

    clipped with the much smaller range (1−3e-4, 1+4e-4) (GSPO paper v2 §5.1, TRL's GSPO recipe). It is written in
    the token form of the paper / verl so that per-token advantages (GSPO-token) also work::

        s_i,t = sg[s_i] · π_θ(y_i,t) / sg[π_θ(y_i,t)]       (value s_i; ∇ s_i,t = s_i ∇ log π_θ(y_i,t))

    (log s_i,t clamped at 10 as in verl). With ``seq-mean-token-mean`` aggregation and a sequence-level A_i the
    gradient is exactly GSPO's  −A_i · s_i · (1/|y_i|) Σ_t ∇ log π_θ(y_i,t) = −A_i ∇ s_i. Clipping acts on the
    whole sequence: all its tokens are clipped or none. Default aggregation ``seq-mean-token-mean``.

Aggregation (``agg``)
---------------------
With per-token loss ℓ_i,t, mask m_i,t, |y_i| = Σ_t m_i,t, B rows in the batch:

* ``token-mean``               Σ_i,t m ℓ / Σ_i,t m                (every token weighs the same; DAPO, verl default)
* ``seq-mean-token-mean``      (1/B) Σ_i (Σ_t m ℓ / |y_i|)         (every sequence weighs the same; GRPO paper)
* ``seq-mean-token-sum-norm``  (1/B) Σ_i (Σ_t m ℓ / L)             (Dr.GRPO: constant L removes the length bias)

L is ``norm_len`` -- default the padded width T of the batch, but **set it to the generation budget
(max_new_tokens)** so it stays constant across batches, as verl's ``loss_scale_factor`` note advises. The
sequence count B includes rows with no valid token (TRL's GRPO and verl main do the same): masking a truncated
sample gives it zero weight without re-weighting the others. Rows with no valid token contribute 0, never NaN.
For gradient accumulation pass the *global* ``num_tokens`` (token-mean) or ``num_seqs`` (seq-mean modes) of
the whole mini-batch, so the micro-batch losses sum to the full-batch loss.

NaN safety
----------
Padded positions are replaced by 0 with ``torch.where`` before any math (``-inf`` pad log-probs would otherwise
make ``0 · inf = NaN`` values or gradients). ``metrics["nonfinite"]`` is ``True`` when any *valid* position of
the inputs, or the resulting loss, is non-finite; the loss is then returned as computed (possibly NaN) and the
trainer must skip the update (and log it) rather than step on a NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from ccpo_agents.config.algo import AGG_MODES, LossConfig
from ccpo_env.registry import Registry

from .kl import entropy_from_logits, kl_penalty
from .masked import as_bool_mask, masked_mean, masked_sum

__all__ = [
    "AGG_MODES",
    "TokenLoss",
    "TokenLossFn",
    "LossSpec",
    "LOSSES",
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
    "resolved_agg",
]


_LOG_RATIO_CLAMP = 20.0  # verl: clamp log π_θ − log π_old to ±20 before exp
_GSPO_LOG_RATIO_MAX = 10.0  # verl: clamp log s_i,t at 10


# --------------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------------


def _denominator(d: Tensor | float | int, like: Tensor) -> Tensor:
    return torch.as_tensor(d, dtype=like.dtype, device=like.device).clamp(min=1)


def agg_loss(
    loss_mat: Tensor,
    mask: Tensor,
    agg: str = "token-mean",
    *,
    norm_len: float | None = None,
    num_tokens: Tensor | float | None = None,
    num_seqs: Tensor | float | None = None,
) -> Tensor:
    """Reduce a per-token loss ``[B, T]`` to a scalar (see the module docstring for the formulas).

    Args:
        loss_mat: per-token loss ``[B, T]``; values at masked positions are ignored (may be NaN/inf).
        mask: ``[B, T]`` valid-token mask.
        agg: one of :data:`AGG_MODES`.
        norm_len: L for ``seq-mean-token-sum-norm`` (default T = ``loss_mat.shape[-1]``).
        num_tokens: denominator override for ``token-mean`` (global valid-token count).
        num_seqs: denominator override for the ``seq-mean-*`` modes (global sequence count).
    """
    if loss_mat.shape != mask.shape or loss_mat.dim() != 2:
        raise ValueError(f"loss_mat {tuple(loss_mat.shape)} and mask {tuple(mask.shape)} must both be [B, T]")
    m = as_bool_mask(mask)
    if agg == "token-mean":
        n_tok = m.sum() if num_tokens is None else num_tokens  # Σ_i |y_i|
        return masked_sum(loss_mat, m) / _denominator(n_tok, loss_mat)
    if agg == "seq-mean-token-mean":
        seq = masked_sum(loss_mat, m, dim=-1) / m.sum(-1).clamp(min=1).to(loss_mat.dtype)  # Σ_t ℓ / |y_i|
    elif agg == "seq-mean-token-sum-norm":
        length = loss_mat.shape[-1] if norm_len is None else norm_len
        if length <= 0:
            raise ValueError(f"norm_len must be > 0, got {norm_len}")
        seq = masked_sum(loss_mat, m, dim=-1) / length  # Σ_t ℓ / L
    else:
        raise ValueError(f"unknown aggregation {agg!r}; valid modes: {', '.join(AGG_MODES)}")
    n_seq = loss_mat.shape[0] if num_seqs is None else num_seqs
    return seq.sum() / _denominator(n_seq, loss_mat)


# --------------------------------------------------------------------------------------------------------------
# Per-token losses and their registry
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TokenLoss:
    """What a per-token policy loss returns (before masking and aggregation).

    Attributes:
        loss: ``[B, T]`` per-token loss ℓ_t (minimised).
        ratio: ``[B, T]`` importance ratio used (token ratio for ``ppo``, s_i broadcast for ``gspo``), metrics.
        clipped: ``[B, T]`` bool, the clipped branch is active (that token has no gradient), or ``None``.
        dual_clipped: ``[B, T]`` bool, the dual-clip cap −A·c is active, or ``None``.
    """

    loss: Tensor
    ratio: Tensor
    clipped: Tensor | None = None
    dual_clipped: Tensor | None = None


class TokenLossFn(Protocol):
    """Signature of a registered per-token loss. Inputs are already sanitised (0 at masked positions)."""

    def __call__(
        self,
        logprobs: Tensor,
        old_logprobs: Tensor,
        advantages: Tensor,
        mask: Tensor,
        *,
        clip_low: float,
        clip_high: float,
        dual_clip: float | None,
    ) -> TokenLoss: ...


@dataclass(frozen=True)
class LossSpec:
    """A registered loss with its defaults (used when the caller leaves clip/agg at ``None``)."""

    name: str
    fn: TokenLossFn
    clip_low: float
    clip_high: float
    agg: str

    def __call__(self, *args: Any, **kwargs: Any) -> TokenLoss:
        return self.fn(*args, **kwargs)


LOSSES: Registry[LossSpec] = Registry("policy loss")


def register_loss(
    name: str,
    fn: TokenLossFn | None = None,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "token-mean",
    overwrite: bool = False,
) -> Callable[[TokenLossFn], TokenLossFn] | TokenLossFn:
    """Register a per-token loss ``fn`` (see :class:`TokenLossFn`) with its default clip range and aggregation.

    Usable as ``@register_loss("name", clip_low=..., agg=...)``. Returns ``fn`` unchanged.
    """
    if agg not in AGG_MODES:
        raise ValueError(f"unknown aggregation {agg!r}; valid modes: {', '.join(AGG_MODES)}")

    def decorator(f: TokenLossFn) -> TokenLossFn:
        old = LOSSES.get(name) if name in LOSSES else None
        if old is not None and old.fn is f:  # idempotent re-registration (module reload)
            return f
        LOSSES.register(name, LossSpec(name, f, clip_low, clip_high, agg), overwrite=overwrite)
        return f

    return decorator if fn is None else decorator(fn)


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` registered under ``name``; unknown names raise an error listing the valid ones."""
    return LOSSES.get(name)


def list_losses() -> list[str]:
    """Names of all registered policy losses."""
    return LOSSES.names()


def clipped_surrogate(
    ratio: Tensor, advantages: Tensor, clip_low: float, clip_high: float, dual_clip: float | None = None
) -> TokenLoss:
    """PPO's pessimistic clipped surrogate, per element, with optional dual-clip.

    ℓ = max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high));  if dual_clip = c and A < 0:  ℓ = min(ℓ, −A·c).
    """
    pg1 = -advantages * ratio  # −A·r
    pg2 = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # −A·clip(r)
    loss = torch.maximum(pg1, pg2)
    clipped = pg2 > pg1  # the constant branch won: no gradient through r
    dual = None
    if dual_clip is not None:
        pg3 = -advantages * dual_clip  # −A·c, constant in θ
        dual = (advantages < 0) & (loss > pg3)
        loss = torch.where(dual, pg3, loss)
    return TokenLoss(loss=loss, ratio=ratio, clipped=clipped, dual_clipped=dual)


@register_loss("ppo", clip_low=0.2, clip_high=0.2, agg="token-mean")
def ppo_token_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *,
    clip_low: float, clip_high: float, dual_clip: float | None,
) -> TokenLoss:  # the TokenLossFn signature  # fmt: skip
    """Token-level PPO clip (GRPO): r_t = exp(clamp(log π_θ − log π_old, ±20)), then :func:`clipped_surrogate`."""
    del mask
    ratio = torch.exp((logprobs - old_logprobs).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    return clipped_surrogate(ratio, advantages, clip_low, clip_high, dual_clip)


@register_loss("gspo", clip_low=3e-4, clip_high=4e-4, agg="seq-mean-token-mean")
def gspo_token_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *,
    clip_low: float, clip_high: float, dual_clip: float | None,
) -> TokenLoss:  # the TokenLossFn signature  # fmt: skip
    """GSPO with the sequence ratio s_i in token form s_i,t = sg[s_i]·π_θ/sg[π_θ] (see module docstring)."""
    m = as_bool_mask(mask)
    token_log_ratio = torch.where(m, logprobs - old_logprobs, 0.0)
    seq_log_ratio = token_log_ratio.sum(-1) / m.sum(-1).clamp(min=1).to(logprobs.dtype)  # log s_i
    # log s_i,t = sg[log s_i] + log π_θ − sg[log π_θ]: forward value log s_i, gradient ∇ log π_θ(y_i,t).
    log_sit = seq_log_ratio.detach().unsqueeze(-1) + logprobs - logprobs.detach()
    ratio = torch.exp(log_sit.clamp(max=_GSPO_LOG_RATIO_MAX))
    return clipped_surrogate(ratio, advantages, clip_low, clip_high, dual_clip)


# --------------------------------------------------------------------------------------------------------------
# Policy loss with masking, NaN safety and metrics
# --------------------------------------------------------------------------------------------------------------


def apply_truncation_mask(mask: Tensor, truncated: Tensor | None) -> Tensor:
    """Bool ``[B, T]`` mask with the rows of truncated responses (``truncated: bool[B]``) zeroed.

    Use it to compute global ``num_tokens`` consistently with ``LossConfig.mask_truncated``.
    """
    m = as_bool_mask(mask)
    if truncated is None:
        return m
    t = torch.as_tensor(truncated, device=m.device)
    if t.shape != m.shape[:1]:
        raise ValueError(f"truncated must be [B]={m.shape[0]}, got shape {tuple(t.shape)}")
    return m & ~as_bool_mask(t).unsqueeze(-1)


def _check_bt(name: str, x: Tensor, shape: torch.Size) -> None:
    if x.shape != shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {tuple(shape)}")


def _nonfinite_at(x: Tensor, m: Tensor) -> Tensor:
    return (~torch.isfinite(x) & m).any()


def _masked_min_max(x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
    any_valid = m.any()
    lo = torch.where(m, x, inf).min()
    hi = torch.where(m, x, -inf).max()
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(any_valid, lo, one), torch.where(any_valid, hi, one)


def _policy_loss_tensors(
    name: str,
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float | None,
    clip_high: float | None,
    dual_clip: float | None,
    agg: str | None,
    norm_len: float | None,
    num_tokens: Tensor | float | None,
    num_seqs: Tensor | float | None,
) -> tuple[Tensor, dict[str, Tensor], str]:
    """Core of :func:`policy_loss`: returns the loss, 0-dim detached metric tensors, and the agg mode used."""
    spec = get_loss(name)
    clip_low = spec.clip_low if clip_low is None else clip_low
    clip_high = spec.clip_high if clip_high is None else clip_high
    agg = spec.agg if agg is None else agg
    if not 0.0 <= clip_low < 1.0 or clip_high < 0.0:
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (e.g. 3.0) or None, got {dual_clip}")
    if agg not in AGG_MODES:
        raise ValueError(f"unknown aggregation {agg!r}; valid modes: {', '.join(AGG_MODES)}")
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    shape = logprobs.shape
    _check_bt("old_logprobs", old_logprobs, shape)
    _check_bt("mask", mask, shape)
    m = as_bool_mask(mask)
    adv = torch.as_tensor(advantages, device=logprobs.device)
    if adv.dim() == 1:
        if adv.shape[0] != shape[0]:
            raise ValueError(f"advantages has {adv.shape[0]} rows, logprobs has {shape[0]}")
        adv = adv.unsqueeze(-1).expand(shape)  # sequence-level A_i broadcast over tokens
    else:
        _check_bt("advantages", adv, shape)
    adv = adv.to(logprobs.dtype)

    nonfinite = _nonfinite_at(logprobs, m) | _nonfinite_at(old_logprobs, m) | _nonfinite_at(adv, m)
    # Sanitise padding: the loss math below then never sees pad garbage (values or gradients).
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    logprobs = torch.where(m, logprobs, zero)
    old_logprobs = torch.where(m, old_logprobs.detach().to(logprobs.dtype), zero)
    adv = torch.where(m, adv.detach(), zero)

    out = spec.fn(logprobs, old_logprobs, adv, m, clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip)
    loss = agg_loss(out.loss, m, agg, norm_len=norm_len, num_tokens=num_tokens, num_seqs=num_seqs)

    with torch.no_grad():
        log_ratio = logprobs - old_logprobs  # log r_t (0 on padding)
        ratio = out.ratio.detach()
        rmin, rmax = _masked_min_max(ratio, m)
        no_flag = torch.zeros_like(m)
        metrics = {
            "pg_loss": loss.detach(),
            "clipfrac": masked_mean((out.clipped if out.clipped is not None else no_flag).to(ratio.dtype), m),
            "clipfrac_lower": masked_mean(
                (out.dual_clipped if out.dual_clipped is not None else no_flag).to(ratio.dtype), m
            ),
            # verl's ppo_kl (k1 of KL(π_old‖π_θ)) and the always ≥ 0 k3 form (CleanRL's approx_kl).
            "ppo_kl": masked_mean(-log_ratio, m),
            "approx_kl": masked_mean(torch.expm1(log_ratio.clamp(max=_LOG_RATIO_CLAMP)) - log_ratio, m),
            "ratio_mean": torch.where(m.any(), masked_mean(ratio, m), torch.ones_like(rmin)),
            "ratio_min": rmin,
            "ratio_max": rmax,
            "num_tokens": m.sum().to(ratio.dtype),
            "nonfinite": nonfinite | ~torch.isfinite(loss.detach()),
        }
    return loss, metrics, agg


def _to_python(metrics: dict[str, Tensor]) -> dict[str, float | bool]:
    """One device sync for all metrics (``.tolist()`` on a stack) instead of one ``.item()`` each."""
    keys = list(metrics)
    # float32: supported on every backend (MPS has no float64); metrics need no more precision.
    values = torch.stack([metrics[k].detach().to(torch.float32).reshape(()) for k in keys]).tolist()
    out: dict[str, float | bool] = dict(zip(keys, values))
    out["nonfinite"] = bool(out["nonfinite"])
    return out


def policy_loss(
    name: str, logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *,
    clip_low: float | None = None, clip_high: float | None = None, dual_clip: float | None = None,
    agg: str | None = None, norm_len: float | None = None,
    num_tokens: Tensor | float | None = None, num_seqs: Tensor | float | None = None,
) -> tuple[Tensor, dict[str, float | bool]]:  # fmt: skip
    """Policy-gradient loss of the registered loss ``name`` (``"ppo"``, ``"gspo"``, ...).

    Args:
        name: registered loss name (see :func:`list_losses`).
        logprobs: ``[B, T]`` log π_θ of the response tokens (with grad).
        old_logprobs: ``[B, T]`` log π_old at sampling time (detached internally).
        advantages: ``[B]`` or ``[B, T]`` (detached internally).
        mask: ``[B, T]`` valid response tokens.
        clip_low, clip_high: ε_low/ε_high; ``None`` = the loss's default (ppo 0.2/0.2, gspo 3e-4/4e-4).
        dual_clip: c > 1 caps the loss of negative-advantage tokens at −A·c; ``None`` = off.
        agg: aggregation mode; ``None`` = the loss's default (ppo ``token-mean``, gspo ``seq-mean-token-mean``).
        norm_len: L of ``seq-mean-token-sum-norm`` (default T; set it to max_new_tokens).
        num_tokens, num_seqs: global denominators for gradient accumulation (see :func:`agg_loss`).

    Returns:
        ``(loss, metrics)``; metrics (floats) ``pg_loss``, ``clipfrac`` (share of valid tokens on the clipped
        branch), ``clipfrac_lower`` (dual-clip active), ``ppo_kl`` (k1) and ``approx_kl`` (k3) between π_old and
        π_θ, ``ratio_mean/min/max`` over valid tokens, ``num_tokens``, and ``nonfinite`` (bool: skip the update).
    """
    options = dict(clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip, agg=agg, norm_len=norm_len,
                   num_tokens=num_tokens, num_seqs=num_seqs)  # fmt: skip
    loss, metrics, _ = _policy_loss_tensors(name, logprobs, old_logprobs, advantages, mask, **options)
    return loss, _to_python(metrics)


def compute_policy_objective(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    config: LossConfig | None = None,
    *,
    ref_logprobs: Tensor | None = None,
    entropy: Tensor | None = None,
    logits: Tensor | None = None,
    truncated: Tensor | None = None,
    num_tokens: Tensor | float | None = None,
    num_seqs: Tensor | float | None = None,
) -> tuple[Tensor, dict[str, float | bool]]:
    """Total loss = policy loss + kl_coef · KL(π_θ‖π_ref) − entropy_coef · H, all with ``config.agg``.

    Args:
        logprobs, old_logprobs, advantages, mask: as in :func:`policy_loss`.
        config: a :class:`~ccpo_agents.algos.config.LossConfig` (default ``LossConfig()``: PPO clip 0.2,
            token-mean, no KL, no entropy bonus).
        ref_logprobs: ``[B, T]`` log π_ref; required when ``config.kl_coef > 0`` (used for the ``kl`` metric
            whenever given).
        entropy: ``[B, T]`` per-token entropy (e.g. from :func:`entropy_from_logits`), or
        logits: ``[B, T, V]`` to compute it here. One of them is required when ``config.entropy_coef > 0``;
            with coef 0 a given one is only reported (no grad).
        truncated: ``bool[B]`` responses cut at the length limit; with ``config.mask_truncated`` their rows
            get zero weight (zero gradient), and they still count in the ``seq-mean-*`` denominators.
        num_tokens, num_seqs: global denominators for gradient accumulation; count them on the mask *after*
            truncation masking (:func:`apply_truncation_mask`).

    Returns:
        ``(loss, metrics)``: the :func:`policy_loss` metrics plus ``loss`` (total), ``kl`` (aggregated, when
        ``ref_logprobs`` is given), ``entropy`` (token mean, when available). (The share of truncated
        responses is a property of the batch: the trainer reports it, once.) ``nonfinite`` also covers ``ref_logprobs``/``entropy``/``logits``.
    """

    cfg = config if config is not None else LossConfig()
    if cfg.mask_truncated and truncated is None:
        raise ValueError("LossConfig.mask_truncated=True needs the `truncated` flags (bool[B])")
    m = apply_truncation_mask(mask, truncated if cfg.mask_truncated else None)
    _check_bt("mask", m, logprobs.shape)

    loss, metrics, agg = _policy_loss_tensors(
        cfg.name,
        logprobs,
        old_logprobs,
        advantages,
        m,
        clip_low=cfg.clip_low,
        clip_high=cfg.clip_high,
        dual_clip=cfg.dual_clip,
        agg=cfg.agg,
        norm_len=cfg.norm_len,
        num_tokens=num_tokens,
        num_seqs=num_seqs,
    )

    def aggregate(x: Tensor) -> Tensor:
        return agg_loss(x, m, agg, norm_len=cfg.norm_len, num_tokens=num_tokens, num_seqs=num_seqs)

    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    total = loss
    if cfg.kl_coef > 0 and ref_logprobs is None:
        raise ValueError("LossConfig.kl_coef > 0 needs ref_logprobs")
    if ref_logprobs is not None:
        _check_bt("ref_logprobs", ref_logprobs, logprobs.shape)
        metrics["nonfinite"] = metrics["nonfinite"] | _nonfinite_at(ref_logprobs, m)
        ref = torch.where(m, ref_logprobs.detach().to(logprobs.dtype), zero)
        lp = torch.where(m, logprobs, zero)
        with torch.set_grad_enabled(cfg.kl_coef > 0 and torch.is_grad_enabled()):
            kl = aggregate(kl_penalty(lp, ref, cfg.kl_kind))
        if cfg.kl_coef > 0:
            total = total + cfg.kl_coef * kl
        metrics["kl"] = kl.detach()

    if cfg.entropy_coef > 0 and entropy is None and logits is None:
        raise ValueError("LossConfig.entropy_coef > 0 needs `entropy` ([B, T]) or `logits` ([B, T, V])")
    if entropy is not None or logits is not None:
        with torch.set_grad_enabled(cfg.entropy_coef > 0 and torch.is_grad_enabled()):
            ent = entropy if entropy is not None else entropy_from_logits(logits)
            _check_bt("entropy", ent, logprobs.shape)
            metrics["nonfinite"] = metrics["nonfinite"] | _nonfinite_at(ent, m)
            ent = torch.where(m, ent, zero)
            if cfg.entropy_coef > 0:
                total = total - cfg.entropy_coef * aggregate(ent)  # bonus: maximise entropy
        metrics["entropy"] = masked_mean(ent.detach(), m)

    metrics["loss"] = total.detach()
    metrics["nonfinite"] = metrics["nonfinite"] | ~torch.isfinite(total.detach())
    return total, _to_python(metrics)


def resolved_agg(config: LossConfig) -> str:
    """The aggregation mode a :class:`~ccpo_agents.config.algo.LossConfig` uses (``agg`` or its loss's default)."""
    return config.agg if config.agg is not None else get_loss(config.name).agg
