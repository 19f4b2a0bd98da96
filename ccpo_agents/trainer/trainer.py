"""The CCPO/SEPO trainer: one step reads top to bottom.

    problems ─► rollout (n thoughts × m answers, + k Thinker-removed branches, one policy call per turn)
             ─► verifier (inside the env) ─► credit (shared / ccpo_* / sepo / voting)
             ─► advantages per role (own grouping key; baselined credit is only scaled)
             ─► minibatched policy-gradient update per role ─► metrics, checkpoint

Device placement, mixed precision and multi-process training go through ``accelerate``: run with
``accelerate launch`` (DDP across GPUs/nodes, or ``--cpu`` with gloo). Each process rolls out its
own share of the step's problems; the credit is computed on the all-gathered batch on every process,
so the global-history normalizer stays identical everywhere, and metrics are averaged across
processes. With ``train.fsdp`` (or accelerate's FSDP plugin) the models are sharded instead of
replicated, and the vLLM engines reload full weights gathered by all ranks after each step.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ccpo_agents.algos import estimate_advantages
from ccpo_agents.config import ConfigError, ExperimentConfig
from ccpo_agents.config.validate import check_config
from ccpo_agents.credit import (
    CreditAssigner,
    CreditResult,
    GlobalHistoryNormalizer,
    credit_batch_from_episodes,
    ratings_from_texts,
)
from ccpo_agents.envs import build_env
from ccpo_agents.policies import RoleModels
from ccpo_agents.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, set_rng_state
from ccpo_agents.trainer.fsdp import (
    check_fsdp_policy,
    full_checkpoint_state,
    gather_full_state_dict,
    load_full_checkpoint_state,
    shard_model,
)
from ccpo_agents.trainer.logging import MetricsLogger, plot_curves
from ccpo_agents.trainer.memory import peak_memory_mb, reset_peak_memory
from ccpo_agents.trainer.ratings import rate, write_ratings
from ccpo_agents.trainer.samples import add_solo_answers, apply_thought_cost, build_role_batches
from ccpo_agents.trainer.update import RoleUpdate, update_role
from ccpo_env import rollout
from ccpo_env.seeding import stable_seed
from ccpo_env.topology import SOLVER, THINKER, get_topology

__all__ = ["Trainer"]

_UNBOUNDED = 10**8  # datasets at least this long (e.g. arith) are read in order, not shuffled


class Trainer:
    """Trains a team's policies with a credit method and a policy-gradient loss.

    Args:
        config: the experiment (see :func:`ccpo_agents.config.load_config`).
        role_models: already-built role models (default: built from ``config.policy``).
        env: a template env to train on (default: built from ``config.env``); any
            :class:`~ccpo_env.TeamEnv` with the configured topology's agents, e.g. one with a custom verifier.
        accelerator: an ``accelerate.Accelerator`` (default: made from ``config.train``).

    Example:
        >>> from ccpo_agents.config import load_config
        >>> trainer = Trainer(load_config(overrides=["train.steps=2"]))
        >>> history = trainer.train()
    """

    def __init__(self, config: ExperimentConfig, *, role_models: RoleModels | None = None,
                 env: Any = None, accelerator: Any = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, set_seed

        self.config = config
        cfg = config
        self.accelerator = accelerator or Accelerator(
            cpu=cfg.train.cpu, mixed_precision=cfg.train.mixed_precision,
            # Per-role LoRA adapters and the alternate schedule leave parameters unused in a pass.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        acc = self.accelerator
        self.rank, self.world = acc.process_index, acc.num_processes
        set_seed(cfg.train.seed)
        if cfg.rollout.prompts_per_step % self.world:
            raise ConfigError(
                f"rollout.prompts_per_step={cfg.rollout.prompts_per_step} must be divisible by the number of "
                f"processes ({self.world})"
            )
        self.output_dir = Path(cfg.train.output_dir)
        check_config(cfg)  # the combination (credit x topology x estimator x schedule), once, before any model
        self.topology = get_topology(cfg.env.topology)
        self.role_names = self.topology.roles
        self.train_roles = tuple(cfg.train.train_roles or self.role_names)

        self.credit = CreditAssigner(cfg.credit.method, cfg.credit.options or None,
                                     GlobalHistoryNormalizer(decay=cfg.credit.normalizer_decay,
                                                             per_source=cfg.credit.per_source))
        self.spec = self.credit.spec
        crn = cfg.rollout.common_random_numbers
        #: solo answers share their paired joint answer's sampling noise (rollout.common_random_numbers)
        self.common_random_numbers = crn is True or (crn == "auto" and self.spec.num_solo == "paired")

        self.env = env if env is not None else build_env(cfg.env)
        self.agents = list(self.env.possible_agents)
        try:
            fits = {self.topology.role_of(a) for a in self.agents} == set(self.role_names)
        except ValueError:
            fits = False
        if not fits:
            raise ConfigError(f"the env's agents {self.agents} do not fit env.topology={self.topology.name!r}")

        policy_cfg = cfg.policy
        if policy_cfg.device is None:
            policy_cfg = dataclasses.replace(policy_cfg, device=str(acc.device))
        if cfg.algo.loss.kl_coef > 0 and policy_cfg.parameterisation != "lora" and not policy_cfg.reference:
            policy_cfg = dataclasses.replace(policy_cfg, reference=True)
        self.roles = role_models or RoleModels.from_config(policy_cfg, roles=self.role_names)
        if policy_cfg.gradient_checkpointing:  # before any DDP/FSDP wrapping; update.checkpointing_layers says why
            for m in self.roles.unique_models():
                if hasattr(m, "activation_checkpointing_enable"):  # transformers >= 5.2x's name for it
                    m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                else:
                    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for policy in self.roles.policies().values():
            if hasattr(policy, "generation"):  # the update scores completions itself (see GenerationConfig.logprobs)
                policy.generation = policy.generation.replace(
                    logprobs=False, row_seeded=policy.generation.row_seeded or self.common_random_numbers)
        accelerate_fsdp = getattr(acc, "distributed_type", None) == "FSDP"  # accelerate shards in prepare()
        #: the trained models are FSDP2-sharded: accelerate's FSDP plugin, or ``train.fsdp`` with >1 process
        self.fsdp = accelerate_fsdp or (cfg.train.fsdp and self.world > 1)
        if self.fsdp:
            check_fsdp_policy(policy_cfg)
        #: the vLLM engines generating the rollouts (``policy.backend=vllm``), synced after every step; or None
        self.engine = None
        if policy_cfg.backend == "vllm":
            from ccpo_agents.policies.vllm_engine import VLLMRollout

            # Under FSDP each rank's engine reloads the full weights, gathered by all ranks together.
            weights_fn = functools.partial(gather_full_state_dict, rank0_only=False) if self.fsdp else None
            self.engine = VLLMRollout(self.roles, policy_cfg, self.output_dir / f"engine-rank{self.rank}",
                                      model_dir=self.output_dir / "vllm-model", weights_fn=weights_fn)  # fmt: skip
        if cfg.algo.loss.kl_coef > 0 and self.roles.parameterisation != "lora":
            try:
                with self.roles.reference(self.role_names[0]):
                    pass
            except RuntimeError:
                self.roles.snapshot_reference()

        # One optimizer per distinct parameter owner (one for a shared model, one per role otherwise).
        self.owners: dict[str, list[str]] = {}
        for role in self.train_roles:
            self.owners.setdefault(self.roles.owner(role), []).append(role)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        self._train_models: dict[int, torch.nn.Module] = {}
        native_fsdp = self.fsdp and not accelerate_fsdp
        for owner, roles in self.owners.items():
            model = self.roles.model_for(roles[0])
            if native_fsdp:  # in place, before the optimizer sees the (now sharded) parameters
                shard_model(model, mixed_precision="bf16" if cfg.train.mixed_precision == "bf16" else "no")
            params: dict[int, torch.nn.Parameter] = {}
            for r in roles:
                for p in self.roles.trainable_parameters(r):
                    params.setdefault(id(p), p)
            opt = torch.optim.AdamW(list(params.values()), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                    weight_decay=cfg.optim.weight_decay)
            if native_fsdp or self.world == 1:
                wrapped, opt = model, acc.prepare(opt)
            else:
                wrapped, opt = acc.prepare(model, opt)
            for r in roles:
                self._train_models[id(self.roles.model_for(r))] = wrapped
            self.optimizers[owner] = opt
            self.schedulers[owner] = torch.optim.lr_scheduler.LambdaLR(opt, self._lr_lambda)

        self.step = 0
        self.data_position = 0
        self._rating_tokens = 0  # completion tokens of this step's SEPO ratings
        self.history: list[dict[str, Any]] = []
        #: ``(step, results)`` of the newest :meth:`evaluate` call, or None.
        self.last_evaluation: tuple[int, dict[str, dict[str, Any]]] | None = None
        self._np_rng = np.random.default_rng(stable_seed(cfg.train.seed, "update", self.rank))
        resume_from = latest_checkpoint(self.output_dir) if cfg.train.resume else None
        if resume_from is not None:
            self.load(resume_from)
            if self.engine is not None:
                self.engine.sync()
        self.logger = MetricsLogger(self.output_dir, tensorboard=cfg.train.tensorboard, enabled=acc.is_main_process,
                                    resume_step=self.step if resume_from is not None else None)

    # ------------------------------------------------------------------ setup helpers
    def _lr_lambda(self, step: int) -> float:
        o = self.config.optim
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        total = max(self.config.train.steps - o.warmup_steps, 1)
        frac = min(max(step - o.warmup_steps, 0) / total, 1.0)
        if o.lr_schedule == "linear":
            return 1.0 - frac
        if o.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * frac))
        return 1.0

    def policies(self) -> dict[str, Any]:
        """``{env agent: policy}`` for the rollout driver."""
        return {a: self.roles.policy_for(self.topology.role_of(a)) for a in self.agents}

    def roles_this_step(self, step: int | None = None) -> tuple[str, ...]:
        """The roles updated at ``step`` under the schedule."""
        step = self.step if step is None else step
        if self.config.train.schedule == "joint" or len(self.train_roles) == 1:
            return self.train_roles
        k = (step // self.config.train.alternate_period) % len(self.train_roles)
        return (self.train_roles[k],)

    def _problem_index(self, position: int) -> int:
        n = len(self.env.dataset)
        if n >= _UNBOUNDED:
            return position % n
        epoch, offset = divmod(position, n)
        perm = np.random.default_rng(stable_seed(self.config.train.seed, "data", epoch)).permutation(n)
        return int(perm[offset])

    # ------------------------------------------------------------------ one step
    def rollout_step(self, step: int) -> list[Any]:
        """Roll out this process's share of the step's problems (joint + counterfactual episodes)."""
        cfg = self.config.rollout
        local = cfg.prompts_per_step // self.world
        start = self.data_position + self.rank * local
        problems = [self._problem_index(start + i) for i in range(local)]
        kwargs: dict[str, Any] = {"num_samples": cfg.num_thoughts}
        if self.topology.group_by_thought and cfg.answers_per_thought > 1:
            kwargs["fanout"] = {THINKER: cfg.answers_per_thought}
        if self.spec.needs_solo:  # the Thinker-removed branch, batched into the same policy calls
            kwargs["counterfactuals"] = [[THINKER]]
            kwargs["num_counterfactual"] = self.spec.solo_rollouts_per_prompt(
                cfg.num_thoughts * cfg.answers_per_thought, cfg.num_solo)
        if "coalitions" in self.spec.needs:
            kwargs["coalitions"] = True
        return rollout(self.env, self.policies(), problems, seed=stable_seed(self.config.train.seed, "rollout", step, self.rank),
                       common_random_numbers=self.common_random_numbers, **kwargs)

    def rate(self, role: str, prompts: list[str], seeds: list[int] | None = None) -> list[Any]:
        """``role``'s policy answering rating ``prompts`` with the ``credit.rating_*`` generation settings
        (its token limit; greedy with ``rating_greedy``), as SEPO's ratings are written in training."""
        c = self.config.credit
        return rate(self.roles.policy_for(role), prompts, seeds, max_new_tokens=c.rating_max_new_tokens,
                    greedy=c.rating_greedy)  # fmt: skip

    def _ratings(self, joint: list[Any]) -> tuple[list[str], list[str]]:
        """SEPO: each role rates every (thought, answer) pair given the verifier's outcome."""
        c = self.config.credit
        by_thinker, by_solver, self._rating_tokens = write_ratings(
            {r: self.roles.policy_for(r) for r in (THINKER, SOLVER)}, self.env.dataset, joint,
            template=c.rating_template, max_new_tokens=c.rating_max_new_tokens, greedy=c.rating_greedy,
            seed_for=lambda role, i: stable_seed(self.config.train.seed, "rating", self.step, self.rank, role, i))
        return by_thinker, by_solver

    def _credit(self, joint: list[Any], solo: list[Any], ratings: tuple[list[str], list[str]] | None):
        """Credit on the all-gathered batch; returns (local CreditResult, local thought ids, global batch)."""
        low, high = self.config.env.reward_incorrect, self.config.env.reward_correct
        local_groups = self.config.rollout.prompts_per_step // self.world
        if self.world > 1:
            from accelerate.utils import gather_object

            def light(eps: list[Any]) -> list[Any]:
                return [dataclasses.replace(e, turns=[], group=e.group + self.rank * local_groups) for e in eps]

            gathered = gather_object([(light(joint), light(solo), ratings)])
            all_joint = [e for g in gathered for e in g[0]]
            all_solo = [e for g in gathered for e in g[1]]
            all_ratings = None
            if ratings is not None:
                all_ratings = ([t for g in gathered for t in g[2][0]], [t for g in gathered for t in g[2][1]])
        else:
            all_joint, all_solo, all_ratings = joint, solo, ratings
        sepo = ratings_from_texts(*all_ratings) if all_ratings is not None else None
        batch = credit_batch_from_episodes(all_joint, all_solo, roles=tuple(self.agents),
                                           reward_low=low, reward_high=high, ratings=sepo)
        result = self.credit(batch)
        lo, hi = self.rank * len(joint), (self.rank + 1) * len(joint)
        local = CreditResult(
            rewards={k: np.asarray(v)[lo:hi] for k, v in result.rewards.items()},
            group_keys={k: np.asarray(v)[lo:hi] for k, v in result.group_keys.items()},
            baselined=dict(result.baselined), metrics=dict(result.metrics),
        )
        return local, np.asarray(batch.thought)[lo:hi], batch

    def train_step(self) -> dict[str, Any]:
        """One full step: rollout → credit → advantages → updates. Returns the step's metrics."""
        step = self.step
        reset_peak_memory(self.accelerator.device)
        t0 = time.perf_counter()
        for p in self.roles.policies().values():
            p.stats = type(p.stats)()
        episodes = self.rollout_step(step)
        joint = [e for e in episodes if not e.removed]
        solo = [e for e in episodes if e.removed]
        self._rating_tokens = 0
        ratings = self._ratings(joint) if self.spec.needs_ratings else None
        t1 = time.perf_counter()
        credit, thought, batch = self._credit(joint, solo, ratings)
        roles_now = self.roles_this_step(step)
        batches = build_role_batches(joint, credit, thought, topology=self.topology)
        if self.config.credit.train_solo and SOLVER in batches:  # the counterfactual answers train the Solver too
            solver_agent = next(a for a in self.agents if self.topology.role_of(a) == SOLVER)
            low, high = self.config.env.reward_incorrect, self.config.env.reward_correct
            add_solo_answers(batches[SOLVER], solo, solver_agent, reward_low=low, reward_high=high)
        if self.config.credit.thought_cost > 0 and THINKER in batches:  # thinking is not free (a probe's drift)
            apply_thought_cost(batches[THINKER], self.config.credit.thought_cost)
        t2 = time.perf_counter()

        metrics: dict[str, Any] = {"step": step + 1, "data_position": self.data_position + self.config.rollout.prompts_per_step}
        metrics["rollout/joint_acc"] = float(np.mean([e.correct for e in joint]))
        if solo:
            metrics["rollout/solo_acc"] = float(np.mean([e.correct for e in solo]))
        metrics.update({k: float(v) for k, v in credit.metrics.items()})
        est = self.config.algo.estimator
        trained_tokens = 0  # completion tokens through forward+backward, every PPO epoch counted
        for role, rb in batches.items():
            rewards = torch.as_tensor(rb.reward_array, dtype=torch.float32)
            adv = estimate_advantages(est, rewards, rb.group_keys, baselined=rb.baselined)
            lengths = [len(g.token_ids or []) for g in rb.generations]
            metrics.update({
                f"{role}/reward_mean": float(rewards.mean()), f"{role}/reward_std": float(rewards.std(unbiased=False)),
                f"{role}/adv_mean": float(adv.mean()), f"{role}/adv_std": float(adv.std(unbiased=False)),
                f"{role}/response_len": float(np.mean(lengths)) if lengths else 0.0,
                f"{role}/truncated_frac": float(np.mean([g.truncated for g in rb.generations])) if lengths else 0.0,
            })
            if role not in roles_now:
                continue
            owner = self.roles.owner(role)
            model = self.roles.model_for(role)
            u = RoleUpdate(role=role, roles=self.roles, train_model=self._train_models[id(model)],
                           optimizer=self.optimizers[owner], loss=self.config.algo.loss, optim=self.config.optim,
                           temperature=self.roles.policy_for(role).generation.temperature,
                           accelerator=self.accelerator, skip_nonfinite=self.config.train.skip_nonfinite)
            metrics.update(update_role(u, rb, adv, rng=self._np_rng))
            trained_tokens += sum(lengths) * self.config.optim.ppo_epochs
        for owner, sched in self.schedulers.items():
            if any(r in roles_now for r in self.owners[owner]):
                with warnings.catch_warnings():
                    # A skipped (non-finite) update still advances the schedule, on purpose.
                    warnings.simplefilter("ignore", UserWarning)
                    sched.step()
            metrics[f"lr/{owner}"] = sched.get_last_lr()[0]
        t_update = time.perf_counter() - t2
        if self.engine is not None:  # the next rollout must sample from the weights just trained
            t_sync = time.perf_counter()
            self.engine.sync(roles_now)
            metrics["time/engine_sync"] = time.perf_counter() - t_sync
        t3 = time.perf_counter()
        gen_tokens = sum(p.stats.completion_tokens for p in self.roles.policies().values())
        gen_seconds = sum(p.stats.generate_seconds for p in self.roles.policies().values())
        metrics.update({
            "time/rollout": t1 - t0, "time/credit": t2 - t1, "time/update": t3 - t2, "time/step": t3 - t0,
            "perf/generated_tokens": float(gen_tokens),
            "perf/rating_tokens": float(self._rating_tokens),  # SEPO's share of generated_tokens
            "perf/tokens_per_s": gen_tokens / gen_seconds if gen_seconds > 0 else 0.0,
            "perf/generated_tokens_per_s": gen_tokens / (t1 - t0) if t1 > t0 else 0.0,
            "perf/trained_tokens": float(trained_tokens),
            "perf/trained_tokens_per_s": trained_tokens / t_update if t_update > 0 else 0.0,
            "perf/peak_memory_mb": peak_memory_mb(self.accelerator.device),
            "trained_roles": ",".join(roles_now),
        })
        metrics = self._reduce_metrics(metrics)
        self.step += 1
        self.data_position += self.config.rollout.prompts_per_step
        self.history.append(metrics)
        self.logger.log(metrics)
        return metrics

    def _reduce_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if self.world == 1:
            return metrics
        from accelerate.utils import gather_object

        all_metrics = gather_object([metrics])
        out = dict(metrics)
        for k, v in metrics.items():
            if isinstance(v, float):
                vals = [m.get(k) for m in all_metrics if isinstance(m.get(k), float) and math.isfinite(m.get(k))]
                out[k] = float(np.mean(vals)) if vals else v
        return out

    def evaluate(self, *, progress: bool = True) -> dict[str, dict[str, Any]]:
        """Held-out accuracy of the current policies under the ``eval`` config: ``{dataset: row}`` with pass@1
        and its standard error, maj@k, and the Thinker-removed diagnostic (see :mod:`ccpo_agents.evaluation`)."""
        from ccpo_agents.evaluation import evaluate_trainer

        results = evaluate_trainer(self, progress=progress)
        self.last_evaluation = (self.step, results)
        return results

    # ------------------------------------------------------------------ loop
    def train(self, steps: int | None = None, *, evaluate_fn: Any = None) -> list[dict[str, Any]]:
        """Run until ``train.steps`` (or ``steps`` more), checkpointing as configured; returns the history.

        Every ``eval.every`` steps the held-out evaluation runs too (``evaluate_fn(trainer) -> metrics``; default:
        :meth:`evaluate` flattened to ``eval/...`` metrics), and its numbers join that step's metrics.
        """
        if evaluate_fn is None and self.config.eval.every:
            from ccpo_agents.evaluation import flat_metrics

            def evaluate_fn(trainer: Trainer) -> dict[str, float]:
                return flat_metrics(trainer.evaluate(progress=False))

        cfg = self.config.train
        target = cfg.steps if steps is None else self.step + steps
        bar = tqdm(total=target, initial=self.step, desc="ccpo train", unit="step",
                   disable=not (cfg.progress and self.accelerator.is_main_process))
        try:
            while self.step < target:
                m = self.train_step()
                postfix = {"joint": f"{m['rollout/joint_acc']:.2f}"}
                if "rollout/solo_acc" in m:
                    postfix["solo"] = f"{m['rollout/solo_acc']:.2f}"
                postfix["s/step"] = f"{m['time/step']:.1f}"
                bar.set_postfix(postfix)
                bar.update(1)
                if evaluate_fn is not None and self.config.eval.every and self.step % self.config.eval.every == 0:
                    evaluation = evaluate_fn(self)
                    self.history[-1].update(evaluation)
                    if evaluation:  # its own metrics.jsonl line, at the step it measured
                        self.logger.log({"step": self.step, **evaluation})
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < target:
                    self.save()
        finally:
            bar.close()
        self.save()
        if cfg.plot and self.accelerator.is_main_process:
            plot_curves(self.history, self.output_dir / "curves.png")
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def _owner_weights(self, owner: str) -> dict[str, torch.Tensor]:
        role = self.owners[owner][0]
        if self.roles.parameterisation == "lora":
            return {n: p for n, p in self.roles.named_trainable_parameters(role)}
        return self.roles.model_for(role).state_dict()

    def save(self) -> Path:
        """Write an atomic checkpoint of the current step; returns its folder.

        Under FSDP every rank must call it: the full weights and optimizer state are gathered onto rank 0,
        which writes the same weight files an unsharded run does.
        """
        acc = self.accelerator
        state = {
            "step": self.step,
            "data_position": self.data_position,
            "credit": self.credit.state_dict(),
            "config": self.config.to_dict(),
            "history": self.history,
            # "by_name": torch's name-keyed optimizer state (FSDP); "by_index": optimizer.state_dict()
            "optimizer_format": "by_name" if self.fsdp else "by_index",
        }
        weights: dict[str, dict[str, torch.Tensor]] = {}
        optim: dict[str, dict[str, Any]] = {}
        for o in self.owners:
            if self.fsdp:
                weights[o], opt_state = full_checkpoint_state(self.roles.model_for(self.owners[o][0]), self.optimizers[o])
            else:
                weights[o], opt_state = self._owner_weights(o), self.optimizers[o].state_dict()
            optim[o] = {"optimizer": opt_state, "scheduler": self.schedulers[o].state_dict()}
        return save_checkpoint(
            self.output_dir, self.step, weights=weights, optim=optim,
            state=state, rank=self.rank, world_size=self.world, is_main=acc.is_main_process,
            barrier=acc.wait_for_everyone if self.world > 1 else None, keep=self.config.train.keep_checkpoints,
        )

    def load(self, path: str | Path) -> None:
        """Restore weights, optimizers, schedulers, credit statistics, RNG, step and data position."""
        ckpt = load_checkpoint(path, rank=self.rank)
        by_name = ckpt["state"].get("optimizer_format") == "by_name"
        if self.fsdp and not by_name:
            raise ConfigError(f"{path} was written without FSDP (its optimizer state is keyed by parameter index, "
                              "which a sharded optimizer cannot take); resume it with train.fsdp=false, or start "
                              "a new run from its weights (policy.model=<folder saved from them>)")  # fmt: skip
        for owner, tensors in ckpt["weights"].items():
            if owner not in self.owners:
                continue
            role = self.owners[owner][0]
            if by_name:  # full weights and name-keyed optimizer state; each rank keeps its slice when sharded
                st = ckpt["optim"].get(owner)
                load_full_checkpoint_state(self.roles.model_for(role), self.optimizers[owner], tensors,
                                           st["optimizer"] if st else None)  # fmt: skip
            elif self.roles.parameterisation == "lora":
                named = dict(self.roles.named_trainable_parameters(role))
                with torch.no_grad():
                    for n, t in tensors.items():
                        named[n].copy_(t)
            else:
                self.roles.model_for(role).load_state_dict(tensors)
        for owner, st in ckpt["optim"].items():
            if owner in self.optimizers:
                if not by_name:
                    self.optimizers[owner].load_state_dict(st["optimizer"])
                self.schedulers[owner].load_state_dict(st["scheduler"])
        state = ckpt["state"]
        self.step = int(state["step"])
        self.data_position = int(state["data_position"])
        self.credit.load_state_dict(state["credit"])
        self.history = list(state.get("history", []))
        if ckpt["rng"] is not None:
            set_rng_state(ckpt["rng"])
        self._np_rng = np.random.default_rng(stable_seed(self.config.train.seed, "update", self.rank, self.step))
