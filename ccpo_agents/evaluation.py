"""Evaluation, in one place: accuracy with its standard error, maj@k, and the collaboration diagnostic.

Everything that measures a team calls this module: ``ccpo train`` (before, every ``eval.every`` steps, after),
``ccpo eval`` (checkpoints and model folders), the warm-start builder and the benchmarks.

- :func:`evaluate_env`: one env's problems under given policies. Per problem it averages the joint episodes'
  correctness (pass@1), votes over them (maj@k), and with ``diagnostic=True`` runs the same Solver with the
  Thinker removed (the env's counterfactual hook): ``contribution = joint − solo`` is the Thinker's share.
  For a voting team "joint" is the plurality answer and "solo" a single voter's own answer. Standard errors
  are over problems (the unit that is sampled from the benchmark).
- :func:`evaluate`: :func:`evaluate_env` over several datasets (``{dataset: row}``).
- :func:`evaluate_trainer` / ``Trainer.evaluate()``: a trainer's current policies under its ``eval`` config.
- :func:`evaluate_checkpoint`: a run folder, a ``step_*`` checkpoint or a model folder.
- :func:`format_table` (rows = datasets, columns = checkpoints) and :func:`format_metric_table`
  (rows = metrics, columns = settings), :func:`greedy` (decode greedily inside a block).
- :func:`average_row` (the row averaged over benchmarks), :func:`plot_results` (bar chart per benchmark:
  joint vs Thinker-removed, per checkpoint).

Resumable: with ``cache_dir`` every chunk of ``batch_problems`` problems is written to its own JSON file as
soon as it is done (keyed by the problems, the sampling options and ``cache_key``, e.g. the checkpoint), and a
rerun loads finished chunks instead of decoding them again; an interrupted long set loses at most one chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ccpo_env import rollout
from ccpo_env.topology import THINKER
from ccpo_env.verify import answer_classes

__all__ = [
    "average_row",
    "checkpoint_config",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_env",
    "evaluate_trainer",
    "flat_metrics",
    "format_metric_table",
    "format_table",
    "greedy",
    "majority_correct",
    "plot_results",
]


def majority_correct(preds: Sequence[str | None], correct: Sequence[bool], answer_type: str = "math") -> bool:
    """Whether the plurality answer among ``preds`` is right (abstentions ignored; ties: first class)."""
    classes = answer_classes(preds, answer_type=answer_type)
    if not classes:
        return False
    return bool(correct[max(classes, key=len)[0]])


def _team_answer(ep: Any) -> str | None:
    """The team's final answer: the Solver's extracted answer, or the winning vote class."""
    info = next(iter(ep.infos.values()), {})
    if "classes" in info:
        winner = info.get("winner")
        return info["classes"][winner][0] if winner is not None else None
    return info.get("pred")


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (sample std / sqrt(n); 0 for one value, NaN for none)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0


def evaluate_env(
    env: Any,
    policies: Mapping[str, Any],
    *,
    problems: Sequence[int] | None = None,
    num_samples: int = 1,
    answers_per_thought: int = 1,
    num_solo: int | None = None,
    diagnostic: bool = True,
    batch_problems: int = 64,
    seed: int = 0,
    thought_check: Callable[[Any, str], bool] | None = None,
    group_by: str | None = None,
    progress: bool = False,
    desc: str = "eval",
    cache_dir: str | Path | None = None,
    cache_key: str = "",
) -> dict[str, Any]:
    """Evaluate ``policies`` on ``env``'s problems.

    Args:
        env: a template env (its dataset is evaluated).
        policies: ``{agent: policy}`` for the rollout driver.
        problems: dataset indices (default: all).
        num_samples: joint samples per problem (Think–Solve: thoughts), averaged by pass@1 and voted by maj@k.
        answers_per_thought: Solver answers per thought (Think–Solve; default 1).
        num_solo: Thinker-removed answers per problem for the diagnostic (default ``num_samples ×
            answers_per_thought``).
        diagnostic: run the Thinker-removed branch (Think–Solve only; voting always reports single voters).
        batch_problems: problems per rollout call.
        seed: rollout seed.
        thought_check: ``(problem, thought) -> bool``, e.g. "does the thought hold the right intermediate
            step"; its mean is reported as ``thought_ok``.
        group_by: a ``Problem.extras`` key (e.g. ``"level"``); adds ``by_<key>`` rows per value.
        progress: show a progress bar (problems done / total).
        cache_dir: write each finished chunk here and load finished chunks on a rerun (resumable).
        cache_key: what else identifies the results (e.g. the checkpoint and its generation config); part of
            each chunk's file name, so a different checkpoint never reads another's chunks.

    Returns:
        ``n`` (problems), ``samples``, ``pass@1`` and ``pass@1_se``, ``maj@k`` (k = samples, when > 1),
        ``solo_pass@1`` / ``solo_pass@1_se``, ``contribution`` / ``contribution_se`` (paired per problem),
        ``thought_beats_solo`` (share of thoughts whose mean answer accuracy beats solo, with m > 1 or k > 0),
        ``thought_ok`` and ``by_<group_by>`` as asked.
    """
    indices = list(range(len(env.dataset))) if problems is None else [int(p) for p in problems]
    think_solve = THINKER in env.possible_agents
    solo_k = (num_samples * answers_per_thought if num_solo is None else num_solo) if diagnostic else 0
    cf = [[THINKER]] if (think_solve and solo_k > 0) else []
    per: dict[int, dict[str, Any]] = {}
    bar = tqdm(total=len(indices), desc=desc, disable=not progress, leave=False, unit="problem")
    for start in range(0, len(indices), batch_problems):
        chunk = indices[start : start + batch_problems]
        kwargs: dict[str, Any] = {"num_samples": num_samples, "seed": seed + start}
        if think_solve and answers_per_thought > 1:
            kwargs["fanout"] = {THINKER: answers_per_thought}
        if cf:
            kwargs.update(counterfactuals=cf, num_counterfactual=solo_k)
        path = None
        if cache_dir is not None:
            ident = {"problems": [str(env.dataset[i].id) for i in chunk], "indices": chunk, "key": cache_key,
                     "options": kwargs, "thought_check": thought_check is not None}
            digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
            path = Path(cache_dir) / f"chunk_{start:06d}_{digest}.json"
            if path.is_file():
                per.update({int(i): d for i, d in json.loads(path.read_text()).items()})
                bar.update(len(chunk))
                continue
        done = _run_chunk(env, policies, chunk, kwargs, think_solve, thought_check)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(done))
            os.replace(tmp, path)  # atomic: an interrupted write never leaves a half chunk behind
        per.update(done)
        bar.update(len(chunk))
    bar.close()
    row = _summarise(env, per, num_samples, thought_check is not None)
    if group_by is not None:
        groups: dict[Any, dict[int, Any]] = {}
        for i, d in per.items():
            groups.setdefault(env.dataset[i].extras.get(group_by), {})[i] = d
        row[f"by_{group_by}"] = {g: _summarise(env, sub, num_samples, thought_check is not None)
                                 for g, sub in sorted(groups.items(), key=lambda kv: str(kv[0]))}
    return row


def _run_chunk(env: Any, policies: Mapping[str, Any], chunk: list[int], kwargs: dict[str, Any],
               think_solve: bool, thought_check: Callable[[Any, str], bool] | None) -> dict[int, dict[str, Any]]:
    """One rollout call: per problem its joint and solo correctness, team answers and per-thought scores."""
    per: dict[int, dict[str, Any]] = {}
    for ep in rollout(env, policies, chunk, **kwargs):
        d = per.setdefault(ep.problem_index, {"joint": [], "pred": [], "solo": [], "thought": {}, "ok": []})
        if ep.removed:
            d["solo"].append(float(ep.correct))
            continue
        d["joint"].append(float(ep.correct))
        d["pred"].append(_team_answer(ep))
        if think_solve:
            d["thought"].setdefault(str(ep.sample), []).append(float(ep.correct))
            if thought_check is not None and ep.fork == 0:
                d["ok"].append(float(thought_check(env.dataset[ep.problem_index], ep.turn(THINKER).action)))
        else:  # voting: each voter's own answer is the single-agent baseline
            d["solo"].extend(float(info.get("vote_correct", False)) for info in ep.infos.values())
    return per


def _summarise(env: Any, per: Mapping[int, Mapping[str, Any]], k: int, thoughts_checked: bool) -> dict[str, Any]:
    joint = [float(np.mean(d["joint"])) for d in per.values()]
    row: dict[str, Any] = {"n": len(per), "samples": k}
    row["pass@1"], row["pass@1_se"] = _mean_se(joint)
    if k > 1:
        row[f"maj@{k}"] = float(np.mean([
            majority_correct(d["pred"], [bool(c) for c in d["joint"]], env.dataset[i].answer_type)
            for i, d in per.items()
        ]))  # fmt: skip
    with_solo = [d for d in per.values() if d["solo"]]
    if with_solo:
        solo = [float(np.mean(d["solo"])) for d in with_solo]
        row["solo_pass@1"], row["solo_pass@1_se"] = _mean_se(solo)
        diffs = [float(np.mean(d["joint"])) - s for d, s in zip(with_solo, solo)]
        row["contribution"], row["contribution_se"] = _mean_se(diffs)
        beats = [float(np.mean(v) > np.mean(d["solo"])) for d in with_solo for v in d["thought"].values()]
        if beats:
            row["thought_beats_solo"] = float(np.mean(beats))
    if thoughts_checked:
        row["thought_ok"] = float(np.mean([x for d in per.values() for x in d["ok"]]))
    return row


def evaluate(
    env_factory: Callable[[str], Any],
    policies: Mapping[str, Any],
    datasets: Sequence[str],
    *,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_env` on each dataset; ``env_factory(name)`` builds the env of one dataset.

    ``options`` are :func:`evaluate_env`'s keyword arguments; with ``cache_dir`` each dataset's chunks are
    cached in ``cache_dir/<dataset>`` (resumable). Returns ``{dataset: row}``.
    """
    out = {}
    for i, name in enumerate(datasets):
        sub = None if cache_dir is None else Path(cache_dir) / name
        out[name] = evaluate_env(env_factory(name), policies, progress=progress, cache_dir=sub,
                                 desc=f"eval {name} ({i + 1}/{len(datasets)})", **options)
    return out


