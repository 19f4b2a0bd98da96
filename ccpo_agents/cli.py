"""The ``ccpo`` command line: ``ccpo train``, ``ccpo eval``, ``ccpo bench``.

    ccpo train                                   # the embedded default: tiny model, arith, CPU
    ccpo train --config examples/configs/x.yaml train.steps=50 credit.method=shared
    ccpo eval --checkpoint Shared=runs/shared --checkpoint CCPO=runs/ccpo
    ccpo bench env --quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

# OpenMP busy-waits by default; on a shared or small CPU that makes torch's threads several times
# slower (measured 4-9x on 2 cores). Must be set before torch is imported; the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ccpo", description="Counterfactual credit assignment for LLM teams.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a team (no arguments: the embedded CPU default)")
    t.add_argument("--config", help="YAML config file")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in train.output_dir")
    t.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    t.add_argument("overrides", nargs="*", help="key.subkey=value overrides, e.g. train.steps=50")
    e = sub.add_parser("eval", help="evaluate checkpoints: per-dataset accuracy and the collaboration diagnostic")
    e.add_argument("--config", help="YAML config (default: the first checkpoint's config, else the default)")
    e.add_argument("--checkpoint", action="append", default=[], metavar="[LABEL=]PATH",
                   help="a run folder or checkpoint folder; repeat for several columns")
    e.add_argument("--no-untrained", action="store_true", help="leave out the Untrained column")
    e.add_argument("--json", help="also write the results to this JSON file")
    e.add_argument("overrides", nargs="*", help="key.subkey=value overrides (e.g. eval.datasets=[math500])")
    b = sub.add_parser("bench", help="run a benchmark from benchmarks/ (e.g. env, verifier, rollout, step)")
    b.add_argument("name", nargs="?", help="benchmark name; omit to list them")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ccpo`` command."""
    parser = _parser()
    # Overrides may come before or after flags (`ccpo train --resume train.steps=5`): argparse stops
    # collecting a positional list at the first flag, so pick the remaining key=value words up here.
    args, extra = parser.parse_known_args(argv)
    if args.command in ("train", "eval"):
        args.overrides = list(args.overrides) + [x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from ccpo_agents.config import ConfigError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        return _bench(args)
    except ConfigError as e:
        print(f"ccpo: config error: {e}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------- train
def _eval_env_factory(cfg: Any):
    from ccpo_agents.trainer import build_env

    def make(name: str):
        opts = cfg.eval.dataset_options.get(name)
        if opts is None:
            opts = cfg.env.dataset_options if name == cfg.env.dataset else {}
        return build_env(cfg.env, dataset=name, split=cfg.eval.split, dataset_options=opts, limit=cfg.eval.limit)

    return make


@contextlib.contextmanager
def _greedy(policies: dict[str, Any], on: bool) -> Iterator[None]:
    saved = {id(p): (p, p.generation) for p in policies.values() if hasattr(p, "generation")}
    if on:
        for p, g in saved.values():
            p.generation = g.replace(do_sample=False)
    try:
        yield
    finally:
        for p, g in saved.values():
            p.generation = g


def run_eval(trainer: Any, *, progress: bool = True) -> dict[str, dict[str, float]]:
    """Evaluate a trainer's current policies with its ``eval`` config."""
    from ccpo_agents.evaluation import evaluate

    cfg = trainer.config
    policies = trainer.policies()
    with _greedy(policies, cfg.eval.greedy):
        return evaluate(_eval_env_factory(cfg), policies, cfg.eval.datasets, num_samples=cfg.eval.num_samples,
                        diagnostic=cfg.eval.diagnostic, batch_problems=cfg.eval.batch_problems,
                        seed=cfg.train.seed + 7919, progress=progress)


def _flat(results: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, row in results.items():
        out[f"eval/{name}/pass@1"] = row["pass@1"]
        if "solo_pass@1" in row:
            out[f"eval/{name}/solo_pass@1"] = row["solo_pass@1"]
    first = next(iter(results.values()), {})
    if first:
        out["eval/joint_acc"] = first["pass@1"]
        if "solo_pass@1" in first:
            out["eval/solo_acc"] = first["solo_pass@1"]
    return out


def _train(args: argparse.Namespace) -> int:
    from ccpo_agents.config import load_config
    from ccpo_agents.evaluation import format_table
    from ccpo_agents.trainer import Trainer

    overrides = list(args.overrides) + (["train.resume=true"] if args.resume else [])
    cfg = load_config(args.config, overrides)
    trainer = Trainer(cfg)
    main_proc = trainer.accelerator.is_main_process
    say = print if main_proc else (lambda *a, **k: None)
    say(f"ccpo train: {cfg.credit.method} credit, {cfg.algo.estimator.name} advantages, {cfg.algo.loss.name} loss, "
        f"model {cfg.policy.model!r} ({cfg.policy.parameterisation}) on {cfg.env.dataset}/{cfg.env.split}, "
        f"{cfg.train.steps} steps -> {cfg.train.output_dir}")
    do_eval = not args.no_eval and bool(cfg.eval.datasets) and (cfg.eval.limit is None or cfg.eval.limit > 0)
    before = None
    if do_eval and trainer.step == 0:
        before = run_eval(trainer, progress=main_proc)
    evaluate_fn = (lambda t: _flat(run_eval(t, progress=False))) if do_eval else None
    history = trainer.train(evaluate_fn=evaluate_fn)
    summary: dict[str, Any] = {"steps": trainer.step, "output_dir": str(trainer.output_dir)}
    if do_eval:
        after = run_eval(trainer, progress=main_proc)
        if history:
            history[-1].update(_flat(after))
        summary["after"] = after
        if before is not None:
            summary["before"] = before
    if main_proc:
        if do_eval:
            cols = {"before": summary.get("before", {}), "after": summary["after"]}
            cols = {k: v for k, v in cols.items() if v}
            print("\n" + format_table(cols, "pass@1"))
            if any("solo_pass@1" in r for r in summary["after"].values()):
                print("\n" + format_table(cols, "solo_pass@1").replace("[solo_pass@1]", "[Thinker removed: solo pass@1]"))
        if history:
            from ccpo_agents.trainer import plot_curves

            points = ([{"step": 0, **_flat(before)}] if before is not None else []) + history
            png = plot_curves(points, trainer.output_dir / "curves.png")
            summary["plot"] = str(png) if png else None
            print(f"\nmetrics: {trainer.output_dir / 'metrics.jsonl'}   plot: {summary['plot']}")
        (trainer.output_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


# ---------------------------------------------------------------------- eval
def _eval(args: argparse.Namespace) -> int:
    from ccpo_agents.config import ConfigError, from_dict, load_config
    from ccpo_agents.config.schema import ExperimentConfig
    from ccpo_agents.evaluation import format_table
    from ccpo_agents.trainer import Trainer, latest_checkpoint

    columns: list[tuple[str, Path | None]] = []
    for spec in args.checkpoint:
        label, _, path = spec.rpartition("=")
        p = Path(path)
        ckpt = p if (p / "state.json").is_file() else latest_checkpoint(p)
        if ckpt is None:
            raise ConfigError(f"--checkpoint {path!r}: no checkpoint found (expected a run folder or a step_* folder)")
        columns.append((label or p.name, ckpt))
    if args.config is None and columns:
        from ccpo_agents.config.loader import apply_overrides

        base = json.loads((columns[0][1] / "state.json").read_text())["config"]
        cfg = from_dict(ExperimentConfig, apply_overrides(base, list(args.overrides)))
    else:
        cfg = load_config(args.config, list(args.overrides))
    if not args.no_untrained:
        columns.insert(0, ("Untrained", None))
    if not columns:
        raise ConfigError("nothing to evaluate: give --checkpoint or drop --no-untrained")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, ckpt in columns:
        trainer = Trainer(cfg)
        if ckpt is not None:
            trainer.load(ckpt)
        results[label] = run_eval(trainer)
        del trainer
    print(format_table(results, "pass@1"))
    if cfg.eval.num_samples > 1:
        print("\n" + format_table(results, f"maj@{cfg.eval.num_samples}"))
    if cfg.eval.diagnostic:
        print("\nCollaboration diagnostic (same Solver, Thinker removed):")
        print(format_table(results, "solo_pass@1"))
        print(format_table(results, "contribution").replace("[contribution]", "[Thinker contribution = joint - solo]"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


# ---------------------------------------------------------------------- bench
def _benchmarks_dir() -> Path | None:
    here = Path(__file__).resolve().parent.parent / "benchmarks"
    return here if here.is_dir() else None


def _bench(args: argparse.Namespace) -> int:
    import runpy

    root = _benchmarks_dir()
    if root is None:
        print("ccpo bench: the benchmarks/ folder is not next to this installation; run from a source checkout",
              file=sys.stderr)
        return 2
    available = sorted(p.stem.removeprefix("bench_") for p in root.glob("bench_*.py")) + sorted(
        p.stem for p in root.glob("*.py") if not p.stem.startswith(("bench_", "_")))
    if not args.name:
        print("available benchmarks: " + ", ".join(available))
        return 0
    path = root / f"bench_{args.name}.py"
    if not path.is_file():
        path = root / f"{args.name}.py"
    if not path.is_file():
        print(f"ccpo bench: unknown benchmark {args.name!r}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    old_argv = sys.argv
    sys.argv = [str(path), *args.args]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = old_argv
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
