"""Credit ablations on paired seeds: what makes ``ccpo_tree`` start faster than ``shared``?

The credit-assignment study found ``ccpo_tree`` level with ``shared`` at an equal token budget, with a faster
start. Its Thinker credit ``Δ_j = V(t_j) − V_solo`` differs from ``shared``'s in two ways at once: the
baseline (``V_solo`` instead of the group mean; a baseline cannot change the expected gradient) and the
scaling (a baselined signal skips GRPO's per-prompt std scaling and its zeroing of all-equal groups). These
arms separate the two, each trained from ``arith-warmstart`` on the same per-seed data order:

============================  =====================================================================
arm                           what it is
============================  =====================================================================
``shared``                    shared reward, GRPO ((r − μ)/σ per prompt): the reference arm
``shared_aa``                 the same as ``shared`` on other seeds (seed + 1000): an A/A control,
                              whose interval must cover 0 if the protocol is sound
``shared_dr_grpo``            shared reward, Dr.GRPO (r − μ, no std scaling): ``shared`` minus the
                              std scaling. It is also the tree without solo branches: per thought the
                              Thinker gets the mean of its m answers, centred over the prompt's thoughts
``ccpo_tree``                 Δ_j = V(t_j) − V_solo, passed through unscaled (the default CCPO)
``ccpo_tree_center``          ccpo_tree centred over the prompt's thoughts (``center=True``): the
                              solo baseline cancels, leaving ``shared_dr_grpo`` plus solo-branch cost
``ccpo_tree_solo``            ccpo_tree whose Solver also trains on its solo answers
                              (``credit.train_solo``): the counterfactual rollouts earn their tokens
``c3``                        peer method C3: each thought against the leave-one-out mean of the
                              prompt's other thoughts, each answer against the other answers to its
                              thought; no solo answers. Against ``ccpo_tree`` it tests whether
                              removing the Thinker (V_solo) measures what the other thoughts do not
``magrpo``                    peer method MAGRPO: R − the prompt's joint mean for every agent; exactly
                              ``shared_dr_grpo`` (pinned by a test), run to place it in this study
``drmas_pooled``              Dr. MAS's "before": one mean and std over both agents' samples of a
                              prompt. Dr. MAS itself (agent-wise) is exactly ``shared`` (pinned by a
                              test): the default estimator already normalises per role
``shared_8x1``, ``shared_2x4``  the same 8 joint answers per prompt split as 8 thoughts x 1 answer or
``ccpo_tree_2x4``             2 x 4 instead of 4 x 2 (the tree needs m >= 2, so it has no 8 x 1)
``ccpo_tree_k1``, ``_k2``     ccpo_tree with k = 1 or 2 solo answers per prompt instead of 4: a
                              noisier V_solo (a per-prompt offset, so only variance changes) for
                              fewer solo tokens and more steps in the budget
``sepo``                      SEPO with a model taught to rate (``--model arith-warmstart-sepo``):
                              compact prompt, greedy ratings of at most 40 tokens, counted in the budget
``sepo_free``                 the same with its rating tokens left out of the budget: about ``shared``'s
                              steps, to tell whether the ratings carry a useful signal apart from cost
============================  =====================================================================

Protocol (fixed before the run; the defaults below):

- 10 seeds per arm; seed ``s`` sets the data order and the rollout noise (``train.seed``); every arm of
  seed ``s`` starts from the same weights on the same problems, so arm − ``shared`` is paired by seed.
- Budget: 100,000 generated tokens per run, solo branches included.
- Primary endpoint: held-out joint accuracy at the budget at T = 1, on the **deduplicated** level-1 test
  universe (every distinct problem text among the first 4,000 test items), each problem with 4 thoughts ×
  2 answers; secondary: the same at greedy decoding, and the Thinker-removed (solo) accuracy.
- For each arm against ``shared``: the mean paired difference with a t-interval and a bootstrap interval over
  seeds, both at the Bonferroni level ``1 − 0.05/4`` (four comparisons); "level" is claimed only by TOST
  (the ``1 − 2·0.05/4`` t-interval inside ±3 points), "better/worse" only when the interval excludes 0.
- The A/A arm (``shared_aa − shared``) must cover 0; if it does not, the study's intervals are not trusted.

Token efficiency (``--curve``): held-out joint accuracy at T = 1 is also measured when a run has spent the
given fractions of its budget. An arm's token-efficiency ratio against ``shared`` is ``B / b``: ``b`` is the
token count at which the arm's seed-mean curve (linear between measured points) first reaches ``shared``'s
seed-mean accuracy at the full budget ``B``. Its interval is a paired bootstrap over seeds; a resample whose
curve never reaches the target within ``B`` counts as ratio ≤ 1 (recorded as 0, so the lower bound is
conservative).

The SEPO study (fixed before its run): arms ``shared``, ``sepo``, ``sepo_free``, all from
``arith-warmstart-sepo`` (``shared`` from the same weights, so the pairs differ only in credit), 10 seeds,
the curve at 0 / 25 / 50 / 70% of the budget. Before training, and again at the budget, each SEPO run rates
the 4 constructed cases and 4 of its own T = 1 episodes for each of 50 held-out problems, with the settings
training uses: SEPO enters the comparison only if its ratings parse (> 95%) and side with the
thought-quality rule more often than chance. Primary endpoints: ``sepo − shared`` and ``sepo_free − shared``
in joint accuracy at T = 1 at the budget, Bonferroni level 1 − 0.05/2; secondary: greedy, the Solver alone,
the share of thoughts holding the right intermediate step (what the ratings judge), token efficiency.

The solo-count study (fixed before its run): arms ``shared``, ``ccpo_tree`` (k = 4), ``ccpo_tree_k1``,
``ccpo_tree_k2`` on both tasks, 10 seeds, the curve at 0 / 25 / 50 / 70%; ``shared`` and ``ccpo_tree`` reused
from the token-efficiency study. Primary endpoint: each arm's token efficiency against ``shared`` (95% paired
bootstrap); end points against ``shared`` and against ``ccpo_tree`` at the Bonferroni level 1 − 0.05/5.

Reusing stored runs (``--reuse JSON``): an earlier result file's runs of the requested arms and seeds are
taken instead of retrained when every protocol argument matches, after one check: the reference arm's first
seed is retrained and must reproduce the stored run exactly (final and curve accuracies, tokens). The same
seeds give other runs on another CPU kind or thread count, so on a mismatch nothing is reused and the study
stops with that message.

Run::

    python benchmarks/credit_ablations.py --jobs 2              # 50 runs, ~45 min on 2 cores
    python benchmarks/credit_ablations.py --jobs 2 --arms shared ccpo_tree ccpo_tree_solo \
        --curve 0 0.25 0.5 0.7 --out benchmarks/results/credit_efficiency.json   # 30 runs, ~26 min
    python benchmarks/credit_ablations.py --jobs 2 --arms shared ccpo_tree ccpo_tree_solo \
        --curve 0 0.25 0.5 0.7 --model arith-warmstart-freeride \
        --set 'env.dataset_options={level: [1], variant: freeride}' \
        --out benchmarks/results/credit_efficiency_freeride.json   # the second task
    python benchmarks/credit_ablations.py --jobs 2 --arms shared ccpo_tree c3 magrpo drmas_pooled \
        --curve 0 0.25 0.5 0.7 --reuse benchmarks/results/credit_efficiency.json \
        --out benchmarks/results/credit_peers.json   # the peer methods; shared/ccpo_tree runs reused
    python benchmarks/credit_ablations.py --jobs 2 --arms shared ccpo_tree shared_8x1 shared_2x4 ccpo_tree_2x4 \
        --curve 0 0.25 0.5 0.7 --reuse benchmarks/results/credit_efficiency.json \
        --out benchmarks/results/credit_split.json   # the n x m split
    python benchmarks/credit_ablations.py --jobs 2 --arms shared sepo sepo_free --model arith-warmstart-sepo \
        --curve 0 0.25 0.5 0.7 --out benchmarks/results/credit_sepo.json   # SEPO with ratings that inform
    python benchmarks/credit_ablations.py --jobs 2 --arms shared ccpo_tree ccpo_tree_k1 ccpo_tree_k2 \
        --curve 0 0.25 0.5 0.7 --reuse benchmarks/results/credit_efficiency.json \
        --out benchmarks/results/credit_solo_k.json   # fewer solo answers (and the same on the second task)
    python benchmarks/credit_ablations.py --quick               # smoke test
    python benchmarks/credit_ablations.py --summarise benchmarks/results/credit_ablations.json   # tables only
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from credit_assignment import run_tasks  # sibling script (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results"
#: the rating settings of the SEPO arms: the prompt ``arith-warmstart-sepo`` was taught, room for its checked reply
#: (at most 39 tokens), greedy ratings (100% parse, against 92% at T = 1)
SEPO_SETTINGS = ["credit.rating_template=compact", "credit.rating_max_new_tokens=40", "credit.rating_greedy=true"]
#: arm -> (credit method, extra config overrides, seed offset)
ARMS: dict[str, tuple[str, list[str], int]] = {
    "shared": ("shared", [], 0),
    "shared_aa": ("shared", [], 1000),
    "shared_dr_grpo": ("shared", ["algo.estimator.name=dr_grpo"], 0),
    "ccpo_tree": ("ccpo_tree", [], 0),
    "ccpo_tree_center": ("ccpo_tree", ["credit.options={center: true}"], 0),
    "ccpo_tree_solo": ("ccpo_tree", ["credit.train_solo=true"], 0),
    "c3": ("c3", [], 0),
    "magrpo": ("magrpo", [], 0),
    "drmas_pooled": ("drmas", ["credit.options={pooled: true}"], 0),
    # the n x m split of one step's joint answers (n thoughts, m answers each; 4 x 2 by default)
    "shared_8x1": ("shared", ["rollout.num_thoughts=8", "rollout.answers_per_thought=1"], 0),
    "shared_2x4": ("shared", ["rollout.num_thoughts=2", "rollout.answers_per_thought=4"], 0),
    "ccpo_tree_2x4": ("ccpo_tree", ["rollout.num_thoughts=2", "rollout.answers_per_thought=4"], 0),
    # the tree with fewer solo answers per prompt (k = 4 by default): can its counterfactual cost be cut?
    "ccpo_tree_k1": ("ccpo_tree", ["rollout.num_solo=1"], 0),
    "ccpo_tree_k2": ("ccpo_tree", ["rollout.num_solo=2"], 0),
    # SEPO needs a model taught to rate (--model arith-warmstart-sepo) and its compact rating prompt
    "sepo": ("sepo", SEPO_SETTINGS, 0),
    "sepo_free": ("sepo", SEPO_SETTINGS, 0),  # its ratings are not counted in the budget (see FREE_RATINGS)
}
#: arms whose rating tokens the budget leaves out: SEPO at the policy-token budget (about shared's steps), to
#: tell whether its ratings carry a useful signal apart from what they cost
FREE_RATINGS = {"sepo_free"}
#: extra paired comparisons beyond "arm - shared": (arm, reference), when both arms ran
EXTRA_COMPARISONS = [("ccpo_tree_solo", "ccpo_tree"), ("c3", "ccpo_tree"), ("ccpo_tree_2x4", "ccpo_tree"),
                     ("ccpo_tree_k1", "ccpo_tree"), ("ccpo_tree_k2", "ccpo_tree")]
#: the arguments that define a run: stored runs are reused (--reuse) only when all of them match
PROTOCOL = ("model", "budget", "prompts", "thoughts", "answers", "solo", "lr", "eval_universe", "eval_thoughts",
            "eval_answers", "curve", "set")
BASELINE = "shared"
RATED_PROBLEMS = 50  # held-out problems x 4 rating cases checked at the end of a SEPO run
EQUIVALENCE_MARGIN = 0.03  # ±3 accuracy points


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile ``t_p`` for ``p`` in (0.5, 1): bisection on the CDF, whose integral of the density
    is done by Simpson's rule (no scipy here); accurate to ~1e-6."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float, n: int = 2000) -> float:
        h = t / n
        f = [math.exp(log_c - (df + 1) / 2 * math.log1p((i * h) ** 2 / df)) for i in range(n + 1)]
        return 0.5 + h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def distinct_problems(env: Any, limit: int) -> list[int]:
    """Indices of the first occurrence of each distinct problem text among the first ``limit`` items."""
    seen: dict[str, int] = {}
    for i in range(min(limit, len(env.dataset))):
        seen.setdefault(env.dataset[i].problem, i)
    return list(seen.values())


@contextlib.contextmanager
def greedy_decoding(policies: dict[str, Any]) -> Iterator[None]:
    """Within the block every policy decodes greedily; their sampling settings come back afterwards."""
    saved = {id(p): p.generation for p in policies.values()}
    try:
        for p in dict.fromkeys(policies.values()):
            p.generation = p.generation.replace(do_sample=False)
        yield
    finally:
        for p in policies.values():
            p.generation = saved[id(p)]


def evaluate(trainer: Any, env: Any, problems: list[int], args: argparse.Namespace,
             joint_only: bool = False) -> dict[str, float]:  # fmt: skip
    """Joint/solo accuracy at T = 1 (``thoughts × answers`` per problem) and at greedy decoding; with
    ``joint_only`` the T = 1 joint accuracy alone (the points of a ``--curve``)."""
    from ccpo_agents.evaluation import evaluate_env
    from ccpo_env.data import arith_thought_correct

    policies = trainer.policies()
    if joint_only:
        r = evaluate_env(env, policies, problems=problems, num_samples=args.eval_thoughts,
                         answers_per_thought=args.eval_answers, diagnostic=False, seed=999)  # fmt: skip
        return {"joint_acc": r["pass@1"], "joint_se": r["pass@1_se"]}
    r = evaluate_env(env, policies, problems=problems, num_samples=args.eval_thoughts,
                     answers_per_thought=args.eval_answers, num_solo=args.eval_thoughts, seed=999,
                     thought_check=arith_thought_correct)  # fmt: skip
    out = {"joint_acc": r["pass@1"], "joint_se": r["pass@1_se"], "solo_acc": r["solo_pass@1"],
           "thought_ok": r["thought_ok"]}  # fmt: skip
    with greedy_decoding(policies):
        g = evaluate_env(env, policies, problems=problems, num_samples=1, num_solo=1, seed=999,
                         thought_check=arith_thought_correct)
    out.update(greedy_joint_acc=g["pass@1"], greedy_solo_acc=g["solo_pass@1"], greedy_thought_ok=g["thought_ok"])
    return out


def run_arm(arm: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one (arm, seed) until the token budget is spent; evaluate at the end."""
    from ccpo_agents.config import load_config
    from ccpo_agents.envs import build_env
    from ccpo_agents.trainer import Trainer

    method, extra, offset = ARMS[arm]
    over = ["train.progress=false", "train.plot=false", "train.tensorboard=false", "eval.limit=0",
            f"rollout.prompts_per_step={args.prompts}", f"rollout.num_thoughts={args.thoughts}",
            f"rollout.answers_per_thought={args.answers}", f"rollout.num_solo={args.solo}",
            f"optim.lr={args.lr}", f"train.steps={10**6}", f"policy.model={args.model}",
            f"credit.method={method}", *extra, *(args.set or []), f"train.seed={seed + offset}",
            f"train.output_dir={workdir / f'{arm}-{seed}'}"]
    cfg = load_config(overrides=over)
    trainer = Trainer(cfg)
    env = build_env(cfg.env, split="test")
    problems = distinct_problems(env, args.eval_universe)
    # SEPO's ratings as training will first write them: the check that they parse and inform before it starts
    start = rating_quality(trainer, env, problems[:RATED_PROBLEMS]) if trainer.spec.needs_ratings else {}
    tokens, wall, cpu, rating_tokens = 0.0, 0.0, 0.0, 0.0
    marks = sorted(f for f in (args.curve or []) if f < 1.0)  # budget fractions measured on the way
    curve: list[dict[str, float]] = []
    while tokens < args.budget:
        while marks and tokens >= marks[0] * args.budget:
            marks.pop(0)
            curve.append({"tokens": tokens, "step": trainer.step, **evaluate(trainer, env, problems, args, True)})
        t0 = time.process_time()
        m = trainer.train_step()
        cpu += time.process_time() - t0
        rating_tokens += m["perf/rating_tokens"]
        tokens += m["perf/generated_tokens"] - (m["perf/rating_tokens"] if arm in FREE_RATINGS else 0.0)
        wall += m["time/step"]
    final = evaluate(trainer, env, problems, args)
    if trainer.spec.needs_ratings:  # are the trained policies' ratings still parseable and informative?
        final.update(rating_quality(trainer, env, problems[:RATED_PROBLEMS]))
    if args.curve:
        curve.append({"tokens": tokens, "step": trainer.step, "joint_acc": final["joint_acc"],
                      "joint_se": final["joint_se"]})  # fmt: skip
    return {"arm": arm, "seed": seed, "steps": trainer.step, "tokens": tokens, "rating_tokens": rating_tokens,
            "train_wall": wall,
            "train_cpu": cpu, "eval_problems": len(problems), "start": start, "final": final, "curve": curve}


