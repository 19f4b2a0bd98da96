"""Reproduce the paper's tables: one recipe per table cell, run, resumed and evaluated, next to the paper.

Tables (two-agent Think-Solve, trained on the MATH train split; numbers are exact-match accuracy in %):

- ``grpo_math500``: MATH500 under GRPO, columns Untrained / ReMA-shared (``credit.method=shared``) / CCPO
  (``ccpo_tree``), four models.
- ``gspo_reward_design``: five benchmarks under GSPO, columns Untrained / Shared / CCPO / SEPO, two models.
- ``collaboration_diagnostic``: the GRPO CCPO runs evaluated with the full team and with the Thinker removed
  (the Solver alone); no extra training.

Each trained cell is one run (model x optimizer x credit) with its budget and hardware assumptions; a run
trains through :class:`ccpo_agents.trainer.Trainer` (accelerate: ``accelerate launch --num_processes 8
benchmarks/reproduce_paper.py`` for 8 GPUs), checkpoints, and resumes from its newest checkpoint when the
script is run again; its evaluation is cached chunk by chunk (resumable too). Untrained cells only evaluate.
Output (``--out``): ``tables.md`` (each table in the paper's layout, ``ours (paper, diff)``), ``results.json``
(every number, wall time and GPU-hours per run) and per-run folders.

    python benchmarks/reproduce_paper.py --dry-run                   # what would run, estimated GPU-hours
    accelerate launch --num_processes 8 benchmarks/reproduce_paper.py --model-dir /models
    python benchmarks/reproduce_paper.py --smoke                      # every table on CPU, tiny model, < 10 min

``--model-dir DIR`` uses ``DIR/<name>`` (e.g. ``DIR/Qwen2.5-1.5B-Instruct``) instead of the Hub name. The
paper's numbers are carried in this file (``PAPER``), not read from anywhere else.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The paper's tables as published (Li et al., 2026), in %; ``None`` = not reported.
PAPER: dict[str, Any] = {
    "grpo_math500": {"columns": ["untrained", "shared", "ccpo"], "rows": {
        "qwen2.5-1.5b-instruct": {"math500": [54.00, 60.00, 61.00]},
        "llama3.1-8b-instruct": {"math500": [46.20, 51.80, 53.40]},
        "qwen2.5-7b-instruct": {"math500": [74.40, 75.40, 77.60]},
        "qwen3-4b-base": {"math500": [46.40, 78.00, 79.40]}}},
    "gspo_reward_design": {"columns": ["untrained", "shared", "ccpo", "sepo"], "rows": {
        "qwen2.5-1.5b-instruct": {
            "math500": [54.00, 57.80, 59.20, 59.20], "aime25": [None, 6.67, 6.67, 6.67],
            "amc23": [32.50, 42.50, 42.50, 35.00], "gaokao2023en": [41.04, 46.23, 47.01, 46.49],
            "minerva_math": [12.50, 16.18, 15.44, 16.91]},
        "olmo3-7b-instruct": {
            "math500": [82.60, 87.00, 84.40, 87.00], "aime25": [30.00, 30.00, 30.00, 30.00],
            "amc23": [77.50, 82.50, 80.00, 85.00], "gaokao2023en": [72.73, 73.25, 73.77, 73.25],
            "minerva_math": [27.57, 27.91, 30.15, 26.47]}}},
    "collaboration_diagnostic": {"columns": ["full_collaboration", "thinker_removed"], "rows": {
        "qwen2.5-1.5b-instruct": {"math500": [61.00, 56.40]},
        "llama3.1-8b-instruct": {"math500": [53.40, 52.00]},
        "qwen2.5-7b-instruct": {"math500": [77.60, 76.00]}}},
}  # fmt: skip

#: Hub names of the paper's models.
MODELS = {"qwen2.5-1.5b-instruct": ("Qwen/Qwen2.5-1.5B-Instruct", 1.5),
          "llama3.1-8b-instruct": ("meta-llama/Llama-3.1-8B-Instruct", 8.0),
          "qwen2.5-7b-instruct": ("Qwen/Qwen2.5-7B-Instruct", 7.6),
          "qwen3-4b-base": ("Qwen/Qwen3-4B-Base", 4.0),
          "olmo3-7b-instruct": ("allenai/Olmo-3-7B-Instruct", 7.3)}  # fmt: skip
CREDIT = {"shared": "shared", "ccpo": "ccpo_tree", "sepo": "sepo"}
#: Decoded tokens per second per GPU per billion parameters, a rough HF-generate planning figure on an
#: 80 GB H100 in bf16 (batched); only used for --dry-run's estimate.
TOKENS_PER_S_PER_GPU_BILLION = 6000.0


@dataclass
class Recipe:
    """One run: a model trained (or not, ``credit=None``) with one optimizer and credit, then evaluated.

    Attributes:
        key: folder name, ``<model>-<optimizer>-<credit or untrained>``.
        model: the paper's model name (a key of :data:`MODELS`).
        optimizer: ``"grpo"`` (token-level PPO clip) or ``"gspo"`` (sequence-level ratio).
        credit: ``"shared"`` / ``"ccpo"`` / ``"sepo"``, or ``None`` for the untrained model.
        datasets: evaluation sets.
        overrides: the ccpo config (``key=value``) of the run.
        gpus: GPUs assumed for the estimate (the paper's setting: one node of 8).
        est_gpu_hours: estimated cost (decoding dominates; see :data:`TOKENS_PER_S_PER_GPU_BILLION`).
    """

    key: str
    model: str
    optimizer: str
    credit: str | None
    datasets: list[str]
    overrides: list[str] = field(default_factory=list)
    gpus: int = 8
    est_gpu_hours: float = 0.0


def recipes(smoke: bool, model_dir: str | None, data_dir: str | None) -> list[Recipe]:
    """Every run the three tables need (the diagnostic reuses the GRPO CCPO runs)."""
    cells: dict[str, Recipe] = {}
    for table, optimizer in (("grpo_math500", "grpo"), ("gspo_reward_design", "gspo")):
        spec = PAPER[table]
        for model, rows in spec["rows"].items():
            for col in spec["columns"]:
                credit = None if col == "untrained" else col
                key = f"{model}-{optimizer}-{credit or 'untrained'}"
                cells.setdefault(key, Recipe(key, model, optimizer, credit, list(rows)))
    for r in cells.values():
        r.overrides, r.est_gpu_hours = _config(r, smoke, model_dir, data_dir)
    return list(cells.values())


def _config(r: Recipe, smoke: bool, model_dir: str | None, data_dir: str | None) -> tuple[list[str], float]:
    hub, billions = MODELS[r.model]
    model = hub
    if model_dir is not None and (Path(model_dir) / hub.split("/")[-1]).is_dir():
        model = str(Path(model_dir) / hub.split("/")[-1])
    loss = ["algo.loss.name=gspo", "algo.loss.agg=seq-mean-token-mean"] if r.optimizer == "gspo" else \
        ["algo.loss.name=ppo"]
    credit = [f"credit.method={CREDIT[r.credit]}"] if r.credit else []
    if smoke:  # the tiny model, arith for training, 2 problems per evaluation set, one step
        o = ["policy.model=tiny", "policy.system_prompts={}", "policy.generation.max_new_tokens=4", "env.dataset=arith",
             "env.templates=compact", "rollout.prompts_per_step=2", "rollout.num_thoughts=2",
             "rollout.answers_per_thought=2", "rollout.num_solo=2", "train.steps=1", "eval.limit=2",
             "optim.lr=1e-4", "credit.rating_max_new_tokens=4"]
        return [*o, *loss, *credit, "train.progress=false", "train.tensorboard=false", "train.plot=false",
                f"eval.datasets=[{','.join(r.datasets)}]", *([f"env.data_dir={data_dir}"] if data_dir else [])], 0.0
    steps, prompts, n, m, solo, new = 200, 64, 8, 2, 8, 1024
    o = [f"policy.model={model}", "policy.parameterisation=lora", "policy.lora_r=64", "policy.lora_alpha=128",
         "policy.dtype=bf16", f"policy.generation.max_new_tokens={new}", "env.dataset=math_train", "env.split=train",
         f"rollout.prompts_per_step={prompts}", f"rollout.num_thoughts={n}", f"rollout.answers_per_thought={m}",
         f"rollout.num_solo={solo}", "optim.lr=1e-6", "optim.minibatch_size=256", "optim.micro_batch_size=8",
         "optim.warmup_steps=10", f"train.steps={steps}", "train.schedule=alternate", "train.alternate_period=10",
         "train.mixed_precision=bf16", "train.checkpoint_every=20", "eval.limit=null",
         f"eval.datasets=[{','.join(r.datasets)}]", *([f"env.data_dir={data_dir}"] if data_dir else [])]
    # decoded tokens: training (Thinker n + Solver n*m + solo per prompt) and evaluation (~500 problems/set,
    # joint + solo), each up to max_new_tokens
    train_tokens = steps * prompts * (n + n * m + solo) * new if r.credit else 0
    eval_tokens = 500 * len(r.datasets) * 3 * new
    hours = (train_tokens * 3 + eval_tokens) / (TOKENS_PER_S_PER_GPU_BILLION / billions) / 3600  # x3: fwd+bwd
    return [*o, *loss, *credit], hours


def run_recipe(r: Recipe, out: Path, progress: bool) -> dict[str, Any]:
    """Train (resuming from the newest checkpoint) and evaluate one run; cached in ``out/<key>/done.json``."""
    from ccpo_agents.config import load_config
    from ccpo_agents.evaluation import evaluate_checkpoint
    from ccpo_agents.trainer import Trainer

    folder = out / r.key
    done = folder / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    cfg = load_config(None, [*r.overrides, f"train.output_dir={folder / 'run'}", "train.resume=true"])
    if r.credit is not None:
        trainer = Trainer(cfg)
        if trainer.step < cfg.train.steps:
            trainer.train()
        trainer.save()
        results = evaluate_checkpoint(folder / "run", config=cfg, progress=progress, cache_dir=folder / "eval")
    else:
        results = evaluate_checkpoint(None, config=cfg, progress=progress, cache_dir=folder / "eval")
    wall = time.perf_counter() - t0
    world = int(os.environ.get("WORLD_SIZE", "1"))
    gpus = world if _cuda() else 0
    rec = {"recipe": asdict(r), "results": results, "wall_s": wall, "gpu_hours": wall * gpus / 3600}
    folder.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        done.write_text(json.dumps(rec, indent=1, default=str))
    return rec


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _fmt(ours: float | None, paper: float | None) -> str:
    o = "-" if ours is None or not math.isfinite(ours) else f"{ours:.2f}"
    p = "-" if paper is None else f"{paper:.2f}"
    d = "" if ours is None or paper is None or not math.isfinite(ours) else f", {ours - paper:+.2f}"
    return f"{o} ({p}{d})"


def tables(runs: dict[str, dict[str, Any]], names: list[str]) -> str:
    """Each table in the paper's layout: a row per model (and benchmark), ``ours (paper, diff)`` per cell."""
    out = []
    for name in names:
        spec = PAPER[name]
        cols = spec["columns"]
        lines = [f"### {name}", "", "| model | benchmark | " + " | ".join(cols) + " |",
                 "|---|---|" + "---|" * len(cols)]
        for model, rows in spec["rows"].items():
            if not any(k.startswith(f"{model}-") for k in runs):
                continue  # a model left out with --models
            for bench, paper in rows.items():
                cells = []
                for j, col in enumerate(cols):
                    if name == "collaboration_diagnostic":
                        rec = runs.get(f"{model}-grpo-ccpo")
                        metric = "pass@1" if col == "full_collaboration" else "solo_pass@1"
                    else:
                        opt = "grpo" if name == "grpo_math500" else "gspo"
                        rec = runs.get(f"{model}-{opt}-{col}")
                        metric = "pass@1"
                    value = rec["results"].get(bench, {}).get(metric) if rec else None
                    cells.append(_fmt(None if value is None else 100 * value, paper[j]))
                lines.append(f"| {model} | {bench} | " + " | ".join(cells) + " |")
        used = {k for k in runs if any(k.startswith(m) for m in spec["rows"])}
        wall = sum(runs[k]["wall_s"] for k in used)
        gpu_h = sum(runs[k]["gpu_hours"] for k in used)
        lines += ["", f"wall time {wall / 60:.1f} min, {gpu_h:.2f} GPU-hours (runs of this table; "
                  "a run shared with another table is counted in both)", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="every table on CPU with the tiny model, tiny budgets")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their estimated cost; run nothing")
    p.add_argument("--tables", nargs="*", default=list(PAPER), choices=list(PAPER), help="tables to reproduce")
    p.add_argument("--models", nargs="*", default=None, help="only these models (paper names)")
    p.add_argument("--model-dir", help="folder holding the models as DIR/<hub name's last part>")
    p.add_argument("--data-dir", default=os.environ.get("CCPO_DATA_DIR"), help="benchmark data (CCPO_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("runs/reproduce_paper"))
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.models is not None:
        unknown = sorted(set(args.models) - set(MODELS))
        if unknown:
            raise SystemExit(f"unknown model(s) {unknown}; the paper's are {sorted(MODELS)}")
    wanted_models = {m for t in args.tables for m in PAPER[t]["rows"]} & set(args.models or MODELS)
    need_grpo = bool({"grpo_math500", "collaboration_diagnostic"} & set(args.tables))
    todo = []
    for r in recipes(args.smoke, args.model_dir, args.data_dir):
        if r.model not in wanted_models:
            continue
        in_grpo = "grpo_math500" in args.tables and r.model in PAPER["grpo_math500"]["rows"]
        in_diag = "collaboration_diagnostic" in args.tables and r.key.endswith("-grpo-ccpo") and \
            r.model in PAPER["collaboration_diagnostic"]["rows"]
        in_gspo = "gspo_reward_design" in args.tables and r.optimizer == "gspo"
        if (r.optimizer == "grpo" and need_grpo and (in_grpo or in_diag)) or in_gspo:
            todo.append(r)
    if args.dry_run:
        print(f"{len(todo)} runs ({'smoke, CPU' if args.smoke else 'paper budgets, 8 GPUs assumed'}):")
        for r in todo:
            print(f"  {r.key:<40} est {r.est_gpu_hours:7.1f} GPU-h   " + " ".join(r.overrides))
        total = sum(r.est_gpu_hours for r in todo)
        print(f"estimated total: {total:.0f} GPU-hours ({total / 8:.0f} h on one node of 8 GPUs)")
        return {"runs": [asdict(r) for r in todo], "est_gpu_hours": total}
    t0 = time.perf_counter()
    runs = {}
    for i, r in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {r.key}", flush=True)
        runs[r.key] = run_recipe(r, args.out, progress=not args.no_progress)
    text = tables(runs, list(args.tables))
    total = {"wall_s": time.perf_counter() - t0, "gpu_hours": sum(v["gpu_hours"] for v in runs.values())}
    header = (f"# Reproduction ({'CPU smoke: tiny model, 1 step, 2 problems per set' if args.smoke else 'paper budgets'})"
              f"\n\ncells: ours (paper, ours - paper), accuracy in %; total wall {total['wall_s'] / 60:.1f} min, "
              f"{total['gpu_hours']:.2f} GPU-hours\n\n")
    print("\n" + header + text)
    if int(os.environ.get("RANK", "0")) == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tables.md").write_text(header + text)
        (args.out / "results.json").write_text(json.dumps({"runs": runs, "total": total, "paper": PAPER},
                                                          indent=1, default=str))
    return {"runs": runs, "tables": text, **total}


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
