"""The credit-assignment study: which credit method makes the team learn, on a laptop CPU.

Trains the warm-started tiny policy (``arith-warmstart``) with each credit method under the SAME
generation budget (generated tokens, counterfactual branches and SEPO ratings included), several
seeds each, and reports per method (mean ± std over seeds):

- final joint accuracy on held-out ``arith`` test problems, and the Thinker-removed accuracy
  (collaboration diagnostic) — the Thinker's contribution is their difference;
- the share of Thinker messages with positive counterfactual credit, Δ_j = V(t_j) − V_solo > 0,
  measured on held-out problems with the same estimator for every method;
- per-role advantage variance during training;
- steps, generated tokens and wall time to reach a target accuracy.

Two more studies in the same run:

- **free-riding probe** (``arith`` ``variant="freeride"``): half the items are one operation the
  Solver can do alone. Under a shared reward the Thinker is paid there whatever it writes; the probe
  reports, on the items that need a thought, whether the Thinker stays useful (joint − solo);
- **voting**: ``VotingEnv`` (three voters, majority answer) with leave-one-out credit vs shared reward,
  on the one-op items a lone voter can do.

    python benchmarks/credit_assignment.py                 # full study (long: see benchmarks/README.md)
    python benchmarks/credit_assignment.py --quick         # smoke test, about a minute
    python benchmarks/credit_assignment.py --studies main --methods shared ccpo_tree --seeds 0 1 2
    python benchmarks/credit_assignment.py --jobs 2       # two runs at a time, one torch thread each

Writes ``benchmarks/results/credit_assignment.json`` and ``credit_assignment.png`` (accuracy vs
generated tokens).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ["shared", "ccpo_event", "ccpo_paired", "ccpo_tree", "sepo"]


def base_overrides(args: argparse.Namespace, study: str = "main") -> list[str]:
    return [
        f"policy.model={args.freeride_model if _uses_freeride_model(study, args) else args.model}",
        "train.progress=false", "train.plot=false", "train.tensorboard=false", "eval.limit=0",
        f"rollout.prompts_per_step={args.prompts}", f"rollout.num_thoughts={args.thoughts}",
        f"rollout.answers_per_thought={args.answers}", f"rollout.num_solo={args.solo}",
        f"optim.lr={args.lr}", f"train.steps={10**6}",
    ]


def _uses_freeride_model(study: str, args: argparse.Namespace) -> bool:
    return study == "freeride" or (study == "voting" and args.voting_task == "oneop")


def method_overrides(method: str, args: argparse.Namespace) -> list[str]:
    if method == "ccpo_paired":
        # Paired by index: one solo rollout per joint episode; m = 1 keeps joint rollouts comparable.
        return [f"credit.method={method}", "rollout.answers_per_thought=1",
                f"rollout.num_thoughts={args.thoughts * args.answers}"]
    return [f"credit.method={method}"]


def held_out_eval(trainer: Any, problems: list[int], *, thoughts: int = 2, answers: int = 2, solo: int = 2,
                  seed: int = 999) -> dict[str, float]:
    """Joint / solo accuracy and the share of thoughts that beat solving alone, on held-out problems
    (``ccpo_agents.evaluation.evaluate_env``; per-kind rows for the free-riding probe's item kinds)."""
    from ccpo_agents.evaluation import evaluate_env

    r = evaluate_env(trainer.eval_env, trainer.policies(), problems=problems, num_samples=thoughts,
                     answers_per_thought=answers, num_solo=solo, seed=seed, group_by="kind")
    out = {"joint_acc": r["pass@1"], "solo_acc": r["solo_pass@1"], "contribution": r["contribution"],
           "thought_beats_solo": r["thought_beats_solo"]}
    for kind, k in r["by_kind"].items():
        if kind is not None:
            out.update({f"{kind}/joint_acc": k["pass@1"], f"{kind}/solo_acc": k["solo_pass@1"],
                        f"{kind}/contribution": k["contribution"]})
    return out


def voting_eval(trainer: Any, problems: list[int], seed: int = 999) -> dict[str, float]:
    """Plurality accuracy of the voters and a single voter's own accuracy, on held-out problems."""
    from ccpo_agents.evaluation import evaluate_env

    r = evaluate_env(trainer.eval_env, trainer.policies(), problems=problems, num_samples=2, seed=seed)
    return {"joint_acc": r["pass@1"], "solo_acc": r["solo_pass@1"], "contribution": r["contribution"]}


def run_one(study: str, method: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one (study, method, seed) until the token budget is spent; returns its curve and summary."""
    from ccpo_agents.config import load_config
    from ccpo_agents.envs import build_env
    from ccpo_agents.trainer import Trainer

    over = base_overrides(args, study) + method_overrides(method, args) + [
        f"train.seed={seed}", f"train.output_dir={workdir / f'{study}-{method}-{seed}'}"]
    if study == "freeride":
        # Level 1 like the warm start, whose SFT taught the Solver the one-op items alone (``solver_easy``).
        over.append("env.dataset_options={level: [1], variant: freeride}")
    if study == "voting":
        over += ["env.topology=voting", "env.num_voters=3", "rollout.answers_per_thought=1"]
        if args.voting_task == "oneop":
            # Voters answer alone, so the task must be one a lone Solver can do: the one-op items, which the
            # freeride warm start was taught (on full level-1 problems a voter is right ~8% of the time, so
            # a majority of three almost never is and neither credit has anything to learn from).
            over.append("env.dataset_options={level: [1], variant: freeride, easy_fraction: 1.0}")
    cfg = load_config(overrides=over)
    trainer = Trainer(cfg)
    trainer.eval_env = build_env(cfg.env, split="test", limit=args.eval_problems)
    problems = list(range(len(trainer.eval_env.dataset)))
    evaluate = voting_eval if study == "voting" else held_out_eval
    curve = [{"step": 0, "tokens": 0, "wall": 0.0, **evaluate(trainer, problems)}]
    tokens, wall, adv_var, credit = 0.0, 0.0, {}, {}
    while tokens < args.budget:
        m = trainer.train_step()
        tokens += m["perf/generated_tokens"]
        wall += m["time/step"]
        for k, v in m.items():
            if not (isinstance(v, float) and math.isfinite(v)):
                continue
            if k.startswith("credit/"):  # e.g. credit/delta_pos_frac, credit/invalid_rating_frac (SEPO)
                credit.setdefault(k, []).append(v)
            elif k.endswith("/adv_std"):
                adv_var.setdefault(k.split("/")[0], []).append(v * v)
        if trainer.step % args.eval_every == 0 or tokens >= args.budget:
            curve.append({"step": trainer.step, "tokens": tokens, "wall": wall, **evaluate(trainer, problems)})
    start, final = curve[0], curve[-1]
    target = start["joint_acc"] + args.target_gain
    reached = next((c for c in curve if c["joint_acc"] >= target), None)
    return {
        "study": study, "method": method, "seed": seed, "curve": curve,
        "task": args.voting_task if study == "voting" else study, "final": final, "start": start,
        "adv_var": {r: float(np.mean(v)) for r, v in adv_var.items()},
        "credit_metrics": {k: float(np.mean(v)) for k, v in credit.items()},
        "to_target": {k: reached[k] for k in ("step", "tokens", "wall")} if reached else None,
        "steps": trainer.step,
    }


def _run_task(task: tuple[str, str, int], args: dict[str, Any], workdir: str, threads: int) -> dict[str, Any]:
    """One run in this process (or a pool worker) with ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = run_one(*task, argparse.Namespace(**args), Path(workdir))
    return {**result, "seconds": time.perf_counter() - t0}


def summarise(runs: list[dict[str, Any]], compare_step: int = 70) -> dict[str, dict[str, dict[str, float]]]:
    """Per study and method, mean and std over seeds of the final evaluation, plus: advantage variance per
    role, how many seeds reached the target (and the mean steps / wall seconds to it), and the joint accuracy
    at the last evaluation at or before ``compare_step`` optimizer steps (``joint_acc_at_step``), which
    compares the credit per update, apart from the cost of an update."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for study in dict.fromkeys(r["study"] for r in runs):
        out[study] = {}
        for method in dict.fromkeys(r["method"] for r in runs if r["study"] == study):
            rs = [r for r in runs if r["study"] == study and r["method"] == method]
            row: dict[str, float] = {"seeds": len(rs)}
            keys = [k for k in rs[0]["final"] if k not in ("step", "tokens", "wall")]
            for k in keys:
                vals = [r["final"][k] for r in rs]
                row[k], row[k + "_std"] = float(np.mean(vals)), float(np.std(vals))
            row["start_joint_acc"] = float(np.mean([r["start"]["joint_acc"] for r in rs]))
            for role in rs[0]["adv_var"]:
                row[f"{role}_adv_var"] = float(np.mean([r["adv_var"].get(role, float("nan")) for r in rs]))
            hit = [r["to_target"] for r in rs if r["to_target"]]
            row["reached_target"] = len(hit)
            if hit:
                row["steps_to_target"] = float(np.mean([h["step"] for h in hit]))
                row["wall_to_target"] = float(np.mean([h["wall"] for h in hit]))
            row["steps"] = float(np.mean([r["steps"] for r in rs]))
            at = [[c for c in r["curve"] if c["step"] <= compare_step][-1] for r in rs]
            row["compare_step"] = float(np.mean([c["step"] for c in at]))
            row["joint_acc_at_step"] = float(np.mean([c["joint_acc"] for c in at]))
            row["joint_acc_at_step_std"] = float(np.std([c["joint_acc"] for c in at]))
            for k in dict.fromkeys(k for r in rs for k in r.get("credit_metrics", {})):
                row[k] = float(np.mean([r["credit_metrics"][k] for r in rs if k in r.get("credit_metrics", {})]))
            out[study][method] = row
    return out


def print_tables(summary: dict[str, dict[str, dict[str, float]]], target_gain: float) -> None:
    def pm(row: dict[str, float], k: str) -> str:
        return f"{100 * row[k]:5.1f}±{100 * row[k + '_std']:4.1f}" if k in row else "    -     "

    for study, rows in summary.items():
        print(f"\n== {study} ==")
        head = (f"{'method':<12}{'start':>7}{'joint':>12}{'solo':>12}{'contrib':>12}{'Δ>0 share':>12}"
                f"{'adv var T/S':>14}{'steps':>7}{'to +' + str(int(100 * target_gain)) + 'pt':>9}"
                f"{'joint @ step':>16}")
        print(head)
        for method, r in rows.items():
            var = "/".join(f"{r[k]:.2f}" for k in r if k.endswith("_adv_var")) or "-"
            reach = f"{r['reached_target']}/{int(r['seeds'])}"
            print(f"{method:<12}{100 * r['start_joint_acc']:6.1f}%{pm(r, 'joint_acc'):>12}{pm(r, 'solo_acc'):>12}"
                  f"{pm(r, 'contribution'):>12}{pm(r, 'thought_beats_solo'):>12}{var:>14}{r['steps']:>7.0f}{reach:>9}"
                  f"{pm(r, 'joint_acc_at_step'):>12} {r['compare_step']:3.0f}")
        if study == "freeride":
            for kind, what in (("joint", "items that need the Thinker"), ("solo", "one-op items the Solver does alone")):
                print(f"free-riding probe, {what}: team / Solver alone / Thinker's contribution")
                for method, r in rows.items():
                    print(f"  {method:<12}{pm(r, f'{kind}/joint_acc'):>12}{pm(r, f'{kind}/solo_acc'):>12}"
                          f"{pm(r, f'{kind}/contribution'):>12}")


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = list(dict.fromkeys(r["study"] for r in runs))
    # Top row: the study's budget axis (generated tokens). Bottom row: optimizer steps, which separates
    # "better credit per update" from "cheaper updates" (methods without solo branches get more steps).
    fig, axes = plt.subplots(2, len(studies), figsize=(5 * len(studies), 7.2), squeeze=False)
    for col, study in enumerate(studies):
        for row, (xkey, xlabel) in enumerate((("tokens", "generated tokens"), ("step", "optimizer steps"))):
            ax = axes[row][col]
            for method in dict.fromkeys(r["method"] for r in runs if r["study"] == study):
                rs = [r for r in runs if r["study"] == study and r["method"] == method]
                n = min(len(r["curve"]) for r in rs)
                x = np.mean([[c[xkey] for c in r["curve"][:n]] for r in rs], axis=0)
                y = np.array([[c["joint_acc"] for c in r["curve"][:n]] for r in rs])
                ax.plot(x, y.mean(0), label=method)
                ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.15)
            ax.set_title(f"{study}: held-out joint accuracy (mean ± std over seeds)", fontsize=9)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budget, one seed, two methods: a smoke test")
    p.add_argument("--studies", nargs="+", default=["main", "freeride", "voting"], choices=["main", "freeride", "voting"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--model", default="arith-warmstart")
    p.add_argument("--freeride-model", default="arith-warmstart-freeride",
                   help="starting policy of the free-riding probe and the voting study: its Solver was taught "
                        "the one-op items alone")
    p.add_argument("--budget", type=float, default=60000, help="generated tokens per run (default 60000)")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--thoughts", type=int, default=4)
    p.add_argument("--answers", type=int, default=2)
    p.add_argument("--solo", type=int, default=4)
    # One Adam step at >= 3e-4 wrecks the memorised tiny warm start (joint 0.64 -> 0.16 on train problems).
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--eval-problems", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--target-gain", type=float, default=0.10, help="accuracy gain that counts as 'reached'")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, each in its own process (default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in all (default: all cores), split over jobs")
    p.add_argument("--out", type=Path, default=RESULTS / "credit_assignment.json")
    p.add_argument("--compare-step", type=int, default=70,
                   help="also report joint accuracy after this many optimizer steps (default 70)")
    p.add_argument("--voting-task", choices=["oneop", "standard"], default="oneop",
                   help="voting study's items: the one-op items (default) or full level-1 problems")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                   help="train nothing: combine the runs of earlier result files into one table, JSON and plot")
    args = p.parse_args(argv)
    if args.merge:  # a study found in several files is taken from the last of them
        by_study: dict[str, list[dict[str, Any]]] = {}
        for f in args.merge:
            runs = json.loads(f.read_text())["runs"]
            by_study.update({st: [r for r in runs if r["study"] == st] for st in dict.fromkeys(r["study"] for r in runs)})
        return _write([r for st in args.studies for r in by_study.get(st, [])], args, 0.0)
    if args.quick:
        args.methods = [m for m in args.methods if m in ("shared", "ccpo_tree")] or args.methods[:1]
        args.seeds, args.budget, args.prompts, args.thoughts, args.solo = args.seeds[:1], 1500, 2, 2, 2
        args.eval_problems, args.eval_every = 8, 2
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # busy-waiting OpenMP threads were 4-9x slower here
    tasks = [(study, method, seed) for study in args.studies
             for method in (["shared", "voting"] if study == "voting" else args.methods) for seed in args.seeds]
    threads = max(1, (args.threads or os.cpu_count() or 1) // max(1, args.jobs))
    t0 = time.perf_counter()

    def report(r: dict[str, Any]) -> None:
        f = r["final"]
        print(f"[{time.perf_counter() - t0:7.0f}s] {r['study']:<8} {r['method']:<12} seed {r['seed']}: joint "
              f"{r['start']['joint_acc']:.3f} -> {f['joint_acc']:.3f}, solo {f['solo_acc']:.3f} "
              f"({r['steps']} steps, {r['seconds']:.0f}s)", flush=True)

    runs = run_tasks(_run_task, tasks, vars(args), jobs=args.jobs, threads=threads, report=report)
    return _write(runs, args, time.perf_counter() - t0)


def run_tasks(worker: Any, tasks: list[Any], args: dict[str, Any], *, jobs: int, threads: int,
              report: Any) -> list[dict[str, Any]]:
    """``worker(task, args, workdir, threads)`` for every task, ``jobs`` at a time in spawned processes (one
    process when ``jobs <= 1``), in a temporary work folder; ``report`` sees each result as it finishes.
    Returns the results in ``tasks`` order. ``worker`` must be a module-level function (it is pickled)."""
    done: dict[Any, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if jobs <= 1:
            for task in tasks:
                done[task] = worker(task, args, tmp, threads)
                report(done[task])
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(worker, t, args, tmp, threads): t for t in tasks}
                for fut in cf.as_completed(futures):
                    done[futures[fut]] = fut.result()
                    report(done[futures[fut]])
    return [done[t] for t in tasks]


def _write(runs: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """Print the tables; write the JSON and the plot."""
    summary = summarise(runs, args.compare_step)
    print_tables(summary, args.target_gain)
    result = {"benchmark": "credit_assignment", "args": vars(args), "summary": summary, "runs": runs,
              "seconds": seconds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))  # default=str: the Path arguments
    png = args.out.with_suffix(".png")
    plot(runs, png)
    print(f"\nwrote {args.out} and {png}")
    return result


if __name__ == "__main__":
    main()
