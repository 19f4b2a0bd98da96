"""A free-riding probe that can bite: separate Thinker and Solver weights, a thought cost, a positive control.

Shared reward lets a partner coast when the other can succeed alone. The earlier probe could not show that: one
network played both roles and thinking cost nothing. Here (on the second task, where the Solver alone is often
right, from ``arith-warmstart-freeride``):

- the Thinker and the Solver have **separate weights** (``policy.parameterisation=separate``);
- thinking **costs** ``credit.thought_cost`` per token (centred per prompt, the same drift for every arm);
- the **positive control** ``solver_only`` gives the Thinker no credit from the outcome, so the cost is the only
  signal on it: its thoughts must collapse within the budget, or the probe cannot detect free-riding.

A pilot (one seed, 100,000 tokens) chose the cost before the study: at 0.01 the control's thoughts went from 7.1
to 1.0 tokens and its contribution from +9.8 to +0.4 points, while ``shared`` kept 6.8-token thoughts at 0.01
and at 0.05. The study uses 0.05, the stronger drift on the methods under test (under GRPO the control's
collapse does not depend on the cost's size: its only signal is normalised per prompt).

Arms: ``solver_only`` (the control), ``shared``, ``ccpo_tree``; 10 paired seeds each. Measured at the budget on
the 306 distinct test problems (2 thoughts × 1 answer and 2 solo answers each): the Thinker's **contribution**
(joint − solo accuracy, paired per problem), joint and solo accuracy, **thought quality** (the share of
thoughts holding the right intermediate step, ``arith_thought_correct``) and the thought length over training;
the contribution, joint accuracy and thought quality also under greedy decoding (1 thought, 1 solo answer);
the **Solver with an oracle thought** (the right intermediate steps written for it: its skill at using a perfect
thought, 2 answers per problem at T = 1, 1 greedy). The T = 1 contribution, accuracies and thought quality are
also taken at 1/3 and 2/3 of the budget (``--curve``), for the contribution over training.
Each arm against ``shared``, paired by seed, at the Bonferroni level 1 − 0.05/(number of other arms).

A longer run (fixed before it ran) asks whether ``shared`` starts to free-ride later: ``shared`` and
``ccpo_tree`` only (the control has collapsed by 70,000 tokens), 200,000 tokens, 10 seeds, one comparison at
95%, the same measures, with the points on the way at 1/3 and 2/3 of the longer budget. It found
``shared``'s thoughts shortening between 100,000 and 200,000 tokens in every seed. A follow-up arm (fixed
before its run) tests one cause: ``shared_dr_grpo``, shared reward without GRPO's std scaling, which in a
prompt whose answers all agree scales the centred thought cost to unit size; primary endpoint the thought
length at the budget against ``shared``, then the contribution, the Bonferroni level 1 − 0.05/2.

Run::

    python benchmarks/freeride_probe.py --jobs 2 --seeds 10    # 30 runs, 18 min on 2 cores
    python benchmarks/freeride_probe.py --jobs 2 --seeds 10 --arms shared ccpo_tree --budget 200000 \
        --out benchmarks/results/freeride_probe_200k.json      # the longer run
    python benchmarks/freeride_probe.py --jobs 2 --seeds 10 --arms shared ccpo_tree shared_dr_grpo \
        --budget 200000 --reuse benchmarks/results/freeride_probe_200k.json \
        --out benchmarks/results/freeride_probe_200k.json      # + shared without std scaling
    python benchmarks/freeride_probe.py --quick       # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from credit_ablations import (  # sibling scripts (benchmarks/ is on sys.path)
    arm_rows,
    compare,
    distinct_problems,
    greedy_decoding,
    run_or_reuse,
)

RESULTS = Path(__file__).resolve().parent / "results"
#: arm -> (credit method, extra config overrides)
ARMS: dict[str, tuple[str, list[str]]] = {
    "solver_only": ("solver_only", []),
    "shared": ("shared", []),
    "ccpo_tree": ("ccpo_tree", []),
    # shared reward without GRPO's std scaling: in a prompt whose answers all agree, GRPO scales the centred
    # thought cost to unit size, Dr.GRPO leaves it at its own size
    "shared_dr_grpo": ("shared", ["algo.estimator.name=dr_grpo"]),
}
DEFAULT_ARMS = ["solver_only", "shared", "ccpo_tree"]
#: the arguments that define a run: stored runs are reused (--reuse) only when all of them match
PROTOCOL = ("model", "budget", "prompts", "thoughts", "answers", "solo", "lr", "eval_universe", "cost", "curve")
METRICS = ("contribution", "joint_acc", "solo_acc", "thought_ok", "oracle_acc", "thought_len",
           "greedy_contribution", "greedy_joint_acc", "greedy_thought_ok", "greedy_oracle_acc")


def oracle_thinker(env: Any, problems: list[int]) -> Any:
    """A Thinker policy that writes the right intermediate steps (``arith_oracle_thought``) for ``problems``:
    with it, joint accuracy is the Solver's skill at using a perfect thought."""
    from ccpo_env.data import arith_oracle_thought

    thoughts = {}
    for i in problems:
        env.reset(seed=0, options={"problem": i})
        thoughts[str(env.observe("thinker"))] = arith_oracle_thought(env.dataset[i])
    return lambda observations: [thoughts[str(o)] for o in observations]


