"""Voting credit on paired seeds: leave-one-out against Shapley values against shared reward, five voters.

``VotingEnv`` with N voters who answer alone; the plurality is the team's answer. The items are the second
task's (``variant: freeride``): half one-op items, which the warm start ``arith-warmstart-freeride`` was
taught (a lone voter is right on ~88% of them), half full level-1 problems (a lone voter ~0%), so a lone voter
is right ~38% of the time. Three arms, each trained from that warm start on the same per-seed data order:

==================  ===========================================================================
arm                 credit of voter i in an episode
==================  ===========================================================================
``shared``          R_joint (GRPO centres and scales it per prompt)
``voting``          Δ_i = R_joint − R_¬i, leave-one-out (baselined: passed through)
``voting_shapley``  φ_i, the Shapley value over all 2^N coalitions (a reward; GRPO centres it)
==================  ===========================================================================

Protocol (fixed before the run; the defaults below):

- 10 seeds per arm, seed ``s`` sets the data order and the rollout noise, so arm − ``shared`` and
  ``voting_shapley`` − ``voting`` are paired by seed.
- Budget: 100,000 generated tokens per run (every voter's answer counts).
- Primary endpoint: held-out team (plurality) accuracy at T = 1 at the budget, on every distinct test problem
  among the first 4,000 (306), 4 team samples each; secondary: a single voter's accuracy (each voter's own
  answer).
- Three comparisons (two against ``shared``, Shapley against LOO), each a mean paired difference with t and
  bootstrap intervals at the Bonferroni level 1 − 0.05/3; "level" only by TOST within ±3 points.

Run::

    python benchmarks/voting_credit.py --jobs 2          # 30 runs
    python benchmarks/voting_credit.py --quick           # smoke test
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path
from typing import Any

from credit_ablations import (  # sibling scripts (benchmarks/ is on sys.path)
    arm_rows,
    compare,
    distinct_problems,
    run_with_threads,
)
from credit_assignment import run_tasks

RESULTS = Path(__file__).resolve().parent / "results"
ARMS = ("shared", "voting", "voting_shapley")
EXTRA = ("voting_shapley", "voting")  # the comparison the study is for


def run_arm(arm: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one (arm, seed) until the token budget is spent; evaluate the team and a lone voter."""
    from ccpo_agents.config import load_config
    from ccpo_agents.envs import build_env
    from ccpo_agents.evaluation import evaluate_env
    from ccpo_agents.trainer import Trainer

    over = ["train.progress=false", "train.plot=false", "train.tensorboard=false", "eval.limit=0",
            f"policy.model={args.model}", "env.topology=voting", f"env.num_voters={args.voters}",
            "env.dataset_options={level: [1], variant: freeride}",
            f"rollout.prompts_per_step={args.prompts}", f"rollout.num_thoughts={args.samples}",
            "rollout.answers_per_thought=1", f"optim.lr={args.lr}", f"train.steps={10**6}",
            f"credit.method={arm}", f"train.seed={seed}", f"train.output_dir={workdir / f'{arm}-{seed}'}"]
    cfg = load_config(overrides=over)
    trainer = Trainer(cfg)
    env = build_env(cfg.env, split="test")
    problems = distinct_problems(env, args.eval_universe)
    tokens, steps, cpu = 0.0, 0, 0.0
    while tokens < args.budget:
        t0 = time.process_time()
        m = trainer.train_step()
        cpu += time.process_time() - t0
        tokens += m["perf/generated_tokens"]
        steps += 1
    r = evaluate_env(env, trainer.policies(), problems=problems, num_samples=args.eval_samples, seed=999)
    final = {"joint_acc": r["pass@1"], "joint_se": r["pass@1_se"], "solo_acc": r["solo_pass@1"]}
    return {"arm": arm, "seed": seed, "steps": steps, "tokens": tokens, "train_cpu": cpu,
            "eval_problems": len(problems), "final": final}


def summarise(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    """Per-arm means and the three Bonferroni-adjusted paired comparisons."""
    rows = arm_rows(runs, arms, ("joint_acc", "solo_acc"))
    k = len(arms) - 1 + (EXTRA[0] in arms and EXTRA[1] in arms)
    out: dict[str, Any] = {"arms": rows}
    for metric in ("joint_acc", "solo_acc"):
        out[f"vs_shared/{metric}"] = compare(runs, metric, arms, k=k)
        if EXTRA[0] in arms and EXTRA[1] in arms:
            out[f"vs_{EXTRA[1]}/{metric}"] = compare(runs, metric, [EXTRA[1], EXTRA[0]], baseline=EXTRA[1], k=k)
    return out


def print_tables(summary: dict[str, Any]) -> None:
    print(f"\n{'arm':<16}{'seeds':>6}{'team T=1':>12}{'one voter':>12}{'steps':>7}")
    for arm, r in summary["arms"].items():
        print(f"{arm:<16}{r['seeds']:>6}{100 * r['joint_acc']:>8.1f}±{100 * r['joint_acc_sd']:4.1f}"
              f"{100 * r['solo_acc']:>8.1f}±{100 * r['solo_acc_sd']:4.1f}{r['steps']:>7.0f}")
    for name, table in summary.items():
        if name == "arms":
            continue
        print(f"\n{name} (points, paired by seed; Bonferroni-adjusted)")
        for arm, c in table.items():
            print(f"  {arm:<16} {100 * c['mean_diff']:+6.2f}  t [{100 * c['t_ci'][0]:+.2f}, {100 * c['t_ci'][1]:+.2f}]"
                  f"  bootstrap [{100 * c['bootstrap_ci'][0]:+.2f}, {100 * c['bootstrap_ci'][1]:+.2f}]  {c['verdict']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budget, two seeds: a smoke test")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--voters", type=int, default=5)
    p.add_argument("--model", default="arith-warmstart-freeride")
    p.add_argument("--budget", type=float, default=100000, help="generated tokens per run (default %(default)s)")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--samples", type=int, default=4, help="team episodes per prompt (default %(default)s)")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--eval-universe", type=int, default=4000, help="distinct problems among this many test items")
    p.add_argument("--eval-samples", type=int, default=4, help="team samples per held-out problem")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads in all (default: all cores), split over jobs")
    p.add_argument("--out", type=Path, default=RESULTS / "voting_credit.json")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.prompts, args.samples, args.eval_universe, args.eval_samples = 2, 800, 2, 2, 12, 1
    if "shared" not in args.arms:
        p.error("--arms must include the reference arm 'shared'")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tasks = [(arm, seed) for seed in range(args.seeds) for arm in args.arms]
    threads = max(1, (args.threads or os.cpu_count() or 1) // max(1, args.jobs))
    t0 = time.perf_counter()

    def report(r: dict[str, Any]) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {r['arm']:<16} seed {r['seed']}: team {r['final']['joint_acc']:.3f} "
              f"one voter {r['final']['solo_acc']:.3f} ({r['steps']} steps)", flush=True)

    runs = run_tasks(functools.partial(run_with_threads, run_arm), tasks, vars(args), jobs=args.jobs, threads=threads, report=report)
    summary = summarise(runs, args.arms)
    print_tables(summary)
    result = {"benchmark": "voting_credit", "args": vars(args), "summary": summary, "runs": runs,
              "seconds": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
