"""Metrics sinks: JSONL (always), TensorBoard (when installed), and the learning-curve plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "plot_curves"]


class MetricsLogger:
    """Append one JSON object per step to ``metrics.jsonl``; mirror scalars to TensorBoard if available."""

    def __init__(self, output_dir: str | Path, *, tensorboard: bool = True, enabled: bool = True,
                 resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self._tb = None
        self._tensorboard = tensorboard
        self._resume_step = resume_step
        self._opened = False

    def _open(self) -> None:
        # Lazily, so that building a Trainer only to evaluate a run never touches that run's files.
        self._opened = True
        output_dir, resume_step, tensorboard = self.path.parent, self._resume_step, self._tensorboard
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            # Drop lines past the checkpoint we resume from, so the file matches the run exactly.
            kept = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in kept))
        elif resume_step is None and self.path.is_file():
            self.path.unlink()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(output_dir) / "tensorboard"))
            except Exception:  # tensorboard not installed: JSONL only
                self._tb = None

    def log(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if not self._opened:
            self._open()
        with self.path.open("a") as f:
            f.write(json.dumps(_clean(metrics)) + "\n")
        if self._tb is not None:
            step = int(metrics.get("step", 0))
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None  # JSON has no NaN/inf
        out[k] = v
    return out


def plot_curves(history: list[dict[str, Any]], path: str | Path, *, title: str = "ccpo training") -> Path | None:
    """Plot accuracy, per-role reward/advantage and credit statistics against the step; returns the PNG path."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for h in history:
            v = h.get(key)
            if isinstance(v, (int, float)) and v is not None and math.isfinite(v):
                xs.append(h["step"])
                ys.append(v)
        return xs, ys

    panels = [
        ("accuracy: training rollouts vs held-out", list(_ACCURACY_LABELS)),
        ("role reward (credit)", [k for k in _keys(history) if k.endswith("/reward_mean") and "/" in k]),
        ("advantage std", [k for k in _keys(history) if k.endswith("/adv_std")]),
        ("credit", [k for k in _keys(history) if k.startswith("credit/") and k.endswith(("pos_frac", "gate"))]),
    ]
    panels = [(t, ks) for t, ks in panels if any(series(k)[0] for k in ks)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (t, keys) in zip(axes[0], panels):
        for k in keys:
            xs, ys = series(k)
            if xs:
                held_out = k.startswith("eval/")
                ax.plot(xs, ys, marker="o" if held_out else None, label=_ACCURACY_LABELS.get(k, k),
                        linewidth=2.0 if held_out else 1.0, alpha=1.0 if held_out else 0.6)
        ax.set_title(t)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: What the accuracy curves are: training-rollout accuracy is on the problems being trained on (sampled), the
#: held-out one on the evaluation split; only the second says whether the team generalises.
_ACCURACY_LABELS = {
    "rollout/joint_acc": "train rollouts: joint",
    "rollout/solo_acc": "train rollouts: Thinker removed",
    "eval/joint_acc": "held-out: joint",
    "eval/solo_acc": "held-out: Thinker removed",
}


def _keys(history: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for h in history:
        for k in h:
            seen.setdefault(k, None)
    return list(seen)
