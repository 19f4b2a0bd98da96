"""``arith-warmstart``: a small starting policy built by the project's own code (no download).

Nothing can be downloaded in the CPU setting, so the default ``ccpo train`` starts from a tiny Qwen2-style
model (:mod:`ccpo_agents.models.tiny`) warm-started by a short supervised phase on the ``arith`` TRAIN split,
tuned so that the team solves some problems but not all, and the Solver alone is far worse than the Solver
given a good thought: the Thinker has something to contribute and RL has room to improve it.

SFT examples are exactly what the policies see at RL time: the observation comes from a
:class:`~ccpo_env.ThinkSolveEnv` with the recipe's templates, the prompt is what
:func:`~ccpo_agents.policies.base.encode_prompt` makes of it with the role's system prompt, and the target is
the completion plus ``<|im_end|>``: the oracle thought (``7*8=56``) for the Thinker, ``\\boxed{<answer>}``
for the Solver (joint prompt with the oracle thought, and solo prompt). Loss on completion tokens only.

Typical use::

    path = build_warmstart()        # cached in ~/.cache/ccpo/warmstart/<fingerprint>/ (or $CCPO_CACHE_DIR)
    model, tok = load_model_and_tokenizer("arith-warmstart")   # the same through the loader hook

``"arith-warmstart-freeride"`` continues ``"arith-warmstart"`` with the free-riding probe's one-operation items
(the Solver alone, and after a distractor thought); the probe and the voting study of
``benchmarks/credit_assignment.py`` start from it.

CLI: ``python -m ccpo_agents.models.warmstart [--name NAME] [--force] [--eval]`` prints the build time and
accuracy table.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ccpo_agents.models.sft import SFTConfig, SFTExample, train_sft
from ccpo_env import TEMPLATE_PRESETS, ThinkSolveEnv
from ccpo_env.data.arith import (
    ArithDataset,
    arith_corrupt_thought,
    arith_oracle_thought,
    arith_thought_correct,
)
from ccpo_env.topology import SOLVER, THINKER

__all__ = [
    "CODE_VERSION", "EXAMPLE_KINDS", "WARMSTART_NAMES", "SFTExample", "WarmStartRecipe", "build_warmstart",
    "default_cache_dir", "default_recipe", "evaluate_warmstart", "make_sft_examples",
    "resolve_warmstart", "sample_batches", "train_warmstart_sft",
]  # fmt: skip

#: Bumped whenever the build code changes what a recipe produces (part of every fingerprint).
CODE_VERSION = "warmstart-v1"
#: Model names the loader resolves through this module.
WARMSTART_NAMES = ("arith-warmstart", "arith-warmstart-freeride", "arith-warmstart-sepo")
EXAMPLE_KINDS = ("thinker", "solver_joint", "solver_solo", "solver_easy", "rater")
#: The package folder holding shipped warm-start weights (``weights/<name>/``, written by ``--ship``).
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"


@dataclass
class WarmStartRecipe:
    """Everything that decides the warm-started model; :meth:`fingerprint` is its cache key.

    Measured with the defaults on 2 CPU cores: ~160 s to build; at T=1 the team solves ~half of the held-out
    problems, the Solver ~85% given the oracle thought and <10% alone (see ``metrics.json``).

    Attributes:
        model: a :data:`~ccpo_agents.models.tiny.TINY_PRESETS` name (default ``"tiny-small"``: 4 layers,
            4 heads, 2 KV heads).
        model_dims: overrides of the preset's dimensions (default hidden_size 96, intermediate 288: 0.49M
            parameters; on 2 cores a smaller model learns the task in fewer seconds and samples faster).
        vocab_size: tokenizer vocabulary (default 512; byte-level BPE with single-digit tokens).
        levels: ``arith`` levels, item ``i`` at level ``levels[i % len(levels)]`` (default ``(1,)``: level 2's
            720 products and 3-digit sums are not learnt in the time budget and would add only failures).
        data_seed: seed of the arith TRAIN stream (default 0).
        num_problems: TRAIN problems drawn for the example pool, duplicates dropped (default 4000; level 1
            has under a thousand distinct ones).
        num_steps: optimizer steps (default 2000: the Solver's addition generalises to unseen problems
            abruptly, after ~1200 to ~1800 steps depending on the seed; 2000 clears that for seeds 0-2).
        batch_size: examples per step (default 64).
        lr: peak AdamW learning rate (default 3e-3); linear warmup, then cosine decay to 10%.
        warmup_steps: warmup steps (default 50).
        weight_decay: AdamW weight decay (default 0.5: makes that generalisation come about twice as early
            as 0.01, as in "grokking"; 1.0 was worse).
        max_grad_norm: gradient clipping (default 1.0).
        example_mix: sampling weights of the example types ``thinker`` / ``solver_joint`` / ``solver_solo`` /
            ``solver_easy`` (default 0.3 / 1 / 0.05 / 0: the Thinker's 64 products are learnt fast, the
            Solver's addition slowly; a few solo examples teach the solo format, more would teach solving level
            1 alone). ``solver_easy`` items are the free-riding probe's one-operation items (``Compute 40+1.``,
            ``arith`` variant ``"freeride"``), half with the Thinker removed and half after a distractor
            thought: the Solver learns to do them alone, whatever the Thinker says, as the probe assumes
            (``"arith-warmstart-freeride"``).
        thinker_noise: share of Thinker targets with one intermediate result corrupted (default 0.4). A
            deliberate imperfection: at T=1 the Thinker writes a wrong product ~40% of the time (greedy: ~2%),
            which is what RL with per-thought credit should remove. 0.5 also spoils greedy thoughts.
        system_prompts: ``{role: system prompt}`` in the prompts (default none: short prompts; the trainer's
            CPU default uses none too). RL must use the same (``PolicyConfig.system_prompts``).
        templates: a :data:`~ccpo_env.prompts.TEMPLATE_PRESETS` name (default ``"compact"``).
        seed: model initialisation and batch order (default 0).
        eval_problems: held-out TEST problems evaluated into ``metrics.json`` (default 200; 0 = skip).
        eval_seed: seed of that TEST stream (default 1234).
        init_from: a :data:`WARMSTART_NAMES` name whose built model this recipe goes on training (default
            None: a fresh model from ``model``/``model_dims``/``vocab_size``, which are then ignored). The
            parent's fingerprint is part of this recipe's, so a changed parent rebuilds the child.
        rating_template: the SEPO rating prompt preset of ``rater`` examples (default ``"compact"``: a fifth of
            the tokens of the full instructions; RL must use the same, ``credit.rating_template=compact``).
        rating_check: teach the checked rating reply (the right intermediate results, ``good``/``bad`` for the
            thought, then the JSON; see :mod:`ccpo_agents.models.rating_examples`) instead of the JSON alone
            (default False). RL's ``credit.rating_max_new_tokens`` must leave room for it (~30 tokens).
    """

    model: str = "tiny-small"
    model_dims: dict[str, int] = field(default_factory=lambda: {"hidden_size": 96, "intermediate": 288})
    vocab_size: int = 512
    levels: tuple[int, ...] = (1,)
    data_seed: int = 0
    num_problems: int = 4000
    num_steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.5
    max_grad_norm: float = 1.0
    example_mix: dict[str, float] = field(
        default_factory=lambda: {"thinker": 0.3, "solver_joint": 1.0, "solver_solo": 0.05}
    )
    thinker_noise: float = 0.4
    system_prompts: dict[str, str] = field(default_factory=dict)
    templates: str = "compact"
    seed: int = 0
    eval_problems: int = 200
    eval_seed: int = 1234
    init_from: str | None = None
    rating_template: str = "compact"
    rating_check: bool = False

    def __post_init__(self) -> None:
        from ccpo_agents.models.tiny import TINY_PRESETS

        # Normalise types so that equal recipes serialise (and fingerprint) equally: (1,) == [1], 1 == 1.0.
        self.levels = tuple(int(x) for x in self.levels)
        for name in ("lr", "weight_decay", "max_grad_norm", "thinker_noise"):
            setattr(self, name, float(getattr(self, name)))
        self.example_mix = {k: float(v) for k, v in self.example_mix.items()}
        self.model_dims = {k: int(v) for k, v in self.model_dims.items()}
        dims = sorted(TINY_PRESETS.get(self.model, {}))
        checks = [
            (self.model in TINY_PRESETS, f"unknown model {self.model!r}; valid: {sorted(TINY_PRESETS)}"),
            (set(self.model_dims) <= set(dims), f"model_dims {sorted(self.model_dims)}: valid are {dims}"),
            (self.templates in TEMPLATE_PRESETS,
             f"unknown templates {self.templates!r}; valid: {sorted(TEMPLATE_PRESETS)}"),
            (set(self.example_mix) <= set(EXAMPLE_KINDS) and any(w > 0 for w in self.example_mix.values()),
             f"example_mix needs positive weights for some of {list(EXAMPLE_KINDS)}, got {self.example_mix}"),
            (self.num_steps >= 1 and self.batch_size >= 1, "num_steps and batch_size must be >= 1"),
            (0.0 <= self.thinker_noise <= 1.0, f"thinker_noise must be in [0, 1], got {self.thinker_noise}"),
            (self.init_from is None or self.init_from in WARMSTART_NAMES,
             f"init_from must be None or one of {list(WARMSTART_NAMES)}, got {self.init_from!r}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (``init_from`` only when set, so fingerprints from before it stay valid)."""
        d = {**dataclasses.asdict(self), "levels": list(self.levels)}
        if d["init_from"] is None:
            del d["init_from"]
        if "rater" not in self.example_mix:  # only recipes with rating examples depend on it
            del d["rating_template"], d["rating_check"]
        elif not self.rating_check:  # recipes from before the checked format keep their fingerprint
            del d["rating_check"]
        return d

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 of the sorted fields, :data:`CODE_VERSION` and the parent's fingerprint
        (with ``init_from``); the same in any process."""
        d = {"code": CODE_VERSION, **self.to_dict()}
        if self.init_from is not None:
            d["parent"] = default_recipe(self.init_from).fingerprint()
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def sft_config(self) -> SFTConfig:
        """The optimiser settings of this recipe's SFT phase."""
        return SFTConfig(lr=self.lr, weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                         max_grad_norm=self.max_grad_norm)

    def replace(self, **changes: Any) -> WarmStartRecipe:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def default_recipe(name: str = "arith-warmstart") -> WarmStartRecipe:
    """The recipe behind a name of :data:`WARMSTART_NAMES` (a function, so tests can monkeypatch it).

    - ``"arith-warmstart"``: the default starting policy of ``ccpo train``.
    - ``"arith-warmstart-freeride"``: ``"arith-warmstart"`` trained on, with the free-riding probe's
      one-operation items (``solver_easy``) added, which the Solver must do alone for the probe to mean
      anything. Continuing the built default costs 1500 steps instead of a second full build. (Two from-scratch
      builds with the items mixed in ended with the Solver's addition not generalised, but they also carried a
      since-fixed bug that added bad rows, so they settle nothing.)
    - ``"arith-warmstart-sepo"``: ``"arith-warmstart"`` trained on with SEPO rating examples (``rater``, see
      :mod:`ccpo_agents.models.rating_examples`) in the checked format (``rating_check``: the JSON alone parsed
      but sided with thought quality at chance), so that SEPO's ratings parse and carry information; its
      metrics add ``rating_parsed`` / ``rating_agrees`` per temperature.
    """
    if name == "arith-warmstart":
        return WarmStartRecipe()
    if name == "arith-warmstart-freeride":
        mix = {"thinker": 0.3, "solver_joint": 1.0, "solver_solo": 0.05, "solver_easy": 1.0}
        return WarmStartRecipe(init_from="arith-warmstart", num_steps=1500, warmup_steps=20, example_mix=mix)
    if name == "arith-warmstart-sepo":
        mix = {"thinker": 0.3, "solver_joint": 1.0, "solver_solo": 0.05, "rater": 1.0}
        return WarmStartRecipe(init_from="arith-warmstart", num_steps=1500, warmup_steps=20, example_mix=mix,
                               rating_check=True)
    raise ValueError(f"unknown warm-start model {name!r}; valid names: {list(WARMSTART_NAMES)}")


