"""Environment + driver throughput with instant scripted policies.

Shows that the env and the batched driver are never the bottleneck next to an LLM: episodes/s of
ThinkSolveEnv and VotingEnv through :func:`ccpo_env.rollout`, with the real verifier and with a
stub verifier (isolating env + driver cost), plus the plain one-env-at-a-time AEC loop.

    python benchmarks/bench_env.py            # full run (~1 min on 2 cores)
    python benchmarks/bench_env.py --quick    # seconds

Writes ``benchmarks/results/bench_env.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

from ccpo_env import ThinkSolveEnv, Verdict, VotingEnv, rollout

RESULTS = Path(__file__).resolve().parent / "results"


def stub_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    return Verdict(response.strip().endswith(f"{{{gold}}}"), None, "stub")


def scripted(seed: int):
    rng = random.Random(seed)

    def thinker(observations):
        return [f"First compute the products, then add. Partial result {rng.randint(0, 999)}." for _ in observations]

    def solver(observations):
        # Mostly distinct answers so the verifier cache does not hide its cost.
        return [f"Adding up gives \\boxed{{{rng.randint(0, 99999)}}}" for _ in observations]

    return thinker, solver


def bench_rollout(make_env, policies, batch: int, repeats: int) -> float:
    env = make_env()
    rollout(env, policies, 8, seed=123)  # warm-up: imports, verifier workers, caches
    start = time.perf_counter()
    n = 0
    for r in range(repeats):
        n += len(rollout(env, policies, batch, seed=r))
    return n / (time.perf_counter() - start)


def bench_loop(make_env, policies, episodes: int) -> float:
    env = make_env()
    start = time.perf_counter()
    for s in range(episodes):
        env.reset(seed=s)
        for agent in env.agent_iter():
            obs, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else policies[agent]([obs])[0])
    return episodes / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    parser.add_argument("--batch", type=int, default=256, help="episodes per rollout call")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_env.json")
    args = parser.parse_args(argv)
    batch, repeats, loop_eps = (32, 1, 32) if args.quick else (args.batch, 4, 256)

    thinker, solver = scripted(0)
    ts_policies = {"thinker": thinker, "solver": solver}
    vote_policy = scripted(1)[1]
    vote_policies = {f"voter_{i}": vote_policy for i in range(3)}
    cases = [
        ("think_solve", "verifier", lambda: ThinkSolveEnv("arith"), ts_policies),
        ("think_solve", "stub", lambda: ThinkSolveEnv("arith", verifier=stub_verifier), ts_policies),
        ("voting(3)", "verifier", lambda: VotingEnv("arith", num_voters=3), vote_policies),
        ("voting(3)", "stub", lambda: VotingEnv("arith", num_voters=3, verifier=stub_verifier), vote_policies),
    ]
    rows = []
    for name, verifier, make_env, policies in cases:
        batched = bench_rollout(make_env, policies, batch, repeats)
        looped = bench_loop(make_env, policies, loop_eps)
        rows.append({"env": name, "verifier": verifier, "batched_eps_per_s": batched, "loop_eps_per_s": looped})

    print(f"\n{'env':<13}{'verifier':<10}{'rollout() eps/s':>17}{'AEC loop eps/s':>16}")
    for r in rows:
        print(f"{r['env']:<13}{r['verifier']:<10}{r['batched_eps_per_s']:>17.0f}{r['loop_eps_per_s']:>16.0f}")
    result = {
        "benchmark": "bench_env",
        "batch": batch,
        "repeats": repeats,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
