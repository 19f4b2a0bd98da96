"""The experiment configuration: one typed dataclass per component.

``ccpo train`` reads a YAML file and ``key=value`` overrides into :class:`ExperimentConfig`.
Every field has a default, so an empty config is the embedded CPU default (a tiny model on
``arith``). Component configs owned by other packages are reused as they are:
:class:`~ccpo_agents.policies.PolicyConfig`, :class:`~ccpo_agents.algos.EstimatorConfig` and
:class:`~ccpo_agents.algos.LossConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpo_agents.config.algo import EstimatorConfig, LossConfig
from ccpo_agents.config.loader import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from ccpo_agents.config.policy import PolicyConfig
from ccpo_env.topology import TOPOLOGIES

__all__ = [
    "AlgoConfig",
    "CreditConfig",
    "EnvConfig",
    "EvalConfig",
    "ExperimentConfig",
    "OptimConfig",
    "RolloutConfig",
    "TrainConfig",
    "default_config",
    "load_config",
]

SCHEDULES = ("joint", "alternate")
LR_SCHEDULES = ("constant", "linear", "cosine")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass
class EnvConfig:
    """The team environment.

    Attributes:
        topology: ``"think_solve"`` (Thinker → Solver, default) or ``"voting"`` (N voters).
        dataset: training dataset name (default ``"arith"``; see ``ccpo_env.list_datasets()``).
        split: training split (default ``None``: ``"train"`` when the dataset has one, else its only split, so
            ``env.dataset=math500`` trains on MATH-500's test split and says so).
        data_dir: folder with ``<name>.jsonl`` files (default ``None``: ``$CCPO_DATA_DIR``, then the Hub).
        dataset_options: extra ``load_dataset`` options of this dataset, e.g. ``{"level": [1, 2]}`` for arith
            (default ``{}``: the dataset's own defaults). Options belong to the dataset they were written for:
            changing ``env.dataset`` without giving options drops the embedded default's arith options.
        templates: prompt template preset, ``"default"`` or ``"compact"`` (default ``"default"``).
        reward_correct: joint reward for a right answer (default 1.0).
        reward_incorrect: joint reward otherwise (default -1.0; 0.0 for {1, 0} rewards).
        max_action_chars: longer messages are cut by the env (default 4096).
        extraction: how the verifier finds the final answer for rewards and evaluation: ``"anchored"``
            (default: ``\\boxed{}``, an "answer is" anchor, or a last line holding only the answer), ``"boxed"``
            (a box is required, as a format reward) or ``"lenient"`` (also prose conclusions, as evaluation
            checkers read them).
        num_voters: voters in the voting topology (default 3).
        visible_votes: voters see earlier answers (default False).
        tie_break: ``"expected"`` (default) or ``"random"``.
    """

    topology: str = "think_solve"
    dataset: str = "arith"
    split: str | None = None
    data_dir: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    templates: str = "default"
    reward_correct: float = 1.0
    reward_incorrect: float = -1.0
    max_action_chars: int = 4096
    extraction: str = "anchored"
    num_voters: int = 3
    visible_votes: bool = False
    tie_break: str = "expected"

    def __post_init__(self) -> None:
        _check(self.topology in TOPOLOGIES, f"env.topology={self.topology!r} is not valid; choose one of {TOPOLOGIES.names()}")
        from ccpo_env.prompts import TEMPLATE_PRESETS
        from ccpo_env.verify import EXTRACTION_MODES

        _check(self.extraction in EXTRACTION_MODES,
               f"env.extraction={self.extraction!r} is not valid; choose one of {list(EXTRACTION_MODES)}")
        _check(self.templates in TEMPLATE_PRESETS,
               f"env.templates={self.templates!r} is not valid; choose one of {sorted(TEMPLATE_PRESETS)}")


@dataclass
class RolloutConfig:
    """How many episodes one training step samples.

    Attributes:
        prompts_per_step: problems per step, across all processes (default 8).
        num_thoughts: joint episodes per problem, ``n`` (default 4).
        answers_per_thought: Solver answers per Thinker message, ``m`` (default 2; ``ccpo_tree`` needs ≥ 2).
        num_solo: Thinker-removed (solo) Solver answers per problem, ``k``, for credit methods that need
            them (default 4; ``ccpo_paired`` always uses one per joint episode).
        common_random_numbers: ``"auto"`` (default), ``true`` or ``false``. On, solo answer ``c`` is sampled
            with the same noise as joint answer ``c`` of its problem (the rollout driver's
            ``common_random_numbers`` with row-seeded sampling), so a joint/solo pair differs only by the
            Thinker's message. ``"auto"`` turns it on for credit methods that pair joint and solo episodes
            one to one (``ccpo_paired``) and off otherwise, where solo answers only enter through their mean.
    """

    prompts_per_step: int = 8
    num_thoughts: int = 4
    answers_per_thought: int = 2
    num_solo: int = 4
    common_random_numbers: bool | str = "auto"

    def __post_init__(self) -> None:
        for name in ("prompts_per_step", "num_thoughts", "answers_per_thought", "num_solo"):
            _check(getattr(self, name) >= 1, f"rollout.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.common_random_numbers in (True, False, "auto"),
               f"rollout.common_random_numbers={self.common_random_numbers!r} is not valid; choose true, false or auto")


@dataclass
class CreditConfig:
    """Credit assignment.

    Attributes:
        method: registered credit method (default ``"ccpo_tree"``; see ``ccpo_agents.credit.list_credits()``).
        options: the method's config fields, e.g. ``{"center": true}`` for the ``ccpo_tree`` ablation (default ``{}``).
        normalizer_decay: EMA decay of the global-history normalizer (default 0.99).
        per_source: keep normalizer statistics per data source (default False).
        rating_max_new_tokens: token limit of SEPO rating generations (default 48).
        rating_template: SEPO's rating prompt, ``"default"`` (the full instructions) or ``"compact"`` (short, for
            small models taught the format, e.g. ``arith-warmstart-sepo``) (default ``"default"``).
        rating_greedy: write SEPO's ratings with greedy decoding instead of the policy's sampling settings. The
            ratings are never trained on, so nothing needs them sampled, and a small rater's greedy reply is its
            best judgement: ``arith-warmstart-sepo`` parses 100% greedy and 92% at T = 1 (default False: the
            paper samples them like every other generation).
        train_solo: also train the Solver on the Thinker-removed (solo) answers the method already samples,
            each rewarded by its own verified outcome and grouped with the other solo answers to its prompt
            (GRPO: ``(R − mean)/std`` over those k answers). The counterfactual rollouts then teach the Solver
            to solve alone instead of only feeding the credit. Needs a method with solo rollouts whose Solver
            credit is a reward, not a baselined advantage (e.g. ``ccpo_tree``, ``ccpo_event``). Default False.
        thought_cost: a cost ``c`` per Thinker token, the same drift for every method (for a free-riding probe:
            thinking is no longer free). Each thought's training reward gains ``−c·(ℓ_j − ℓ̄)``, ``ℓ_j`` its
            length in tokens and ``ℓ̄`` the mean over the prompt's thoughts; centred so that it shifts baselined
            and unbaselined credit alike and moves no prompt's mean. Think–Solve only. Default 0.0 (off).
            Under ``grpo`` a prompt whose answers all agree has the cost as its only variation, and the std
            scaling makes it a full-size advantage: the same ``c`` pushes much harder than under ``dr_grpo``
            or a baselined credit (``benchmarks/README.md``, the 200k-token free-riding probe).
    """

    method: str = "ccpo_tree"
    options: dict[str, Any] = field(default_factory=dict)
    normalizer_decay: float = 0.99
    per_source: bool = False
    rating_max_new_tokens: int = 48
    rating_template: str = "default"
    rating_greedy: bool = False
    train_solo: bool = False
    thought_cost: float = 0.0

    def __post_init__(self) -> None:
        from ccpo_agents.credit import get_credit

        try:
            get_credit(self.method).make_config(self.options or None)
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"credit: {e}") from None
        _check(0.0 < self.normalizer_decay < 1.0, "credit.normalizer_decay must be in (0, 1)")
        from ccpo_agents.credit.sepo import RATING_TEMPLATES

        _check(self.thought_cost >= 0.0 and self.thought_cost == self.thought_cost,
               f"credit.thought_cost must be >= 0 (a cost per Thinker token), got {self.thought_cost!r}")
        _check(self.rating_template in RATING_TEMPLATES,
               f"credit.rating_template={self.rating_template!r}; choose one of {sorted(RATING_TEMPLATES)}")


@dataclass
class AlgoConfig:
    """Advantage estimator and policy loss.

    Attributes:
        estimator: :class:`~ccpo_agents.algos.EstimatorConfig` (default ``grpo``).
        loss: :class:`~ccpo_agents.algos.LossConfig` (default token-level PPO clip).
    """

    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class OptimConfig:
    """Optimizer and update loop.

    Attributes:
        lr: AdamW learning rate (default 1e-5).
        weight_decay: AdamW weight decay (default 0.0).
        betas: AdamW betas (default (0.9, 0.999)).
        max_grad_norm: gradient clipping norm, 0 = off (default 1.0).
        lr_schedule: ``"constant"`` (default), ``"linear"`` or ``"cosine"`` decay over ``train.steps``.
        warmup_steps: linear warm-up optimizer steps (default 0).
        ppo_epochs: passes over each step's samples (default 1).
        minibatch_size: samples per optimizer step; 0 = the role's whole batch (default 0).
        micro_batch_size: samples per forward/backward (gradient accumulation within a minibatch; default 16).
        micro_batch_tokens: also bound each forward/backward by padded tokens (rows x (longest prompt +
            longest completion)): consecutive samples join a micro-batch while it stays within this budget, a
            sample longer than the budget goes alone. 0 = no token bound (default 0). Bounds activation memory
            when completion lengths vary (long reasoning traces next to short answers).
    """

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    ppo_epochs: int = 1
    minibatch_size: int = 0
    micro_batch_size: int = 16
    micro_batch_tokens: int = 0

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(self.lr_schedule in LR_SCHEDULES, f"optim.lr_schedule={self.lr_schedule!r}; choose one of {list(LR_SCHEDULES)}")
        _check(self.ppo_epochs >= 1 and self.micro_batch_size >= 1 and self.minibatch_size >= 0,
               "optim.ppo_epochs and optim.micro_batch_size must be >= 1, optim.minibatch_size >= 0")
        _check(self.micro_batch_tokens >= 0,
               f"optim.micro_batch_tokens must be >= 0 (0 = no token bound), got {self.micro_batch_tokens}")


@dataclass
class TrainConfig:
    """The training run.

    Attributes:
        steps: training steps (default 20).
        schedule: ``"joint"`` (every role every step, default) or ``"alternate"`` (one role at a time).
        alternate_period: steps per role under ``"alternate"`` (default 1), as in the reference trainer.
        train_roles: roles to train (default ``None``: all).
        seed: global seed (default 0).
        output_dir: run folder for metrics, checkpoints and plots (default ``"runs/ccpo"``).
        checkpoint_every: steps between checkpoints, 0 = only the final one (default 0).
        keep_checkpoints: newest checkpoints to keep (default 2).
        resume: continue from the newest checkpoint in ``output_dir`` (default False).
        tensorboard: also log to TensorBoard when it is installed (default True).
        plot: write ``curves.png`` at the end (default True).
        progress: show a progress bar (default True).
        mixed_precision: accelerate's ``"no"`` (default), ``"bf16"`` or ``"fp16"``.
        cpu: force CPU even when a GPU is present (default False).
        skip_nonfinite: skip (and log) an update whose loss or gradient is NaN/inf (default True).
        fsdp: shard each trained model across the processes with torch's FSDP2 (one unit per decoder
            layer; ``train.mixed_precision=bf16`` gives bf16 compute with fp32 reduction) instead of
            replicating it (DDP) (default False). For launches where accelerate does not shard itself, e.g.
            ``torchrun`` or ``accelerate launch --cpu``; under ``examples/accelerate/fsdp2.yaml`` accelerate
            shards and this is not needed. Needs ``policy.backend=vllm`` (the engine holds full weights, so
            generation makes no collective calls) and full parameters (LoRA: use DDP). Ignored with one process.
    """

    steps: int = 20
    schedule: str = "joint"
    alternate_period: int = 1
    train_roles: list[str] | None = None
    seed: int = 0
    output_dir: str = "runs/ccpo"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume: bool = False
    tensorboard: bool = True
    plot: bool = True
    progress: bool = True
    mixed_precision: str = "no"
    cpu: bool = False
    skip_nonfinite: bool = True
    fsdp: bool = False

    def __post_init__(self) -> None:
        _check(self.steps >= 0, "train.steps must be >= 0")
        _check(self.schedule in SCHEDULES, f"train.schedule={self.schedule!r}; choose one of {list(SCHEDULES)}")
        _check(self.alternate_period >= 1, "train.alternate_period must be >= 1")
        _check(self.mixed_precision in ("no", "bf16", "fp16"), "train.mixed_precision must be 'no', 'bf16' or 'fp16'")
        _check(not (self.fsdp and self.mixed_precision == "fp16"),
               "train.fsdp=true supports train.mixed_precision 'no' or 'bf16', not 'fp16' (FSDP2 has no sharded "
               "loss scaler here); use bf16")
        _check(self.keep_checkpoints >= 1, "train.keep_checkpoints must be >= 1")


@dataclass
class EvalConfig:
    """Evaluation (``ccpo eval`` and during training).

    Attributes:
        datasets: datasets to evaluate (default ``[]``: the training dataset ``env.dataset``).
        split: split to evaluate (default ``None``: ``"test"`` when the dataset has one, else its only split).
        limit: problems per dataset, ``None`` = all (default 200).
        dataset_options: options per dataset name, e.g. ``{"arith": {"level": 2}}`` (default ``{}``: the
            training ``env.dataset_options`` are used for the training dataset).
        num_samples: samples per problem; pass@1 averages them, maj@k votes over them (default 1).
        answers_per_thought: Solver answers per sampled thought (default 1).
        greedy: decode greedily instead of sampling (default False).
        diagnostic: also run the Thinker-removed collaboration diagnostic (default True).
        every: evaluate held-out every N training steps as well, 0 = only before and after (default 0).
        batch_problems: problems per rollout call (default 64).
    """

    datasets: list[str] = field(default_factory=list)
    split: str | None = None
    limit: int | None = 200
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_samples: int = 1
    answers_per_thought: int = 1
    greedy: bool = False
    diagnostic: bool = True
    every: int = 0
    batch_problems: int = 64

    def __post_init__(self) -> None:
        for name in ("num_samples", "answers_per_thought", "batch_problems"):
            _check(getattr(self, name) >= 1, f"eval.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.every >= 0, f"eval.every must be >= 0, got {self.every}")
        _check(self.limit is None or self.limit >= 0, f"eval.limit must be >= 0 or null, got {self.limit}")


@dataclass
class ExperimentConfig:
    """Everything ``ccpo train`` needs. Sections: policy, env, rollout, credit, algo, optim, train, eval."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    credit: CreditConfig = field(default_factory=CreditConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML/JSON and checkpoints)."""
        return to_dict(self)


