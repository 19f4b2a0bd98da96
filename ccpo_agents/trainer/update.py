"""The policy-gradient update of one role: minibatched, micro-batched, NaN-safe.

For each role: score the sampled completions under the current weights (old log-probs, once),
optionally under the reference model (KL), then ``ppo_epochs`` passes of minibatches; each
minibatch accumulates gradients over micro-batches, is clipped, and steps the optimizer unless the
loss or the gradient is not finite (then the update is skipped, counted and logged).

Micro-batches hold at most ``optim.micro_batch_size`` samples and, with ``optim.micro_batch_tokens``, at most
that many padded tokens. With ``policy.gradient_checkpointing`` the decoder layers recompute their activations
in the backward pass (see :func:`checkpointing_layers`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ccpo_agents.algos import LossConfig, compute_policy_objective
from ccpo_agents.config import OptimConfig
from ccpo_agents.policies import RoleModels, pad_batch, sequence_logprobs
from ccpo_agents.trainer.samples import RoleBatch

__all__ = ["RoleUpdate", "aligned_micro_batches", "checkpointing_layers", "micro_batches", "update_role"]


@dataclass
class RoleUpdate:
    """Everything :func:`update_role` needs besides the samples."""

    role: str
    roles: RoleModels
    train_model: torch.nn.Module  # the (possibly DDP-wrapped) module to run forward/backward through
    optimizer: torch.optim.Optimizer
    loss: LossConfig
    optim: OptimConfig
    temperature: float
    accelerator: Any
    skip_nonfinite: bool = True


def _chunks(indices: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def micro_batches(indices: list[int], lengths: list[tuple[int, int]], size: int, token_budget: int = 0) -> list[list[int]]:
    """Split ``indices`` (in order) into micro-batches of at most ``size`` rows and, when ``token_budget > 0``,
    at most ``token_budget`` padded tokens.

    ``lengths[i]`` is sample ``i``'s ``(prompt, completion)`` length; a micro-batch of rows ``R`` costs
    ``len(R) * (max prompt + max completion)``, the size :func:`~ccpo_agents.policies.scoring.pad_batch` builds.
    A sample over the budget on its own still gets a micro-batch (it cannot be split).
    """
    out: list[list[int]] = []
    cur: list[int] = []
    p_max = c_max = 0
    for i in indices:
        p, c = lengths[i]
        np_, nc = max(p_max, p), max(c_max, c)
        over = token_budget > 0 and (len(cur) + 1) * (np_ + nc) > token_budget
        if cur and (len(cur) == size or over):
            out.append(cur)
            cur, np_, nc = [], p, c
        cur.append(i)
        p_max, c_max = np_, nc
    if cur:
        out.append(cur)
    return out


def aligned_micro_batches(acc: Any, indices: list[int], lengths: list[tuple[int, int]], size: int,
                          token_budget: int = 0) -> list[list[int]]:  # fmt: skip
    """:func:`micro_batches`, padded with empty ones up to the largest count on any process.

    Under FSDP every forward all-gathers each layer and every backward reduce-scatters gradients (under DDP
    the backward all-reduces): collectives that all ranks must enter the same number of times. The ranks'
    samples differ in length, so a token budget can split them into different counts. An empty micro-batch
    tells the caller to run a throw-away forward (and a zero-weighted backward) to keep in step.
    """
    out = micro_batches(indices, lengths, size, token_budget)
    if getattr(acc, "num_processes", 1) <= 1 or not torch.distributed.is_initialized():
        return out
    count = torch.tensor([len(out)], device=acc.device)
    torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MAX)
    return out + [[] for _ in range(int(count.item()) - len(out))]


def _join_backward(acc: Any, loss: Tensor) -> None:
    """A backward that changes no gradient, so that this rank still enters the other ranks' collectives."""
    acc.backward(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0) * 0.0)