@contextlib.contextmanager
def greedy(policies: Mapping[str, Any], on: bool = True) -> Iterator[None]:
    """Inside the block, every policy with a ``generation`` config decodes greedily (restored on exit)."""
    saved = {id(p): (p, p.generation) for p in policies.values() if hasattr(p, "generation")}
    if on:
        for p, g in saved.values():
            p.generation = g.replace(do_sample=False)
    try:
        yield
    finally:
        for p, g in saved.values():
            p.generation = g


def evaluate_trainer(trainer: Any, *, progress: bool = True, cache_dir: str | Path | None = None,
                     cache_key: str = "") -> dict[str, dict[str, Any]]:
    """A trainer's current policies on its config's ``eval`` datasets (``Trainer.evaluate()`` calls this).

    With ``cache_dir`` finished chunks are cached and reused (see :func:`evaluate_env`); the key covers the
    trainer's step, its policy and eval configs and ``cache_key`` (e.g. the checkpoint path)."""
    from ccpo_agents.envs import build_env, eval_split

    cfg = trainer.config
    ev = cfg.eval

    def make(name: str) -> Any:
        opts = ev.dataset_options.get(name)
        if opts is None:
            opts = cfg.env.dataset_options if name == cfg.env.dataset else {}
        return build_env(cfg.env, dataset=name, split=eval_split(ev, name), dataset_options=opts, limit=ev.limit)

    policies = trainer.policies()
    key = json.dumps({"key": cache_key, "step": getattr(trainer, "step", 0), "policy": cfg.policy,
                      "env": cfg.env, "eval": ev}, sort_keys=True, default=str) if cache_dir is not None else ""
    with greedy(policies, ev.greedy):
        return evaluate(make, policies, ev.datasets or [cfg.env.dataset], num_samples=ev.num_samples,
                        answers_per_thought=ev.answers_per_thought, diagnostic=ev.diagnostic,
                        batch_problems=ev.batch_problems, seed=cfg.train.seed + 7919, progress=progress,
                        cache_dir=cache_dir, cache_key=key)


