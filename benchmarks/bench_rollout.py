"""Generation throughput of the batched rollout driver + ``HFPolicy``, against raw ``model.generate``.

Measured side by side in one run, on the same model, prompts and sampling settings:

- **driver**: :func:`ccpo_env.rollout` on ``ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES)`` with one
  :class:`~ccpo_agents.policies.HFPolicy` per role (shared weights, the trainer's default system prompts):
  one policy call per agent turn for the whole batch. The env gets a stub verifier (an ``endswith`` check),
  so the driver's cost is not mixed with the verifier's (``bench_verifier.py``); one extra row adds the
  real verifier.
- **raw generate**: ``model.generate`` on the *same token ids* (the prompts ``HFPolicy.encode`` builds for
  the observations the driver actually produced, recorded on a warm-up rollout), left-padded, in batches
  of the same rows (at most ``max_batch_size``), with the same ``max_new_tokens`` and sampling
  (temperature 1, no top-k/top-p). No log-prob recording, no decoding, no env: the floor to compare to.
- **one at a time**: the same driver and policies called with one problem per ``rollout`` call (batch 1
  per policy call), over the same problems.

Fair token counts: a random model emits an end token at random points, and a batch runs until its longest
row stops, so both sides would generate different numbers of tokens. All end tokens are suppressed
(``model.generation_config.suppress_tokens``, which ``generate`` applies to HFPolicy's calls and the raw
calls alike), so every completion is exactly ``max_new_tokens`` tokens; the script checks the counts.

Workloads: ``flat`` = ``--episodes`` problems x 1 episode (all prompts distinct); ``tree`` = the trainer's
CCPO tree shape (P problems x n thoughts x m answers + k Thinker-removed solo answers per problem), where
``HFPolicy`` deduplicates identical prompts into ``num_return_sequences`` rows. Repeats are interleaved
(raw, driver, raw, driver, ...) and ratios are medians of per-repeat pairs, because the machine is shared.

    python benchmarks/bench_rollout.py            # full run (~1-2 min on 2 CPU cores)
    python benchmarks/bench_rollout.py --quick    # smoke test, seconds
    python benchmarks/bench_rollout.py --device cuda --shape qwen2.5-0.5b --episodes 256 --max-new-tokens 256

Writes ``benchmarks/results/bench_rollout.json``. Goals: overhead (raw tok/s / driver tok/s) <= 1.10;
batched vs one-at-a-time speed-up >= 5x at 32 episodes.
"""

# ruff: noqa: E402  (OMP_WAIT_POLICY must be set before torch loads OpenMP)
from __future__ import annotations

import os

# On a shared, oversubscribed CPU, OpenMP's default spin-waiting makes 2 torch threads 4-7x slower and very
# noisy; passive waiting keeps them at single-thread speed or better. Only effective when run as a script
# (torch not imported yet); override by setting OMP_WAIT_POLICY yourself.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    add_model_args,
    build_model,
    fmt_goal,
    force_full_length,
    machine_info,
    median,
    setup_torch,
    sync,
    write_json,
)

from ccpo_agents.policies import GenerationConfig, RoleModels
from ccpo_agents.policies.roles import DEFAULT_SYSTEM_PROMPTS
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv, Verdict, rollout

OVERHEAD_GOAL = 1.10
SPEEDUP_GOAL = 5.0


def stub_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    return Verdict(response.strip().endswith(f"{{{gold}}}"), None, "stub")


class Recorder:
    """Wraps a policy and records each call's observations (to replay the exact prompts in raw generate)."""

    def __init__(self, agent: str, policy: Any, log: list[tuple[str, list[str]]]) -> None:
        self.agent, self.policy, self.log = agent, policy, log

    def __call__(self, observations: list[str], *, seeds: list[int] | None = None) -> list[Any]:
        self.log.append((self.agent, list(observations)))
        return self.policy(observations, seeds=seeds)


def reset_stats(roles: RoleModels) -> None:
    for p in roles.policies().values():
        p.stats = type(p.stats)()


def stats_sum(roles: RoleModels, field: str) -> float:
    return sum(getattr(p.stats, field) for p in roles.policies().values())


def raw_jobs(roles: RoleModels, calls: list[tuple[str, list[str]]], max_batch: int) -> list[list[list[int]]]:
    """Per ``generate`` call of the raw baseline: the prompt token ids, one row per observation."""
    jobs = []
    for agent, observations in calls:
        policy = roles.policy_for(agent)
        ids = [policy.encode(o) for o in observations]
        jobs += [ids[i : i + max_batch] for i in range(0, len(ids), max_batch)]
    return jobs


