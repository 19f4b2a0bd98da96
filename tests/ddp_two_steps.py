"""Run by tests/test_distributed.py under torch.distributed.run with 2 CPU processes (gloo)."""

from __future__ import annotations

import hashlib
import json
import sys

import torch
from helpers import coin_verifier

from ccpo_agents.config import load_config
from ccpo_agents.trainer import Trainer
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv


def weights_digest(trainer: Trainer) -> str:
    digest = hashlib.sha256()
    for p in trainer.roles.trainable_parameters("solver"):
        digest.update(p.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    out = sys.argv[1]
    cfg = load_config(overrides=[
        "policy.model=tiny", "train.cpu=true", "train.steps=2", f"train.output_dir={out}", "train.progress=false", "train.plot=false",
        "train.tensorboard=false", "rollout.prompts_per_step=4", "rollout.num_thoughts=2", "rollout.num_solo=2",
        "policy.generation.max_new_tokens=6", "optim.lr=1e-3", "eval.limit=0",
    ])
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    trainer = Trainer(cfg, env=env)
    initial = weights_digest(trainer)
    history = trainer.train()
    result = {"rank": trainer.rank, "world": trainer.world, "steps": trainer.step, "digest": weights_digest(trainer),
              "initial": initial,
              "joint_acc": history[-1]["rollout/joint_acc"], "norm": trainer.credit.state_dict()}
    with open(f"{out}/rank{trainer.rank}.json", "w") as f:
        json.dump(result, f)
    torch.distributed.barrier()


if __name__ == "__main__":
    main()
