"""The trainer: rollout → counterfactual branches → verifier → credit → advantages → updates."""

from ccpo_agents.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ccpo_agents.trainer.fsdp import (
    check_fsdp_policy,
    full_checkpoint_state,
    gather_full_state_dict,
    load_full_checkpoint_state,
    load_sharded_checkpoint,
    save_sharded_checkpoint,
    shard_model,
)
from ccpo_agents.trainer.logging import MetricsLogger, plot_curves
from ccpo_agents.trainer.memory import peak_memory_mb
from ccpo_agents.trainer.samples import RoleBatch, add_solo_answers, build_role_batches
from ccpo_agents.trainer.trainer import Trainer
from ccpo_agents.trainer.update import (
    RoleUpdate,
    aligned_micro_batches,
    checkpointing_layers,
    micro_batches,
    update_role,
)

__all__ = [
    "MetricsLogger",
    "RoleBatch",
    "RoleUpdate",
    "Trainer",
    "add_solo_answers",
    "aligned_micro_batches",
    "build_role_batches",
    "check_fsdp_policy",
    "checkpointing_layers",
    "full_checkpoint_state",
    "gather_full_state_dict",
    "latest_checkpoint",
    "load_checkpoint",
    "load_full_checkpoint_state",
    "load_sharded_checkpoint",
    "micro_batches",
    "peak_memory_mb",
    "plot_curves",
    "save_checkpoint",
    "save_sharded_checkpoint",
    "shard_model",
    "update_role",
]
