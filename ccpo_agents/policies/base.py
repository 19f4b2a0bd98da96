"""Policy protocol, sampling settings and the helpers every LLM policy backend shares.

A *policy* maps a batch of observation texts to one :class:`~ccpo_env.records.Generation` per observation.
The rollout driver calls it once per turn with the whole batch, so backends must batch internally. The
helpers here (prompt rendering, duplicate grouping) are backend-agnostic and are used by
both :class:`~ccpo_agents.policies.hf.HFPolicy` and :class:`~ccpo_agents.policies.vllm.VLLMPolicy`, so the two
backends build byte-identical prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ccpo_agents.config.policy import GenerationConfig, LoraSettings
from ccpo_env.records import Generation

__all__ = [
    "GenerationConfig",
    "LoraSettings",
    "Policy",
    "PolicyStats",
    "encode_prompt",
    "group_duplicates",
    "render_prompt",
]


@runtime_checkable
class Policy(Protocol):
    """Anything that turns a batch of observations into one :class:`Generation` per observation."""

    def __call__(self, observations: list[str], *, seeds: list[int] | None = None) -> list[Generation]:
        """Sample one completion per observation, in input order."""
        ...


def render_prompt(
    tokenizer: Any,
    observation: str,
    system_prompt: str | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> tuple[str, bool]:
    """The prompt text for one observation, and whether a chat template was used.

    With a chat template: ``[system?, user=observation]`` rendered with ``add_generation_prompt=True``.
    Without one (a base model): ``system_prompt + "\\n\\n" + observation``, or the observation alone.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": observation})
        text = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **(chat_template_kwargs or {})
        )
        return text, True
    return (f"{system_prompt}\n\n{observation}" if system_prompt else observation), False


def encode_prompt(
    tokenizer: Any,
    observation: str,
    system_prompt: str | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """Prompt token ids for one observation (see :func:`render_prompt`).

    A rendered chat template already contains its special tokens, so it is encoded without adding any
    (this avoids a doubled BOS on Llama-style tokenizers); plain text gets the tokenizer's usual ones.
    """
    text, templated = render_prompt(tokenizer, observation, system_prompt, chat_template_kwargs)
    ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
    if not ids:
        raise ValueError("the prompt encodes to zero tokens; a causal LM needs at least one prompt token")
    return list(ids)


def group_duplicates(observations: Sequence[str], deduplicate: bool = True) -> list[list[int]]:
    """Positions of each distinct observation, in order of first occurrence.

    ``["a", "b", "a"] -> [[0, 2], [1]]``. With ``deduplicate=False`` every position is its own group.
    """
    if not deduplicate:
        return [[i] for i in range(len(observations))]
    groups: dict[str, list[int]] = {}
    for i, obs in enumerate(observations):
        groups.setdefault(obs, []).append(i)
    return list(groups.values())


@dataclass
class PolicyStats:
    """Cumulative counters of a policy (reset with ``policy.stats = PolicyStats()``).

    Attributes:
        calls: ``__call__`` invocations.
        observations: observations received.
        prompts_encoded: prompts tokenised (distinct observations when deduplicating).
        generate_calls: backend ``generate`` invocations (micro-batches).
        generate_input_rows: prompt rows fed to ``generate`` (before ``num_return_sequences`` expansion).
        sequences: completions produced.
        completion_tokens: completion tokens produced (up to and including the end token).
        generate_seconds: wall time spent inside ``generate``.
    """

    calls: int = 0
    observations: int = 0
    prompts_encoded: int = 0
    generate_calls: int = 0
    generate_input_rows: int = 0
    sequences: int = 0
    completion_tokens: int = 0
    generate_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def count_call(self, observations: Sequence[object], seeds: Sequence[int] | None) -> list[str]:
        """Check one policy call's inputs, count it, and return the observations as strings.

        Raises:
            ValueError: ``seeds`` is given with another length than ``observations``.
        """
        obs = [str(o) for o in observations]
        if seeds is not None and len(seeds) != len(obs):
            raise ValueError(f"got {len(seeds)} seeds for {len(obs)} observations")
        self.calls += 1
        self.observations += len(obs)
        return obs