def _as_float(t: Tensor) -> float:
    full = getattr(t, "full_tensor", None)  # a DTensor (FSDP-sharded gradients) -> its global value
    return float(full() if full is not None else t)


@contextmanager
def checkpointing_layers(model: torch.nn.Module) -> Iterator[None]:
    """Let transformers' gradient checkpointing run while the model stays in eval mode.

    transformers checkpoints a decoder layer only when that layer's ``training`` flag is set, but the trainer
    keeps models in eval mode so that dropout never perturbs the sampled-vs-trained log-prob ratio. This flips
    ``training`` on the checkpointing layers themselves (not recursively: their attention and MLP children stay
    in eval, so no dropout), and restores it afterwards. Without checkpointing enabled it changes nothing.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules()
              if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing and not m.training]  # fmt: skip
    for m in layers:
        m.training = True
    try:
        yield
    finally:
        for m in layers:
            m.training = False


def _lengths(batch: RoleBatch) -> list[tuple[int, int]]:
    return [(len(g.prompt_token_ids), len(g.token_ids)) for g in batch.generations]


def _pad_rows(rows: list[Tensor], width: int, device: torch.device) -> Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32, device=device)
    for i, r in enumerate(rows):
        out[i, : r.numel()] = r.to(device)
    return out


def _score(model: torch.nn.Module, batch: RoleBatch, idx: list[int], pad_id: int, device: torch.device,
           temperature: float, entropy: bool = False):
    gens = [batch.generations[i] for i in idx]
    tb = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id, device=device)
    scored = sequence_logprobs(model, tb.input_ids, tb.attention_mask, tb.completion_mask,
                               temperature=temperature, return_entropy=entropy)
    return tb, scored


@torch.no_grad()
def _per_sample_logprobs(model: torch.nn.Module, batch: RoleBatch, pad_id: int, device: torch.device,
                         temperature: float, micro: int, token_budget: int = 0, acc: Any = None) -> list[Tensor]:
    out: list[Tensor] = []
    for idx in aligned_micro_batches(acc, list(range(len(batch))), _lengths(batch), micro, token_budget):
        _, scored = _score(model, batch, idx or [0], pad_id, device, temperature)  # [] keeps ranks in step
        for row, i in enumerate(idx):
            out.append(scored.logprobs[row, : len(batch.generations[i].token_ids)].detach().float().cpu())
    return out


def update_role(u: RoleUpdate, batch: RoleBatch, advantages: Tensor, *, rng: np.random.Generator) -> dict[str, float]:
    """Run the role's policy-gradient updates on ``batch``; returns metrics prefixed ``<role>/``."""
    role, roles, acc = u.role, u.roles, u.accelerator
    device = acc.device
    pad_id = roles.policy_for(role).pad_token_id
    n = len(batch)
    if n == 0:
        return {f"{role}/num_samples": 0.0}
    mb = u.optim.minibatch_size or n
    num_minibatches = math.ceil(n / mb)
    on_policy = u.optim.ppo_epochs == 1 and num_minibatches == 1
    truncated = [bool(g.truncated) for g in batch.generations]
    lengths_all = _lengths(batch)
    kl_on = u.loss.kl_coef > 0
    entropy_on = u.loss.entropy_coef > 0

    with roles.activate(role):
        # Old log-probs: the weights that sampled the batch. With a single on-policy pass the
        # ratio is exactly 1, so the current forward's detached log-probs serve (no extra pass).
        old = None if on_policy else _per_sample_logprobs(roles.model_for(role), batch, pad_id, device,
                                                          u.temperature, u.optim.micro_batch_size,
                                                          u.optim.micro_batch_tokens, acc)
    ref = None
    if kl_on:
        with roles.reference(role) as ref_model:
            ref = _per_sample_logprobs(ref_model, batch, pad_id, device, u.temperature, u.optim.micro_batch_size,
                                       u.optim.micro_batch_tokens, acc)

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    skipped = 0
    padded = 0  # throw-away micro-batches that kept this rank in step with one that had more
    steps = 0
    grad_norms: list[float] = []
    adv = advantages.to(device=device, dtype=torch.float32)
    for _ in range(u.optim.ppo_epochs):
        order = rng.permutation(n).tolist() if num_minibatches > 1 else list(range(n))
        for minibatch in _chunks(order, mb):
            lengths = [len(batch.generations[i].token_ids) for i in minibatch]
            kept = [L for L, i in zip(lengths, minibatch) if not (u.loss.mask_truncated and truncated[i])]
            num_tokens = max(sum(kept), 1)
            nonfinite = False
            u.optimizer.zero_grad(set_to_none=True)
            for micro in aligned_micro_batches(acc, minibatch, lengths_all, u.optim.micro_batch_size,
                                               u.optim.micro_batch_tokens):  # fmt: skip
                padding = not micro  # another rank has more micro-batches: run the collectives, learn nothing
                micro = micro or minibatch[:1]
                ctx: AbstractContextManager[Any] = roles.activate(role)
                with ctx, acc.autocast(), checkpointing_layers(u.train_model):
                    tb, scored = _score(u.train_model, batch, micro, pad_id, device, u.temperature, entropy_on)
                    width = tb.completion_mask.shape[1]
                    old_lp = scored.logprobs.detach() if old is None else _pad_rows([old[i] for i in micro], width, device)
                    ref_lp = _pad_rows([ref[i] for i in micro], width, device) if ref is not None else None
                    loss, metrics = compute_policy_objective(
                        scored.logprobs, old_lp, adv[micro], tb.completion_mask, u.loss,
                        ref_logprobs=ref_lp, entropy=scored.entropy,
                        truncated=torch.tensor([truncated[i] for i in micro], device=device),
                        num_tokens=num_tokens, num_seqs=len(minibatch),
                    )
                if padding:
                    padded += 1
                    _join_backward(acc, loss)
                    continue
                if metrics.get("nonfinite") or not torch.isfinite(loss):
                    nonfinite = True
                for k, v in metrics.items():
                    if isinstance(v, (int, float)) and k not in ("nonfinite",):
                        sums[k] = sums.get(k, 0.0) + float(v)
                        counts[k] = counts.get(k, 0) + 1
                if not nonfinite:
                    acc.backward(loss)
                elif getattr(acc, "num_processes", 1) > 1:  # the step is skipped on every rank below
                    _join_backward(acc, loss)
            params = [p for p in roles.trainable_parameters(role) if p.grad is not None]
            if params and u.optim.max_grad_norm > 0 and not nonfinite:
                norm = _as_float(torch.nn.utils.clip_grad_norm_(params, u.optim.max_grad_norm))
            elif params and not nonfinite:
                norm = _as_float(torch.norm(torch.stack([p.grad.detach().norm() for p in params])))
            else:
                norm = float("nan") if nonfinite else 0.0
            nonfinite = nonfinite or not math.isfinite(norm)
            nonfinite = _any_process(acc, nonfinite)
            if nonfinite and u.skip_nonfinite:
                u.optimizer.zero_grad(set_to_none=True)
                skipped += 1
                continue
            grad_norms.append(norm)
            u.optimizer.step()
            u.optimizer.zero_grad(set_to_none=True)
            steps += 1
    out = {f"{role}/{k}": sums[k] / counts[k] for k in sums}
    out.update({
        f"{role}/num_samples": float(n),
        f"{role}/optimizer_steps": float(steps),
        f"{role}/skipped_nonfinite": float(skipped),
        f"{role}/padded_micro_batches": float(padded),
        f"{role}/grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
    })
    return out


def _any_process(acc: Any, flag: bool) -> bool:
    """True if ``flag`` is set on any process (all ranks must skip together)."""
    if getattr(acc, "num_processes", 1) <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=acc.device)
    return bool(acc.reduce(t, reduction="sum").item() > 0)
