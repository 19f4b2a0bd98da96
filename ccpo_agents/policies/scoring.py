"""Recompute per-token log-probs (with gradients) of sampled completions under a causal LM.

The trainer needs, for every sampled completion, the log-probability of each completion token under the
current policy (with grad), under the policy that sampled it ("old", no grad) and under a reference model
(KL). :func:`pad_batch` lays a batch out once; :func:`sequence_logprobs` scores it.

Layout produced by :func:`pad_batch` (``P`` = longest prompt, ``C`` = longest completion)::

    input_ids      = [pad .. pad  prompt_0 ] [completion_0  pad .. pad]
                     <----- P, left-padded ---> <------ C, right-padded ------>
    completion_mask = 1 over the real completion tokens, shape [B, C]

Left-padded prompts put every completion at the same columns ``P .. P+C-1``, so only the last ``C + 1``
positions' logits are ever materialised (``logits_to_keep``): with a 150K-token vocabulary the logits are
by far the largest activation. Position ids are ``cumsum(attention_mask) - 1``, exactly what
``transformers``' ``generate`` uses for left-padded prompts, so scores match sampling-time values no matter
how a batch was padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ScoredTokens", "TokenBatch", "pad_batch", "sequence_logprobs"]


@dataclass
class TokenBatch:
    """A padded batch of prompt + completion token ids (see the module docstring for the layout).

    Attributes:
        input_ids: ``[B, P + C]`` long tensor.
        attention_mask: ``[B, P + C]`` long tensor, 1 on real tokens (prompt and completion).
        completion_mask: ``[B, C]`` float tensor, 1.0 on real completion tokens; the completions occupy the
            last ``C`` columns of ``input_ids``.
        prompt_length: ``P``.
    """

    input_ids: Tensor
    attention_mask: Tensor
    completion_mask: Tensor
    prompt_length: int

    def to(self, device: torch.device | str) -> TokenBatch:
        """The same batch on ``device``."""
        return TokenBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.completion_mask.to(device),
            self.prompt_length,
        )


@dataclass
class ScoredTokens:
    """Per-token scores of the completion columns.

    Attributes:
        logprobs: ``[B, C]`` log-probability of each completion token; 0 where ``completion_mask`` is 0.
        entropy: ``[B, C]`` entropy of the (temperature-scaled) next-token distribution at each completion
            position, 0 where masked; ``None`` unless requested.
    """

    logprobs: Tensor
    entropy: Tensor | None = None


def pad_batch(
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_id: int,
    *,
    device: torch.device | str | None = None,
) -> TokenBatch:
    """Left-pad prompts and right-pad completions into one :class:`TokenBatch`.

    Args:
        prompt_ids: one prompt per row (e.g. ``Generation.prompt_token_ids``); each non-empty.
        completion_ids: one completion per row (e.g. ``Generation.token_ids``); may be empty.
        pad_id: filler token id (never attended to, never scored).
        device: where to put the tensors (default CPU).
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    if not prompt_ids:
        raise ValueError("pad_batch needs at least one row")
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token (the first completion token is scored from it)")
    b = len(prompt_ids)
    p_len = max(len(p) for p in prompt_ids)
    c_len = max(len(c) for c in completion_ids)
    input_ids = torch.full((b, p_len + c_len), int(pad_id), dtype=torch.long)
    attention = torch.zeros((b, p_len + c_len), dtype=torch.long)
    comp_mask = torch.zeros((b, c_len), dtype=torch.float32)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        input_ids[i, p_len - len(p) : p_len] = torch.as_tensor(list(p), dtype=torch.long)
        attention[i, p_len - len(p) : p_len] = 1
        if len(c):
            input_ids[i, p_len : p_len + len(c)] = torch.as_tensor(list(c), dtype=torch.long)
            attention[i, p_len : p_len + len(c)] = 1
            comp_mask[i, : len(c)] = 1.0
    batch = TokenBatch(input_ids, attention, comp_mask, p_len)
    return batch.to(device) if device is not None else batch


def sequence_logprobs(
    model: torch.nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    completion_mask: Tensor,
    *,
    temperature: float = 1.0,
    return_entropy: bool = False,
) -> ScoredTokens:
    """Log-probs of the completion tokens (the last ``C`` columns of ``input_ids``) under ``model``.

    Gradients flow unless the caller wraps this in ``torch.no_grad()``; the model's train/eval mode is left
    as it is (use eval mode, or zero dropout, to reproduce sampling-time values exactly).

    Args:
        model: a causal LM (``transformers`` model or peft wrapper) returning ``.logits``; for per-role LoRA,
            activate the role's adapter first (``RoleModels.activate(role)``).
        input_ids: ``[B, T]`` prompt + completion ids, e.g. ``pad_batch(...).input_ids``.
        attention_mask: ``[B, T]``, 1 on real tokens.
        completion_mask: ``[B, C]`` with ``C < T``; the completions are the last ``C`` columns.
        temperature: divide logits by this before the softmax. Use the sampling temperature to score under
            the distribution the tokens were drawn from (top-p/top-k truncation is *not* re-applied; the
            usual practice in GRPO-style trainers).
        return_entropy: also return the per-position entropy.

    Returns:
        :class:`ScoredTokens` with ``[B, C]`` float32 tensors, zeroed where ``completion_mask`` is 0.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b, t = input_ids.shape
    c = completion_mask.shape[1]
    if completion_mask.shape[0] != b or attention_mask.shape != input_ids.shape:
        raise ValueError("input_ids, attention_mask and completion_mask must agree on the batch size / length")
    if c >= t:
        raise ValueError(f"completion_mask covers {c} of {t} columns; at least one prompt column is required")
    mask = completion_mask.to(torch.float32)
    if c == 0:
        empty = input_ids.new_zeros((b, 0), dtype=torch.float32)
        return ScoredTokens(empty, empty.clone() if return_entropy else None)
    # Same positions as generate() computes for left-padded prompts; pads get position 0 (never attended).
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
        logits_to_keep=c + 1,
    )
    # Logits at column j predict token j+1: keep the C positions before each completion token.
    logits = out.logits[:, -(c + 1) : -1, :].float()
    if temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, t - c :]
    log_norm = torch.logsumexp(logits, dim=-1)
    token_logprobs = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_norm) * mask
    entropy = None
    if return_entropy:
        logp = logits - log_norm.unsqueeze(-1)
        entropy = -(logp.exp() * logp).sum(-1) * mask
    return ScoredTokens(token_logprobs, entropy)
