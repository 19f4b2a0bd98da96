"""A reusable supervised fine-tuning step: prompt/completion examples, loss on completion tokens only.

Used to make the warm starts (:mod:`ccpo_agents.models.warmstart`), and usable for any "teach the policy a
format before RL" phase: build :class:`SFTExample` rows with the exact prompt ids the policy will see at RL
time, draw batches, and call :func:`train_sft`. Optimiser: AdamW, linear warm-up then cosine decay to 10% of
the peak, gradient clipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

__all__ = ["SFTConfig", "SFTExample", "collate", "lr_factor", "train_sft"]


@dataclass
class SFTExample:
    """One supervised example: ``prompt_ids`` (what the policy feeds the model) + ``completion_ids``.

    Attributes:
        kind: the example type (e.g. ``"thinker"``), for mixing and reporting.
        prompt_ids: prompt token ids, exactly as the policy encodes the observation.
        completion_ids: target token ids (ending with the end token); the loss covers only these.
        observation: the observation text the prompt was made from.
        target: the target text.
        noisy: the target was deliberately corrupted (a recipe's choice).
    """

    kind: str
    prompt_ids: list[int]
    completion_ids: list[int]
    observation: str
    target: str
    noisy: bool = False


@dataclass
class SFTConfig:
    """Optimiser settings of :func:`train_sft`.

    Attributes:
        lr: peak AdamW learning rate (default 3e-3).
        weight_decay: AdamW weight decay (default 0.5).
        warmup_steps: linear warm-up steps (default 50); cosine decay to 10% of ``lr`` afterwards.
        max_grad_norm: gradient clipping norm (default 1.0).
    """

    lr: float = 3e-3
    weight_decay: float = 0.5
    warmup_steps: int = 50
    max_grad_norm: float = 1.0


def collate(batch: Sequence[SFTExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask``, and ``labels`` that are -100 outside the completion."""
    width = max(len(e.prompt_ids) + len(e.completion_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, e in enumerate(batch):
        seq = e.prompt_ids + e.completion_ids
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        labels[r, len(e.prompt_ids) : len(seq)] = torch.tensor(e.completion_ids)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lr_factor(step: int, warmup_steps: int, num_steps: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, num_steps - warmup_steps))
    return 0.1 + 0.45 * (1.0 + math.cos(math.pi * t))


def train_sft(
    model: Any, tokenizer: Any, batches: Sequence[Sequence[SFTExample]], config: SFTConfig, *,
    progress: bool = True, log_every: int = 10, callback: Callable[[int, Any], None] | None = None,
) -> list[dict[str, float]]:  # fmt: skip
    """One optimizer step per batch on ``model`` (in place); returns the loss curve (mean per ``log_every``).

    ``callback(step, model)`` runs every ``log_every`` steps (e.g. to evaluate along the way).
    """
    num_steps = len(batches)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.warmup_steps, num_steps)
    )
    curve: list[dict[str, float]] = []
    window: list[float] = []
    model.train()
    bar = tqdm(range(num_steps), desc="SFT", disable=not progress, leave=False)
    for step in bar:
        loss = model(**collate(batches[step], tokenizer.pad_token_id)).loss  # mean over completion tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        window.append(loss.item())
        if len(window) == log_every or step == num_steps - 1:
            curve.append({"step": step + 1, "loss": round(sum(window) / len(window), 5)})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}")
            window = []
            if callback is not None:
                callback(step + 1, model)
                model.train()
    model.eval()
    return curve
