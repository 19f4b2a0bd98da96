"""``arith-warmstart``: a small starting policy built by the project's own code (no download).

Nobody can fetch a pretrained model in the CPU setting, so the default ``ccpo train`` starts from a tiny
Qwen2-style model (:mod:`ccpo_agents.models.tiny`) warm-started by a short supervised phase on the ``arith``
TRAIN split. The recipe is tuned so that the team solves some problems but not most, and so that the Solver
alone is clearly worse than the Solver given a good thought: the Thinker has something to contribute, and RL
has room to improve it.

SFT examples are exactly what the policies see at RL time: the observation comes from a
:class:`~ccpo_env.ThinkSolveEnv` with the recipe's templates, the prompt is
:func:`~ccpo_agents.policies.base.encode_prompt` of it with the role's system prompt, and the target is the
completion text plus ``<|im_end|>``: the oracle thought for the Thinker (``47*7=329, 29*3=87``), and
``\\boxed{<answer>}`` for the Solver (joint prompt with the oracle thought, and solo prompt). The loss covers
completion tokens only.

Typical use::

    path = build_warmstart()                          # cached: ~/.cache/ccpo/warmstart/<fingerprint>/
    model, tok = load_model_and_tokenizer("arith-warmstart")   # the same, through the loader hook

CLI: ``python -m ccpo_agents.models.warmstart [--force] [--eval]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ccpo_env import TEMPLATE_PRESETS, ThinkSolveEnv
from ccpo_env.data.arith import ArithDataset, arith_oracle_thought

__all__ = [
    "CODE_VERSION",
    "WARMSTART_NAMES",
    "SFTExample",
    "WarmStartRecipe",
    "build_warmstart",
    "default_cache_dir",
    "default_recipe",
    "evaluate_warmstart",
    "make_sft_examples",
    "resolve_warmstart",
    "sample_batches",
]

#: Bumped whenever the build code changes what a recipe produces (part of every fingerprint).
CODE_VERSION = "warmstart-v1"
#: Model names the loader resolves through this module.
WARMSTART_NAMES = ("arith-warmstart",)
EXAMPLE_KINDS = ("thinker", "solver_joint", "solver_solo")


@dataclass
class WarmStartRecipe:
    """Everything that decides the warm-started model (its :meth:`fingerprint` is the cache key).

    Attributes:
        model: a :data:`~ccpo_agents.models.tiny.TINY_PRESETS` name (default ``"tiny-small"``, ~3.3M params).
        model_dims: overrides of the preset's dimensions, e.g. ``{"num_layers": 2}`` (default none).
        vocab_size: tokenizer vocabulary (default 512; byte-level BPE with single-digit tokens).
        levels: ``arith`` levels; item ``i`` has level ``levels[i % len(levels)]``, so repeating a level
            weights it (default ``(1, 2)``).
        data_seed: seed of the arith TRAIN stream the examples are drawn from (default 0).
        num_problems: TRAIN problems drawn for the example pool; duplicates are dropped, so level 1 (under a
            thousand distinct problems) saturates early (default 4000).
        num_steps: optimizer steps (default 600).
        batch_size: examples per step (default 64).
        lr: peak AdamW learning rate (default 2e-3); linear warmup then cosine decay to 10%.
        warmup_steps: warmup steps (default 30).
        weight_decay: AdamW weight decay (default 0.01).
        max_grad_norm: gradient clipping (default 1.0).
        example_mix: sampling weight of each example type in a batch, ``thinker`` / ``solver_joint`` /
            ``solver_solo`` (default 0.3 / 1 / 0.15: the Thinker's facts are learnt fast, the Solver's
            arithmetic slowly; a few solo examples teach the solo format without making solo strong).
        thinker_noise: share of Thinker targets with one intermediate result corrupted (default 0.0).
            A deliberate imperfection knob: the Thinker then samples wrong thoughts at T=1 that RL can
            remove; greedy decoding is little affected.
        system_prompts: ``{role: system prompt}`` used in the prompts (default none, keeping prompts short).
            The trainer must use the same ones (``PolicyConfig(system_prompts=...)``).
        templates: a :data:`~ccpo_env.prompts.TEMPLATE_PRESETS` name (default ``"compact"``).
        seed: model initialisation and batch order (default 0).
        eval_problems: held-out TEST problems measured after the build for ``metrics.json`` (default 200;
            0 skips the evaluation).
        eval_seed: seed of the TEST stream used for that evaluation (default 1234).
    """

    model: str = "tiny-small"
    model_dims: dict[str, int] = field(default_factory=dict)
    vocab_size: int = 512
    levels: tuple[int, ...] = (1, 2)
    data_seed: int = 0
    num_problems: int = 4000
    num_steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    example_mix: dict[str, float] = field(
        default_factory=lambda: {"thinker": 0.3, "solver_joint": 1.0, "solver_solo": 0.15}
    )
    thinker_noise: float = 0.0
    system_prompts: dict[str, str] = field(default_factory=dict)
    templates: str = "compact"
    seed: int = 0
    eval_problems: int = 200
    eval_seed: int = 1234

    def __post_init__(self) -> None:
        from ccpo_agents.models.tiny import TINY_PRESETS

        self.levels = tuple(int(x) for x in self.levels)  # YAML/JSON give lists; keep the fingerprint stable
        if self.model not in TINY_PRESETS:
            raise ValueError(f"unknown model preset {self.model!r}; valid: {sorted(TINY_PRESETS)}")
        if self.templates not in TEMPLATE_PRESETS:
            raise ValueError(f"unknown templates {self.templates!r}; valid: {sorted(TEMPLATE_PRESETS)}")
        bad = set(self.example_mix) - set(EXAMPLE_KINDS)
        if bad or not any(w > 0 for w in self.example_mix.values()):
            raise ValueError(
                f"example_mix needs positive weights for some of {list(EXAMPLE_KINDS)}, got {self.example_mix}"
            )
        if self.num_steps < 1 or self.batch_size < 1:
            raise ValueError("num_steps and batch_size must be >= 1")
        if not 0.0 <= self.thinker_noise <= 1.0:
            raise ValueError(f"thinker_noise must be in [0, 1], got {self.thinker_noise}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        d = dataclasses.asdict(self)
        d["levels"] = list(self.levels)
        return d

    def fingerprint(self) -> str:
        """16 hex digits of a SHA-256 over the sorted fields and :data:`CODE_VERSION`: stable across processes."""
        blob = json.dumps({"code": CODE_VERSION, **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> WarmStartRecipe:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def default_recipe() -> WarmStartRecipe:
    """The recipe behind the name ``"arith-warmstart"`` (a function so tests can monkeypatch it)."""
    return WarmStartRecipe()


def default_cache_dir() -> Path:
    """``$CCPO_CACHE_DIR/warmstart`` if set, else ``~/.cache/ccpo/warmstart``."""
    root = os.environ.get("CCPO_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "ccpo") / "warmstart"


# --------------------------------------------------------------------------------------------------
# SFT examples
# --------------------------------------------------------------------------------------------------
@dataclass
class SFTExample:
    """One supervised example: ``prompt_ids`` (what the policy feeds the model) + ``completion_ids``."""

    kind: str
    prompt_ids: list[int]
    completion_ids: list[int]
    observation: str
    target: str
    noisy: bool = False


def _corrupt(thought: str, rng: random.Random) -> str:
    """Change one digit of one intermediate result (never making it equal to the original)."""
    steps = thought.split(", ")
    k = rng.randrange(len(steps))
    lhs, value = steps[k].split("=")
    pos = rng.randrange(len(value))
    digits = [d for d in "0123456789" if d != value[pos] and not (pos == 0 and d == "0" and len(value) > 1)]
    steps[k] = f"{lhs}={value[:pos]}{rng.choice(digits)}{value[pos + 1 :]}"
    return ", ".join(steps)


def make_sft_examples(
    recipe: WarmStartRecipe, tokenizer: Any, num_problems: int | None = None, *, split: str = "train"
) -> list[SFTExample]:
    """The example pool: every example type for each distinct ``split`` problem among the first
    ``num_problems`` (default ``recipe.num_problems``) of the recipe's level mix.

    Per problem, in order: ``thinker``, ``solver_joint``, ``solver_solo``, and with ``thinker_noise > 0`` a
    second ``thinker`` example whose target has one corrupted result (``noisy=True``). Observations come from
    a real :class:`~ccpo_env.ThinkSolveEnv`; prompts are rendered as
    :func:`~ccpo_agents.policies.base.encode_prompt` does (tokenised in one batch).
    """
    from ccpo_agents.policies.base import render_prompt

    n = recipe.num_problems if num_problems is None else num_problems
    data = ArithDataset(split, list(recipe.levels), seed=recipe.data_seed, size=n)
    env = ThinkSolveEnv(dataset=data, templates=TEMPLATE_PRESETS[recipe.templates])
    rows: list[tuple[str, bool, str, str, str]] = []  # kind, noisy, observation, system prompt, target
    seen: set[str] = set()
    for i in range(n):
        problem = data[i]
        if problem.problem in seen:  # level 1 has under a thousand distinct problems: no duplicates
            continue
        seen.add(problem.problem)
        thought = arith_oracle_thought(problem)
        targets = {"thinker": thought, "solver_joint": f"\\boxed{{{problem.answer}}}"}
        targets["solver_solo"] = targets["solver_joint"]
        for kind in EXAMPLE_KINDS:
            env.reset(seed=0, options={"problem": i, "remove": ["thinker"] if kind == "solver_solo" else []})
            if kind == "solver_joint":
                env.step(thought)  # the Solver sees the thought through the env, as at RL time
            role = "thinker" if kind == "thinker" else "solver"
            rows.append((kind, False, str(env.observe(role)), recipe.system_prompts.get(role) or "", targets[kind]))
        if recipe.thinker_noise > 0 and thought:
            rng = random.Random(f"noise|{recipe.seed}|{problem.problem}")  # str seeds: no hash salt
            rows.append(("thinker", True, *rows[-3][2:4], _corrupt(thought, rng)))
    texts = [render_prompt(tokenizer, obs, sp or None) for _, _, obs, sp, _ in rows]
    templated = {t for _, t in texts}
    if len(templated) != 1:  # cannot happen for one tokenizer; guards the batched call below
        raise RuntimeError("mixed chat-templated and plain prompts")
    prompts = tokenizer([t for t, _ in texts], add_special_tokens=not templated.pop())["input_ids"]
    completions = tokenizer([r[-1] + tokenizer.eos_token for r in rows], add_special_tokens=False)["input_ids"]
    return [
        SFTExample(kind, list(p), list(c), obs, target, noisy)
        for (kind, noisy, obs, _, target), p, c in zip(rows, prompts, completions)
    ]


def sample_batches(recipe: WarmStartRecipe, pool: Sequence[SFTExample]) -> list[list[SFTExample]]:
    """``num_steps`` batches drawn from ``pool``: the type by ``example_mix``, then a uniform example of it
    (a noisy Thinker example with probability ``thinker_noise``). Seeded by ``recipe.seed``."""
    rng = random.Random(f"batches|{recipe.seed}")
    by_kind: dict[tuple[str, bool], list[SFTExample]] = {}
    for e in pool:
        by_kind.setdefault((e.kind, e.noisy), []).append(e)
    kinds = [k for k in EXAMPLE_KINDS if recipe.example_mix.get(k, 0) > 0 and (k, False) in by_kind]
    weights = [recipe.example_mix[k] for k in kinds]
    batches = []
    for _ in range(recipe.num_steps):
        batch = []
        for kind in rng.choices(kinds, weights, k=recipe.batch_size):
            noisy = kind == "thinker" and (kind, True) in by_kind and rng.random() < recipe.thinker_noise
            batch.append(rng.choice(by_kind[(kind, noisy)]))
        batches.append(batch)
    return batches


def _collate(batch: Sequence[SFTExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` and ``labels`` that are -100 outside the completion."""
    width = max(len(e.prompt_ids) + len(e.completion_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, e in enumerate(batch):
        seq = e.prompt_ids + e.completion_ids
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        labels[r, len(e.prompt_ids) : len(seq)] = torch.tensor(e.completion_ids)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def _build_model(recipe: WarmStartRecipe) -> tuple[Any, Any]:
    from ccpo_agents.models.tiny import TINY_PRESETS, build_tiny_model, train_tokenizer

    tokenizer = train_tokenizer(vocab_size=recipe.vocab_size)
    dims = {**TINY_PRESETS[recipe.model], **recipe.model_dims}
    return build_tiny_model(tokenizer, seed=recipe.seed, **dims), tokenizer


def _lr_factor(step: int, recipe: WarmStartRecipe) -> float:
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    t = (step - recipe.warmup_steps) / max(1, recipe.num_steps - recipe.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def train_sft(
    model: Any,
    tokenizer: Any,
    recipe: WarmStartRecipe,
    *,
    progress: bool = True,
    log_every: int = 10,
    callback: Callable[[int, Any], None] | None = None,
) -> list[dict[str, float]]:
    """Run the recipe's SFT phase on ``model`` in place; returns the loss curve (mean loss per ``log_every``).

    ``callback(step, model)`` runs after every ``log_every`` steps (e.g. to evaluate along the way).
    """
    batches = sample_batches(recipe, make_sft_examples(recipe, tokenizer))
    pad_id = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, recipe))
    curve: list[dict[str, float]] = []
    window: list[float] = []
    model.train()
    bar = tqdm(range(recipe.num_steps), desc="warm-start SFT", disable=not progress, leave=False)
    for step in bar:
        batch = _collate(batches[step], pad_id)
        loss = model(**batch).loss  # transformers shifts labels and averages over completion tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        scheduler.step()
        window.append(loss.item())
        if len(window) == log_every or step == recipe.num_steps - 1:
            curve.append({"step": step + 1, "loss": sum(window) / len(window)})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}")
            window = []
            if callback is not None:
                callback(step + 1, model)
                model.train()
    model.eval()
    return curve


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
def _thinker_correct(thought: str, steps: Sequence[str]) -> bool:
    """The thought equals the oracle one or contains every intermediate ``x*y=v`` (spaces ignored)."""
    flat = thought.replace(" ", "")
    return all(s.replace(" ", "") in flat for s in steps)


