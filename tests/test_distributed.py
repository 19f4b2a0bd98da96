"""A 2-process CPU (gloo) run: both ranks finish two steps with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_process_cpu_run_keeps_ranks_identical(tmp_path):
    script = Path(__file__).with_name("ddp_two_steps.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         str(script), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 2
    assert r0["digest"] == r1["digest"]
    assert r0["digest"] != r0["initial"]  # the weights did train
    assert r0["norm"] == r1["norm"]  # credit statistics computed on the gathered batch everywhere
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000002"
