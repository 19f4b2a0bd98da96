"""``HFPolicy``: batched sampling from a ``transformers`` causal LM (CPU fp32 or GPU bf16), optional LoRA.

What a call does::

    observations --dedup--> distinct prompts --chat template--> token ids --left pad--> micro-batches
        --generate(num_return_sequences=n, KV cache)--> completions cut at the first end token --> Generation

Log-probs. ``Generation.logprobs[t]`` is ``log softmax(processed logits)[token_t]`` where the processed logits
are the ones the token was actually sampled from: after repetition-style processors from the model's config,
then temperature, top-k, top-p and min-p (in that order; filtered tokens are ``-inf``). At temperature 1 with
top-p = 1, top-k = 0 and min-p = 0 this is the plain model log-prob, which
:func:`~ccpo_agents.policies.scoring.sequence_logprobs` reproduces (to float tolerance). With greedy decoding
it is the model log-prob at temperature 1. The values are recorded by a logits processor placed after our
warpers, so memory is ``O(rows x vocab)`` rather than the ``O(steps x rows x vocab)`` of ``output_scores``.

Determinism. With ``seeds`` given, each micro-batch's sampling RNG is seeded from the seeds of the rows in
it (``torch.random.fork_rng``: the caller's global RNG stream is untouched). Guarantee: the same model weights,
device and dtype, :class:`GenerationConfig` (including ``max_batch_size``), role/system prompt, list of
observations and list of seeds give the same outputs, call after call. Not guaranteed: that one
(observation, seed) pair gives the same sample inside a *different* batch (padding and micro-batch
composition change the RNG stream and the floating-point reductions), nor bitwise equality across
devices or with non-deterministic CUDA kernels. Without ``seeds``, sampling draws from torch's global RNG, so
``torch.manual_seed`` before the call makes it reproducible in the same way.

Row-seeded sampling (``GenerationConfig.row_seeded``, with ``seeds``): each row gets its own generator, seeded
by its seed alone, and the sample is drawn by the Gumbel-max trick: at step ``t`` row ``i`` takes
``argmax(warped_logits + G_it)`` with ``G_it`` the ``t``-th vector of i.i.d. Gumbel(0, 1) draws of its generator,
which is an exact sample from ``softmax(warped_logits)``. Two rows with the same seed then share their noise
token for token (common random numbers: a joint and a solo answer differ only through their prompts), and a
row's sample no longer depends on the rest of its batch (up to floating-point effects of padding). Each row is
its own ``generate`` row (``num_return_sequences=1``), so duplicates still save the encoding only.

Deduplication. Identical observations in one call (k solo answers to one problem, m answers to one thought)
are tokenised once and fed to ``generate`` as one row with ``num_return_sequences`` = its count; samples come
back in input order. ``stats.prompts_encoded`` / ``stats.generate_input_rows`` count what was encoded and fed.
(``generate`` still runs the prefill once per returned sequence.) Distinct prompts with different counts go to
separate ``generate`` calls; a count above ``max_batch_size`` is split across calls. Greedy decoding generates
each distinct prompt once and copies the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from transformers import GenerationConfig as HFGenerationConfig
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ccpo_agents.policies.base import (
    GenerationConfig,
    LoraSettings,
    PolicyStats,
    encode_prompt,
    group_duplicates,
)
from ccpo_agents.policies.loading import (
    add_lora,
    is_peft_model,
    load_model_and_tokenizer,
    use_adapter,
)
from ccpo_agents.policies.scoring import pad_batch, sequence_logprobs
from ccpo_env.records import Generation
from ccpo_env.seeding import stable_seed

__all__ = ["HFPolicy"]


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    # Sampling must not see dropout; restore the caller's mode afterwards (the trainer may be mid-epoch).
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


class _LogprobRecorder(LogitsProcessor):
    """Records ``log_softmax`` of the final processed scores and gathers the sampled token's entry.

    The token sampled at step ``t`` is only visible at step ``t + 1`` (as ``input_ids[:, -1]``), so each call
    gathers from the previous step's table; :meth:`finish` gathers the last token from the sequences.
    """

    def __init__(self) -> None:
        self._prev: torch.Tensor | None = None
        self._steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prev is not None:
            self._steps.append(self._prev.gather(-1, input_ids[:, -1:]).squeeze(-1))
        self._prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, completion: torch.Tensor) -> torch.Tensor:
        steps = list(self._steps)
        if self._prev is not None and completion.shape[1] > 0:
            steps.append(self._prev.gather(-1, completion[:, -1:]).squeeze(-1))
        if len(steps) != completion.shape[1]:
            raise RuntimeError(f"recorded {len(steps)} sampling steps for {completion.shape[1]} tokens")
        if not steps:
            return completion.new_zeros(completion.shape, dtype=torch.float32)
        return torch.stack(steps, dim=1)


class _RowGumbel(LogitsProcessor):
    """Adds per-row Gumbel(0, 1) noise to the warped scores, so that greedy decoding samples (Gumbel-max).

    Row ``i`` draws from its own generator seeded with ``seeds[i]``, one vocabulary-sized vector per step, so
    rows with equal seeds see equal noise at every step whatever the batch. Placed after the warpers and the
    log-prob recorder: filtered tokens stay ``-inf`` and recorded log-probs are those of the warped distribution.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self._generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self._generators):
            raise RuntimeError(f"{scores.shape[0]} rows for {len(self._generators)} row seeds")
        width = scores.shape[-1]
        u = torch.stack([torch.rand(width, generator=g, device=scores.device) for g in self._generators])
        gumbel = -torch.log(-torch.log(u.clamp_(min=torch.finfo(u.dtype).tiny)))
        return scores.float() + gumbel