def run_raw(model: Any, jobs: list[list[list[int]]], gen_kwargs: dict[str, Any], device: str, seed: int) -> tuple[float, int]:
    """Left-pad and ``generate`` each job; returns (seconds, completion tokens)."""
    pad = gen_kwargs["pad_token_id"]
    tokens = 0
    torch.manual_seed(seed)
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for prompts in jobs:
            width = max(len(p) for p in prompts)
            input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            attention = torch.zeros((len(prompts), width), dtype=torch.long)
            for i, p in enumerate(prompts):
                input_ids[i, width - len(p) :] = torch.as_tensor(p)
                attention[i, width - len(p) :] = 1
            out = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **gen_kwargs)
            tokens += out[:, width:].numel()
    sync(device)
    return time.perf_counter() - t0, tokens


def run_driver(env: Any, policies: dict[str, Any], roles: RoleModels, problems: list[int], kw: dict[str, Any],
               seed: int, device: str) -> tuple[float, int, float, int]:
    """One ``rollout`` call; returns (seconds, completion tokens, seconds inside generate, generate calls)."""
    reset_stats(roles)
    sync(device)
    t0 = time.perf_counter()
    rollout(env, policies, problems, seed=seed, **kw)
    sync(device)
    dt = time.perf_counter() - t0
    return (dt, int(stats_sum(roles, "completion_tokens")), float(stats_sum(roles, "generate_seconds")),
            int(stats_sum(roles, "generate_calls")))