def evaluate_warmstart(
    model: Any,
    tokenizer: Any,
    recipe: WarmStartRecipe,
    *,
    num_problems: int | None = None,
    temperatures: Sequence[float | None] = (1.0, None),
    max_new_tokens: int = 32,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Accuracies on held-out arith TEST problems of the recipe's level mix, through HFPolicy + rollout.

    Per temperature (``None`` = greedy; keys ``"T=1.0"``, ``"greedy"``): ``joint`` (own Thinker -> own
    Solver), ``oracle`` (Solver given the oracle thought), ``solo`` (Thinker removed), ``thinker`` (share of
    thoughts holding every correct intermediate result), and the same per level under ``by_level``.
    """
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.hf import HFPolicy
    from ccpo_env.rollout import rollout

    n = recipe.eval_problems if num_problems is None else num_problems
    data = ArithDataset("test", list(recipe.levels), seed=recipe.eval_seed, size=n)
    env = ThinkSolveEnv(dataset=data, templates=TEMPLATE_PRESETS[recipe.templates])
    oracle: dict[str, str] = {}
    for i in range(n):
        env.reset(seed=0, options={"problem": i})
        oracle[str(env.observe("thinker"))] = arith_oracle_thought(data[i])

    def oracle_thinker(observations: list[str]) -> list[str]:
        return [oracle[o] for o in observations]

    results: dict[str, dict[str, Any]] = {}
    for temp in temperatures:
        gen = GenerationConfig(
            max_new_tokens=max_new_tokens, temperature=temp or 1.0, do_sample=temp is not None
        )
        policies = {
            role: HFPolicy(model, tokenizer, role=role, system_prompt=recipe.system_prompts.get(role) or None,
                           generation=gen)
            for role in ("thinker", "solver")
        }  # fmt: skip
        team = rollout(env, policies, list(range(n)), counterfactuals=[["thinker"]], seed=seed)
        with_oracle = rollout(env, {**policies, "thinker": oracle_thinker}, list(range(n)), seed=seed)
        rows: dict[str, list[tuple[int, bool]]] = {"joint": [], "solo": [], "thinker": [], "oracle": []}
        for ep in team:
            level = data[ep.problem_index].extras["level"]
            if ep.removed:
                rows["solo"].append((level, ep.correct))
            else:
                rows["joint"].append((level, ep.correct))
                steps = data[ep.problem_index].extras["steps"]
                rows["thinker"].append((level, _thinker_correct(ep.turns[0].action, steps)))
        rows["oracle"] = [(data[ep.problem_index].extras["level"], ep.correct) for ep in with_oracle]
        key = "greedy" if temp is None else f"T={temp}"
        results[key] = {k: _mean(v) for k, v in rows.items()}
        results[key]["by_level"] = {
            lv: {k: _mean([r for r in v if r[0] == lv]) for k, v in rows.items()}
            for lv in sorted(set(recipe.levels))
        }
    return results


def _mean(rows: list[tuple[int, bool]]) -> float:
    return round(sum(c for _, c in rows) / len(rows), 4) if rows else float("nan")


def format_table(metrics: dict[str, dict[str, Any]]) -> str:
    """The accuracy table (a-d) as plain text, one column per temperature."""
    cols = list(metrics)
    names = [("joint", "(a) joint"), ("oracle", "(b) Solver + oracle thought"), ("solo", "(c) Solver alone"),
             ("thinker", "(d) Thinker correct")]  # fmt: skip
    lines = [f"{'':30}" + "".join(f"{c:>10}" for c in cols)]
    lines += [f"{label:30}" + "".join(f"{metrics[c][k]:>10.1%}" for c in cols) for k, label in names]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Build and cache
# --------------------------------------------------------------------------------------------------
def build_warmstart(
    recipe: WarmStartRecipe | None = None,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build (or find in the cache) the warm-started model and return its folder.

    The folder is ``<cache_dir>/<recipe.fingerprint()>`` with ``cache_dir`` defaulting to
    :func:`default_cache_dir`. It holds the model and tokenizer (``save_pretrained``: load with
    ``Auto*.from_pretrained``), ``recipe.json`` and ``metrics.json`` (SFT loss curve, build time, held-out
    accuracies). It is written to a temporary folder first and moved into place with ``os.replace``, so a
    folder that exists is complete; a second call returns it at once unless ``force``.
    """
    recipe = recipe if recipe is not None else default_recipe()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / recipe.fingerprint()
    if (target / "metrics.json").is_file() and not force:
        return target
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(recipe.seed)
        model, tokenizer = _build_model(recipe)
        curve = train_sft(model, tokenizer, recipe, progress=progress)
        train_s = time.perf_counter() - t0
        accuracy = evaluate_warmstart(model, tokenizer, recipe) if recipe.eval_problems > 0 else {}
    metrics = {
        "fingerprint": recipe.fingerprint(), "code_version": CODE_VERSION,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(train_s, 2), "build_seconds": round(time.perf_counter() - t0, 2),
        "torch_threads": torch.get_num_threads(), "loss_curve": curve, "accuracy": accuracy,
    }  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if target.exists():  # force=True, or a half-written folder from an older layout: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "metrics.json").is_file():  # not a concurrent builder winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_warmstart(name: str, *, progress: bool = True) -> Path:
    """The folder for a warm-start model name (see :data:`WARMSTART_NAMES`), built on first use."""
    if name not in WARMSTART_NAMES:
        raise ValueError(f"unknown warm-start model {name!r}; valid names: {list(WARMSTART_NAMES)}")
    return build_warmstart(default_recipe(), progress=progress)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build (or reuse) the default warm start; print the build time and the accuracy table."""
    parser = argparse.ArgumentParser(prog="python -m ccpo_agents.models.warmstart", description=main.__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache has this recipe")
    parser.add_argument(
        "--eval", action="store_true", help="evaluate the saved model again (else: metrics.json)"
    )
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $CCPO_CACHE_DIR/warmstart)")
    parser.add_argument("--eval-problems", type=int, default=None, help="TEST problems for --eval")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = default_recipe()
    t0 = time.perf_counter()
    path = build_warmstart(recipe, cache_dir=args.cache_dir, force=args.force)
    elapsed = time.perf_counter() - t0
    metrics = json.loads((path / "metrics.json").read_text())
    print(f"warm start: {path}")
    print(f"this call: {elapsed:.1f}s; build (when made): {metrics['build_seconds']}s "
          f"(SFT {metrics['train_seconds']}s), {metrics['num_parameters']:,} parameters")  # fmt: skip
    accuracy = metrics["accuracy"]
    if args.eval:
        from ccpo_agents.models.tiny import load_tiny

        model, tokenizer = load_tiny(path)
        accuracy = evaluate_warmstart(model, tokenizer, recipe, num_problems=args.eval_problems)
    if accuracy:
        print(format_table(accuracy))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