def _resolve(path: str | Path) -> tuple[Path | None, Path | None]:
    """``(checkpoint, model folder)`` for a run folder / ``step_*`` checkpoint / ``save_pretrained`` folder."""
    from ccpo_agents.config import ConfigError
    from ccpo_agents.trainer import latest_checkpoint

    p = Path(path).expanduser()
    ckpt = p if (p / "state.json").is_file() else latest_checkpoint(p)
    if ckpt is not None:
        return ckpt, None
    if (p / "config.json").is_file():
        return None, p
    raise ConfigError(f"{str(path)!r} is not a checkpoint, a run folder with checkpoints, or a model folder "
                      "(written by save_pretrained, with config.json)")


def checkpoint_config(path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The experiment config a checkpoint was trained with (with ``overrides``); the embedded default with
    ``policy.model=<folder>`` for a model folder."""
    import json

    from ccpo_agents.config import ExperimentConfig, from_dict, load_config
    from ccpo_agents.config.loader import apply_overrides
    from ccpo_agents.config.validate import check_config

    ckpt, model_dir = _resolve(path)
    if ckpt is None:
        return load_config(None, [f"policy.model={model_dir}", *overrides])
    saved = json.loads((ckpt / "state.json").read_text())["config"]
    config = from_dict(ExperimentConfig, apply_overrides(saved, list(overrides)))
    check_config(config)
    return config


def evaluate_checkpoint(
    path: str | Path | None, *, config: Any = None, overrides: Sequence[str] = (), progress: bool = True,
    cache_dir: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate a run folder, a ``step_*`` checkpoint, a local model folder, or (``path=None``) the config's
    starting policy; the config is ``config`` if given, else :func:`checkpoint_config` (or the embedded default,
    with ``overrides``). With ``cache_dir`` the evaluation is resumable (finished chunks are kept there).

    Raises:
        ConfigError: ``path`` is neither a checkpoint, a run folder with checkpoints, nor a model folder.
    """
    from ccpo_agents.config import load_config
    from ccpo_agents.trainer import Trainer

    ckpt = None
    if path is not None:
        ckpt, model_dir = _resolve(path)
        if config is None:
            config = checkpoint_config(path, overrides)
        elif model_dir is not None:
            import dataclasses

            config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, model=str(model_dir)))
    elif config is None:
        config = load_config(None, list(overrides))
    trainer = Trainer(config)
    if ckpt is not None:
        trainer.load(ckpt)
    if cache_dir is None:
        return trainer.evaluate(progress=progress)
    return evaluate_trainer(trainer, progress=progress, cache_dir=cache_dir,
                            cache_key=str(Path(ckpt).resolve()) if ckpt is not None else "")