#: The embedded default (``ccpo train`` with no arguments): CCPO (``ccpo_tree``) on level-1 ``arith``
#: on CPU, from ``arith-warmstart`` (a 0.49M-parameter model SFT-warm-started by the project's own code
#: on the arith TRAIN split; its weights ship with the package, so every install starts from the same
#: model). Its prompts have no system prompt and use the compact templates, exactly as the warm start was
#: trained. lr 3e-5: one Adam step at >= 3e-4 collapses this small, partly memorised model. Held-out
#: accuracy is measured every 50 steps so the plot shows generalisation next to the training rollouts.
DEFAULT_OVERRIDES: dict[str, Any] = {
    "policy": {
        "model": "arith-warmstart",
        "system_prompts": {},
        "generation": {"max_new_tokens": 16, "temperature": 1.0},
    },
    "env": {"templates": "compact", "dataset_options": {"level": [1]}},
    "optim": {"lr": 3e-5},
    "train": {"steps": 300, "output_dir": "runs/ccpo"},
    "eval": {"every": 50},
}


def default_config() -> ExperimentConfig:
    """The embedded default experiment."""
    return from_dict(ExperimentConfig, DEFAULT_OVERRIDES)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Build the experiment config: embedded default ← YAML file ← ``key=value`` overrides.

    Raises:
        ConfigError: unknown keys (naming the valid ones) or invalid values.
    """
    data: dict[str, Any] = _merge({}, DEFAULT_OVERRIDES)
    # What the user set (file and overrides), to tell the default's dataset options from the user's.
    user = apply_overrides(load_yaml(path) if path is not None else {}, list(overrides))
    if path is not None:
        data = _merge(data, load_yaml(path))
    data = apply_overrides(data, list(overrides))
    user_env = user.get("env", {}) if isinstance(user.get("env"), dict) else {}
    if "dataset" in user_env and "dataset_options" not in user_env:
        # The embedded default's options are arith's; they do not carry over to another dataset.
        data["env"]["dataset_options"] = {}
    cfg = from_dict(ExperimentConfig, data)
    from ccpo_agents.config.validate import check_config

    check_config(cfg)
    return cfg


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins); sections merge, values replace."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in _REPLACE_WHOLE:
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# Dict-valued *settings* (not sections) that a user's file should replace rather than merge into.
_REPLACE_WHOLE = frozenset({"system_prompts", "dataset_options", "options"})
