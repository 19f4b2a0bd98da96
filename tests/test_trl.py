"""TRL interop: a real ``GRPOTrainer`` with the ccpo verifier as its reward, and the side-by-side benchmark.
Skipped when TRL is not installed (``pip install 'ccpo[trl]'``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """TRL's Trainer and ours share accelerate's process-wide state: start and leave each test with none."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_grpo_trainer_with_the_ccpo_verifier():
    example = _load(ROOT / "examples" / "trl_reward.py", "trl_reward_example")
    rewards = example.train_with_trl(2)
    assert rewards is not None and len(rewards) == 2 and all(0.0 <= r <= 1.0 for r in rewards)


@pytest.mark.slow
def test_bench_vs_trl_alternates_and_compares():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = _load(ROOT / "benchmarks" / "bench_vs_trl.py", "bench_vs_trl")
    res = bench.main(["--steps", "2", "--eval-problems", "4", "--no-team", "--quick", "--prompts", "2"])
    for k in ("trl", "ccpo"):
        assert res[k]["steps"] == 2 and res[k]["generated_tokens"] > 0 and res[k]["s_per_step"] > 0
        assert 0.0 <= res[k]["heldout_acc"] <= 1.0
    assert res["ratios"]["s_per_step_trl_over_ccpo"] == pytest.approx(res["trl"]["s_per_step"] / res["ccpo"]["s_per_step"])