def flat_metrics(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """``eval/<dataset>/<metric>`` scalars for metrics.jsonl, plus ``eval/joint_acc`` / ``eval/solo_acc`` of the
    first dataset (the curves the training plot draws)."""
    out: dict[str, float] = {}
    for name, row in results.items():
        for k, v in row.items():
            if isinstance(v, (int, float)) and k not in ("n", "samples"):
                out[f"eval/{name}/{k}"] = float(v)
    first = next(iter(results.values()), {})
    if first:
        out["eval/joint_acc"] = float(first["pass@1"])
        if "solo_pass@1" in first:
            out["eval/solo_acc"] = float(first["solo_pass@1"])
    return out


def _cell(value: Any, se: Any = None) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    text = f"{100 * value:.1f}%"
    return text + (f" ±{100 * se:.1f}" if isinstance(se, (int, float)) and math.isfinite(se) and se > 0 else "")


def format_table(columns: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str = "pass@1") -> str:
    """A paper-style table for one metric: a row per dataset, a column per checkpoint (e.g. Untrained /
    Shared / CCPO), each cell with its standard error when known, and the average over datasets."""
    names = list(columns)
    datasets: list[str] = []
    for res in columns.values():
        datasets += [d for d in res if d not in datasets]
    cells = {(d, c): _cell(columns[c].get(d, {}).get(metric), columns[c].get(d, {}).get(f"{metric}_se"))
             for d in datasets for c in names}  # fmt: skip
    avg = {}
    for c in names:
        vals = [columns[c][d][metric] for d in datasets if isinstance(columns[c].get(d, {}).get(metric), (int, float))]
        avg[c] = _cell(float(np.mean(vals))) if vals else "-"
    width = max([len(d) for d in datasets] + [7])
    col = max([len(c) for c in names] + [len(v) for v in cells.values()] + [6]) + 1
    head = f"{'dataset':<{width}} " + " ".join(f"{c:>{col}}" for c in names)
    lines = [f"[{metric}]", head, "-" * len(head)]
    lines += [f"{d:<{width}} " + " ".join(f"{cells[(d, c)]:>{col}}" for c in names) for d in datasets]
    if len(datasets) > 1:
        lines.append(f"{'average':<{width}} " + " ".join(f"{avg[c]:>{col}}" for c in names))
    return "\n".join(lines)


def format_metric_table(columns: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> str:
    """A table with a row per metric (``labels``: key -> row label) and a column per setting (e.g. T=1 and
    greedy); rows missing from every column are left out."""
    width = max(len(v) for v in labels.values()) + 2
    lines = [" " * width + "".join(f"{c:>10}" for c in columns)]
    for key, label in labels.items():
        if any(key in columns[c] for c in columns):
            lines.append(f"{label:<{width}}" + "".join(f"{_cell(columns[c].get(key)):>10}" for c in columns))
    return "\n".join(lines)


#: Metrics :func:`average_row` averages (with their standard errors where the rows have them).
_AVERAGED = ("pass@1", "solo_pass@1", "contribution", "thought_beats_solo", "thought_ok")


def average_row(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The unweighted mean over benchmarks of each metric every row has (as papers average benchmarks), with
    the standard error of that mean, ``sqrt(sum se_i^2) / N`` (benchmarks are independent samples), and ``n``
    the problems in all."""
    rows = [r for r in results.values() if isinstance(r, Mapping) and "pass@1" in r]
    if not rows:
        return {}
    out: dict[str, Any] = {"n": int(sum(r.get("n", 0) for r in rows)), "benchmarks": len(rows)}
    names = list(_AVERAGED) + sorted({k for r in rows for k in r if k.startswith("maj@")})
    for name in names:
        vals = [r[name] for r in rows if isinstance(r.get(name), (int, float))]
        if len(vals) != len(rows):
            continue  # a metric some benchmarks lack is not averaged (it would mix different sets)
        out[name] = float(np.mean(vals))
        ses = [r.get(f"{name}_se") for r in rows]
        if all(isinstance(se, (int, float)) and math.isfinite(se) for se in ses):
            out[f"{name}_se"] = float(math.sqrt(sum(se * se for se in ses)) / len(rows))
    return out


def plot_results(columns: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str | Path) -> Path | None:
    """A grouped bar chart: per benchmark (and their average), per checkpoint a bar for joint pass@1 and
    (hatched) one for the Thinker-removed solo pass@1, with standard-error whiskers; ``None`` if matplotlib
    is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    datasets: list[str] = []
    for res in columns.values():
        datasets += [d for d in res if d not in datasets and d != "average"]
    if len(datasets) > 1:  # the averaged row as its own group, as in the table
        columns = {c: {**{d: r for d, r in res.items() if d != "average"}, "average": average_row(res)}
                   for c, res in columns.items()}  # fmt: skip
        datasets.append("average")
    has_solo = any("solo_pass@1" in r for res in columns.values() for r in res.values())
    bars = [(c, m) for c in columns for m in (("pass@1", "solo_pass@1") if has_solo else ("pass@1",))]
    width = 0.8 / max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(datasets) * max(1, len(bars)) / 2), 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (col, metric) in enumerate(bars):
        xs = [i + (j - (len(bars) - 1) / 2) * width for i in range(len(datasets))]
        vals = [100 * float(columns[col].get(d, {}).get(metric, math.nan)) for d in datasets]
        errs = [100 * float(columns[col].get(d, {}).get(f"{metric}_se", 0.0)) for d in datasets]
        solo = metric != "pass@1"
        ax.bar(xs, vals, width, yerr=errs, capsize=2, color=colours[list(columns).index(col) % len(colours)],
               hatch="//" if solo else None, alpha=0.55 if solo else 1.0,
               label=f"{col} ({'Thinker removed' if solo else 'joint'})")
    ax.set_xticks(range(len(datasets)))
    ax.set_xticklabels(datasets, rotation=20)
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
