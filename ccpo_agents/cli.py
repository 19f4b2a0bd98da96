"""The ``ccpo`` command line: ``ccpo train``, ``ccpo eval``, ``ccpo bench``.

    ccpo train                                   # the embedded default: tiny model, arith, CPU
    ccpo train --config examples/configs/x.yaml train.steps=50 credit.method=shared
    ccpo eval --checkpoint Shared=runs/shared --checkpoint CCPO=runs/ccpo
    ccpo bench env --quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
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
    e.add_argument("--json", help="also write the results (per benchmark and averaged) to this JSON file")
    e.add_argument("--plot", help="also draw a bar chart (per benchmark: joint vs Thinker removed) to this PNG")
    e.add_argument("--results-dir", metavar="DIR",
                   help="resumable: keep each finished chunk under DIR and skip it on a rerun; also writes "
                        "DIR/results.json, DIR/table.txt and DIR/results.png")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    from ccpo_agents.models.registry import ModelNotFoundError
    from ccpo_env.data import DatasetArgumentError, DatasetNotFoundError
    from ccpo_env.registry import UnknownNameError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        return _bench(args)
    except ConfigError as e:
        print(f"ccpo: config error: {e}", file=sys.stderr)
        return 2
    except (ModelNotFoundError, DatasetNotFoundError, DatasetArgumentError, UnknownNameError) as e:
        # what the user asked for does not exist here: say what and what is valid, no traceback
        print(f"ccpo: error: {e}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    from ccpo_agents.config import load_config
    from ccpo_agents.envs import eval_split, train_split
    from ccpo_agents.evaluation import flat_metrics, format_table
    from ccpo_agents.trainer import Trainer, plot_curves

    overrides = list(args.overrides) + (["train.resume=true"] if args.resume else [])
    cfg = load_config(args.config, overrides)
    trainer = Trainer(cfg)
    main_proc = trainer.accelerator.is_main_process
    say = print if main_proc else (lambda *a, **k: None)
    say(f"ccpo train: {cfg.credit.method} credit, {cfg.algo.estimator.name} advantages, {cfg.algo.loss.name} loss, "
        f"model {cfg.policy.model!r} ({cfg.policy.parameterisation}) on {cfg.env.dataset}/{train_split(cfg.env)}, "
        f"{cfg.train.steps} steps -> {cfg.train.output_dir}")
    for name in cfg.eval.datasets or [cfg.env.dataset]:
        if name == cfg.env.dataset and eval_split(cfg.eval, name) == train_split(cfg.env):
            say(f"ccpo train: note: {name!r} has only its {train_split(cfg.env)!r} split, so the held-out evaluation "
                "runs on the training problems (set eval.datasets to another set for a real held-out score)")
    do_eval = not args.no_eval and (cfg.eval.limit is None or cfg.eval.limit > 0)
    before = trainer.evaluate(progress=main_proc) if do_eval and trainer.step == 0 else None
    if before is not None:
        trainer.logger.log({"step": 0, **flat_metrics(before)})
    history = trainer.train(evaluate_fn=None if do_eval else (lambda t: {}))
    summary: dict[str, Any] = {"steps": trainer.step, "output_dir": str(trainer.output_dir)}
    if do_eval:
        step, after = trainer.last_evaluation or (None, None)
        if step != trainer.step:  # unless the periodic evaluation just ran (and was logged) at the last step
            after = trainer.evaluate(progress=main_proc)
            trainer.logger.log({"step": trainer.step, **flat_metrics(after)})
        if history:
            history[-1].update(flat_metrics(after))
        summary["after"] = after
        if before is not None:
            summary["before"] = before
    if main_proc:
        if do_eval:
            cols = {k: v for k, v in (("before", summary.get("before")), ("after", summary["after"])) if v}
            print("\n" + format_table(cols, "pass@1").replace("[pass@1]", "[held-out joint accuracy, pass@1 ± s.e.]"))
            if any("solo_pass@1" in r for r in summary["after"].values()):
                print("\n" + format_table(cols, "solo_pass@1").replace("[solo_pass@1]", "[Thinker removed: solo pass@1]"))
        if history:
            start = [{"step": 0, **flat_metrics(before)}] if before is not None else []
            png = plot_curves(start + history, trainer.output_dir / "curves.png")
            summary["plot"] = str(png) if png else None
            print(f"\nmetrics: {trainer.output_dir / 'metrics.jsonl'}   plot: {summary['plot']}")
        (trainer.output_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return 0


# ---------------------------------------------------------------------- eval
def _eval(args: argparse.Namespace) -> int:
    from ccpo_agents.config import ConfigError, load_config
    from ccpo_agents.evaluation import (
        average_row,
        checkpoint_config,
        evaluate_checkpoint,
        format_table,
        plot_results,
    )

    config = load_config(args.config, list(args.overrides)) if args.config is not None else None
    columns: list[tuple[str, str | None]] = []
    for spec in args.checkpoint:
        label, _, path = spec.rpartition("=")
        columns.append((label or Path(path).name, path))
    if not args.no_untrained:
        columns.insert(0, ("Untrained", None))
    if not columns:
        raise ConfigError("nothing to evaluate: give --checkpoint or drop --no-untrained")
    labels = [label for label, _ in columns]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two columns share a label in {labels}; name them with --checkpoint LABEL=PATH")
    out_dir = Path(args.results_dir) if args.results_dir else None
    progress = not args.no_progress
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for label, path in columns:
        cache = None if out_dir is None else out_dir / "chunks" / label
        if path is None and config is None and len(columns) > 1:
            # "Untrained": the starting policy of the first checkpoint's run, under that run's config
            base = checkpoint_config(columns[1][1], list(args.overrides))
            results[label] = evaluate_checkpoint(None, config=base, progress=progress, cache_dir=cache)
        else:
            results[label] = evaluate_checkpoint(path, config=config, overrides=list(args.overrides),
                                                 progress=progress, cache_dir=cache)
    any_row = next(iter(results.values()))
    k = next((r["samples"] for r in any_row.values()), 1)
    parts = [format_table(results, "pass@1")]
    if k > 1:
        parts.append(format_table(results, f"maj@{k}"))
    if any("solo_pass@1" in r for res in results.values() for r in res.values()):
        parts.append("Collaboration diagnostic (same Solver, Thinker removed):\n" + format_table(results, "solo_pass@1"))
        parts.append(format_table(results, "contribution").replace("[contribution]",
                                                                  "[Thinker contribution = joint - solo]"))
    table = "\n\n".join(parts)
    print(table)
    report = {label: {**res, **({"average": average_row(res)} if len(res) > 1 else {})}
              for label, res in results.items()}  # fmt: skip
    targets = [Path(args.json)] if args.json else []
    if out_dir is not None:
        targets.append(out_dir / "results.json")
        (out_dir / "table.txt").write_text(table + "\n")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=1, default=str))
    plots = [Path(args.plot)] if args.plot else []
    if out_dir is not None:
        plots.append(out_dir / "results.png")
    for target in plots:
        if plot_results(results, target) is None:
            print("ccpo eval: matplotlib is not installed; no plot written", file=sys.stderr)
            break
    written = [str(t) for t in targets + plots]
    if written:
        print("\nwritten: " + "  ".join(written))
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
