"""GPU check: a Qwen2.5-1.5B-shaped model in bf16, HF vs vLLM generation tokens/s, five CCPO steps, peak memory.

About 8 minutes on one H100/H200. The model is a random-initialised Qwen2 of Qwen2.5-1.5B's shape (28 layers,
hidden 1536, the real 151,936-token vocabulary; no download) with the local ``tiny-qwen2.5`` tokenizer, whose
ids are a subset of that vocabulary, or real weights from ``--model-dir`` (a ``save_pretrained`` folder).

1. Generation: the same prompts (``--prompts`` x ``--samples`` completions of exactly ``--max-new-tokens``
   tokens: end tokens are suppressed so both sides generate the same count) through ``HFPolicy`` and, when
   vLLM is installed, through ``VLLMPolicy`` on a vLLM engine loaded from the same folder; tokens/s and
   their ratio.
2. Training: five CCPO (``ccpo_tree``) steps of the full trainer on the ``arith`` task, with gradient
   checkpointing, rollouts on HF or (``--train-backend vllm``) on a vLLM engine synced after every step; per step its time, generated and trained tokens/s and peak memory (the trainer's
   ``perf/*`` metrics). A random model cannot solve anything, so unless ``--model-dir`` is given, rewards come
   from a seeded coin on the response text (as in ``bench_step.py``): the updates then do real work.
3. JSON to ``benchmarks/results/gpu_check.json`` (``--out``) and a table.

``--smoke`` runs the same code on CPU with a 2-layer model of the same family, in seconds (for the tests).

    python benchmarks/gpu_check.py                       # on a GPU machine
    python benchmarks/gpu_check.py --model-dir /models/Qwen2.5-1.5B-Instruct
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check_smoke.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, force_full_length, machine_info, write_json

from ccpo_agents.config import load_config
from ccpo_agents.policies import GenerationConfig, HFPolicy
from ccpo_agents.trainer import Trainer
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv, Verdict

#: Qwen2.5-1.5B-Instruct's config.json (architecture only).
QWEN25_15B = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                  num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)  # fmt: skip
SMOKE = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
             num_key_value_heads=1, max_position_embeddings=2048)  # fmt: skip
PROMPTS = [f"Compute ({a}*{b})+({c}*{d})." for a, b, c, d in
           [(23, 4, 17, 3), (12, 9, 8, 7), (5, 61, 2, 44), (31, 3, 9, 9), (14, 14, 6, 21), (7, 88, 3, 5)]]  # fmt: skip


def coin_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    """Deterministic pseudo-random verdicts from the response text (a random model solves nothing)."""
    h = hashlib.blake2b(response.encode(), digest_size=2).digest()[0]
    return Verdict(h % 2 == 0, response[-3:], "coin")


def build_folder(args: argparse.Namespace, folder: Path) -> Path:
    """Write the random-init model (bf16 on GPU) and its tokenizer as an HF folder both engines load."""
    from ccpo_agents.models.families import build_family

    shape = {**QWEN25_15B, **SMOKE, "vocab_size": 512} if args.smoke else dict(QWEN25_15B)
    vocab = shape.pop("vocab_size")
    with torch.device(args.device):
        model, tok = build_family("tiny-qwen2.5", seed=0, model_vocab_size=vocab, **shape)
    model.to(dtype=torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    return folder


def hf_generation(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from ccpo_agents.policies.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(folder), dtype=args.dtype, device=args.device)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    policy = HFPolicy(model, tok, role="solver", system_prompt="You are the Solver.", generation=gen)
    force_full_length(model, policy.stop_token_ids)
    obs = [PROMPTS[i % len(PROMPTS)] + f" #{i}" for i in range(args.prompts)]
    obs = [o for o in obs for _ in range(args.samples)]
    policy(obs[: len(obs) // 4 or 1], seeds=list(range(len(obs) // 4 or 1)))  # warm-up
    _sync(args.device)
    policy.stats = type(policy.stats)()
    t0 = time.perf_counter()
    policy(obs, seeds=list(range(len(obs))))
    _sync(args.device)
    seconds = time.perf_counter() - t0
    out = {"tokens": policy.stats.completion_tokens, "seconds": seconds,
           "tokens_per_s": policy.stats.completion_tokens / seconds}  # fmt: skip
    del model, policy
    _free(args.device)
    return out


def vllm_generation(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The same prompts on a vLLM engine, or ``{"skipped": why}``."""
    try:
        from ccpo_agents.policies import vllm_available
        from ccpo_agents.policies.vllm import VLLMPolicy, build_llm
    except ImportError as e:  # pragma: no cover - the module itself imports without vLLM
        return {"skipped": str(e)}
    if args.no_vllm or not vllm_available():
        return {"skipped": "--no-vllm" if args.no_vllm else "vLLM is not installed"}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    kwargs: dict[str, Any] = dict(dtype="bfloat16" if args.device.startswith("cuda") else "float32", seed=0,
                                  max_model_len=1024)  # fmt: skip
    if args.device.startswith("cuda"):
        kwargs["gpu_memory_utilization"] = args.vllm_memory
    else:
        kwargs.update(kv_cache_memory_bytes=64 * 2**20, enforce_eager=True)
    t0 = time.perf_counter()
    llm = build_llm(folder, in_process=True, **kwargs)
    load_s = time.perf_counter() - t0
    policy = VLLMPolicy(llm, tokenizer=tok, role="solver", system_prompt="You are the Solver.",
                        generation=GenerationConfig(max_new_tokens=args.max_new_tokens),
                        sampling_overrides={"ignore_eos": True, "min_tokens": args.max_new_tokens})  # fmt: skip
    obs = [PROMPTS[i % len(PROMPTS)] + f" #{i}" for i in range(args.prompts)]
    obs = [o for o in obs for _ in range(args.samples)]
    policy(obs[: len(obs) // 4 or 1], seeds=list(range(len(obs) // 4 or 1)))
    policy.stats = type(policy.stats)()
    t0 = time.perf_counter()
    policy(obs, seeds=list(range(len(obs))))
    seconds = time.perf_counter() - t0
    out = {"tokens": policy.stats.completion_tokens, "seconds": seconds, "engine_load_seconds": load_s,
           "tokens_per_s": policy.stats.completion_tokens / seconds}  # fmt: skip
    del policy, llm
    _free(args.device)
    return out


def ccpo_steps(args: argparse.Namespace, folder: Path, out_dir: Path) -> list[dict[str, Any]]:
    P, n, m, k = (int(x) for x in args.rollout.split(","))
    cfg_overrides = [
        f"policy.model={folder}", f"policy.dtype={args.dtype}", f"train.cpu={str(args.device == 'cpu').lower()}",
        "credit.method=ccpo_tree", f"rollout.prompts_per_step={P}", f"rollout.num_thoughts={n}",
        f"rollout.answers_per_thought={m}", f"rollout.num_solo={k}",
        f"policy.generation.max_new_tokens={args.max_new_tokens}", "policy.gradient_checkpointing=true",
        f"optim.micro_batch_tokens={args.micro_batch_tokens}", "optim.lr=1e-6", "train.progress=false",
        "train.plot=false", "train.tensorboard=false", "eval.limit=0", f"train.output_dir={out_dir}",
    ]  # fmt: skip
    cfg = load_config(overrides=cfg_overrides)
    if args.train_backend == "vllm":
        engine = ({"policy.vllm.gpu_memory_utilization": args.vllm_memory} if args.device.startswith("cuda") else
                  {"policy.vllm.in_process": "true", "policy.vllm.kv_cache_memory_bytes": 64 * 2**20,
                   "policy.vllm.dtype": "float32", "policy.vllm.enforce_eager": "true"})  # fmt: skip
        cfg = load_config(overrides=[*cfg_overrides, "policy.backend=vllm", "policy.vllm.max_model_len=1024",
                                     *(f"{k}={v}" for k, v in engine.items())])  # fmt: skip
    verifier = None if args.model_dir else coin_verifier
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=verifier, split="train")
    trainer = Trainer(cfg, env=env)
    rows = []
    for _ in range(args.steps):
        m_ = trainer.train_step()
        rows.append({k_: m_.get(k_) for k_ in ("step", "time/step", "time/rollout", "time/update",
                                               "perf/generated_tokens", "perf/tokens_per_s",
                                               "perf/trained_tokens", "perf/trained_tokens_per_s",
                                               "perf/peak_memory_mb", "solver/optimizer_steps",
                                               "solver/grad_norm")})  # fmt: skip
    del trainer
    _free(args.device)
    return rows


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, 2-layer shape, small sizes: seconds")
    parser.add_argument("--model-dir", type=Path, default=None, help="real weights (save_pretrained folder)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), bf16, fp32")
    parser.add_argument("--prompts", type=int, default=None, help="distinct prompts (default 64; smoke 4)")
    parser.add_argument("--samples", type=int, default=None, help="completions per prompt (default 8; smoke 2)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="tokens per completion (256; smoke 8)")
    parser.add_argument("--rollout", default=None, help="P,n,m,k per CCPO step (default 8,4,2,4; smoke 2,2,2,2)")
    parser.add_argument("--steps", type=int, default=5, help="CCPO steps (default %(default)s)")
    parser.add_argument("--micro-batch-tokens", type=int, default=0, help="optim.micro_batch_tokens (0 = off)")
    parser.add_argument("--vllm-memory", type=float, default=0.35, help="vLLM gpu_memory_utilization")
    parser.add_argument("--no-vllm", action="store_true", help="skip the vLLM side")
    parser.add_argument("--train-backend", choices=("hf", "vllm"), default="hf",
                        help="rollout engine of the CCPO steps (policy.backend; default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/gpu_check.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    args.device = args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    small = args.smoke
    args.prompts = args.prompts or (4 if small else 64)
    args.samples = args.samples or (2 if small else 8)
    args.max_new_tokens = args.max_new_tokens or (8 if small else 256)
    args.rollout = args.rollout or ("2,2,2,2" if small else "8,4,2,4")
    args.out = args.out or RESULTS / ("gpu_check_smoke.json" if small else "gpu_check.json")
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ccpo-gpu-check-") as tmp:
        folder = args.model_dir or build_folder(args, Path(tmp) / "model")
        hf = hf_generation(args, folder)
        vl = vllm_generation(args, folder)
        steps = ccpo_steps(args, folder, Path(tmp) / "run")
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    result = {
        "benchmark": "gpu_check", "smoke": small, "model": str(args.model_dir) if args.model_dir else
        ("random-init Qwen2.5-1.5B shape" if not small else "random-init 2-layer Qwen2.5 (smoke)"),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "generation": {"hf": hf, "vllm": vl,
                       "vllm_vs_hf": vl["tokens_per_s"] / hf["tokens_per_s"] if "tokens_per_s" in vl else None},
        "ccpo_steps": steps, "peak_memory_mb_torch": peak,
        "peak_memory_mb_last_step": steps[-1]["perf/peak_memory_mb"] if steps else None,
        "total_seconds": time.perf_counter() - t_all, "machine": machine_info(args),
    }  # fmt: skip
    print(f"\ngpu_check ({result['model']}, {args.device}, {args.dtype})")
    print(f"| generation | tokens | s | tokens/s |\n|---|---:|---:|---:|\n| HFPolicy | {hf['tokens']} | "
          f"{hf['seconds']:.2f} | {hf['tokens_per_s']:,.0f} |")  # fmt: skip
    if "tokens_per_s" in vl:
        print(f"| vLLM | {vl['tokens']} | {vl['seconds']:.2f} | {vl['tokens_per_s']:,.0f} |")
        print(f"vLLM / HFPolicy: {result['generation']['vllm_vs_hf']:.2f}x")
    else:
        print(f"| vLLM | skipped: {vl['skipped']} | | |")
    print("\n| step | s | gen tok/s | trained tok/s | peak MiB |\n|---:|---:|---:|---:|---:|")
    for r in steps:
        print(f"| {r['step']} | {r['time/step']:.2f} | {r['perf/tokens_per_s']:,.0f} | "
              f"{r['perf/trained_tokens_per_s']:,.0f} | {r['perf/peak_memory_mb']:,.0f} |")  # fmt: skip
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
