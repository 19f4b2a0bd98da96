"""Peak memory of a training step, for the ``perf/peak_memory_mb`` metric.

On CUDA it is ``torch.cuda.max_memory_allocated`` (the tensors' peak, reset at the start of each step, so
it is the step's own peak). On CPU there is no allocator counter, so it is the process's maximum resident
set size (``resource.getrusage(...).ru_maxrss``): a high-water mark over the whole process lifetime, which
never goes down, includes the interpreter and libraries, and so only says whether a step made it grow.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["peak_memory_mb", "peak_memory_source", "reset_peak_memory"]


def reset_peak_memory(device: torch.device | str) -> None:
    """Start a new peak on CUDA (a no-op on CPU, where the process high-water mark cannot be reset)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device | str) -> float:
    """The peak since :func:`reset_peak_memory` on CUDA; the process's max RSS on CPU; in MiB."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows has no resource module
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def peak_memory_source(device: torch.device | str) -> str:
    """What :func:`peak_memory_mb` measures on ``device``: ``"cuda_max_allocated"`` or ``"process_max_rss"``."""
    return "cuda_max_allocated" if torch.device(device).type == "cuda" else "process_max_rss"
