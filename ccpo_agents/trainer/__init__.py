"""The trainer: rollout → counterfactual branches → verifier → credit → advantages → updates."""

from ccpo_agents.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ccpo_agents.trainer.logging import MetricsLogger, plot_curves
from ccpo_agents.trainer.samples import RoleBatch, build_role_batches
from ccpo_agents.trainer.trainer import Trainer
from ccpo_agents.trainer.update import RoleUpdate, update_role

__all__ = [
    "MetricsLogger",
    "RoleBatch",
    "RoleUpdate",
    "Trainer",
    "build_role_batches",
    "latest_checkpoint",
    "load_checkpoint",
    "plot_curves",
    "save_checkpoint",
    "update_role",
]