def rating_quality(trainer: Any, env: Any, problems: list[int]) -> dict[str, float]:
    """The trainer's SEPO ratings, written as in training (``Trainer.rate``): ``rating_*`` on the four
    constructed cases per problem (good/bad thought x right/wrong answer), ``own_rating_*`` on the policies'
    own T = 1 episodes (4 per problem). Each: the share that parses, the share siding with the rule (the
    Thinker's share > 0.5 exactly when thought quality and outcome agree), and its correlation with the rule."""
    from ccpo_agents.models.rating_examples import evaluate_ratings, evaluate_rollout_ratings

    raters = {role: functools.partial(trainer.rate, role) for role in ("thinker", "solver")}
    template = trainer.config.credit.rating_template
    rated = evaluate_ratings(raters, [env.dataset[i] for i in problems], seed=999, template=template)
    own = evaluate_rollout_ratings(env, trainer.policies(), problems, seed=999, template=template, raters=raters)
    return {**{f"rating_{k}": v for k, v in rated.items() if k != "n"},
            **{f"own_rating_{k}": v for k, v in own.items() if k != "n"}}  # fmt: skip


def run_with_threads(run: Any, task: tuple[str, int], args: dict[str, Any], workdir: str, threads: int) -> dict[str, Any]:
    """A ``run_tasks`` worker: ``run(arm, seed, Namespace(**args), Path(workdir))`` on ``threads`` torch threads.
    Bind ``run`` with ``functools.partial`` (both must be module-level, to be pickled into spawned processes)."""
    import torch

    torch.set_num_threads(threads)
    return run(*task, argparse.Namespace(**args), Path(workdir))


