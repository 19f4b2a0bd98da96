"""Wall time of one training step for each credit method, relative to ``shared``, measured side by side.

Every method trains from the same initial weights on the same problems with the same rollout seeds
(one :class:`~ccpo_agents.trainer.Trainer` per method, stepped round-robin so that each method sees the
same machine load; per-step ratios vs ``shared`` are paired by step and the median is reported):

- ``shared``: n thoughts x m answers per problem, nothing else;
- ``ccpo_event`` / ``ccpo_tree``: + k Thinker-removed (solo) Solver answers per problem;
- ``ccpo_paired``: + one solo answer per joint episode (n*m per problem);
- ``sepo``: + two ratings per joint episode (one by each role, ``credit.rating_max_new_tokens`` tokens).

Plus ``ccpo_tree`` with ``policy.generation.deduplicate=false``: identical prompts (the m answers to one
thought, the k solo answers) are fed as separate rows instead of one row with ``num_return_sequences``.

Fairness: the env uses a deterministic hash "coin" verifier (as the trainer tests do), so a random model
gets non-zero advantages and every update does real work, and the verifier's cost does not blur the
comparison; and all end tokens are suppressed (``model.generation_config.suppress_tokens``) so every
generation is exactly ``max_new_tokens`` long (ratings: ``rating_max_new_tokens``) for every method.
The first step of every trainer is a warm-up and not timed.

    python benchmarks/bench_step.py            # full run (~1-2 min on 2 CPU cores)
    python benchmarks/bench_step.py --quick    # smoke test, seconds
    python benchmarks/bench_step.py --device cuda --shape qwen2.5-0.5b --max-new-tokens 256 --rating-tokens 48

Writes ``benchmarks/results/bench_step.json``.
"""

# ruff: noqa: E402  (OMP_WAIT_POLICY must be set before torch loads OpenMP)
from __future__ import annotations

import os

# See bench_rollout.py: passive OpenMP waiting keeps 2 threads usable on a shared, oversubscribed CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gc
import hashlib
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    add_model_args,
    build_model,
    force_full_length,
    machine_info,
    median,
    setup_torch,
    write_json,
)

from ccpo_agents.config import load_config
from ccpo_agents.credit import get_credit
from ccpo_agents.policies import RoleModels
from ccpo_agents.trainer import Trainer
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv, Verdict

METHODS = ("shared", "ccpo_event", "ccpo_paired", "ccpo_tree", "sepo")
SPLIT = ("time/rollout", "time/credit", "time/update", "time/step")


def coin_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    """Deterministic pseudo-random verdicts (as in tests/test_trainer.py)."""
    h = hashlib.blake2b(response.encode(), digest_size=2).digest()[0]
    return Verdict(h % 2 == 0, response[-3:], "coin")


def variants(dedup_method: str) -> list[tuple[str, str, list[str]]]:
    """``(label, method, extra overrides)`` in table order."""
    out = [(m, m, [f"credit.method={m}"]) for m in METHODS]
    out.append((f"{dedup_method} (dedup off)", dedup_method,
                [f"credit.method={dedup_method}", "policy.generation.deduplicate=false"]))  # fmt: skip
    return out


def expected_generations(method: str, P: int, n: int, m: int, k: int) -> dict[str, int]:
    """Sequences one step samples, by kind, from the method's declared needs."""
    spec = get_credit(method)
    joint = P * n * m
    return {
        "thoughts": P * n,
        "answers": joint,
        "solo": P * spec.solo_rollouts_per_prompt(n * m, k),
        "ratings": 2 * joint if spec.needs_ratings else 0,
    }


def make_trainer(args: Any, overrides: list[str], out_dir: str) -> Trainer:
    P, n, m, k = args.shape_rollout
    base = [
        f"rollout.prompts_per_step={P}", f"rollout.num_thoughts={n}", f"rollout.answers_per_thought={m}",
        f"rollout.num_solo={k}", f"policy.generation.max_new_tokens={args.max_new_tokens}",
        f"credit.rating_max_new_tokens={args.rating_tokens}", f"policy.model={args.model}",
        f"policy.dtype={args.dtype}", f"policy.device={args.device}", f"train.cpu={str(args.device == 'cpu').lower()}",
        "train.progress=false", "train.plot=false", "train.tensorboard=false", "eval.limit=0",
        f"optim.lr={args.lr}", f"train.seed={args.seed}", f"train.output_dir={out_dir}",
    ]  # fmt: skip
    cfg = load_config(overrides=[*base, *overrides])
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train",
                        dataset_options=cfg.env.dataset_options)  # fmt: skip
    role_models = None
    if args.shape is not None:  # random-init model of a real shape: build it like RoleModels.from_config would
        model, tok = build_model(args.model, args.shape, device=args.device, dtype=args.dtype, seed=args.seed)
        roles = ("thinker", "solver")
        role_models = RoleModels.shared(model, tok, roles, system_prompts=cfg.policy.system_prompts,
                                        generation={r: cfg.policy.generation_for(r) for r in roles})  # fmt: skip
    trainer = Trainer(cfg, env=env, role_models=role_models)
    for model in trainer.roles.unique_models():
        force_full_length(model, trainer.roles.policy_for("solver").stop_token_ids)
    return trainer


