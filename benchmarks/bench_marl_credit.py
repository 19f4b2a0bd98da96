"""Independent PPO (tianshou) with and without counterfactual credit, on paired seeds.

Two studies on the discrete-choice view of ``arith`` (:class:`ccpo_env.wrappers.DiscreteChoiceEnv`,
scripted menu, K = 4), each comparing tianshou's ``MultiAgentOnPolicyAlgorithm`` with one PPO per agent
under two reward transforms (:class:`ccpo_agents.interop.CreditRewards`):

- ``think_solve``: Thinker + Solver on the ``freeride`` variant (half the items need no thought), ``shared``
  (both agents get the team reward) against ``ccpo_tree`` (the Thinker gets ``R_joint − V_solo``, with one
  Thinker-removed branch per episode in which the Solver chooses without a thought; ``ccpo_tree_k4``: four
  branches per episode, a less noisy ``V_solo``);
- ``voting``: three voters on ``standard`` items, ``shared`` against leave-one-out ``voting`` credit
  (``R_joint − R_¬i``, re-counted without voter i: no extra episodes).

Seed ``s`` gives both methods the same initial networks, the same problems and the same first round of
episodes, so the comparison is paired. Per run: the greedy team return on 200 held-out (test split)
problems after training, and its mean over the evaluations during training (an area under the learning
curve, which rewards learning early). The table gives means with 95% t-intervals over seeds and the
paired difference (method − shared) with its interval.

Run::

    python benchmarks/bench_marl_credit.py                  # 10 seeds, ~5 min on 2 cores
    python benchmarks/bench_marl_credit.py --quick          # smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # small buffers: numba's JIT start-up is not worth it

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: Per study: the env, the arith variant and the methods as (label, credit method, solo branches per episode).
STUDIES: dict[str, dict[str, Any]] = {
    "think_solve": {"env": "think_solve", "variant": "freeride",
                    "methods": (("shared", "shared", 1), ("ccpo_tree", "ccpo_tree", 1), ("ccpo_tree_k4", "ccpo_tree", 4))},
    "voting": {"env": "voting", "variant": "standard", "methods": (("shared", "shared", 1), ("voting", "voting", 1))},
}
# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: a Cornish-Fisher expansion).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return float("nan")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def interval(xs: list[float]) -> dict[str, float]:
    """Mean and 95% t-interval half-width of ``xs`` (half-width NaN for one value)."""
    arr = np.asarray(xs, dtype=np.float64)
    n = len(arr)
    half = float(t975(n - 1) * arr.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(arr.mean()), "ci95": half, "n": n}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--studies", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    p.add_argument("--seeds", type=int, default=10, help="paired seeds per method (default 10)")
    p.add_argument("--iterations", type=int, default=10, help="collect/update rounds per run (default 10)")
    p.add_argument("--episodes-per-iter", type=int, default=32, help="episodes per round (default 32)")
    p.add_argument("--eval-every", type=int, default=2, help="held-out evaluation every N rounds (default 2)")
    p.add_argument("--eval-problems", type=int, default=200, help="held-out problems (default 200)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true", help="2 seeds, 2 rounds, 40 problems: a smoke test")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_marl_credit.json")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.iterations, args.eval_every, args.eval_problems = 2, 2, 1, 40
        args.episodes_per_iter = 16
    return args


def run_study(name: str, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from ccpo_agents.interop.tianshou_marl import MARLConfig, train_marl

    study = STUDIES[name]
    labels = [label for label, _, _ in study["methods"]]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for seed in range(args.seeds):
        for method, credit, solo in study["methods"]:
            cfg = MARLConfig(env=study["env"], variant=study["variant"], credit=credit, seed=seed,
                             iterations=args.iterations, episodes_per_iter=args.episodes_per_iter,
                             eval_every=args.eval_every, eval_problems=args.eval_problems, solo_per_episode=solo)
            res = train_marl(cfg)
            auc = float(np.mean([r for it, _, r in res.curve if it > 0]))
            runs[method].append({"seed": seed, "before": res.before, "after": res.after, "auc": auc,
                                 "curve": res.curve, "train_return": res.train_return, "seconds": res.seconds})
            log(f"  {name:11s} seed {seed:2d} {method:12s} return {res.before['return']:+.3f} -> "
                f"{res.after['return']:+.3f}  auc {auc:+.3f}  ({res.seconds:.1f} s)")
    base = labels[0]
    rows = []
    for method in labels:
        final = [r["after"]["return"] for r in runs[method]]
        auc = [r["auc"] for r in runs[method]]
        row = {"study": name, "method": method, "final": interval(final), "auc": interval(auc),
               "untrained": interval([r["before"]["return"] for r in runs[method]]),
               "seconds": interval([r["seconds"] for r in runs[method]])}
        if "accuracy_joint" in runs[method][0]["after"]:
            row["final_accuracy_joint"] = interval([r["after"]["accuracy_joint"] for r in runs[method]])
        if method != base:
            row["diff_final"] = interval([a - b for a, b in zip(final, [r["after"]["return"] for r in runs[base]])])
            row["diff_auc"] = interval([a - b for a, b in zip(auc, [r["auc"] for r in runs[base]])])
            row["wins_final"] = int(sum(a > b for a, b in zip(final, [r["after"]["return"] for r in runs[base]])))
        rows.append(row)
    return {"rows": rows, "runs": runs}


def fmt(ci: dict[str, float]) -> str:
    return f"{ci['mean']:+.3f} ± {ci['ci95']:.3f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| study | method | untrained | final return | AUC | final − shared (paired) | AUC − shared (paired) "
            "| s/run |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        d_final = fmt(r["diff_final"]) + f" ({r['wins_final']}/{r['final']['n']} wins)" if "diff_final" in r else "-"
        d_auc = fmt(r["diff_auc"]) if "diff_auc" in r else "-"
        lines.append(f"| {r['study']} | {r['method']} | {fmt(r['untrained'])} | {fmt(r['final'])} | {fmt(r['auc'])} "
                     f"| {d_final} | {d_auc} | {r['seconds']['mean']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("tianshou.data.stats").setLevel(logging.ERROR)  # 2-D multi-agent returns, by design
    start = time.time()
    studies = {}
    for name in args.studies:
        print(f"study {name}: {[m[0] for m in STUDIES[name]['methods']]} x {args.seeds} seeds")
        studies[name] = run_study(name, args, print)
    rows = [row for s in studies.values() for row in s["rows"]]
    print()
    print(table(rows))
    result = {
        "benchmark": "bench_marl_credit",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
        "studies": {k: v["runs"] for k, v in studies.items()},
        "seconds": time.time() - start,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