def run_arm(arm: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one (arm, seed) until the budget is spent; measure the Thinker's contribution and its thoughts."""
    from ccpo_agents.config import load_config
    from ccpo_agents.envs import build_env
    from ccpo_agents.evaluation import evaluate_env
    from ccpo_agents.trainer import Trainer
    from ccpo_env.data import arith_thought_correct

    over = ["train.progress=false", "train.plot=false", "train.tensorboard=false", "eval.limit=0",
            f"policy.model={args.model}", "policy.parameterisation=separate",
            "env.dataset_options={level: [1], variant: freeride}", f"rollout.prompts_per_step={args.prompts}",
            f"rollout.num_thoughts={args.thoughts}", f"rollout.answers_per_thought={args.answers}",
            f"rollout.num_solo={args.solo}", f"optim.lr={args.lr}", f"train.steps={10**6}",
            f"credit.method={ARMS[arm][0]}", *ARMS[arm][1], f"credit.thought_cost={args.cost}", f"train.seed={seed}",
            f"train.output_dir={workdir / f'{arm}-{seed}'}"]
    cfg = load_config(overrides=over)
    trainer = Trainer(cfg)
    env = build_env(cfg.env, split="test")
    problems = distinct_problems(env, args.eval_universe)

    oracle = oracle_thinker(env, problems)

    def measure(full: bool = True) -> dict[str, float]:
        policies = trainer.policies()
        r = evaluate_env(env, policies, problems=problems, num_samples=2, answers_per_thought=1, num_solo=2,
                         seed=999, thought_check=arith_thought_correct)
        out = {"contribution": r["contribution"], "joint_acc": r["pass@1"], "solo_acc": r["solo_pass@1"],
               "thought_ok": r["thought_ok"]}
        if not full:  # a point on the way: the T = 1 measures only
            return out
        with_oracle = {**policies, "thinker": oracle}
        o = evaluate_env(env, with_oracle, problems=problems, num_samples=2, diagnostic=False, seed=999)
        with greedy_decoding(policies):
            g = evaluate_env(env, policies, problems=problems, num_samples=1, num_solo=1, seed=999,
                             thought_check=arith_thought_correct)
            go = evaluate_env(env, with_oracle, problems=problems, num_samples=1, diagnostic=False, seed=999)
        return {**out, "oracle_acc": o["pass@1"], "greedy_contribution": g["contribution"],
                "greedy_joint_acc": g["pass@1"], "greedy_thought_ok": g["thought_ok"],
                "greedy_oracle_acc": go["pass@1"]}

    start = measure()
    marks = sorted(f for f in args.curve if 0 < f < 1)  # budget fractions where the T = 1 measures are taken
    tokens, lengths, curve, points = 0.0, [], [], []
    while tokens < args.budget:
        while marks and tokens >= marks[0] * args.budget:
            marks.pop(0)
            points.append({"tokens": tokens, "step": trainer.step, **measure(full=False)})
        m = trainer.train_step()
        tokens += m["perf/generated_tokens"]
        lengths.append(m["thinker/response_len"])
        curve.append({"tokens": tokens, "thought_len": m["thinker/response_len"]})
    final = {**measure(), "thought_len": float(np.mean(lengths[-5:]))}
    start["thought_len"] = float(lengths[0])
    return {"arm": arm, "seed": seed, "steps": trainer.step, "tokens": tokens, "eval_problems": len(problems),
            "start": start, "final": final, "curve": curve, "points": points}


def summarise(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    rows = arm_rows(runs, arms, METRICS)
    for arm in arms:
        for k in METRICS:
            rows[arm]["start_" + k] = float(np.mean([r["start"][k] for r in runs if r["arm"] == arm]))
    out: dict[str, Any] = {"arms": rows}
    for metric in METRICS:
        out[f"vs_shared/{metric}"] = compare(runs, metric, arms, k=len(arms) - 1)
    return out


def print_tables(summary: dict[str, Any]) -> None:
    heads = ("contribution", "joint", "solo", "thought ok", "oracle", "thought len", "greedy contr.",
             "greedy joint", "greedy ok", "greedy oracle")
    print(f"\n{'arm':<12}{'seeds':>6}" + "".join(f"{h:>14}" for h in heads))
    for arm, r in summary["arms"].items():
        cells = "".join(f"{100 * r[k]:>9.1f}±{100 * r[k + '_sd']:4.1f}" if k != "thought_len" else
                        f"{r[k]:>10.1f}±{r[k + '_sd']:3.1f}" for k in METRICS)
        print(f"{arm:<12}{r['seeds']:>6}{cells}   (start: contribution {100 * r['start_contribution']:.1f}, "
              f"thought len {r['start_thought_len']:.1f})")
    for name, table in summary.items():
        if name == "arms":
            continue
        scale = 1 if name.endswith("thought_len") else 100
        print(f"\n{name}: arm − shared, paired by seed (Bonferroni-adjusted)")
        for arm, c in table.items():
            verdict = "" if scale == 1 else c["verdict"]  # the ±3-point equivalence margin is for accuracies
            print(f"  {arm:<12} {scale * c['mean_diff']:+7.2f}  t [{scale * c['t_ci'][0]:+.2f}, "
                  f"{scale * c['t_ci'][1]:+.2f}]  {verdict}")


def plot(runs: list[dict[str, Any]], arms: list[str], path: Path) -> None:
    """Seed-mean thought length (left) and the Thinker's contribution at T = 1 (right) against generated
    tokens, per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.0))
    for arm in arms:
        rs = [r for r in runs if r["arm"] == arm]
        n = min(len(r["curve"]) for r in rs)
        x = np.mean([[c["tokens"] for c in r["curve"][:n]] for r in rs], axis=0)
        y = np.mean([[c["thought_len"] for c in r["curve"][:n]] for r in rs], axis=0)
        ax.plot(x / 1000, y, label=arm)
        k = min(len(r.get("points", [])) for r in rs)
        pts = [[(0.0, r["start"]["contribution"]), *[(c["tokens"], c["contribution"]) for c in r["points"][:k]],
                (r["tokens"], r["final"]["contribution"])] for r in rs]  # fmt: skip
        px, py = np.mean(pts, axis=0).T
        bx.plot(px / 1000, 100 * py, marker="o", label=arm)
    ax.set_xlabel("generated tokens (thousands)")
    ax.set_ylabel("Thinker message length (tokens, seed mean)")
    ax.set_title("Thought length under a thought cost")
    bx.set_xlabel("generated tokens (thousands)")
    bx.set_ylabel("Thinker's contribution, T = 1 (points, seed mean)")
    bx.set_title("Joint minus Solver-alone accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budget, two seeds: a smoke test")
    p.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=list(ARMS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cost", type=float, default=0.05, help="credit.thought_cost (default %(default)s)")
    p.add_argument("--model", default="arith-warmstart-freeride")
    p.add_argument("--budget", type=float, default=100000)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--thoughts", type=int, default=4)
    p.add_argument("--answers", type=int, default=2)
    p.add_argument("--solo", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--eval-universe", type=int, default=4000)
    p.add_argument("--curve", type=float, nargs="*", default=[1 / 3, 2 / 3], metavar="FRACTION",
                   help="also measure contribution, joint/solo accuracy and thought quality (T=1) at these "
                        "fractions of the budget (default 1/3 and 2/3)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "freeride_probe.json")
    p.add_argument("--reuse", type=Path, default=None,
                   help="take the runs of the requested arms and seeds from this earlier result file when its "
                        "protocol matches, after 'shared' seed 0 retrained reproduces its stored run exactly")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.prompts, args.thoughts, args.solo, args.eval_universe = 2, 600, 2, 2, 2, 8
    if "shared" not in args.arms:
        p.error("--arms must include the reference arm 'shared'")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tasks = [(arm, seed) for seed in range(args.seeds) for arm in args.arms]
    threads = max(1, (args.threads or os.cpu_count() or 1) // max(1, args.jobs))
    t0 = time.perf_counter()

    def report(r: dict[str, Any]) -> None:
        f = r["final"]
        print(f"[{time.perf_counter() - t0:6.0f}s] {r['arm']:<12} seed {r['seed']}: contribution "
              f"{r['start']['contribution']:+.3f} -> {f['contribution']:+.3f}, thought len {r['start']['thought_len']:.1f}"
              f" -> {f['thought_len']:.1f}, joint {f['joint_acc']:.3f} ({r['steps']} steps)", flush=True)

    runs, reused = run_or_reuse(run_arm, tasks, args, threads=threads, report=report, protocol=PROTOCOL)
    summary = summarise(runs, args.arms)
    print_tables(summary)
    result = {"benchmark": "freeride_probe", "args": vars(args), "summary": summary, "runs": runs,
              "reused_from": str(args.reuse) if reused else None, "reused_runs": reused,
              "seconds": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    plot(runs, args.arms, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
