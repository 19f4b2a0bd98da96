"""A 2-process CPU (gloo) run: both ranks finish two steps with identical weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_two_processes


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_process_cpu_run_keeps_ranks_identical(tmp_path):
    run_two_processes(Path(__file__).with_name("ddp_two_steps.py"), tmp_path, port=29517)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 2
    assert r0["digest"] == r1["digest"]
    assert r0["digest"] != r0["initial"]  # the weights did train
    assert r0["norm"] == r1["norm"]  # credit statistics computed on the gathered batch everywhere
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000002"
