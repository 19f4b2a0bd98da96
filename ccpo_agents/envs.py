"""The team env an :class:`~ccpo_agents.config.EnvConfig` describes, built through its topology."""

from __future__ import annotations

from typing import Any

from ccpo_env.data import pick_split
from ccpo_env.prompts import TEMPLATE_PRESETS
from ccpo_env.topology import get_topology

__all__ = ["build_env", "eval_split", "train_split"]


def train_split(env_cfg: Any) -> str:
    """``env.split``, or the dataset's training split (its only split for an evaluation-only set)."""
    return env_cfg.split or pick_split(env_cfg.dataset, "train")


def eval_split(eval_cfg: Any, dataset: str) -> str:
    """``eval.split``, or the dataset's test split (its only split for a training-only set)."""
    return eval_cfg.split or pick_split(dataset, "test")


def build_env(env_cfg: Any, *, dataset: str | None = None, split: str | None = None,
              dataset_options: dict[str, Any] | None = None, limit: int | None = None) -> Any:
    """The template env of ``env_cfg`` (optionally on another dataset, split, options or size)."""
    topology = get_topology(env_cfg.topology)
    kwargs: dict[str, Any] = dict(
        split=split or (env_cfg.split or pick_split(dataset or env_cfg.dataset, "train")), data_dir=env_cfg.data_dir,
        dataset_options=env_cfg.dataset_options if dataset_options is None else dataset_options,
        limit=limit, reward_correct=env_cfg.reward_correct, reward_incorrect=env_cfg.reward_incorrect,
        max_action_chars=env_cfg.max_action_chars, templates=TEMPLATE_PRESETS[env_cfg.templates],
        extraction=env_cfg.extraction,
    )
    kwargs.update({key: getattr(env_cfg, key) for key, _ in topology.env_options})
    return topology.make_env(dataset or env_cfg.dataset, **kwargs)