def step_once(trainer: Trainer) -> dict[str, Any]:
    metrics = trainer.train_step()
    pols = trainer.roles.policies().values()
    metrics["bench/sequences"] = sum(p.stats.sequences for p in pols)
    metrics["bench/generate_calls"] = sum(p.stats.generate_calls for p in pols)
    metrics["bench/generate_input_rows"] = sum(p.stats.generate_input_rows for p in pols)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    add_model_args(parser, default_model="tiny")
    parser.add_argument("--rollout", default="8,4,2,4", help="P,n,m,k: problems, thoughts, answers/thought, solo (default %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="generation length (default: the embedded config's 24)")
    parser.add_argument("--rating-tokens", type=int, default=8, help="credit.rating_max_new_tokens for sepo (default %(default)s)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per method, after one warm-up step")
    parser.add_argument("--dedup-method", default="ccpo_tree", help="method for the dedup on/off comparison")
    parser.add_argument("--sequential", action="store_true",
                        help="build and time one method at a time instead of round-robin (for models too big to "
                             "hold six trainers in memory)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_step.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rollout, args.max_new_tokens, args.rating_tokens, args.steps = "2,2,2,2", 4, 4, 1
    args.shape_rollout = tuple(int(x) for x in args.rollout.split(","))
    if args.steps < 1 or len(args.shape_rollout) != 4:
        parser.error("--steps must be >= 1 and --rollout must be P,n,m,k")
    setup_torch(args.threads)
    P, n, m, k = args.shape_rollout
    logging.getLogger("ccpo_agents").setLevel(logging.WARNING)

    rows: list[dict[str, Any]] = []
    plan = variants(args.dedup_method)
    history: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in plan}
    n_params = 0
    build_s = 0.0
    with tempfile.TemporaryDirectory(prefix="bench_step_") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def build(i: int) -> Trainer:
            nonlocal n_params, build_s
            t0 = time.perf_counter()
            trainer = make_trainer(args, plan[i][2], f"{tmp}/{i}")
            build_s += time.perf_counter() - t0
            n_params = sum(p.numel() for p in trainer.roles.unique_models()[0].parameters())
            return trainer

        if args.sequential:  # one trainer in memory at a time (big models); no interleaving
            for i, (label, _, _) in enumerate(plan):
                trainer = build(i)
                for s in range(1 + args.steps):
                    metrics = step_once(trainer)
                    if s > 0:  # step 0 is the warm-up
                        history[label].append(metrics)
                del trainer
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        else:
            trainers = [build(i) for i in range(len(plan))]
            for s in range(1 + args.steps):  # round-robin: step s of every method, then step s + 1
                for (label, _, _), trainer in zip(plan, trainers):
                    metrics = step_once(trainer)
                    if s > 0:  # step 0 is the warm-up
                        history[label].append(metrics)
            del trainers

    shared_steps = [h["time/step"] for h in history["shared"]]
    for label, method, _ in plan:
        hs = history[label]
        exp = expected_generations(method, P, n, m, k)
        seqs = int(hs[0]["bench/sequences"])
        if seqs != sum(exp.values()):
            raise RuntimeError(f"{label}: sampled {seqs} sequences, expected {sum(exp.values())} ({exp})")
        row: dict[str, Any] = {
            "label": label, "method": method, "generations": seqs,
            "extra_generations": {"solo": exp["solo"], "ratings": exp["ratings"]},
            "generated_tokens": int(hs[0]["perf/generated_tokens"]),
            "generate_calls": int(hs[0]["bench/generate_calls"]),
            "generate_input_rows": int(hs[0]["bench/generate_input_rows"]),
            "ratio_vs_shared": median([h["time/step"] / b for h, b in zip(hs, shared_steps)]),
            "steps_timed": len(hs),
        }  # fmt: skip
        for key in SPLIT:
            row[key.split("/")[1] + "_s"] = median([h[key] for h in hs])
        row["seconds_per_step_all"] = [h["time/step"] for h in hs]
        rows.append(row)

    name = args.shape or args.model
    print(f"\nbench_step: {name} ({n_params / 1e6:.2f}M params) on {args.device}, {torch.get_num_threads()} threads; "
          f"P={P} problems x n={n} thoughts x m={m} answers, k={k} solo; max_new_tokens={args.max_new_tokens}, "
          f"ratings {args.rating_tokens} tokens; median of {args.steps} timed steps")  # fmt: skip
    head = f"{'method':<24}{'gens':>6}{'(+solo':>7}{'+rate)':>7}{'gen calls':>10}{'s/step':>8}{'vs shared':>10}"
    print("\n" + head + f"{'rollout':>9}{'credit':>8}{'update':>8}")
    for r in rows:
        ex = r["extra_generations"]
        print(f"{r['label']:<24}{r['generations']:>6}{ex['solo']:>7}{ex['ratings']:>7}{r['generate_calls']:>10}"
              f"{r['step_s']:>8.2f}{r['ratio_vs_shared']:>9.2f}x{r['rollout_s']:>9.2f}{r['credit_s']:>8.3f}"
              f"{r['update_s']:>8.2f}")  # fmt: skip
    print("(rollout includes SEPO's rating generations; gens = sequences sampled per step)")

    result = {
        "benchmark": "bench_step",
        "quick": args.quick,
        "model": name,
        "params": n_params,
        "build_seconds": build_s,
        "config": {
            "P": P, "n": n, "m": m, "k": k, "max_new_tokens": args.max_new_tokens, "rating_max_new_tokens": args.rating_tokens,
            "steps_timed": args.steps, "warmup_steps": 1, "interleaved": not args.sequential, "lr": args.lr, "seed": args.seed, "verifier": "coin (hash)",
        },  # fmt: skip
        "machine": machine_info(args),
        "rows": rows,
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
