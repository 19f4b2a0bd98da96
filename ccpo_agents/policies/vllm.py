"""``VLLMPolicy``: the :class:`~ccpo_agents.policies.hf.HFPolicy` interface on a vLLM engine (GPU only).

Optional: install with ``pip install 'ccpo[vllm]'``. Importing this module (and ``ccpo_agents.policies``)
works without vLLM; constructing a :class:`VLLMPolicy` without it raises ``ImportError``. **CI does not
exercise the engine** (no GPU, no vLLM there): only the import guard and the pure helpers
(:func:`generations_from_request_output`, :func:`vllm_state_dict`) are tested.

Targets vLLM's public offline API as of 0.8 - 0.11 (V1 engine): ``vllm.LLM``, ``SamplingParams(n, seed,
logprobs=0, max_tokens, temperature, top_p, top_k, min_p, stop_token_ids)``, token prompts
(``{"prompt_token_ids": ids}``), ``LLM.generate(prompts, params, lora_request=...)`` and
``vllm.lora.request.LoRARequest(name, int_id, path)``.

- Prompts are built with the same chat-template code as ``HFPolicy`` (:func:`encode_prompt`), so both
  backends feed identical token ids.
- Duplicates: one request per distinct observation with ``n`` = its count (vLLM shares the prompt's KV
  blocks across the ``n`` samples).
- Seeds: each request gets ``seed = derive_seed(seeds of its rows)``; vLLM seeds each request separately,
  so the same observation and seeds give the same samples regardless of the rest of the batch (up to
  floating-point batch effects).
- Log-probs: vLLM V1 returns *raw* model log-probs (before temperature/top-p) unless the engine was built
  with ``logprobs_mode="processed_logprobs"`` (newer vLLM releases), which we request when we build the engine.
  Either way, recompute old log-probs with :func:`~ccpo_agents.policies.scoring.sequence_logprobs` for the
  PPO ratio: engine kernels (bf16, different reductions) do not match the trainer's forward pass exactly.
- Weights: :meth:`VLLMPolicy.sync_weights` follows TRL's colocate mode: fold LoRA into the weights if any
  (out of place, :func:`vllm_state_dict`), rename peft keys to plain HF names, ``model.load_weights(...)``
  on the in-process engine model, then reset the prefix cache. In-process access needs ``distributed_executor_backend="external_launcher"`` (as TRL does) or
  ``VLLM_ENABLE_V1_MULTIPROCESSING=0``; otherwise ``LLM.apply_model`` (vLLM >= 0.9) ships the weights to
  the workers. Per-role LoRA (multi-LoRA): :meth:`VLLMPolicy.sync_lora` saves the adapter and switches to a
  fresh ``LoRARequest`` id, so the engine reloads it.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ccpo_agents.policies.base import (
    GenerationConfig,
    PolicyStats,
    derive_seed,
    encode_prompt,
    group_duplicates,
)
from ccpo_env.records import Generation

__all__ = [
    "INSTALL_HINT",
    "VLLMPolicy",
    "generations_from_request_output",
    "vllm_available",
    "vllm_state_dict",
]

INSTALL_HINT = "VLLMPolicy needs vLLM (CUDA GPU only): pip install 'ccpo[vllm]'"
_lora_ids = itertools.count(1)  # vLLM caches adapters by integer id: a new id forces a reload


def vllm_available() -> bool:
    """Whether ``vllm`` is importable (without importing it: that initialises CUDA machinery)."""
    return importlib.util.find_spec("vllm") is not None


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return vllm


def generations_from_request_output(
    output: Any, *, role: str | None = None, adapter: str | None = None
) -> list[Generation]:
    """Convert one vLLM ``RequestOutput`` (all its ``n`` completions) to :class:`Generation` objects.

    Uses only public fields: ``output.prompt_token_ids`` and, per completion, ``text``, ``token_ids``,
    ``logprobs`` (per position a mapping ``token_id -> Logprob`` with a ``.logprob`` float, or a float) and
    ``finish_reason`` (``"length"`` means truncated).
    """
    prompt = list(getattr(output, "prompt_token_ids", None) or [])
    gens = []
    for c in output.outputs:
        ids = [int(t) for t in c.token_ids]
        extra: dict[str, Any] = {"finish_reason": c.finish_reason}
        if role is not None:
            extra["role"] = role
        if adapter is not None:
            extra["adapter"] = adapter
        gens.append(
            Generation(
                text=c.text,
                token_ids=ids,
                logprobs=_sampled_logprobs(getattr(c, "logprobs", None), ids),
                prompt_token_ids=list(prompt),
                truncated=c.finish_reason == "length",
                extra=extra,
            )
        )
    return gens


def _sampled_logprobs(per_position: Any, ids: list[int]) -> list[float] | None:
    if per_position is None:
        return None
    out = []
    for i, tid in enumerate(ids):
        entry = per_position[i][tid]
        out.append(float(getattr(entry, "logprob", entry)))
    return out


def vllm_state_dict(model_or_state_dict: torch.nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{hf_name: tensor}`` ready for vLLM's ``load_weights``.

    For a peft model the active LoRA adapter is folded into each adapted weight *out of place*
    (``W + scale * B @ A`` via peft's ``get_delta_weight``) and keys are renamed to plain ``transformers``
    names (``base_model.model.`` prefix and ``.base_layer`` removed, ``lora_*`` tensors dropped,
    ``modules_to_save`` copies used instead of the originals) - the same result as TRL's
    ``merge_adapter()`` / ``state_dict()`` / ``unmerge_adapter()``, but without the in-place merge and unmerge,
    whose rounding error would otherwise accumulate in the frozen base weights at every sync (bf16).
    Plain modules and state dicts pass through (detached).
    """
    if isinstance(model_or_state_dict, Mapping):
        return {k: v.detach() for k, v in model_or_state_dict.items()}
    model = model_or_state_dict
    if not hasattr(model, "peft_config"):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from peft.tuners.lora import LoraLayer

    adapter = model.active_adapter
    deltas: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for mod_name, module in model.named_modules():
            if isinstance(module, LoraLayer) and adapter in module.lora_A:
                if module.use_dora.get(adapter, False):
                    raise NotImplementedError("DoRA adapters cannot be folded into vLLM weights")
                deltas[f"{mod_name}.base_layer.weight"] = module.get_delta_weight(adapter)
        out: dict[str, torch.Tensor] = {}
        for name, tensor in model.state_dict().items():
            if "lora_" in name or "original_module" in name:
                continue
            value = tensor.detach()
            if name in deltas:
                value = value + deltas[name].to(value.dtype)
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            out[name.replace(f"modules_to_save.{adapter}.", "")] = value
    return out


