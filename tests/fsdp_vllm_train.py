"""Run by tests/test_vllm.py under torch.distributed.run, 2 CPU processes (gloo), in the vLLM venv.

    fsdp_vllm_train.py OUT [fsdp|ddp]

``Trainer`` with ``train.fsdp=true`` and ``policy.backend=vllm``: each rank holds half of a tiny Qwen2.5
(in memory, so rank 0 saves it for both engines), owns its own in-process vLLM engine and, after every
step, reloads the full weights gathered by both ranks. Token-bounded micro-batches give the ranks
different micro-batch counts, which the update pads so that FSDP's collectives stay in step. Writes
``rank<r>.json`` with what the test asserts on:

- the models are sharded (each rank holds fewer parameters than the model has) and train;
- both ranks gather the same full weights, and each engine's greedy output after the sync equals a plain
  HF model's holding those weights;
- a second trainer that loads the step-2 checkpoint (full weights plus name-keyed optimizer state, sliced
  per rank) and takes step 3 ends with the same weights as the first trainer's own step 3.

With ``ddp`` the same run replicates the model instead (``train.fsdp=false``): each rank's engine reloads
its own replica.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import torch
from helpers import coin_verifier, engine_greedy_matches_hf
from helpers import state_digest as digest

from ccpo_agents.config import load_config
from ccpo_agents.trainer import Trainer, gather_full_state_dict
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv

PROMPTS = ["Compute (3+4)*2.", "What is 12-5?", "Add 7 and 9.", "Compute 6*7."]


def overrides(out: Path, mode: str) -> list[str]:
    return [f"train.fsdp={str(mode == 'fsdp').lower()}",
        "policy.model=tiny-qwen2.5", "policy.backend=vllm", "policy.vllm.in_process=true",
        f"policy.vllm.kv_cache_memory_bytes={16 * 2**20}", "policy.vllm.dtype=float32",
        "policy.vllm.max_model_len=512", "policy.vllm.enforce_eager=true", "train.cpu=true",
        "credit.method=ccpo_tree", "rollout.prompts_per_step=4", "rollout.num_thoughts=2", "rollout.num_solo=2",
        "policy.generation.max_new_tokens=8", "optim.lr=1e-3", "optim.micro_batch_size=3",
        "optim.micro_batch_tokens=140", "train.steps=2", f"train.output_dir={out}", "train.progress=false",
        "train.plot=false", "train.tensorboard=false", "eval.limit=0",
    ]  # fmt: skip


def greedy_matches_hf(trainer: Trainer, full: dict[str, torch.Tensor]) -> bool:
    """The rank's engine (synced after the last step) decodes like an unsharded HF model with ``full``."""
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(trainer.output_dir / "vllm-model" / "shared")
    plain.load_state_dict(full)
    plain.eval()
    return engine_greedy_matches_hf(trainer.roles.policy_for("solver"), plain, PROMPTS)


def full_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    model = trainer.roles.model_for("solver")
    return gather_full_state_dict(model, rank0_only=False) if trainer.fsdp else dict(model.state_dict())


def main() -> None:
    out = Path(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "fsdp"
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    a = Trainer(load_config(overrides=overrides(out / "a", mode)), env=env)
    model = a.roles.model_for("solver")
    initial = digest(full_weights(a))
    local = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in model.parameters())
    full_numel = sum(p.numel() for p in model.parameters())
    history = a.train()
    full2 = full_weights(a)
    result = {
        "rank": a.rank, "world": a.world, "fsdp": a.fsdp, "steps": a.step, "local_numel": local,
        "full_numel": full_numel, "initial": initial, "digest_step2": digest(full2),
        "engine_syncs": a.engine.syncs, "greedy_equal_hf": greedy_matches_hf(a, full2),
        "optimizer_steps": [h.get("solver/optimizer_steps") for h in history],
        "padded_micro_batches": [h.get(f"{r}/padded_micro_batches") for h in history for r in ("thinker", "solver")],
        "engine_sync_seconds": [h.get("time/engine_sync") for h in history],
    }  # fmt: skip
    a.train(steps=1)
    result["digest_step3"] = digest(full_weights(a))
    ckpt = out / "a" / "checkpoints" / "step_000002"
    del a, model
    gc.collect()

    b = Trainer(load_config(overrides=overrides(out / "b", mode)), env=env)
    b.load(ckpt)
    b.engine.sync()
    result["resumed_step"] = b.step
    result["digest_resumed_step2"] = digest(full_weights(b))
    b.train(steps=1)
    result["digest_resumed_step3"] = digest(full_weights(b))
    result["resumed_steps"] = b.step
    (out / f"rank{b.rank}.json").write_text(json.dumps(result, indent=1))
    torch.distributed.barrier()


if __name__ == "__main__":
    main()
