"""TRL's ``GRPOTrainer`` and the ccpo trainer side by side on the same single-agent job, alternating.

The job: one model answers ``arith`` problems alone (ccpo: ``env.topology=voting`` with one voter and
``shared`` credit, which is exactly single-agent GRPO: the team's outcome is that one answer). Both trainers
get the same model folder and tokenizer, the same prompt text (the env's observation as one user message,
rendered by the tokenizer's chat template), group size, max new tokens, temperature, learning rate, loss,
reward (1 right / 0 wrong, our verifier) and number of steps:

- ``--loss dr_grpo``: TRL ``loss_type="dr_grpo", scale_rewards="none"``; ccpo ``algo.estimator.name=dr_grpo``
  with ``algo.loss.agg=seq-mean-token-sum-norm`` and ``norm_len = max_new_tokens`` (the same constant).
- ``--loss grpo``: TRL ``loss_type="grpo", scale_rewards="group"``; ccpo ``grpo`` with ``seq-mean-token-mean``.

Both: no KL (beta 0), one update per generation (ratio 1, clip 0.2), Adam(W) with no weight decay, constant lr.
They alternate step by step in one process (each of our steps runs inside a TRL callback between two TRL
steps), so machine load hits both alike. Reported: seconds per step (median, first step dropped), generated
and trained tokens per second (trained = completion tokens that get a gradient), held-out accuracy after the
steps (the same ccpo evaluator, 4 samples at T=1 per problem, arith test split, with its standard
error over problems), and the ratios.
Then the two-agent Think-Solve job with CCPO credit that TRL cannot express, for the record.

Run::

    python benchmarks/bench_vs_trl.py                    # needs `pip install trl` (ccpo[trl])
    python benchmarks/bench_vs_trl.py --steps 4 --eval-problems 20 --quick
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine_info, write_json  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="arith-warmstart", help="registered model or model folder (default: the "
                   "shipped arith warm start, so held-out accuracy is not 0)")
    p.add_argument("--steps", type=int, default=30, help="training steps of each trainer (default 30)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    p.add_argument("--group", type=int, default=4, help="completions per prompt (default 4)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--loss", choices=("dr_grpo", "grpo"), default="dr_grpo")
    p.add_argument("--eval-problems", type=int, default=200, help="held-out arith test problems (default 200)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-team", action="store_true", help="skip the two-agent run")
    p.add_argument("--quick", action="store_true", help="do not write benchmarks/results/bench_vs_trl.json")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_vs_trl.json")
    return p.parse_args(argv)


def ccpo_overrides(args: argparse.Namespace, model: str, out: Path, *, team: bool = False) -> list[str]:
    """The ccpo config of the job (``team``: the two-agent Think-Solve job with CCPO credit instead)."""
    common = [f"policy.model={model}", f"policy.generation.max_new_tokens={args.max_new_tokens}",
              "policy.generation.temperature=1.0", f"optim.lr={args.lr}", "optim.max_grad_norm=1.0",
              f"rollout.prompts_per_step={args.prompts}", f"rollout.num_thoughts={args.group}",
              "env.reward_incorrect=0.0", f"train.seed={args.seed}", f"train.output_dir={out}",
              "train.progress=false", "train.tensorboard=false", "train.plot=false", "train.steps=100000",
              f"eval.limit={args.eval_problems}", "eval.num_samples=4", "eval.diagnostic=false", "eval.split=test"]
    if team:
        # group = thoughts per prompt, 2 Solver answers each (ccpo_tree needs m >= 2), 4 solo answers
        return [*common, "credit.method=ccpo_tree", "rollout.answers_per_thought=2", "rollout.num_solo=4"]
    loss = (["algo.estimator.name=dr_grpo", "algo.loss.agg=seq-mean-token-sum-norm",
             f"algo.loss.norm_len={args.max_new_tokens}"] if args.loss == "dr_grpo"
            else ["algo.estimator.name=grpo", "algo.loss.agg=seq-mean-token-mean"])
    return [*common, "env.topology=voting", "env.num_voters=1", "credit.method=shared", *loss]


def trl_trainer(args: argparse.Namespace, model_dir: Path, out: Path, prompts: list[Any], answers: list[str],
                counter: dict[str, int]) -> Any:
    """TRL's GRPOTrainer on the same job; ``counter`` accumulates the completion tokens it generates."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from ccpo_env.verify import make_trl_reward

    verifier = make_trl_reward("answer")

    def reward(prompts: list[Any], completions: list[Any], completion_ids: list[list[int]], **kw: Any) -> list[float]:
        counter["tokens"] += sum(len(c) for c in completion_ids)
        return verifier(prompts=prompts, completions=completions, **kw)

    reward.__name__ = verifier.__name__
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    batch = args.prompts * args.group
    config = GRPOConfig(
        output_dir=str(out), use_cpu=True, report_to="none", save_strategy="no", logging_steps=args.steps,
        disable_tqdm=True,
        max_steps=args.steps, per_device_train_batch_size=batch, num_generations=args.group,
        generation_batch_size=batch, max_completion_length=args.max_new_tokens, temperature=1.0,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, beta=0.0, num_iterations=1, epsilon=0.2, loss_type=args.loss,
        scale_rewards="none" if args.loss == "dr_grpo" else "group", seed=args.seed, data_seed=args.seed,
        disable_dropout=True, bf16=False, dataloader_num_workers=0,
    )
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts], "answer": answers})
    return GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], train_dataset=data, args=config)


