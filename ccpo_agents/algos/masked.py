"""Masked reductions that never turn padding into NaN.

Padded positions of log-prob tensors often hold ``-inf`` or garbage; ``x * mask`` would turn ``-inf * 0`` into
NaN, so every helper here selects with ``torch.where`` instead of multiplying by the mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["as_bool_mask", "masked_sum", "masked_mean"]


def as_bool_mask(mask: Tensor) -> Tensor:
    """Return ``mask`` as a bool tensor (non-zero = valid); accepts bool, int or float 0/1 masks."""
    return mask if mask.dtype == torch.bool else mask != 0


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Σ of ``x`` over positions where ``mask`` is true (all dims, or along ``dim``)."""
    x = torch.where(as_bool_mask(mask), x, torch.zeros((), dtype=x.dtype, device=x.device))
    return x.sum() if dim is None else x.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over valid positions; 0 (not NaN) where there is no valid position."""
    m = as_bool_mask(mask)
    n = m.sum() if dim is None else m.sum(dim)
    return masked_sum(x, m, dim) / n.clamp(min=1).to(x.dtype)
