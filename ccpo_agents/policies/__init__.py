"""LLM policies: batched sampling that returns text, token ids and log-probs, plus role parameterisation.

- :class:`HFPolicy` (``transformers``; CPU fp32 / GPU bf16; optional LoRA) and :class:`VLLMPolicy` (optional
  ``[vllm]`` extra, GPU only; importing this package never needs vLLM).
- :class:`RoleModels` / :class:`PolicyConfig`: one shared model, separate models, or one frozen base with a
  LoRA adapter per role.
- :func:`pad_batch` / :func:`sequence_logprobs`: recompute per-token log-probs (with gradients) for training.

Notes for trainers:

- Batch layout: ``pad_batch(prompts, completions, pad_id)`` left-pads prompts and right-pads completions, so
  completions are the last ``C`` columns; position ids are derived from the attention mask, so the padding
  side never changes scores. ``Generation.token_ids`` end with the end token when ``truncated`` is False.
- Old log-probs: ``Generation.logprobs`` are exact under the sampling distribution (after temperature/top-k/
  top-p). For the PPO ratio, recompute them with ``sequence_logprobs(..., temperature=T)`` under
  ``torch.no_grad()`` before the first update instead (same code path as the new log-probs, no truncation
  mismatch); at ``T = 1`` with no truncation both agree to ~1e-6 on CPU.
- Per-role LoRA: score role ``r`` inside ``with roles.activate(r) as model:``; reference log-probs inside
  ``with torch.no_grad(), roles.reference(r) as ref:`` (the base model; ``"shared"``/``"separate"`` need
  ``PolicyConfig.reference=True``). Switching adapters never changes ``requires_grad``.
- One optimizer per distinct ``roles.owner(role)`` over ``roles.trainable_parameters(role)``.
"""

from ccpo_agents.policies.base import (
    GenerationConfig,
    LoraSettings,
    Policy,
    PolicyStats,
    encode_prompt,
    group_duplicates,
    render_prompt,
)
from ccpo_agents.policies.hf import HFPolicy
from ccpo_agents.policies.loading import (
    add_lora,
    is_adapter_param,
    load_model_and_tokenizer,
    preserve_requires_grad,
    resolve_device,
    resolve_dtype,
    use_adapter,
)
from ccpo_agents.policies.roles import (
    DEFAULT_ROLES,
    DEFAULT_SYSTEM_PROMPTS,
    PARAMETERISATIONS,
    PolicyConfig,
    RoleModels,
)
from ccpo_agents.policies.scoring import ScoredTokens, TokenBatch, pad_batch, sequence_logprobs
from ccpo_agents.policies.vllm import VLLMPolicy, vllm_available

__all__ = [
    "DEFAULT_ROLES",
    "DEFAULT_SYSTEM_PROMPTS",
    "PARAMETERISATIONS",
    "GenerationConfig",
    "HFPolicy",
    "LoraSettings",
    "Policy",
    "PolicyConfig",
    "PolicyStats",
    "RoleModels",
    "ScoredTokens",
    "TokenBatch",
    "VLLMPolicy",
    "add_lora",
    "encode_prompt",
    "group_duplicates",
    "is_adapter_param",
    "load_model_and_tokenizer",
    "pad_batch",
    "preserve_requires_grad",
    "render_prompt",
    "resolve_device",
    "resolve_dtype",
    "sequence_logprobs",
    "use_adapter",
    "vllm_available",
]
