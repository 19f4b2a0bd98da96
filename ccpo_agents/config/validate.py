"""One check of a whole experiment config, at load: does this combination make sense?

Each section validates its own fields when it is built; :func:`check_config` checks what spans sections, so
that a bad combination fails before any model is loaded, with one message that says what is valid:

- the dataset: a registered name, a split it has, options it takes (training and evaluation datasets);
- credit × topology: the method's inputs (solo rollouts, thoughts, ratings, leave-one-out rewards) are ones
  the team's topology can provide; thought-level credit has m ≥ 2 answers per thought;
- schedule × roles: trained roles exist in the topology, and ``alternate`` has at least two to alternate;
- policy × roles: per-role models, system prompts and generation overrides name roles of the topology;
- the model reference: a folder that exists, a registered name or a Hub-shaped id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ccpo_agents.config.loader import ConfigError
from ccpo_env.topology import get_topology

__all__ = ["check_config"]


def _roles_ok(what: str, names: Iterable[str], roles: tuple[str, ...], topology: str) -> None:
    unknown = sorted(set(names) - set(roles))
    if unknown:
        raise ConfigError(f"{what} names role(s) {unknown}, but topology {topology!r} has roles {list(roles)}")


def _check_data(where: str, name: str, split: str, options: dict[str, Any]) -> None:
    from ccpo_env.data import DatasetArgumentError, UnknownDatasetError, check_dataset_args

    try:
        check_dataset_args(name, split=split, options=options)
    except (UnknownDatasetError, DatasetArgumentError) as e:
        raise ConfigError(f"{where}: {e}") from None


def check_config(cfg: Any) -> None:
    """Raise :class:`ConfigError` if the sections of ``cfg`` (an ``ExperimentConfig``) do not fit together."""
    from ccpo_agents.credit import get_credit, list_credits

    topology = get_topology(cfg.env.topology)
    roles = topology.roles

    from ccpo_agents.envs import eval_split, train_split
    from ccpo_env.data import UnknownDatasetError

    try:
        split = train_split(cfg.env)
    except UnknownDatasetError as e:
        raise ConfigError(f"env.dataset: {e}") from None
    _check_data("env.dataset", cfg.env.dataset, split, cfg.env.dataset_options)
    for name in cfg.eval.datasets or [cfg.env.dataset]:
        opts = cfg.eval.dataset_options.get(name)
        if opts is None:
            opts = cfg.env.dataset_options if name == cfg.env.dataset else {}
        try:
            split = eval_split(cfg.eval, name)
        except UnknownDatasetError as e:
            raise ConfigError(f"eval.datasets: {e}") from None
        _check_data(f"eval.datasets ({name!r})", name, split, opts)

    spec = get_credit(cfg.credit.method)
    missing = topology.missing(spec.needs)
    if missing or not spec.fits(topology.roles, topology.provides):
        fitting = [m for m in list_credits() if get_credit(m).fits(topology.roles, topology.provides)]
        what = (f"needs {missing}, which env.topology={topology.name!r} cannot provide" if missing else
                f"is written for the roles {list(spec.team)}, not env.topology={topology.name!r}'s {list(roles)}")
        raise ConfigError(f"credit.method={spec.name!r} {what}; methods for this topology: {fitting}")
    if cfg.credit.train_solo:
        solo_methods = [m for m in list_credits() if get_credit(m).needs_solo and not get_credit(m).is_baselined("solver")]
        if not spec.needs_solo or spec.is_baselined("solver"):
            why = "samples no solo answers" if not spec.needs_solo else "gives the Solver a baselined advantage"
            raise ConfigError(f"credit.train_solo=true: credit.method={spec.name!r} {why}; methods it fits: {solo_methods}")
    if cfg.credit.thought_cost > 0 and "thinker" not in roles:
        raise ConfigError(f"credit.thought_cost={cfg.credit.thought_cost} charges the Thinker's tokens; "
                          f"env.topology={topology.name!r} has no Thinker (roles {list(roles)}): set it to 0")
    allow_single = bool(cfg.credit.options.get("allow_single_answer", False))
    if spec.needs_thoughts and cfg.rollout.answers_per_thought < 2 and not allow_single:
        raise ConfigError(f"credit.method={spec.name!r} needs rollout.answers_per_thought >= 2 (m answers per thought)")

    train_roles = tuple(cfg.train.train_roles or roles)
    _roles_ok("train.train_roles", train_roles, roles, topology.name)
    if cfg.train.schedule == "alternate" and len(train_roles) < 2:
        raise ConfigError(f"train.schedule='alternate' needs at least two trained roles; got {list(train_roles)}")

    _roles_ok("policy.system_prompts", cfg.policy.system_prompts, roles, topology.name)
    _roles_ok("policy.role_generation", cfg.policy.role_generation, roles, topology.name)
    if isinstance(cfg.policy.model, dict):
        _roles_ok("policy.model", cfg.policy.model, roles, topology.name)
    from ccpo_agents.models.registry import ModelNotFoundError, resolve_model

    refs = cfg.policy.model.values() if isinstance(cfg.policy.model, dict) else [cfg.policy.model]
    for ref in refs:
        try:
            resolve_model(ref)
        except ModelNotFoundError as e:
            raise ConfigError(f"policy.model: {e}") from None
