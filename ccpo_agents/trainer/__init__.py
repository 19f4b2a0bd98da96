"""The trainer: rollout → counterfactual branches → verifier → credit → advantages → updates."""

from ccpo_agents.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ccpo_agents.trainer.logging import MetricsLogger, plot_curves
from ccpo_agents.trainer.samples import RoleBatch, build_role_batches, role_of_agent
from ccpo_agents.trainer.trainer import Trainer, build_env, roles_for_topology
from ccpo_agents.trainer.update import RoleUpdate, update_role

__all__ = [
    "MetricsLogger",
    "RoleBatch",
    "RoleUpdate",
    "Trainer",
    "build_env",
    "build_role_batches",
    "latest_checkpoint",
    "load_checkpoint",
    "plot_curves",
    "role_of_agent",
    "roles_for_topology",
    "save_checkpoint",
    "update_role",
]
