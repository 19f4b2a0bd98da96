"""Global-history normalizer: EMA mean/variance of raw credit signals across batches.

CCPO (Li et al., 2026) normalises each raw credit signal (``Δ``, ``R_joint``, ``R_solo``, ...) with
statistics of *all past batches* instead of the current group only, so that the scale of the credit
is comparable across prompts and data sources. The current batch is normalised with the statistics
from **before** it; the statistics are then updated with the batch.

EMA update for one named signal (and source), batch ``x`` with mean ``m_b`` and population
variance ``v_b``, decay ``d``::

    first batch:  μ = m_b,  σ² = v_b
    later:        μ' = d·μ + (1-d)·m_b
                  σ²' = d·σ² + (1-d)·v_b + d·(1-d)·(μ - m_b)²

The variance is that of the mixture "history with weight d, batch with weight 1-d", so a drifting
mean also widens σ. (The reference code drops the last term; with d = 0.99 it is ≤ 1% of the squared
mean shift.) The standard deviation used for scaling is ``σ = sqrt(σ²)`` if ``σ² > eps`` else
``1.0`` (the reference's guard: a constant signal is not blown up by a near-zero σ).

**First batch passes through**: an element whose (signal, source) has no statistics yet is returned
unchanged by :meth:`normalize` (no centring, no scaling), and :meth:`lookup` reports it as unknown so
callers can apply the same rule to formulas built on the statistics (``ccpo_paired`` then returns
the raw ``Δ`` and ``R_joint``, as the reference does). The batch then seeds the statistics.

State is plain floats/ints (:meth:`state_dict` is JSON-serialisable) and must be checkpointed with
the model. With several processes, feed every process the same (all-gathered) batch so the
statistics stay identical across ranks.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .batch import as_numpy

__all__ = ["GlobalHistoryNormalizer", "RunningStat", "GLOBAL_SOURCE"]

#: Bucket name used when ``per_source=False`` or when no sources are given.
GLOBAL_SOURCE = "__all__"
_STATE_VERSION = 1


@dataclass
class RunningStat:
    """EMA statistics of one signal (and source).

    Attributes:
        mean: EMA mean ``μ``.
        var: EMA variance ``σ²``.
        count: number of batches folded in.
        n: number of samples folded in.
    """

    mean: float = 0.0
    var: float = 0.0
    count: int = 0
    n: int = 0

    def std(self, eps: float) -> float:
        """``sqrt(var)``, or 1.0 when ``var <= eps`` (degenerate history)."""
        return math.sqrt(self.var) if self.var > eps else 1.0

    def update(self, x: np.ndarray, decay: float) -> None:
        m_b, v_b = float(np.mean(x)), float(np.var(x))
        if self.count == 0:
            self.mean, self.var = m_b, v_b
        else:
            d = decay
            self.var = d * self.var + (1 - d) * v_b + d * (1 - d) * (self.mean - m_b) ** 2
            self.mean = d * self.mean + (1 - d) * m_b
        self.count += 1
        self.n += int(x.size)


class GlobalHistoryNormalizer:
    """EMA statistics of named raw signals across batches, optionally per data source.

    Args:
        decay: EMA decay ``d`` (default 0.99, as the reference): weight of the history.
        eps: variance threshold below which σ is taken as 1.0 (default 1e-6).
        per_source: keep separate statistics per data source (default False: one global bucket).
    """

    def __init__(self, decay: float = 0.99, eps: float = 1e-6, per_source: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.decay = float(decay)
        self.eps = float(eps)
        self.per_source = bool(per_source)
        self._stats: dict[str, dict[str, RunningStat]] = {}

    def __repr__(self) -> str:
        return (f"GlobalHistoryNormalizer(decay={self.decay}, eps={self.eps}, per_source={self.per_source}, "
                f"signals={sorted(self._stats)})")

    # ---------------------------------------------------------------- internals
    def _buckets(self, sources: Any, n: int) -> np.ndarray:
        if not self.per_source or sources is None:
            return np.full(n, GLOBAL_SOURCE, dtype=object)
        src = as_numpy(sources, name="sources").astype(str).astype(object)
        if src.shape != (n,):
            raise ValueError(f"sources has shape {src.shape}, expected ({n},)")
        return src

    # ------------------------------------------------------------------ queries
    def stats(self, name: str, source: str | None = None) -> RunningStat | None:
        """The statistics of ``name`` (for ``source`` when ``per_source``), or None if never updated."""
        bucket = source if (self.per_source and source is not None) else GLOBAL_SOURCE
        st = self._stats.get(name, {}).get(bucket)
        return st if st is not None and st.count > 0 else None

    def lookup(self, name: str, sources: Any = None, n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-element ``(mean[n], std[n], known[n])`` of ``name`` from the current statistics.

        ``known`` is False for elements whose bucket has no history yet (mean 0, std 1 there).
        """
        buckets = self._buckets(sources, n)
        mean, std, known = np.zeros(n), np.ones(n), np.zeros(n, dtype=bool)
        table = self._stats.get(name, {})
        for b in set(buckets.tolist()):
            st = table.get(b)
            if st is None or st.count == 0:
                continue
            idx = buckets == b
            mean[idx], std[idx], known[idx] = st.mean, st.std(self.eps), True
        return mean, std, known

    # ------------------------------------------------------------------ updates
    def update(self, name: str, x: Any, sources: Any = None) -> None:
        """Fold the batch ``x`` into the statistics of ``name`` (per source when enabled)."""
        x = as_numpy(x, dtype=np.float64, name=name).reshape(-1)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise ValueError(f"cannot update normalizer signal {name!r} with NaN/inf values")
        buckets = self._buckets(sources, x.size)
        table = self._stats.setdefault(name, {})
        for b in sorted(set(buckets.tolist())):
            table.setdefault(b, RunningStat()).update(x[buckets == b], self.decay)

    def normalize(self, name: str, x: Any, sources: Any = None, center: bool = True,
                  update: bool = True) -> np.ndarray:
        """``(x - μ) / (σ + eps)`` (or ``x / (σ + eps)`` with ``center=False``) using the statistics
        from before this batch, then (``update=True``) fold ``x`` into them.

        Elements whose bucket has no history pass through unchanged (see module docstring).
        """
        x = as_numpy(x, dtype=np.float64, name=name).reshape(-1)
        mean, std, known = self.lookup(name, sources, x.size)
        shifted = x - mean if center else x
        out = np.where(known, shifted / (std + self.eps), x)
        if update:
            self.update(name, x, sources)
        return out

    def reset(self) -> None:
        """Forget all statistics."""
        self._stats.clear()

    def metrics(self, prefix: str = "normalizer/") -> dict[str, float]:
        """``{prefix}{name}[/{source}]/mean|std`` for logging."""
        out: dict[str, float] = {}
        for name, table in sorted(self._stats.items()):
            for b, st in sorted(table.items()):
                key = f"{prefix}{name}" + ("" if b == GLOBAL_SOURCE else f"/{b}")
                out[f"{key}/mean"] = st.mean
                out[f"{key}/std"] = st.std(self.eps)
        return out

    # ------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (plain floats, ints, strings)."""
        return {
            "version": _STATE_VERSION,
            "decay": self.decay,
            "eps": self.eps,
            "per_source": self.per_source,
            "stats": {
                name: {b: {"mean": float(st.mean), "var": float(st.var), "count": int(st.count), "n": int(st.n)}
                       for b, st in table.items()}
                for name, table in self._stats.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore statistics saved by :meth:`state_dict`.

        ``per_source`` must match (the buckets would mean something else); a different ``decay`` or
        ``eps`` keeps this object's values and warns.
        """
        if not isinstance(state, dict) or "stats" not in state:
            raise ValueError("not a GlobalHistoryNormalizer state dict (no 'stats' key)")
        if state.get("version", _STATE_VERSION) != _STATE_VERSION:
            raise ValueError(f"unsupported normalizer state version {state.get('version')!r}")
        if bool(state.get("per_source", self.per_source)) != self.per_source:
            raise ValueError(f"state has per_source={state.get('per_source')}, this normalizer has "
                             f"per_source={self.per_source}")
        for key in ("decay", "eps"):
            if key in state and float(state[key]) != getattr(self, key):
                warnings.warn(f"normalizer state was saved with {key}={state[key]}, keeping {getattr(self, key)}",
                              stacklevel=2)
        stats: dict[str, dict[str, RunningStat]] = {}
        for name, table in state["stats"].items():
            stats[str(name)] = {
                str(b): RunningStat(mean=float(v["mean"]), var=float(v["var"]), count=int(v["count"]),
                                    n=int(v.get("n", 0)))
                for b, v in table.items()
            }
        self._stats = stats