def _vllm_side(args: argparse.Namespace) -> dict:
    """Run ``bench_rollout_vllm.py`` with an interpreter that has vLLM (its own venv: vLLM pins transformers)."""
    import importlib.util
    import json
    import subprocess

    root = Path(__file__).resolve().parents[1]
    python = os.environ.get("CCPO_VLLM_PYTHON") or (
        sys.executable if importlib.util.find_spec("vllm") else str(root / ".venv-vllm" / "bin" / "python")
    )
    if not Path(python).exists():
        raise SystemExit(f"--vllm needs vLLM: run .ci/setup_vllm_venv.sh or set CCPO_VLLM_PYTHON ({python} missing)")
    out = RESULTS / "bench_rollout_vllm.json"
    cmd = [python, str(Path(__file__).with_name("bench_rollout_vllm.py")), "--out", str(out),
           "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads)]  # fmt: skip
    subprocess.run([*cmd, *(["--quick"] if args.quick else [])], check=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    add_model_args(parser, default_model="tiny-small")
    parser.add_argument("--episodes", type=int, default=32, help="flat workload: problems (= episodes) per rollout")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--tree", default="4,4,2,4", help="tree workload P,n,m,k (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved repeats (default %(default)s)")
    parser.add_argument("--max-batch-size", type=int, default=64, help="HFPolicy max_batch_size (and raw rows per call)")
    parser.add_argument("--no-real-verifier", action="store_true", help="skip the driver row with the real verifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_rollout.json")
    parser.add_argument("--vllm", action="store_true",
                        help="instead: vLLM vs HFPolicy vs raw generate (bench_rollout_vllm.py in the vLLM venv)")
    args = parser.parse_args(argv)
    if args.vllm:
        return _vllm_side(args)
    if args.quick:
        args.episodes, args.max_new_tokens, args.tree, args.repeats = 8, 8, "2,2,2,2", 1
    setup_torch(args.threads)
    P, n, m, k = (int(x) for x in args.tree.split(","))

    t_build = time.perf_counter()
    model, tok = build_model(args.model, args.shape, device=args.device, dtype=args.dtype, seed=args.seed)
    build_s = time.perf_counter() - t_build
    device = str(next(model.parameters()).device)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, max_batch_size=args.max_batch_size)
    roles = RoleModels.shared(model, tok, ("thinker", "solver"), system_prompts=DEFAULT_SYSTEM_PROMPTS, generation=gen)
    roles_nodedup = RoleModels.shared(model, tok, ("thinker", "solver"), system_prompts=DEFAULT_SYSTEM_PROMPTS,
                                      generation=gen.replace(deduplicate=False))  # fmt: skip
    stop = roles.policy_for("solver").stop_token_ids
    force_full_length(model, stop)
    policies = roles.policies()
    gen_kwargs = dict(
        max_new_tokens=args.max_new_tokens, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, num_beams=1,
        eos_token_id=stop, pad_token_id=roles.policy_for("solver").pad_token_id, suppress_tokens=sorted(stop),
        use_cache=True,
    )  # fmt: skip

    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=stub_verifier)
    env_real = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES)
    flat_problems = list(range(args.episodes))
    tree_problems = list(range(1000, 1000 + P))
    workloads = {
        "flat": (flat_problems, {}),
        "tree": (tree_problems, dict(num_samples=n, fanout={"thinker": m}, counterfactuals=[["thinker"]],
                                     num_counterfactual=k)),
    }  # fmt: skip

    # Warm-up rollouts, which also record the exact observations of each policy call for the raw baseline.
    jobs: dict[str, list[list[list[int]]]] = {}
    for name, (problems, kw) in workloads.items():
        log: list[tuple[str, list[str]]] = []
        rec = {a: Recorder(a, policies[a], log) for a in policies}
        rollout(env, rec, problems, seed=args.seed, **kw)
        jobs[name] = raw_jobs(roles, log, args.max_batch_size)
    if not args.no_real_verifier:
        rollout(env_real, policies, flat_problems[:2], seed=args.seed)  # starts the verifier's worker pool

    rows: dict[str, dict[str, list[float]]] = {}

    def add(key: str, **vals: float) -> None:
        for name, v in vals.items():
            rows.setdefault(key, {}).setdefault(name, []).append(v)

    # One-at-a-time episodes are spread over the repeats so that they see the same machine load.
    per_rep = [flat_problems[r :: args.repeats] for r in range(args.repeats)]
    one_s = one_tok = one_g = 0.0
    one_calls = 0
    for r in range(args.repeats):
        # The driver replays the warm-up's seed: HFPolicy is deterministic given seeds, so every timed rollout
        # sees exactly the observations recorded above, i.e. the raw side generates from the very same token ids.
        seed = args.seed
        for name, (problems, kw) in workloads.items():
            sides = [("raw", None), ("driver", roles)]
            if name == "tree":
                sides.append(("driver_nodedup", roles_nodedup))
            for side, team in sides if r % 2 == 0 else sides[::-1]:  # alternate the order against drift
                if team is None:
                    s, t = run_raw(model, jobs[name], gen_kwargs, device, seed)
                    add(f"raw/{name}", seconds=s, tokens=t, generate_calls=len(jobs[name]))
                else:
                    s, t, g, c = run_driver(env, team.policies(), team, problems, kw, seed, device)
                    add(f"{side}/{name}", seconds=s, tokens=t, generate_seconds=g, generate_calls=c)
        if not args.no_real_verifier:
            s, t, g, c = run_driver(env_real, policies, roles, flat_problems, {}, seed, device)
            add("driver+verifier/flat", seconds=s, tokens=t, generate_seconds=g, generate_calls=c)
        for p in per_rep[r]:
            s, t, g, c = run_driver(env, policies, roles, [p], {}, seed, device)
            one_calls += c
            one_s += s
            one_tok += t
            one_g += g

    # Fairness check: every side generated exactly max_new_tokens per completion, the same total per workload.
    for name in workloads:
        raw_t = set(rows[f"raw/{name}"]["tokens"])
        drv_t = {t for key, v in rows.items() if key.endswith(f"/{name}") for t in v["tokens"]}
        if len(raw_t | drv_t) != 1:
            raise RuntimeError(f"{name}: token counts differ between raw generate {raw_t} and the driver {drv_t}")
    expected_one = args.episodes * 2 * args.max_new_tokens
    if int(one_tok) != expected_one:
        raise RuntimeError(f"one-at-a-time generated {one_tok} tokens, expected {expected_one}")

    summary: dict[str, Any] = {}
    for key, vals in rows.items():
        secs = vals["seconds"]
        tok_n = vals["tokens"][0]
        summary[key] = {
            "seconds_median": median(secs), "seconds": secs, "tokens": int(tok_n),
            "tokens_per_s": tok_n / median(secs), "generate_calls": int(vals["generate_calls"][0]),
        }  # fmt: skip
        if "generate_seconds" in vals:
            summary[key]["generate_seconds_median"] = median(vals["generate_seconds"])
            summary[key]["outside_generate_frac"] = median(
                [1 - g / s for g, s in zip(vals["generate_seconds"], secs)]
            )
    summary["one_at_a_time/flat"] = {
        "seconds": one_s, "tokens": int(one_tok), "tokens_per_s": one_tok / one_s, "episodes": args.episodes,
        "generate_seconds": one_g, "outside_generate_frac": 1 - one_g / one_s, "generate_calls": one_calls,
    }  # fmt: skip

    def pairs(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rows[a]["seconds"], rows[b]["seconds"])]

    def paired(a: str, b: str) -> float:
        return median(pairs(a, b))

    overhead = {name: paired(f"driver/{name}", f"raw/{name}") for name in workloads}
    inside = {
        name: median([g / s for g, s in zip(rows[f"driver/{name}"]["generate_seconds"], rows[f"raw/{name}"]["seconds"])])
        for name in workloads
    }
    speedup = summary["driver/flat"]["tokens_per_s"] / summary["one_at_a_time/flat"]["tokens_per_s"]
    ratios: dict[str, Any] = {
        "overhead_flat": overhead["flat"], "overhead_tree": overhead["tree"],
        "generate_time_vs_raw_flat": inside["flat"], "generate_time_vs_raw_tree": inside["tree"],
        "speedup_vs_one_at_a_time": speedup,
        "dedup_on_vs_off_tree": paired("driver/tree", "driver_nodedup/tree"),
    }  # fmt: skip
    ratios["per_repeat"] = {
        "overhead_flat": pairs("driver/flat", "raw/flat"), "overhead_tree": pairs("driver/tree", "raw/tree"),
        "dedup_on_vs_off_tree": pairs("driver/tree", "driver_nodedup/tree"),
    }  # fmt: skip
    if "driver+verifier/flat" in rows:
        ratios["overhead_flat_real_verifier"] = paired("driver+verifier/flat", "raw/flat")
    goals = {
        "overhead_flat_le_1.10": overhead["flat"] <= OVERHEAD_GOAL,
        "overhead_tree_le_1.10": overhead["tree"] <= OVERHEAD_GOAL,
        f"speedup_ge_5x_at_{args.episodes}_episodes": speedup >= SPEEDUP_GOAL,
    }

    n_params = sum(p.numel() for p in model.parameters())
    name = args.shape or args.model
    print(f"\nbench_rollout: {name} ({n_params / 1e6:.1f}M params) on {device}, {torch.get_num_threads()} threads, "
          f"max_new_tokens={args.max_new_tokens}, repeats={args.repeats}")  # fmt: skip
    print(f"flat = {args.episodes} problems x 1 episode; tree = P={P} x n={n} thoughts x m={m} answers + k={k} solo")
    print(f"\n{'side':<28}{'gen calls':>10}{'tokens':>8}{'s (median)':>12}{'tokens/s':>11}{'in generate':>13}")
    order = ["raw/flat", "driver/flat", "driver+verifier/flat", "one_at_a_time/flat", "raw/tree", "driver/tree",
             "driver_nodedup/tree"]
    for key in order:
        if key not in summary:
            continue
        s = summary[key]
        secs = s.get("seconds_median", s["seconds"])
        ing = f"{100 * (1 - s['outside_generate_frac']):.0f}%" if "outside_generate_frac" in s else "-"
        print(f"{key:<28}{s['generate_calls']:>10}{s['tokens']:>8}{secs:>12.3f}{s['tokens_per_s']:>11.0f}{ing:>13}")
    def spread(key: str) -> str:
        xs = ratios["per_repeat"][key]
        return f"per-repeat {min(xs):.2f}-{max(xs):.2f}"

    for w in ("flat", "tree"):
        ok = fmt_goal(goals[f"overhead_{w}_le_1.10"])
        print(f"{'' if w == 'tree' else chr(10)}overhead driver/raw, {w}: {overhead[w]:.3f}x ({spread('overhead_' + w)}; "
              f"goal <= {OVERHEAD_GOAL}: {ok})")  # fmt: skip
    print(f"  of which inside generate (HFPolicy's generate time / raw time): flat {inside['flat']:.3f}x, "
          f"tree {inside['tree']:.3f}x")  # fmt: skip
    if "overhead_flat_real_verifier" in ratios:
        print(f"overhead with the real verifier, flat: {ratios['overhead_flat_real_verifier']:.3f}x (informational)")
    print(f"tree, HFPolicy dedup on vs off (time ratio): {ratios['dedup_on_vs_off_tree']:.3f}x "
          f"({spread('dedup_on_vs_off_tree')})")  # fmt: skip
    print(f"speed-up batched vs one at a time ({args.episodes} episodes): {speedup:.1f}x  "
          f"(goal >= {SPEEDUP_GOAL:.0f}x: {fmt_goal(speedup >= SPEEDUP_GOAL)})")  # fmt: skip

    result = {
        "benchmark": "bench_rollout",
        "quick": args.quick,
        "model": name,
        "params": n_params,
        "build_seconds": build_s,
        "config": {
            "episodes": args.episodes, "max_new_tokens": args.max_new_tokens, "tree": {"P": P, "n": n, "m": m, "k": k},
            "repeats": args.repeats, "max_batch_size": args.max_batch_size, "seed": args.seed,
            "raw_generate_calls": {w: len(j) for w, j in jobs.items()},
            "force_full_length": "model.generation_config.suppress_tokens = end tokens",
        },  # fmt: skip
        "machine": machine_info(args),
        "results": summary,
        "ratios": ratios,
        "goals": goals,
    }
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