class HFPolicy:
    """A ``transformers`` causal LM as a batched policy returning :class:`Generation` objects.

    Args:
        model: a causal LM (or a peft model around one). It is used as is: not copied, not cast.
        tokenizer: its tokenizer; its chat template (if any) formats prompts.
        role: role name recorded in ``Generation.extra["role"]`` (e.g. ``"thinker"``).
        system_prompt: system message prepended to every observation (none by default).
        generation: sampling settings (default :class:`GenerationConfig`).
        adapter: peft adapter to activate while generating/scoring (per-role LoRA); ``None`` leaves the
            model's active adapter alone.
        device: move the model there; default: wherever the model already is.
        chat_template_kwargs: extra variables for the chat template (e.g. ``{"enable_thinking": False}``).

    See the module docstring for log-prob semantics, the determinism guarantee and deduplication.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        role: str | None = None,
        system_prompt: str | None = None,
        generation: GenerationConfig | None = None,
        adapter: str | None = None,
        device: str | torch.device | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if adapter is not None and (not is_peft_model(model) or adapter not in model.peft_config):
            raise ValueError(f"adapter {adapter!r} is not an adapter of the given model")
        if device is not None:
            model.to(device)
        self.model = model
        self.tokenizer = tokenizer
        self.role = role
        self.system_prompt = system_prompt
        self.generation = generation if generation is not None else GenerationConfig()
        self.adapter = adapter
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.stats = PolicyStats()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        dtype: str | torch.dtype = "auto",
        device: str | torch.device | None = None,
        lora: LoraSettings | None = None,
        role: str | None = None,
        system_prompt: str | None = None,
        generation: GenerationConfig | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
    ) -> HFPolicy:
        """Load ``name_or_path`` (a local directory, a Hub id, or a tiny preset name) as a policy.

        ``dtype="auto"`` is float32 on CPU and bfloat16 on CUDA. With ``lora``, the base weights are frozen
        and one adapter (named ``role``, or ``"default"``) is added with peft, initialised from ``seed``.
        """
        model, tokenizer = load_model_and_tokenizer(
            name_or_path, dtype=dtype, device=device, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, seed=seed,
        )  # fmt: skip
        adapter = None
        if lora is not None:
            adapter = role or "default"
            model = add_lora(model, lora, [adapter], seed=seed)
        return cls(model, tokenizer, role=role, system_prompt=system_prompt, generation=generation, adapter=adapter)

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def pad_token_id(self) -> int:
        """Filler id for padding: the tokenizer's pad token, else its EOS, else 0."""
        for tid in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if tid is not None:
                return int(tid)
        return 0

    @property
    def stop_token_ids(self) -> list[int]:
        """End-of-completion ids: tokenizer EOS, the model's generation-config EOS ids and the extra ones."""
        ids: list[int] = []
        base = self.model.get_base_model() if is_peft_model(self.model) else self.model
        gc_eos = getattr(getattr(base, "generation_config", None), "eos_token_id", None)
        for tid in [self.tokenizer.eos_token_id, *_as_list(gc_eos), *self.generation.stop_token_ids]:
            if tid is not None and int(tid) not in ids:
                ids.append(int(tid))
        if not ids:
            raise ValueError("no end token: the tokenizer has no eos_token and no stop_token_ids were given")
        return ids

    # ------------------------------------------------------------------ public API

    def encode(self, observation: str) -> list[int]:
        """The prompt token ids this policy feeds the model for ``observation``."""
        return encode_prompt(self.tokenizer, observation, self.system_prompt, self.chat_template_kwargs)

    def __call__(self, observations: Sequence[str], *, seeds: Sequence[int] | None = None) -> list[Generation]:
        """Sample one completion per observation (see the module docstring for the guarantees)."""
        obs = self.stats.count_call(observations, seeds)
        if not obs:
            return []
        gen = self.generation
        greedy = not gen.do_sample
        groups = group_duplicates(obs, gen.deduplicate)
        prompts = [self.encode(obs[g[0]]) for g in groups]
        self.stats.prompts_encoded += len(prompts)
        self._check_length(max(len(p) for p in prompts))

        # Each distinct prompt is encoded once. Its samples are drawn as rows of ``n`` samples each
        # (num_return_sequences=n), with n the gcd of the groups' sample counts, so that groups with
        # different counts (m answers per thought, k solo answers) still share generate() calls.
        need = [1 if greedy else len(g) for g in groups]
        row_seeded = gen.row_seeded and seeds is not None and not greedy
        n = 1 if row_seeded else math.gcd(*need)
        n = max(d for d in range(1, min(n, gen.max_batch_size) + 1) if n % d == 0)
        rows = [(gi, start) for gi in range(len(groups)) for start in range(0, need[gi], n)]
        per_call = max(1, gen.max_batch_size // n)

        results: list[Generation | None] = [None] * len(obs)
        with _eval_mode(self.model), use_adapter(self.model, self.adapter), torch.no_grad():
            for c0 in range(0, len(rows), per_call):
                chunk = rows[c0 : c0 + per_call]
                seed, row_seeds = None, None
                if row_seeded:
                    row_seeds = [stable_seed("hf-row", seeds[groups[gi][st]]) for gi, st in chunk]
                elif seeds is not None:
                    seed = stable_seed("hf", n, *(seeds[groups[gi][s]] for gi, st in chunk for s in range(st, st + n)))
                samples = self._generate([prompts[gi] for gi, _ in chunk], n, seed, row_seeds)
                for j, (gi, start) in enumerate(chunk):
                    drawn = samples[j * n : (j + 1) * n]
                    if greedy:
                        for pos in groups[gi]:
                            results[pos] = _copy(drawn[0])
                    else:
                        for s in range(n):
                            results[groups[gi][start + s]] = drawn[s]
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def logprobs_of(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
    ) -> list[torch.Tensor]:
        """Per-token log-probs of each completion under this policy (its adapter active), with gradients
        unless called under ``torch.no_grad()``; the model's train/eval mode is left as it is."""
        batch = pad_batch(prompt_ids, completion_ids, self.pad_token_id, device=self.device)
        with use_adapter(self.model, self.adapter):
            scored = sequence_logprobs(
                self.model, batch.input_ids, batch.attention_mask, batch.completion_mask, temperature=temperature
            )
        return [scored.logprobs[i, : len(c)] for i, c in enumerate(completion_ids)]

    # ------------------------------------------------------------------ internals

    def _check_length(self, prompt_len: int) -> None:
        limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if limit is not None and prompt_len + self.generation.max_new_tokens > limit:
            raise ValueError(
                f"prompt ({prompt_len} tokens) + max_new_tokens ({self.generation.max_new_tokens}) exceeds the "
                f"model's max_position_embeddings ({limit}); shorten the observation or max_new_tokens"
            )

    def _warpers(self) -> list[LogitsProcessor]:
        # Our own warpers, in transformers' order, so that the recorder placed after them sees exactly the
        # distribution that is sampled (generate() would append its warpers *after* custom processors).
        gen = self.generation
        if not gen.do_sample:
            return []
        out: list[LogitsProcessor] = []
        if gen.temperature != 1.0:
            out.append(TemperatureLogitsWarper(gen.temperature))
        if gen.top_k > 0:
            out.append(TopKLogitsWarper(top_k=gen.top_k))
        if gen.top_p < 1.0:
            out.append(TopPLogitsWarper(top_p=gen.top_p))
        if gen.min_p > 0.0:
            out.append(MinPLogitsWarper(min_p=gen.min_p))
        return out

    def _hf_config(self, n: int, do_sample: bool) -> HFGenerationConfig:
        gen = self.generation
        stop = self.stop_token_ids
        kwargs: dict[str, Any] = dict(
            max_new_tokens=gen.max_new_tokens, do_sample=do_sample, num_beams=1, num_return_sequences=n,
            eos_token_id=stop, pad_token_id=self.pad_token_id, return_dict_in_generate=True, use_cache=True,
            repetition_penalty=1.0,
        )  # fmt: skip
        if do_sample:
            # Unset fields are filled from the model's generation_config (e.g. Qwen ships top_k=20,
            # top_p=0.8) and transformers' defaults (top_k=50): neutralise every warper explicitly.
            kwargs.update(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0)
            base = self.model.get_base_model() if is_peft_model(self.model) else self.model
            model_gc = getattr(base, "generation_config", None)
            if getattr(model_gc, "min_p", None) is not None:
                kwargs["min_p"] = 0.0
            if getattr(model_gc, "top_h", None) is not None:
                raise ValueError("the model's generation_config sets top_h; HFPolicy owns sampling: unset it")
        return HFGenerationConfig(**kwargs)

    def _generate(
        self, prompts: list[list[int]], n: int, seed: int | None, row_seeds: list[int] | None = None
    ) -> list[Generation]:
        """One ``generate`` call: ``len(prompts) * n`` samples, prompt-major (row ``i * n + k``).

        With ``row_seeds`` (one per prompt, ``n == 1``) the rows sample by Gumbel-max from their own generators
        (greedy decoding over noised scores); otherwise ``seed`` seeds the micro-batch's global RNG."""
        device = self.device
        pad = self.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.as_tensor(p, dtype=torch.long)
            attention[i, width - len(p) :] = 1
        recorder = _LogprobRecorder() if self.generation.logprobs else None
        processors = LogitsProcessorList([*self._warpers(), *([recorder] if recorder is not None else [])])
        do_sample = self.generation.do_sample
        if row_seeds is not None:
            if n != 1 or len(row_seeds) != len(prompts):
                raise ValueError("row-seeded sampling takes one seed per prompt and n == 1")
            processors.append(_RowGumbel(row_seeds, device))
            do_sample = False  # the argmax over Gumbel-noised scores is the sample
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=_rng_devices(device), enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                generation_config=self._hf_config(n, do_sample),
                logits_processor=processors,
            )
        self.stats.generate_seconds += time.perf_counter() - t0
        self.stats.generate_calls += 1
        self.stats.generate_input_rows += len(prompts)
        completion = out.sequences[:, width:]
        token_lists = completion.tolist()
        logprob_lists = recorder.finish(completion).tolist() if recorder is not None else [None] * len(token_lists)
        stop = set(self.stop_token_ids)
        extra = {k: v for k, v in (("role", self.role), ("adapter", self.adapter)) if v is not None}
        results = []
        for row, (ids, lps) in enumerate(zip(token_lists, logprob_lists)):
            end = next((i for i, t in enumerate(ids) if t in stop), None)
            ids = ids if end is None else ids[: end + 1]
            self.stats.sequences += 1
            self.stats.completion_tokens += len(ids)
            results.append(
                Generation(
                    text=self.tokenizer.decode(ids, skip_special_tokens=self.generation.skip_special_tokens),
                    token_ids=ids,
                    logprobs=lps[: len(ids)] if lps is not None else None,
                    prompt_token_ids=list(prompts[row // n]),
                    truncated=end is None,
                    extra=dict(extra),
                )
            )
        return results


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _rng_devices(device: torch.device) -> list[Any]:
    # fork_rng must save/restore the CUDA generator that generate() draws from.
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def _copy(g: Generation) -> Generation:
    return Generation(
        text=g.text,
        token_ids=list(g.token_ids or []),
        logprobs=None if g.logprobs is None else list(g.logprobs),
        prompt_token_ids=list(g.prompt_token_ids or []),
        truncated=g.truncated,
        extra=dict(g.extra),
    )
