"""Typed experiment configuration: YAML files and ``key=value`` overrides into dataclasses."""

from ccpo_agents.config.loader import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml,
    parse_override,
    to_dict,
)
from ccpo_agents.config.schema import (
    AlgoConfig,
    CreditConfig,
    EnvConfig,
    EvalConfig,
    ExperimentConfig,
    OptimConfig,
    RolloutConfig,
    TrainConfig,
    default_config,
    load_config,
)

__all__ = [
    "AlgoConfig",
    "ConfigError",
    "CreditConfig",
    "EnvConfig",
    "EvalConfig",
    "ExperimentConfig",
    "OptimConfig",
    "RolloutConfig",
    "TrainConfig",
    "apply_overrides",
    "default_config",
    "from_dict",
    "load_config",
    "load_yaml",
    "parse_override",
    "to_dict",
]