def summary(times: list[float], gen: list[int], trained: list[int]) -> dict[str, Any]:
    """Median seconds per step (first step dropped: warm-up) and tokens per second over the kept steps."""
    keep = slice(1, None) if len(times) > 2 else slice(None)
    t, g, tr = times[keep], gen[keep], trained[keep]
    q = statistics.quantiles(t, n=4) if len(t) >= 4 else [min(t), statistics.median(t), max(t)]
    return {"steps": len(times), "s_per_step": statistics.median(t), "s_per_step_q1": q[0], "s_per_step_q3": q[-1],
            "generated_tokens_per_s": sum(g) / sum(t), "trained_tokens_per_s": sum(tr) / sum(t),
            "generated_tokens": int(sum(gen)), "trained_tokens": int(sum(trained))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback

    from ccpo_agents.config import load_config
    from ccpo_agents.envs import build_env
    from ccpo_agents.evaluation import evaluate_checkpoint
    from ccpo_agents.models.registry import resolve_model
    from ccpo_agents.trainer import Trainer

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_vs_trl_"))
    try:
        src = resolve_model(args.model)
        folder = Path(src.path) if src.path is not None else (src.entry.resolve_folder() if src.entry.folder else None)
        model_dir = work / "model"
        if folder is not None:
            shutil.copytree(folder, model_dir)
        else:  # a built (random-init) preset: save it as an HF folder so both load the same files
            m, tok = src.entry.build_model(args.seed)
            m.save_pretrained(model_dir)
            tok.save_pretrained(model_dir)
        cfg = load_config(None, ccpo_overrides(args, str(model_dir), work / "ccpo"))
        env = build_env(cfg.env)  # the training env: its observations are the prompts TRL gets too
        n = min(len(env.dataset), 4096)
        prompts, answers = [], []
        for i in range(n):
            env.reset(options={"problem": i})
            prompts.append(env.observe(env.agent_selection))
            answers.append(env.dataset[i].answer)

        ours = Trainer(cfg)
        counter = {"tokens": 0}
        trl = trl_trainer(args, model_dir, work / "trl", prompts, answers, counter)
        rec: dict[str, dict[str, list]] = {k: {"time": [], "gen": [], "trained": []} for k in ("trl", "ccpo")}

        class Alternate(TrainerCallback):
            """Times each TRL step, then runs one ccpo step between TRL steps."""

            def on_step_begin(self, a, state, control, **kw):
                self.t0, self.tok0 = time.perf_counter(), counter["tokens"]

            def on_step_end(self, a, state, control, **kw):
                rec["trl"]["time"].append(time.perf_counter() - self.t0)
                toks = counter["tokens"] - self.tok0
                rec["trl"]["gen"].append(toks)
                rec["trl"]["trained"].append(toks)  # every completion token is in the loss (nothing masked)
                t0 = time.perf_counter()
                h = ours.train_step()  # (train() would also write a checkpoint each call)
                rec["ccpo"]["time"].append(time.perf_counter() - t0)
                rec["ccpo"]["gen"].append(int(h["perf/generated_tokens"]))
                rec["ccpo"]["trained"].append(int(h["perf/trained_tokens"]))

        trl.add_callback(Alternate())
        trl.train()
        trl.save_model(str(work / "trl_model"))
        trl.processing_class.save_pretrained(str(work / "trl_model"))

        before = evaluate_checkpoint(str(model_dir), config=cfg, progress=False)["arith"]
        acc = {"untrained": before, "ccpo": ours.evaluate(progress=False)["arith"],
               "trl": evaluate_checkpoint(str(work / "trl_model"), config=cfg, progress=False)["arith"]}
        res: dict[str, Any] = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "machine": machine_info(argparse.Namespace(device="cpu", dtype="float32"))}
        for k in ("trl", "ccpo"):
            res[k] = {**summary(rec[k]["time"], rec[k]["gen"], rec[k]["trained"]),
                      "heldout_acc": acc[k]["pass@1"], "heldout_acc_se": acc[k]["pass@1_se"]}
        res["untrained"] = {"heldout_acc": before["pass@1"], "heldout_acc_se": before["pass@1_se"]}
        t, c = res["trl"], res["ccpo"]
        res["ratios"] = {
            "s_per_step_trl_over_ccpo": t["s_per_step"] / c["s_per_step"],
            "generated_tokens_per_s_ccpo_over_trl": c["generated_tokens_per_s"] / t["generated_tokens_per_s"],
            "trained_tokens_per_s_ccpo_over_trl": c["trained_tokens_per_s"] / t["trained_tokens_per_s"],
            "heldout_acc_ccpo_minus_trl": c["heldout_acc"] - t["heldout_acc"],
            "heldout_acc_diff_se": math.hypot(c["heldout_acc_se"], t["heldout_acc_se"]),
        }
        if not args.no_team:
            team_cfg = load_config(None, ccpo_overrides(args, str(model_dir), work / "team", team=True))
            team = Trainer(team_cfg)
            times, gen, trained = [], [], []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                h = team.train_step()
                times.append(time.perf_counter() - t0)
                gen.append(int(h["perf/generated_tokens"]))
                trained.append(int(h["perf/trained_tokens"]))
            ev = team.evaluate(progress=False)["arith"]
            res["team_ccpo"] = {**summary(times, gen, trained), "heldout_acc": ev["pass@1"],
                                "heldout_acc_se": ev["pass@1_se"]}
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(res: dict[str, Any]) -> str:
    def pct(row: dict[str, Any]) -> str:
        return f"{100 * row['heldout_acc']:.1f}% ±{100 * row['heldout_acc_se']:.1f}"

    rows = [("TRL GRPOTrainer", res["trl"]), ("ccpo Trainer", res["ccpo"])]
    if "team_ccpo" in res:
        rows.append(("ccpo Think-Solve + CCPO (2 agents)", res["team_ccpo"]))
    head = f"{'trainer':<36}{'s/step (q1-q3)':>22}{'gen tok/s':>11}{'trained tok/s':>15}{'held-out acc':>15}"
    lines = [head, "-" * len(head)]
    for name, r in rows:
        spread = f"{r['s_per_step']:.3f} ({r['s_per_step_q1']:.3f}-{r['s_per_step_q3']:.3f})"
        lines.append(f"{name:<36}{spread:>22}{r['generated_tokens_per_s']:>11.0f}{r['trained_tokens_per_s']:>15.0f}"
                     f"{pct(r):>15}")
    lines.append(f"{'(untrained model)':<36}{'':>22}{'':>11}{'':>15}{pct(res['untrained']):>15}")
    q = res["ratios"]
    lines += ["", f"TRL s/step / ccpo s/step: {q['s_per_step_trl_over_ccpo']:.2f}x   "
              f"ccpo/TRL generated tok/s: {q['generated_tokens_per_s_ccpo_over_trl']:.2f}x   "
              f"trained tok/s: {q['trained_tokens_per_s_ccpo_over_trl']:.2f}x   "
              f"held-out acc ccpo - TRL: {100 * q['heldout_acc_ccpo_minus_trl']:+.1f} ±{100 * q['heldout_acc_diff_se']:.1f} pts",
              "goal (no slower per generated token, same accuracy within 2 s.e.): "
              + ("met" if q["generated_tokens_per_s_ccpo_over_trl"] >= 1.0
                 and abs(q["heldout_acc_ccpo_minus_trl"]) <= 2 * q["heldout_acc_diff_se"] + 1e-12 else "NOT met")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        import trl
    except ImportError:
        raise SystemExit("bench_vs_trl needs TRL: pip install 'ccpo[trl]' (trl==1.16.0)") from None
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames TRL still calls
    t0 = time.perf_counter()
    res = run(args)
    res["trl_version"] = trl.__version__
    res["wall_s"] = time.perf_counter() - t0
    print(table(res))
    if not args.quick:
        write_json(args.out, res)
    else:
        print(json.dumps(res["ratios"], indent=1))
    return res


if __name__ == "__main__":
    main()