def default_cache_dir() -> Path:
    """``$CCPO_CACHE_DIR/warmstart`` if set, else ``~/.cache/ccpo/warmstart``."""
    root = os.environ.get("CCPO_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "ccpo") / "warmstart"


# ---------------------------------------------------------------------------------------------- examples
def make_sft_examples(
    recipe: WarmStartRecipe, tokenizer: Any, num_problems: int | None = None, *, split: str = "train"
) -> list[SFTExample]:
    """The example pool: every example type for each distinct problem among the first ``num_problems``
    (default ``recipe.num_problems``) of ``split`` at the recipe's levels.

    Per problem, in order: ``thinker``, ``solver_joint``, ``solver_solo``, and with ``thinker_noise > 0`` a
    second ``thinker`` example whose target has one corrupted result (``noisy=True``). Then, when the mix
    weighs ``solver_easy``, two rows per distinct one-operation item of the freeride stream (see
    ``WarmStartRecipe.example_mix``). Observations come from
    a real :class:`~ccpo_env.ThinkSolveEnv`; prompts are rendered as
    :func:`~ccpo_agents.policies.base.encode_prompt` does, then tokenised in one batch.
    """
    from ccpo_agents.policies.base import render_prompt

    n = recipe.num_problems if num_problems is None else num_problems
    data = ArithDataset(split, list(recipe.levels), seed=recipe.data_seed, size=n)
    env = ThinkSolveEnv(dataset=data, templates=TEMPLATE_PRESETS[recipe.templates])
    rows: list[tuple[str, bool, str, str, str]] = []  # kind, noisy, observation, system prompt, target
    for i, problem in _distinct(data, n):
        thought = arith_oracle_thought(problem)
        answer = f"\\boxed{{{problem.answer}}}"
        for kind in ("thinker", "solver_joint", "solver_solo"):  # solver_easy rows come from _easy_rows
            env.reset(seed=0, options={"problem": i, "remove": ["thinker"] if kind == "solver_solo" else []})
            if kind == "solver_joint":
                env.step(thought)  # the Solver sees the thought through the env, as at RL time
            role = "thinker" if kind == "thinker" else "solver"
            target = thought if kind == "thinker" else answer
            rows.append((kind, False, str(env.observe(role)), recipe.system_prompts.get(role) or "", target))
        if recipe.thinker_noise > 0 and thought:
            rng = random.Random(f"noise|{recipe.seed}|{problem.problem}")  # str seeds: no hash salt
            rows.append(("thinker", True, *rows[-3][2:4], arith_corrupt_thought(thought, rng)))
    if recipe.example_mix.get("solver_easy", 0) > 0:
        rows += _easy_rows(recipe, n, split)
    if recipe.example_mix.get("rater", 0) > 0:  # SEPO's rating format (ccpo_agents.models.rating_examples)
        from ccpo_agents.models.rating_examples import rating_cases, rating_target

        problems = [p for _, p in _distinct(data, n)]
        cases = rating_cases(problems, recipe.seed, recipe.rating_template)
        per_case = [p for p in problems for _ in range(4)]  # rating_cases makes 4 cases a problem
        for problem, (role, prompt, thought_ok, outcome_ok) in zip(per_case, cases, strict=True):
            check = arith_oracle_thought(problem) if recipe.rating_check else None
            rows.append(("rater", False, prompt, recipe.system_prompts.get(role) or "",
                         rating_target(thought_ok, outcome_ok, check)))
    texts = [render_prompt(tokenizer, obs, sp or None) for _, _, obs, sp, _ in rows]
    templated = {t for _, t in texts}
    if len(templated) != 1:  # cannot happen for one tokenizer; guards the batched call below
        raise RuntimeError("mixed chat-templated and plain prompts")
    prompts = tokenizer([t for t, _ in texts], add_special_tokens=not templated.pop())["input_ids"]
    completions = tokenizer([r[-1] + tokenizer.eos_token for r in rows], add_special_tokens=False)[
        "input_ids"
    ]
    return [
        SFTExample(kind, list(p), list(c), obs, target, noisy)
        for (kind, noisy, obs, _, target), p, c in zip(rows, prompts, completions)
    ]


def _distinct(data: ArithDataset, n: int) -> list[tuple[int, Any]]:
    """``(index, problem)`` for the first occurrence of each problem text among the first ``n`` items."""
    seen: set[str] = set()
    out = []
    for i in range(n):
        problem = data[i]
        if problem.problem not in seen:
            seen.add(problem.problem)
            out.append((i, problem))
    return out


def _easy_rows(recipe: WarmStartRecipe, n: int, split: str) -> list[tuple[str, bool, str, str, str]]:
    """``solver_easy`` rows: each distinct one-operation item of the first ``n`` of the freeride stream, once
    with the Thinker removed and once after a distractor thought (a product the item does not contain)."""
    data = ArithDataset(split, list(recipe.levels), seed=recipe.data_seed, size=n, variant="freeride",
                        easy_fraction=1.0)  # fmt: skip
    env = ThinkSolveEnv(dataset=data, templates=TEMPLATE_PRESETS[recipe.templates])
    system = recipe.system_prompts.get("solver") or ""
    rows: list[tuple[str, bool, str, str, str]] = []
    for i, problem in _distinct(data, n):
        rng = random.Random(f"easy|{recipe.seed}|{problem.problem}")
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        for remove in (["thinker"], []):
            env.reset(seed=0, options={"problem": i, "remove": remove})
            if not remove:
                env.step(f"{a}*{b}={a * b}")
            rows.append(("solver_easy", False, str(env.observe("solver")), system, f"\\boxed{{{problem.answer}}}"))
    return rows


def sample_batches(recipe: WarmStartRecipe, pool: Sequence[SFTExample]) -> list[list[SFTExample]]:
    """``num_steps`` batches from ``pool``: each example's type drawn by ``example_mix``, then an example of
    that type (a noisy Thinker one with probability ``thinker_noise``). Seeded by ``recipe.seed``."""
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


# ---------------------------------------------------------------------------------------------- training
def _build_model(recipe: WarmStartRecipe) -> tuple[Any, Any]:
    from ccpo_agents.models.tiny import TINY_PRESETS, build_tiny_model, train_tokenizer

    tokenizer = train_tokenizer(vocab_size=recipe.vocab_size)
    dims = {**TINY_PRESETS[recipe.model], **recipe.model_dims}
    return build_tiny_model(tokenizer, seed=recipe.seed, **dims), tokenizer


def train_warmstart_sft(
    model: Any, tokenizer: Any, recipe: WarmStartRecipe, *, progress: bool = True, log_every: int = 10,
    callback: Callable[[int, Any], None] | None = None,
) -> list[dict[str, float]]:  # fmt: skip
    """The recipe's SFT phase on ``model`` (in place): its example pool, its batches, :func:`train_sft`."""
    batches = sample_batches(recipe, make_sft_examples(recipe, tokenizer))
    return train_sft(model, tokenizer, batches, recipe.sft_config(), progress=progress, log_every=log_every,
                     callback=callback)


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate_warmstart(
    model: Any, tokenizer: Any, recipe: WarmStartRecipe, *, num_problems: int | None = None,
    temperatures: Sequence[float | None] = (1.0, None), max_new_tokens: int = 32, seed: int = 0,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Accuracies on held-out arith TEST problems at the recipe's levels, through
    :func:`ccpo_agents.evaluation.evaluate_env`.

    Per temperature (``None`` = greedy; keys ``"T=1.0"``, ``"greedy"``): ``joint`` (own Thinker -> own
    Solver), ``oracle`` (Solver given the oracle thought), ``solo`` (Thinker removed), ``thinker`` (share of
    thoughts holding every correct intermediate ``x*y=v``), ``easy_joint`` / ``easy_solo`` (team / Solver
    alone on the free-riding probe's one-operation items, ``n // 2`` of them), and the same per level under
    ``by_level``.
    """
    from ccpo_agents.config.policy import GenerationConfig
    from ccpo_agents.evaluation import evaluate_env
    from ccpo_agents.policies.hf import HFPolicy

    n = recipe.eval_problems if num_problems is None else num_problems
    templates = TEMPLATE_PRESETS[recipe.templates]
    data = ArithDataset("test", list(recipe.levels), seed=recipe.eval_seed, size=n)
    env = ThinkSolveEnv(dataset=data, templates=templates)
    oracle: dict[str, str] = {}
    for i in range(n):
        env.reset(seed=0, options={"problem": i})
        oracle[str(env.observe(THINKER))] = arith_oracle_thought(data[i])
    easy_data = ArithDataset("test", list(recipe.levels), seed=recipe.eval_seed, size=max(1, n // 2),
                             variant="freeride", easy_fraction=1.0)  # fmt: skip
    easy_env = ThinkSolveEnv(dataset=easy_data, templates=templates)
    results: dict[str, dict[str, Any]] = {}
    for temp in temperatures:
        gen = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temp or 1.0, do_sample=temp is not None)
        policies = {role: HFPolicy(model, tokenizer, role=role, generation=gen,
                                   system_prompt=recipe.system_prompts.get(role) or None)
                    for role in (THINKER, SOLVER)}  # fmt: skip
        team = evaluate_env(env, policies, seed=seed, thought_check=arith_thought_correct, group_by="level")
        with_oracle = evaluate_env(env, {**policies, THINKER: lambda obs: [oracle[o] for o in obs]},
                                   diagnostic=False, seed=seed, group_by="level")  # fmt: skip
        easy = evaluate_env(easy_env, policies, seed=seed)
        row = {"joint": team["pass@1"], "oracle": with_oracle["pass@1"], "solo": team["solo_pass@1"],
               "thinker": team["thought_ok"], "easy_joint": easy["pass@1"], "easy_solo": easy["solo_pass@1"]}
        row["by_level"] = {
            level: {"joint": r["pass@1"], "solo": r["solo_pass@1"], "thinker": r["thought_ok"],
                    "oracle": with_oracle["by_level"][level]["pass@1"]}
            for level, r in team["by_level"].items()
        }  # fmt: skip
        if recipe.example_mix.get("rater", 0) > 0:
            from ccpo_agents.models.rating_examples import evaluate_ratings, evaluate_rollout_ratings

            raters = {role: HFPolicy(model, tokenizer, role=role, generation=gen.replace(max_new_tokens=64),
                                     system_prompt=recipe.system_prompts.get(role) or None)
                      for role in (THINKER, SOLVER)}  # fmt: skip
            rated = evaluate_ratings(raters, [data[i] for i in range(max(1, n // 4))], seed=seed,
                                     template=recipe.rating_template)
            row.update({f"rating_{k}": v for k, v in rated.items() if k != "n"})
            own = evaluate_rollout_ratings(env, raters, range(max(1, n // 4)), seed=seed,
                                           template=recipe.rating_template)  # the team's own episodes
            row.update({f"own_rating_{k}": v for k, v in own.items() if k != "n"})
        results["greedy" if temp is None else f"T={temp}"] = row
    return results


#: Row labels of the warm-start accuracy table.
TABLE_ROWS = {"joint": "(a) joint", "oracle": "(b) Solver + oracle thought", "solo": "(c) Solver alone",
              "thinker": "(d) Thinker correct", "easy_joint": "(e) one-op item, team",
              "easy_solo": "(f) one-op item, Solver alone", "rating_parsed": "(g) SEPO rating parses",
              "rating_agrees": "(h) rating sides with thought quality",
              "own_rating_agrees": "(i) the same, rating its own episodes"}  # fmt: skip


# ---------------------------------------------------------------------------------------------- build, cache
def build_warmstart(
    recipe: WarmStartRecipe | None = None, *, cache_dir: str | Path | None = None, force: bool = False,
    progress: bool = True,
) -> Path:  # fmt: skip
    """Build (or find in the cache) the warm-started model and return its folder.

    The folder, ``<cache_dir>/<recipe.fingerprint()>`` (``cache_dir`` defaults to :func:`default_cache_dir`),
    holds the model and tokenizer (``save_pretrained``: load with ``Auto*.from_pretrained``), ``recipe.json``
    and ``metrics.json`` (SFT loss curve, timings, held-out accuracies). It is written to a temporary folder
    and moved into place with ``os.replace``, so a folder that exists is complete; a second call returns it
    at once unless ``force``. Concurrent builders (e.g. DDP ranks) each build; the first to finish wins.
    """
    import transformers

    recipe = recipe if recipe is not None else default_recipe()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / recipe.fingerprint()
    if (target / "metrics.json").is_file() and not force:
        return target
    root.mkdir(parents=True, exist_ok=True)
    if progress:  # the first `ccpo train` waits here for minutes: say why
        print(f"building the warm-start model {target} (about 3 minutes on 2 CPU cores)", file=sys.stderr)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(recipe.seed)
        if recipe.init_from is not None:
            from ccpo_agents.models.tiny import load_tiny

            # the shipped weights when they are the parent's current recipe: rebuilding them costs ~10 minutes
            parent_recipe = default_recipe(recipe.init_from)
            parent = _current_shipped(recipe.init_from, parent_recipe) or build_warmstart(
                parent_recipe, cache_dir=root, progress=progress)
            model, tokenizer = load_tiny(parent)
        else:
            model, tokenizer = _build_model(recipe)
        curve = train_warmstart_sft(model, tokenizer, recipe, progress=progress)
        t1 = time.perf_counter()
        accuracy = evaluate_warmstart(model, tokenizer, recipe) if recipe.eval_problems > 0 else {}
    metrics = {
        "fingerprint": recipe.fingerprint(), "code_version": CODE_VERSION,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(t1 - t0, 2), "eval_seconds": round(time.perf_counter() - t1, 2),
        "build_seconds": round(time.perf_counter() - t0, 2), "torch_threads": torch.get_num_threads(),
        # the CPU kernels used (AVX2, AVX512, ...): bit-for-bit rebuilds need the same ones
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "loss_curve": curve, "accuracy": accuracy,
    }  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if force and target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "metrics.json").is_file():  # not just a concurrent builder that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def shipped_folder(name: str) -> Path:
    """Where the package ships the weights of warm start ``name`` (they may be absent)."""
    return SHIPPED_DIR / name


def resolve_warmstart(name: str, *, progress: bool = True) -> Path:
    """The folder for a warm-start model name (:data:`WARMSTART_NAMES`).

    The shipped weights when the package has them for the current recipe (same fingerprint), so the first
    ``ccpo train`` starts at once and every install starts from the same weights; otherwise the cached build,
    built on first use.
    """
    if name not in WARMSTART_NAMES:
        raise ValueError(f"unknown warm-start model {name!r}; valid names: {list(WARMSTART_NAMES)}")
    recipe = default_recipe(name)
    return _current_shipped(name, recipe) or build_warmstart(recipe, progress=progress)


def _current_shipped(name: str, recipe: WarmStartRecipe) -> Path | None:
    """The shipped folder of ``name`` if it holds ``recipe``'s build (same fingerprint), else None."""
    shipped = shipped_folder(name)
    manifest = shipped / "metrics.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("fingerprint") == recipe.fingerprint():
        return shipped
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or reuse) a warm start; print the build time and the accuracy table."""
    parser = argparse.ArgumentParser(prog="python -m ccpo_agents.models.warmstart", description=main.__doc__)
    parser.add_argument("--name", default="arith-warmstart", choices=WARMSTART_NAMES,
                        help="which warm start (default arith-warmstart)")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache holds this recipe")
    parser.add_argument("--eval", action="store_true", help="evaluate the saved model again")
    parser.add_argument("--eval-problems", type=int, default=None, help="TEST problems for --eval")
    parser.add_argument("--cache-dir", default=None, help="default: $CCPO_CACHE_DIR/warmstart")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--ship", action="store_true",
                        help="copy the built folder into the package (ccpo_agents/models/weights/NAME)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = default_recipe(args.name)
    t0 = time.perf_counter()
    path = build_warmstart(recipe, cache_dir=args.cache_dir, force=args.force)
    metrics = json.loads((path / "metrics.json").read_text())
    print(f"warm start: {path}\nthis call: {time.perf_counter() - t0:.1f}s; build (when made): "
          f"{metrics['build_seconds']}s, {metrics['num_parameters']:,} parameters")  # fmt: skip
    accuracy = metrics["accuracy"]
    if args.ship:
        shipped = shipped_folder(args.name)
        shutil.rmtree(shipped, ignore_errors=True)
        shutil.copytree(path, shipped)
        print(f"shipped: {shipped}")
    if args.eval:
        from ccpo_agents.models.tiny import load_tiny

        accuracy = evaluate_warmstart(*load_tiny(path), recipe, num_problems=args.eval_problems)
    if accuracy:
        from ccpo_agents.evaluation import format_metric_table

        print(format_metric_table(accuracy, TABLE_ROWS))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