class VLLMPolicy:
    """A vLLM engine as a batched policy with the same ``__call__`` contract as ``HFPolicy``.

    Args:
        llm: a ``vllm.LLM`` (share one engine between roles: one policy per role, each with its own
            ``system_prompt`` / LoRA) or a model name/path to build one from.
        tokenizer: prompt tokenizer; default ``llm.get_tokenizer()``.
        role, system_prompt, generation, chat_template_kwargs: as for ``HFPolicy``
            (``GenerationConfig.max_batch_size`` is ignored: vLLM schedules its own batches).
        lora_path: a saved peft adapter directory to generate with (needs an engine with ``enable_lora``).
        lora_name: adapter name (default: ``role`` or ``"adapter"``).
        llm_kwargs: extra ``vllm.LLM`` arguments when ``llm`` is a name (e.g. ``gpu_memory_utilization``).

    Raises:
        ImportError: vLLM is not installed (``pip install 'ccpo[vllm]'``, GPU only).
    """

    def __init__(
        self,
        llm: Any,
        *,
        tokenizer: Any = None,
        role: str | None = None,
        system_prompt: str | None = None,
        generation: GenerationConfig | None = None,
        lora_path: str | Path | None = None,
        lora_name: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        llm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        vllm = _import_vllm()
        if isinstance(llm, (str, Path)):
            kwargs = {"enable_lora": lora_path is not None, "logprobs_mode": "processed_logprobs", **(llm_kwargs or {})}
            try:
                llm = vllm.LLM(model=str(llm), **kwargs)
            except TypeError:  # older vLLM has no logprobs_mode (its V0 engine returns processed log-probs)
                kwargs.pop("logprobs_mode")
                llm = vllm.LLM(model=str(llm), **kwargs)
        self.llm = llm
        self.tokenizer = tokenizer if tokenizer is not None else llm.get_tokenizer()
        self.role = role
        self.system_prompt = system_prompt
        self.generation = generation if generation is not None else GenerationConfig()
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.lora_name = lora_name or role or "adapter"
        self.lora_request: Any = None
        self.stats = PolicyStats()
        if lora_path is not None:
            self.set_lora(lora_path)

    def set_lora(self, path: str | Path) -> None:
        """Generate with the peft adapter saved at ``path`` (a fresh ``LoRARequest`` id every call)."""
        from vllm.lora.request import LoRARequest

        self.lora_request = LoRARequest(self.lora_name, next(_lora_ids), str(path))

    def _sampling_params(self, n: int, seed: int | None) -> Any:
        from vllm import SamplingParams

        gen = self.generation
        return SamplingParams(
            n=n,
            seed=seed,
            max_tokens=gen.max_new_tokens,
            temperature=gen.temperature if gen.do_sample else 0.0,
            top_p=gen.top_p,
            top_k=gen.top_k if gen.top_k > 0 else -1,  # -1 = off in every vLLM version
            min_p=gen.min_p,
            logprobs=0,  # 0 = only the sampled token's log-prob
            stop_token_ids=list(gen.stop_token_ids) or None,
            skip_special_tokens=gen.skip_special_tokens,
        )

    def __call__(self, observations: Sequence[str], *, seeds: Sequence[int] | None = None) -> list[Generation]:
        """Sample one completion per observation, in input order (see the module docstring)."""
        obs = [str(o) for o in observations]
        if seeds is not None and len(seeds) != len(obs):
            raise ValueError(f"got {len(seeds)} seeds for {len(obs)} observations")
        self.stats.calls += 1
        self.stats.observations += len(obs)
        if not obs:
            return []
        greedy = not self.generation.do_sample
        groups = group_duplicates(obs, self.generation.deduplicate)
        prompts = [
            encode_prompt(self.tokenizer, obs[g[0]], self.system_prompt, self.chat_template_kwargs) for g in groups
        ]
        params = [
            self._sampling_params(
                1 if greedy else len(g),
                None if seeds is None else derive_seed("vllm", *(seeds[i] for i in g)),
            )
            for g in groups
        ]
        self.stats.prompts_encoded += len(prompts)
        self.stats.generate_calls += 1
        self.stats.generate_input_rows += len(prompts)
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts], params, lora_request=self.lora_request, use_tqdm=False
        )
        adapter = self.lora_request.lora_name if self.lora_request is not None else None
        results: list[Generation | None] = [None] * len(obs)
        for g, out in zip(groups, outputs):
            gens = generations_from_request_output(out, role=self.role, adapter=adapter)
            for k, pos in enumerate(g):
                results[pos] = gens[0 if greedy else k]
        for r in results:
            self.stats.sequences += 1
            self.stats.completion_tokens += len(r.token_ids or [])  # type: ignore[union-attr]
        return results  # type: ignore[return-value]

    def sync_weights(self, model_or_state_dict: torch.nn.Module | Mapping[str, torch.Tensor]) -> None:
        """Load the trainer's current weights into the engine (full or LoRA-merged; see module docstring).

        With FSDP/DeepSpeed-3, gather the full state dict on the rank that owns the engine first.
        """
        weights = vllm_state_dict(model_or_state_dict)
        engine_model = _engine_model(self.llm)
        if engine_model is not None:
            engine_model.load_weights(weights.items())
        elif hasattr(self.llm, "apply_model"):
            cpu = {k: v.cpu() for k, v in weights.items()}
            self.llm.apply_model(lambda m: m.load_weights(cpu.items()))
        else:
            raise RuntimeError(
                "cannot reach the vLLM model in-process: build the engine with "
                "distributed_executor_backend='external_launcher' or VLLM_ENABLE_V1_MULTIPROCESSING=0"
            )
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def sync_lora(self, peft_model: Any, adapter: str | None = None, directory: str | Path | None = None) -> Path:
        """Save ``adapter`` of ``peft_model`` (default: this policy's ``lora_name``) and generate with it.

        Returns the adapter directory. The engine needs ``enable_lora=True`` and ``max_lora_rank >= r``.
        """
        adapter = adapter or self.lora_name
        root = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="ccpo-lora-"))
        peft_model.save_pretrained(root, selected_adapters=[adapter])
        # peft writes non-"default" adapters into a sub-folder named after the adapter.
        path = root / adapter if (root / adapter / "adapter_config.json").exists() else root
        self.set_lora(path)
        return path


def _engine_model(llm: Any) -> Any:
    """The engine's ``torch`` model when it lives in this process (V0, or V1 without multiprocessing)."""
    executor = getattr(getattr(llm, "llm_engine", None), "model_executor", None)
    worker = getattr(executor, "driver_worker", None)
    for holder in (getattr(worker, "worker", None), worker):
        model = getattr(getattr(holder, "model_runner", None), "model", None)
        if model is not None and hasattr(model, "load_weights"):
            return model
    return None
