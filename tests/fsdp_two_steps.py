"""Run by tests/test_fsdp.py under torch.distributed.run with 2 CPU processes (gloo): FSDP2 on a tiny Qwen2.5.

Each rank trains its half of a fixed batch with the CCPO policy-gradient objective through the sharded model;
an unsharded copy on every rank trains on the whole batch (the mean of the two halves' losses) as the
reference. Step 1, a sharded checkpoint, step 2; then a fresh sharded model resumes from the checkpoint and
redoes step 2. The results go to ``OUT/rank{r}.json`` for the test to compare.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from helpers import state_digest as digest

from ccpo_agents.algos import LossConfig, compute_policy_objective
from ccpo_agents.models.families import build_family
from ccpo_agents.policies import pad_batch, sequence_logprobs
from ccpo_agents.policies.base import encode_prompt
from ccpo_agents.trainer.fsdp import (
    full_checkpoint_state,
    gather_full_state_dict,
    load_full_checkpoint_state,
    load_sharded_checkpoint,
    save_sharded_checkpoint,
    shard_model,
)
from ccpo_agents.trainer.update import aligned_micro_batches

PROBLEMS = [f"Compute ({a}+{b})*{c}." for a, b, c in [(3, 4, 2), (1, 9, 5), (12, 7, 3), (2, 2, 2), (8, 1, 6),
                                                       (5, 5, 5), (9, 3, 1), (4, 6, 7)]]  # fmt: skip
ANSWERS = ["The answer is \\boxed{14}.", "10*5 = 50.", "First 12+7 = 19.", "\\boxed{8}", "9*6 = 54.", "50",
           "The answer is 12.", "Then 10*7 = 70."]  # fmt: skip
ADVANTAGES = torch.tensor([1.0, -0.5, 0.25, -1.0, 0.75, -0.25, 0.5, -0.75])


class _Procs:  # the two fields aligned_micro_batches reads of an accelerate Accelerator
    def __init__(self, world: int) -> None:
        self.num_processes, self.device = world, torch.device("cpu")


def make_model():
    return build_family("tiny-qwen2.5", seed=0)


def objective(model, tok, rows: list[int]) -> torch.Tensor:
    prompts = [encode_prompt(tok, PROBLEMS[i], "You are the Solver.") for i in rows]
    completions = [tok(ANSWERS[i], add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for i in rows]
    tb = pad_batch(prompts, completions, tok.pad_token_id)
    lp = sequence_logprobs(model, tb.input_ids, tb.attention_mask, tb.completion_mask).logprobs
    # one PPO epoch on the samples' own weights: old = current (detached), as the trainer does on-policy
    loss, _ = compute_policy_objective(lp, lp.detach(), ADVANTAGES[rows], tb.completion_mask, LossConfig(),
                                       num_tokens=float(tb.completion_mask.sum()), num_seqs=len(rows))  # fmt: skip
    return loss


def step(model, opt, tok, rows) -> float:
    opt.zero_grad(set_to_none=True)
    loss = objective(model, tok, rows)
    loss.backward()
    opt.step()
    return float(loss)


def optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)  # momentum: optimizer state to shard




def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = list(range(rank, len(PROBLEMS), world))
    halves = [list(range(r, len(PROBLEMS), world)) for r in range(world)]

    model, tok = make_model()
    reference = copy.deepcopy(model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    shard_model(model)
    opt = optimizer(model)
    ref_opt = optimizer(reference)
    local_numel = sum(p.to_local().numel() for p in model.parameters())
    full_numel = sum(p.numel() for p in reference.parameters())

    # The reference: the mean of the halves' losses, the gradient FSDP's averaging reduce-scatter computes.
    def ref_step():
        ref_opt.zero_grad(set_to_none=True)
        (sum(objective(reference, tok, h) for h in halves) / world).backward()
        ref_opt.step()

    step(model, opt, tok, mine)
    ref_step()
    momentum = next(iter(opt.state.values()))["momentum_buffer"]
    save_sharded_checkpoint(out / "ckpt_step1", model, opt, extra={"step": 1})
    step(model, opt, tok, mine)
    ref_step()
    full = gather_full_state_dict(model, rank0_only=False)
    rank0 = gather_full_state_dict(model)

    # Resume: a fresh model, sharded, loads step 1's shards and redoes step 2.
    resumed, _ = make_model()
    shard_model(resumed)
    ropt = optimizer(resumed)
    extra = load_sharded_checkpoint(out / "ckpt_step1", resumed, ropt)
    step(resumed, ropt, tok, mine)
    full_resumed = gather_full_state_dict(resumed, rank0_only=False)

    # The trainer's FSDP checkpoint form: full weights + name-keyed optimizer state on rank 0, then loaded
    # by every rank into a fresh sharded model (each keeping its slice) -> step 2 again, bit for bit.
    w1, o1 = full_checkpoint_state(resumed, ropt)  # resumed is at step 2 here; rewind a fresh one to it
    by_name = {"rank0_has_state": bool(w1) and bool(o1), "others_empty": not w1 and not o1}
    payload = [w1, o1]
    dist.broadcast_object_list(payload, src=0)  # stands in for every rank reading rank 0's checkpoint file
    fresh, _ = make_model()
    shard_model(fresh)
    fopt = optimizer(fresh)
    load_full_checkpoint_state(fresh, fopt, payload[0], payload[1])
    by_name["digest"] = digest(gather_full_state_dict(fresh, rank0_only=False))
    by_name["momentum_equal"] = all(
        torch.equal(a["momentum_buffer"].to_local(), b["momentum_buffer"].to_local())
        for a, b in zip(ropt.state.values(), fopt.state.values()))  # fmt: skip

    # Micro-batch counts differ between ranks (rank 0: 3 rows of 5 tokens, budget 5 -> 3; rank 1: 1 row):
    # every rank gets the largest count, padded with empty micro-batches.
    lengths = [(3, 2)] * 3
    aligned = aligned_micro_batches(_Procs(world), list(range(3 if rank == 0 else 1)), lengths, 4, 5)

    # The gathered weights are what a vLLM engine (or save_pretrained) needs: plain HF names, a plain model.
    plain, _ = make_model()
    missing = plain.load_state_dict(full, strict=True)
    ids = torch.tensor([encode_prompt(tok, PROBLEMS[0])])
    with torch.no_grad():
        sharded_logits = model(input_ids=ids).logits
        plain_logits = plain(input_ids=ids).logits

    # bf16 mixed precision + activation checkpointing on the same recipe: one step runs and trains.
    mp, _ = make_model()
    before = mp.model.layers[0].mlp.down_proj.weight.detach().clone()
    shard_model(mp, mixed_precision="bf16", activation_checkpointing=True)
    mp_loss = step(mp, optimizer(mp), tok, mine)
    mp_full = gather_full_state_dict(mp, rank0_only=False)

    ref_sd = reference.state_dict()
    result = {
        "rank": rank, "world": world, "local_numel": local_numel, "full_numel": full_numel,
        "momentum_is_sharded": type(momentum).__name__ == "DTensor" and momentum.to_local().numel() < momentum.numel(),
        "digest": digest(full), "digest_resumed": digest(full_resumed), "resumed_extra": extra,
        "trained": any(not torch.equal(full[k], initial[k]) for k in initial),
        "max_change": max((full[k] - initial[k]).abs().max().item() for k in initial),
        "max_diff_vs_unsharded": max((full[k] - ref_sd[k]).abs().max().item() for k in ref_sd),
        "keys_match_hf": sorted(full) == sorted(plain.state_dict()) and not missing.missing_keys,
        "rank0_only_sizes": len(rank0),
        "gathered_logits_max_diff": (sharded_logits - plain_logits).abs().max().item(),
        "bf16_ckpt_loss_finite": bool(torch.isfinite(torch.tensor(mp_loss))),
        "bf16_param_dtype": str(mp_full["model.layers.0.mlp.down_proj.weight"].dtype),
        "bf16_trained": not torch.equal(mp_full["model.layers.0.mlp.down_proj.weight"], before),
        "bf16_checkpointing_on": bool(mp.model.layers[0].gradient_checkpointing),
        "by_name": by_name, "aligned": aligned,
    }  # fmt: skip
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