def arm_rows(runs: list[dict[str, Any]], arms: list[str], metrics: tuple[str, ...] | None = None,
             extra: tuple[str, ...] = ("steps",)) -> dict[str, dict[str, float]]:  # fmt: skip
    """Per arm: the seed count, mean and sample std of each final ``metric`` (default: all of them) and the
    mean of each ``extra`` run field."""
    rows = {}
    for arm in arms:
        rs = [r for r in runs if r["arm"] == arm]
        row: dict[str, float] = {"seeds": len(rs)}
        # default: the metrics every run of the arm measured (runs reused from before a metric existed lack it)
        for k in metrics or tuple(k for k in rs[0]["final"] if all(k in r["final"] for r in rs)):
            vals = np.array([r["final"][k] for r in rs])
            row[k] = float(vals.mean())
            row[k + "_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        for k in extra:
            row[k] = float(np.mean([r[k] for r in rs]))
        rows[arm] = row
    return rows


def compare(runs: list[dict[str, Any]], metric: str, arms: list[str], reps: int = 10000, *,
            baseline: str = BASELINE, k: int | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each arm against ``baseline``, paired by seed, at the Bonferroni level over ``k`` comparisons
    (default: one per arm compared here)."""
    others = [a for a in arms if a != baseline]
    k = max(1, len(others) if k is None else k)
    level = 1 - 0.05 / k
    base = {r["seed"]: r["final"][metric] for r in runs if r["arm"] == baseline}
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, Any]] = {}
    for arm in others:
        mine = {r["seed"]: r["final"][metric] for r in runs if r["arm"] == arm}
        seeds = sorted(set(mine) & set(base))
        d = np.array([mine[s] - base[s] for s in seeds])
        n = len(d)
        mean = float(d.mean()) if n else float("nan")
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        t_ci = t_quantile(1 - (1 - level) / 2, n - 1) if n > 1 else float("nan")
        t_tost = t_quantile(1 - (1 - level), n - 1) if n > 1 else float("nan")  # one-sided at α/k each
        boot = d[rng.integers(0, n, size=(reps, n))].mean(1) if n else np.array([np.nan])
        lo_b, hi_b = np.percentile(boot, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
        lo, hi = mean - t_ci * se, mean + t_ci * se
        tost_lo, tost_hi = mean - t_tost * se, mean + t_tost * se
        verdict = ("better" if lo > 0 else "worse" if hi < 0 else
                   "level (TOST)" if tost_lo > -EQUIVALENCE_MARGIN and tost_hi < EQUIVALENCE_MARGIN else "inconclusive")
        out[arm] = {"seeds": n, "mean_diff": mean, "t_ci": [lo, hi], "bootstrap_ci": [float(lo_b), float(hi_b)],
                    "tost_ci": [tost_lo, tost_hi], "level": level, "verdict": verdict}
    return out


def _tokens_to_reach(points: list[tuple[float, float]], target: float) -> float:
    """First token count at which the piecewise-linear curve ``[(tokens, acc), ...]`` reaches ``target``
    (``inf`` if it never does)."""
    for (t0, a0), (t1, a1) in zip(points, points[1:]):
        if a1 >= target:
            return t0 if a0 >= target else t0 + (target - a0) / (a1 - a0) * (t1 - t0)
    return 0.0 if points and points[0][1] >= target else math.inf


def _mean_curve(runs: list[dict[str, Any]]) -> list[tuple[float, float]]:
    n = min(len(r["curve"]) for r in runs)
    return [(float(np.mean([r["curve"][i]["tokens"] for r in runs])),
             float(np.mean([r["curve"][i]["joint_acc"] for r in runs]))) for i in range(n)]  # fmt: skip


def token_efficiency(runs: list[dict[str, Any]], arm: str, baseline: str = BASELINE, reps: int = 2000,
                     level: float = 0.95) -> dict[str, Any]:  # fmt: skip
    """``B / b``: the baseline's mean budget over the tokens the arm's mean curve needs to reach the
    baseline's mean final T = 1 joint accuracy, with a paired bootstrap interval over seeds (module doc)."""
    base = {r["seed"]: r for r in runs if r["arm"] == baseline}
    mine = {r["seed"]: r for r in runs if r["arm"] == arm and r.get("curve")}
    seeds = sorted(set(base) & set(mine))
    if len(seeds) < 2:
        return {"seeds": len(seeds), "ratio": float("nan"), "ci": [float("nan"), float("nan")]}

    def ratio(sample: list[int]) -> float:
        target = float(np.mean([base[s]["final"]["joint_acc"] for s in sample]))
        budget = float(np.mean([base[s]["tokens"] for s in sample]))
        need = _tokens_to_reach(_mean_curve([mine[s] for s in sample]), target)
        return budget / need if 0 < need < math.inf else (math.inf if need == 0 else 0.0)

    rng = np.random.default_rng(0)
    boot = [ratio([seeds[i] for i in rng.integers(0, len(seeds), len(seeds))]) for _ in range(reps)]
    # order statistics, not interpolation: a resample already at the target at 0 tokens has ratio inf
    lo = np.percentile(boot, 100 * (1 - level) / 2, method="lower")
    hi = np.percentile(boot, 100 * (1 + level) / 2, method="higher")
    return {"seeds": len(seeds), "ratio": ratio(seeds), "ci": [float(lo), float(hi)], "level": level,
            "target_joint_acc": float(np.mean([base[s]["final"]["joint_acc"] for s in seeds])),
            "mean_curve": _mean_curve([mine[s] for s in seeds])}  # fmt: skip


def summarise(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    rows = arm_rows(runs, arms, extra=("steps", "train_wall", "train_cpu"))
    extra = [(a, b) for a, b in EXTRA_COMPARISONS if a in arms and b in arms]
    k = len([a for a in arms if a != BASELINE]) + len(extra)  # every comparison shares the Bonferroni budget
    metrics = ("joint_acc", "greedy_joint_acc", "solo_acc")
    if all("thought_ok" in r["final"] for r in runs if r["arm"] in arms):  # measured since the SEPO study
        metrics += ("thought_ok", "greedy_thought_ok")
    out: dict[str, Any] = {"arms": rows, "vs_shared": {m: compare(runs, m, arms, k=k) for m in metrics}}
    for ref in dict.fromkeys(b for _, b in extra):  # one table per reference, all its arms
        mine = [a for a, b in extra if b == ref]
        out[f"vs_{ref}"] = {m: compare(runs, m, [ref, *mine], baseline=ref, k=k) for m in metrics}
    if any(r.get("curve") for r in runs):
        out["token_efficiency"] = {a: token_efficiency(runs, a) for a in arms if a != BASELINE}
        out["token_efficiency"][BASELINE] = token_efficiency(runs, BASELINE)  # ~1 by construction: a check
    return out


def plot_efficiency(summary: dict[str, Any], path: Path) -> None:
    """Seed-mean T = 1 joint accuracy against generated tokens per arm, with ``shared``'s final accuracy as
    the target line that defines the token-efficiency ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eff = summary["token_efficiency"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arm, e in eff.items():
        if "mean_curve" not in e:  # fewer than two paired seeds
            continue
        x, y = zip(*e["mean_curve"])
        ax.plot(np.asarray(x) / 1000, 100 * np.asarray(y), marker="o", label=f"{arm} ({e['ratio']:.2f}x)")
    targets = [e["target_joint_acc"] for e in eff.values() if "target_joint_acc" in e]
    if not targets:
        plt.close(fig)
        return
    target = targets[0]
    ax.axhline(100 * target, color="grey", ls="--", lw=1, label="shared at the full budget")
    ax.set_xlabel("generated tokens (thousands; solo answers and ratings counted, not sepo_free's ratings)")
    ax.set_ylabel("held-out joint accuracy, T = 1 (%)")
    ax.set_title("Token efficiency against shared reward (seed means)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_tables(summary: dict[str, Any]) -> None:
    print(f"\n{'arm':<18}{'seeds':>6}{'joint T=1':>14}{'joint greedy':>14}{'solo T=1':>12}{'steps':>7}{'cpu s':>7}")
    for arm, r in summary["arms"].items():
        print(f"{arm:<18}{r['seeds']:>6}{100 * r['joint_acc']:>8.1f}±{100 * r['joint_acc_sd']:4.1f}"
              f"{100 * r['greedy_joint_acc']:>8.1f}±{100 * r['greedy_joint_acc_sd']:4.1f}"
              f"{100 * r['solo_acc']:>7.1f}±{100 * r['solo_acc_sd']:3.1f}{r['steps']:>7.0f}{r['train_cpu']:>7.0f}"
              + (f"   right step {100 * r['thought_ok']:.1f} (greedy {100 * r['greedy_thought_ok']:.1f})"
                 if "thought_ok" in r else "")
              + (f"   own ratings: parse {100 * r['own_rating_parsed']:.0f}%, side with the rule "
                 f"{100 * r['own_rating_agrees']:.0f}%" if "own_rating_agrees" in r else ""))
    for name in [k for k in summary if k.startswith("vs_")]:
        for metric, rows in summary[name].items():
            print(f"\n{metric}: arm − {name[3:]}, paired by seed (points; Bonferroni-adjusted intervals)")
            for arm, c in rows.items():
                lo, hi = c["t_ci"]
                blo, bhi = c["bootstrap_ci"]
                print(f"  {arm:<18}{100 * c['mean_diff']:+6.2f}  t [{100 * lo:+.2f}, {100 * hi:+.2f}]  "
                      f"bootstrap [{100 * blo:+.2f}, {100 * bhi:+.2f}]  {c['verdict']}")
    if "token_efficiency" in summary:
        print("\ntoken efficiency vs shared (B / tokens to reach shared's final T=1 accuracy; 95% paired bootstrap)")
        for arm, e in summary["token_efficiency"].items():
            print(f"  {arm:<18}{e['ratio']:6.2f}x  [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}]  ({e['seeds']} seeds)")


def reusable_runs(path: Path, args: dict[str, Any], tasks: list[tuple[str, int]],
                  protocol: tuple[str, ...] = PROTOCOL) -> dict[tuple[str, int], Any]:  # fmt: skip
    """The runs of the result file ``path`` that are among ``tasks``, if its ``protocol`` arguments match
    ``args``."""
    stored = json.loads(Path(path).read_text())
    differ = [k for k in protocol if (stored["args"].get(k) or None) != (args.get(k) or None)]
    if differ:
        raise SystemExit(f"--reuse {path}: its runs used other settings for {differ} "
                         f"({[stored['args'].get(k) for k in differ]} against {[args.get(k) for k in differ]})")
    wanted = set(tasks)
    return {(r["arm"], r["seed"]): r for r in stored["runs"] if (r["arm"], r["seed"]) in wanted}


def run_or_reuse(run: Any, tasks: list[tuple[str, int]], args: argparse.Namespace, *, threads: int, report: Any,
                 protocol: tuple[str, ...] = PROTOCOL, baseline: str = BASELINE) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """Every ``(arm, seed)`` task trained with ``run`` (``args.jobs`` at a time), except those ``args.reuse`` (a
    result file whose ``protocol`` arguments match) holds: those are taken once ``baseline``'s first stored
    seed, retrained, reproduces its stored run exactly. Returns the runs in ``tasks`` order and the reused count."""
    reused = reusable_runs(args.reuse, vars(args), tasks, protocol) if args.reuse else {}
    if reused:
        check = (baseline, 0) if (baseline, 0) in reused else next(iter(reused))
        todo = [check] + [t for t in tasks if t not in reused]
    else:
        todo = tasks
    fresh = dict(zip(todo, run_tasks(functools.partial(run_with_threads, run), todo, vars(args), jobs=args.jobs,
                                     threads=threads, report=report)))  # fmt: skip
    if reused:
        if not same_run(fresh[check], reused[check]):
            key = "joint_acc"
            raise SystemExit(f"--reuse: {check[0]} seed {check[1]} did not reproduce {args.reuse} on this machine "
                             f"(stored {key} {reused[check]['final'][key]:.4f}, now "
                             f"{fresh[check]['final'][key]:.4f}): other CPU kind or thread count. "
                             "Rerun without --reuse; the fresh runs are lost only if you do not keep the log.")
        print(f"--reuse: {check[0]} seed {check[1]} reproduced exactly; {len(reused)} stored runs reused")
    return [fresh.get(t) or reused[t] for t in tasks], len(reused)


def same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two runs of one (arm, seed) agree exactly in what the study measures (the final measures both hold:
    a stored run may predate one)."""
    same_final = all(a["final"][k] == b["final"][k] for k in a["final"].keys() & b["final"].keys())
    return same_final and a["curve"] == b["curve"] and a["tokens"] == b["tokens"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budget, two seeds, three arms: a smoke test")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per arm (default %(default)s)")
    p.add_argument("--model", default="arith-warmstart")
    p.add_argument("--budget", type=float, default=100000, help="generated tokens per run (default %(default)s)")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--thoughts", type=int, default=4)
    p.add_argument("--answers", type=int, default=2)
    p.add_argument("--solo", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--eval-universe", type=int, default=4000, help="distinct problems among this many test items")
    p.add_argument("--eval-thoughts", type=int, default=4)
    p.add_argument("--eval-answers", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, each in its own process (default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in all (default: all cores), split over jobs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every arm (repeatable), e.g. the second task's "
                        "'env.dataset_options={level: [1], variant: freeride}'")
    p.add_argument("--curve", type=float, nargs="*", default=[], metavar="FRACTION",
                   help="also measure T=1 joint accuracy at these fractions of the budget (e.g. 0 0.25 0.5 0.7)")
    p.add_argument("--out", type=Path, default=RESULTS / "credit_ablations.json")
    p.add_argument("--reuse", type=Path, default=None, metavar="JSON",
                   help="take the runs of an earlier result file with the same protocol instead of retraining "
                        "them (checked by retraining the reference arm's first seed)")
    p.add_argument("--summarise", type=Path, default=None, metavar="JSON",
                   help="train nothing: recompute the tables of an earlier result file (written back to it)")
    args = p.parse_args(argv)
    if args.summarise:
        result = json.loads(args.summarise.read_text())
        result["summary"] = summarise(result["runs"], result["args"]["arms"])
        print_tables(result["summary"])
        args.summarise.write_text(json.dumps(result, indent=1, default=str))
        if "token_efficiency" in result["summary"]:
            plot_efficiency(result["summary"], args.summarise.with_suffix(".png"))
        return result
    if args.quick:
        if args.arms == list(ARMS):  # the default: a few arms only
            args.arms = ["shared", "shared_aa", "ccpo_tree", "ccpo_tree_solo"]
        args.seeds, args.budget, args.prompts, args.thoughts, args.solo = 2, 600, 2, 2, 2
        args.eval_universe, args.eval_thoughts = 12, 1
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if BASELINE not in args.arms:
        p.error(f"--arms must include the reference arm {BASELINE!r}")
    tasks = [(arm, seed) for seed in range(args.seeds) for arm in args.arms]
    threads = max(1, (args.threads or os.cpu_count() or 1) // max(1, args.jobs))
    t0 = time.perf_counter()

    def report(r: dict[str, Any]) -> None:
        f = r["final"]
        print(f"[{time.perf_counter() - t0:6.0f}s] {r['arm']:<18} seed {r['seed']}: joint {f['joint_acc']:.3f} "
              f"greedy {f['greedy_joint_acc']:.3f} solo {f['solo_acc']:.3f} ({r['steps']} steps)", flush=True)

    runs, reused = run_or_reuse(run_arm, tasks, args, threads=threads, report=report)
    summary = summarise(runs, args.arms)
    print_tables(summary)
    result = {"benchmark": "credit_ablations", "args": vars(args), "summary": summary, "runs": runs,
              "reused_from": str(args.reuse) if reused else None, "reused_runs": reused,
              "seconds": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {args.out}")
    if "token_efficiency" in summary:
        plot_efficiency(summary, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
