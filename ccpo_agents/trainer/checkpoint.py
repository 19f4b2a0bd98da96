"""Atomic checkpoints with everything needed to resume exactly.

Layout of ``<output_dir>/checkpoints/step_000012/``::

    weights_<owner>.pt    trainable weights of each parameter owner (full model, or a role's LoRA adapter)
    optim_<owner>.pt      optimizer and LR-scheduler state
    rng_rank<r>.pt        Python / NumPy / torch RNG states of every process
    state.json            step, data position, credit-normalizer statistics, the config, metric history

A checkpoint is written into ``step_000012.tmp`` and renamed into place, so a crash mid-write never
leaves a half checkpoint that looks complete; ``latest`` names the newest one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in ``output_dir``, or ``None``."""
    root = Path(output_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / "state.json").is_file():
            return candidate
    done = sorted(p for p in root.glob("step_*") if not p.name.endswith(".tmp") and (p / "state.json").is_file())
    return done[-1] if done else None


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    weights: dict[str, dict[str, torch.Tensor]],
    optim: dict[str, dict[str, Any]],
    state: dict[str, Any],
    rank: int = 0,
    world_size: int = 1,
    is_main: bool = True,
    barrier: Any = None,
    keep: int = 2,
) -> Path:
    """Write the checkpoint of ``step``; every process writes its RNG state, the main one the rest."""
    root = Path(output_dir) / "checkpoints"
    final = root / f"step_{step:06d}"
    tmp = root / f"step_{step:06d}.tmp"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    if barrier:
        barrier()
    torch.save(rng_state(), tmp / f"rng_rank{rank}.pt")
    if is_main:
        for owner, tensors in weights.items():
            torch.save({k: v.detach().cpu() for k, v in tensors.items()}, tmp / f"weights_{owner}.pt")
        for owner, st in optim.items():
            torch.save(st, tmp / f"optim_{owner}.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1, default=_json_default))
    if barrier:
        barrier()
    if is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer_tmp = root / "latest.tmp"
        pointer_tmp.write_text(final.name)
        os.replace(pointer_tmp, root / "latest")
        old = sorted(p for p in root.glob("step_*") if not p.name.endswith(".tmp"))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    if barrier:
        barrier()
    return final


def load_checkpoint(path: str | Path, *, rank: int = 0) -> dict[str, Any]:
    """Read a checkpoint: ``{"state", "weights": {owner: tensors}, "optim": {owner: state}, "rng"}``."""
    path = Path(path)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.json)")
    weights = {p.stem[len("weights_"):]: torch.load(p, map_location="cpu") for p in path.glob("weights_*.pt")}
    optim = {p.stem[len("optim_"):]: torch.load(p, map_location="cpu", weights_only=False) for p in path.glob("optim_*.pt")}
    rng_file = path / f"rng_rank{rank}.pt"
    rng = torch.load(rng_file, weights_only=False) if rng_file.is_file() else None
    return {"state": json.loads((path / "state.json").read_text()), "weights": weights, "optim": optim, "rng": rng}


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
