"""Common random numbers for ``ccpo_paired``: how much of a pair's difference ``Δ = R_joint − R_solo`` is luck?

``ccpo_paired`` credits the Thinker with ``Δ_k = R_joint,k − R_solo,k`` for each joint answer ``k`` and its
paired Thinker-removed (solo) answer. Drawn with independent seeds, the two answers of a pair share nothing
but the problem, so ``Δ_k`` carries both answers' sampling noise. Drawn with common random numbers (the
trainer's default for ``ccpo_paired``: the solo answer reuses the joint answer's per-token Gumbel noise),
the pair differs only through the Thinker's message, and ``Var(Δ) = Var(R_J) + Var(R_S) − 2 Cov(R_J, R_S)``
shrinks by the pair's covariance.

On the same problems and the same joint answers (the joint episodes are seeded identically in both arms;
only the solo answers' noise differs), this script rolls out the default model's Think–Solve episodes with
``n`` thoughts × ``m`` answers and one solo answer per joint answer, and reports, per arm:

- ``corr``: the within-problem correlation of ``R_joint`` and ``R_solo`` over pairs;
- ``var_delta``: the within-problem variance of ``Δ`` (what a group-centred estimator sees), averaged
  over problems;
- ``same_answer``: the share of pairs whose joint and solo answers are the same text.

It also times the sampler side by side: seconds per decoding step of 64 Solver prompts with row-seeded
sampling against the per-micro-batch RNG, alternating.

and the ratio ``var_delta(CRN) / var_delta(independent)`` with a 95% bootstrap interval over problems
(problems are resampled with both arms together: the comparison is paired). No training: the rollouts are
from the untrained default model, as at the first step of ``ccpo train credit.method=ccpo_paired``.

Run::

    python benchmarks/bench_crn.py                 # 256 problems x 8 pairs per arm, ~2 min on 2 cores
    python benchmarks/bench_crn.py --quick         # smoke test
    python benchmarks/bench_crn.py --set 'env.dataset_options={level: [1], variant: freeride}' \
        --out benchmarks/results/bench_crn_freeride.json   # half the items need no thought
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import write_json  # sibling helper (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results"


def pair_table(episodes: list[Any], answers_per_thought: int) -> dict[int, list[tuple[float, float, bool]]]:
    """``{group: [(R_joint, R_solo, same answer text)]}`` over the pairs ``(sample * m + fork) == solo sample``."""
    joint = {(e.group, e.sample * answers_per_thought + e.fork): e for e in episodes if not e.removed}
    solo = {(e.group, e.sample): e for e in episodes if e.removed}
    if sorted(joint) != sorted(solo):
        raise RuntimeError("every joint episode needs exactly one solo partner")
    table: dict[int, list[tuple[float, float, bool]]] = {}
    for key, j in joint.items():
        s = solo[key]
        table.setdefault(key[0], []).append(
            (float(j.correct), float(s.correct), j.turn("solver").action == s.turn("solver").action)
        )
    return table


def arm_stats(groups: list[np.ndarray]) -> dict[str, float]:
    """Within-problem statistics of an arm; ``groups[i]`` is an ``[pairs, 3]`` array (R_J, R_S, same)."""
    rj = np.concatenate([g[:, 0] - g[:, 0].mean() for g in groups])
    rs = np.concatenate([g[:, 1] - g[:, 1].mean() for g in groups])
    denom = np.sqrt((rj**2).sum() * (rs**2).sum())
    return {
        "corr": float((rj * rs).sum() / denom) if denom > 0 else float("nan"),
        "var_delta": float(np.mean([np.var(g[:, 0] - g[:, 1]) for g in groups])),
        "same_answer": float(np.mean(np.concatenate([g[:, 2] for g in groups]))),
        "joint_acc": float(np.mean(np.concatenate([g[:, 0] for g in groups]))),
        "solo_acc": float(np.mean(np.concatenate([g[:, 1] for g in groups]))),
    }


def bootstrap_ratio(crn: list[np.ndarray], ind: list[np.ndarray], reps: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of ``var_delta(crn) / var_delta(ind)`` resampling problems (paired)."""
    v_crn = np.array([np.var(g[:, 0] - g[:, 1]) for g in crn])
    v_ind = np.array([np.var(g[:, 0] - g[:, 1]) for g in ind])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v_crn), size=(reps, len(v_crn)))
    ratios = v_crn[idx].mean(1) / np.maximum(v_ind[idx].mean(1), 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def sampler_cost(policy: Any, env: Any, rounds: int) -> dict[str, float]:
    """Seconds per decoding step of a call with 64 Solver prompts (a call runs until its longest row ends, so
    seconds per call would compare sample lengths), row-seeded (Gumbel-max, per-row generators) against the
    per-micro-batch RNG, alternating within each round with fresh seeds; the median of the per-round ratios."""
    observations = []
    for i in range(64):
        env.reset(seed=i)
        observations.append(str(env.observe(env.agent_selection)))
    base = policy.generation
    times: dict[bool, list[float]] = {False: [], True: []}
    policy(observations, seeds=list(range(64)))  # warm-up
    for r in range(rounds):
        for row_seeded in (False, True) if r % 2 == 0 else (True, False):
            policy.generation = base.replace(row_seeded=row_seeded)
            t0 = time.perf_counter()
            gens = policy(observations, seeds=list(range(64 * r, 64 * (r + 1))))
            steps = max(len(g.token_ids) for g in gens)
            times[row_seeded].append((time.perf_counter() - t0) / steps)
    policy.generation = base
    ratios = sorted(a / b for a, b in zip(times[True], times[False]))
    return {"batch_rng_s_per_step": float(np.median(times[False])),
            "row_seeded_s_per_step": float(np.median(times[True])),
            "ratio_median": float(ratios[len(ratios) // 2]), "rounds": rounds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ccpo_agents.config import load_config
    from ccpo_agents.trainer import Trainer
    from ccpo_env import rollout
    from ccpo_env.seeding import stable_seed

    torch.set_num_threads(args.threads)
    overrides = ["credit.method=ccpo_paired", f"rollout.num_thoughts={args.thoughts}",
                 f"rollout.answers_per_thought={args.answers}", f"train.output_dir={args.output_dir}", *args.set]
    trainer = Trainer(load_config(overrides=overrides))
    assert trainer.common_random_numbers  # row-seeded sampling in both arms: only the pairing differs
    policies = trainer.policies()
    m = args.answers
    problems = [trainer._problem_index(i) for i in range(args.problems)]
    arms: dict[str, list[np.ndarray]] = {"crn": [], "independent": []}
    t0 = time.perf_counter()
    for start in range(0, len(problems), args.batch):
        chunk = problems[start : start + args.batch]
        for arm in arms:
            eps = rollout(trainer.env, policies, chunk, num_samples=args.thoughts, fanout={"thinker": m},
                          counterfactuals=[["thinker"]], num_counterfactual=args.thoughts * m,
                          seed=stable_seed("bench_crn", start), common_random_numbers=arm == "crn")
            arms[arm].extend(np.array(v) for _, v in sorted(pair_table(eps, m).items()))
    seconds = time.perf_counter() - t0
    sampler = sampler_cost(trainer.roles.policy_for("solver"), trainer.env, rounds=args.timing_rounds)
    stats = {arm: arm_stats(groups) for arm, groups in arms.items()}
    ratio = stats["crn"]["var_delta"] / stats["independent"]["var_delta"]
    lo, hi = bootstrap_ratio(arms["crn"], arms["independent"], reps=2000, seed=0)
    return {"benchmark": "bench_crn", "quick": args.quick,
            "config": {k: v for k, v in vars(args).items() if k not in ("output_dir", "out")}, "arms": stats,
            "var_delta_ratio": ratio, "var_delta_ratio_ci95": [lo, hi], "seconds": seconds, "sampler": sampler,
            "joint_identical_across_arms": bool(np.all([np.array_equal(a[:, 0], b[:, 0])
                                                        for a, b in zip(arms["crn"], arms["independent"])]))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", type=int, default=256, help="problems per arm (default %(default)s)")
    p.add_argument("--thoughts", type=int, default=4, help="thoughts per problem, n (default %(default)s)")
    p.add_argument("--answers", type=int, default=2, help="answers per thought, m (default %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="problems per rollout call (default %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timing-rounds", type=int, default=7, help="sampler cost rounds (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override, e.g. 'env.dataset_options={level: [1], variant: freeride}'")
    p.add_argument("--quick", action="store_true", help="16 problems, one timing round: a smoke test")
    p.add_argument("--output-dir", default="runs/bench_crn")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_crn.json")
    args = p.parse_args(argv)
    if args.quick:
        args.problems, args.batch, args.timing_rounds = 16, 8, 1
    result = run(args)
    print(f"{'arm':<12} {'corr(R_J,R_S)':>14} {'Var(Δ)':>8} {'same answer':>12} {'joint acc':>10} {'solo acc':>9}")
    for arm, s in result["arms"].items():
        print(f"{arm:<12} {s['corr']:>14.3f} {s['var_delta']:>8.3f} {s['same_answer']:>12.1%} "
              f"{s['joint_acc']:>10.1%} {s['solo_acc']:>9.1%}")
    lo, hi = result["var_delta_ratio_ci95"]
    print(f"Var(Δ) CRN / independent = {result['var_delta_ratio']:.3f} (95% CI {lo:.3f}-{hi:.3f}), "
          f"{result['seconds']:.0f} s")
    c = result["sampler"]
    print(f"sampler: row-seeded {1e3 * c['row_seeded_s_per_step']:.1f} ms vs batch RNG {1e3 * c['batch_rng_s_per_step']:.1f} "
          f"ms per decoding step of 64 rows (ratio {c['ratio_median']:.2f}, median of {c['rounds']} alternating rounds)")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
