"""Helpers shared by test modules and the scripts they launch (not a test module itself)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from ccpo_env import Verdict


def coin_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    """Deterministic pseudo-random verdicts, so a random tiny model gets non-zero advantages."""
    h = hashlib.blake2b(response.encode(), digest_size=2).digest()[0]
    return Verdict(h % 2 == 0, response[-3:], "coin")


def run_two_processes(script: Path, out_dir: Path, port: int, python: str | None = None,
                      args: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Run ``script out_dir *args`` on 2 CPU processes with ``torch.distributed.run`` (under ``python``, default
    this interpreter); fail with both ranks' output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(
        [python or sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
         str(script), str(out_dir), *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def state_digest(state: dict) -> str:
    """SHA-256 over a state dict's names and fp32 values: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def engine_greedy_matches_hf(policy, model, prompts: list[str], adapter: str | None = None) -> bool:
    """A vLLM role policy and an HF policy on ``model`` (with LoRA ``adapter`` alone, if given; same prompt
    format) decode ``prompts`` alike, greedily."""
    from ccpo_agents.policies import HFPolicy

    greedy = policy.generation.replace(do_sample=False, row_seeded=False)
    hf = HFPolicy(model, policy.tokenizer, generation=greedy, system_prompt=policy.system_prompt,
                  chat_template_kwargs=policy.chat_template_kwargs, adapter=adapter)  # fmt: skip
    saved, policy.generation = policy.generation, greedy
    try:
        engine = [list(g.token_ids) for g in policy(prompts)]
    finally:
        policy.generation = saved
    return engine == [list(g.token_ids) for g in hf(prompts)]

