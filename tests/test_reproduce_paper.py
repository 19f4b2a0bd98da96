"""``benchmarks/reproduce_paper.py``: recipes per cell, the dry run, and a reduced CPU smoke that resumes."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("reproduce_paper", ROOT / "benchmarks" / "reproduce_paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_paper"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_recipes_cover_every_cell_and_dry_run(capsys):
    rp = _script()
    runs = {r.key: r for r in rp.recipes(smoke=False, model_dir=None, data_dir=None)}
    # 4 models x 3 columns (GRPO) + 2 models x 4 columns (GSPO); the diagnostic reuses the GRPO CCPO runs
    assert len(runs) == 4 * 3 + 2 * 4
    r = runs["qwen2.5-1.5b-instruct-gspo-sepo"]
    assert "credit.method=sepo" in r.overrides and "algo.loss.name=gspo" in r.overrides and r.est_gpu_hours > 0
    assert runs["qwen2.5-1.5b-instruct-grpo-untrained"].credit is None
    assert "policy.model=Qwen/Qwen2.5-1.5B-Instruct" in r.overrides
    from ccpo_agents.config import load_config

    for run in runs.values():  # every paper-budget recipe is a valid config (validated, nothing built)
        cfg = load_config(None, [*run.overrides, "train.output_dir=unused"])
        assert cfg.env.dataset == "math_train" and cfg.policy.parameterisation == "lora"
    out = rp.main(["--dry-run", "--tables", "collaboration_diagnostic"])
    assert [x["key"] for x in out["runs"]] == [f"{m}-grpo-ccpo" for m in rp.PAPER["collaboration_diagnostic"]["rows"]]
    assert "estimated total" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown model"):
        rp.main(["--dry-run", "--models", "gpt-5"])


def test_model_dir_is_used_when_it_holds_the_model(tmp_path):
    rp = _script()
    (tmp_path / "Qwen3-4B-Base").mkdir()
    runs = {r.key: r for r in rp.recipes(smoke=False, model_dir=str(tmp_path), data_dir=None)}
    assert f"policy.model={tmp_path / 'Qwen3-4B-Base'}" in runs["qwen3-4b-base-grpo-ccpo"].overrides
    assert "policy.model=Qwen/Qwen2.5-7B-Instruct" in runs["qwen2.5-7b-instruct-grpo-ccpo"].overrides


@pytest.mark.slow
def test_reduced_smoke_writes_the_paper_layout_and_resumes(tmp_path):
    data = Path(os.environ.get("CCPO_DATA_DIR", "/nonexistent"))
    if not (data / "math500.jsonl").is_file():
        pytest.skip("needs $CCPO_DATA_DIR/math500.jsonl")
    rp = _script()
    argv = ["--smoke", "--no-progress", "--tables", "collaboration_diagnostic", "grpo_math500",
            "--models", "qwen2.5-1.5b-instruct", "--data-dir", str(data), "--out", str(tmp_path)]
    first = rp.main(argv)
    assert sorted(first["runs"]) == [f"qwen2.5-1.5b-instruct-grpo-{c}" for c in ("ccpo", "shared", "untrained")]
    text = (tmp_path / "tables.md").read_text()
    assert "| model | benchmark | full_collaboration | thinker_removed |" in text
    assert "| qwen2.5-1.5b-instruct | math500 |" in text and "(61.00, " in text and "(56.40, " in text
    assert "GPU-hours" in text and "llama3.1" not in text
    ccpo = first["runs"]["qwen2.5-1.5b-instruct-grpo-ccpo"]
    assert ccpo["results"]["math500"]["n"] == 2 and "solo_pass@1" in ccpo["results"]["math500"]
    assert (tmp_path / "qwen2.5-1.5b-instruct-grpo-ccpo" / "run").is_dir()
    again = rp.main(argv)  # every run is done: read back, nothing retrained
    assert again["runs"] == json.loads(json.dumps(first["runs"], default=str))
    assert again["wall_s"] < first["wall_s"]
