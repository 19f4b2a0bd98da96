"""The ``ccpo`` command line on a tiny, seconds-long run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ccpo_agents.cli import main

TINY = ["policy.model=tiny", "train.steps=2", "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.num_solo=2",
        "policy.generation.max_new_tokens=6", "eval.limit=4", "train.progress=false"]


def test_train_then_eval_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, f"train.output_dir={out}"]) == 0
    text = capsys.readouterr().out
    assert "[held-out joint accuracy, pass@1 ± s.e.]" in text and "before" in text and "after" in text
    assert "Thinker removed" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and "arith" in summary["after"]
    assert (out / "curves.png").stat().st_size > 1000
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 2]  # held-out before, two training steps, held-out after

    assert main(["eval", "--checkpoint", f"Trained={out}", "eval.limit=4"]) == 0
    text = capsys.readouterr().out
    assert "Untrained" in text and "Trained" in text and "Collaboration diagnostic" in text
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4  # eval never touches the run

    assert main(["train", *[x for x in TINY if x != "train.steps=2"], "--resume", "train.steps=3", f"train.output_dir={out}", "--no-eval"]) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 2, 3]


def test_bad_config_key_exits_2_with_message(tmp_path, capsys):
    assert main(["train", "train.stpes=3", f"train.output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.stpes'" in err and "did you mean 'steps'" in err


def test_bench_lists_and_runs(capsys):
    assert main(["bench"]) == 0
    assert "env" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 2


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "ccpo_agents.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "train" in proc.stdout and "eval" in proc.stdout


def test_default_run_from_the_warm_start_in_seconds(tmp_path, monkeypatch, capsys):
    """``ccpo train`` with the embedded default (arith-warmstart, ccpo_tree, level-1 arith) end to end, with
    a seconds-long warm-start recipe in a private cache and two steps instead of 300."""
    import torch

    from ccpo_agents.models import warmstart as ws

    quick = ws.WarmStartRecipe(model="tiny", num_steps=20, batch_size=16, warmup_steps=5, eval_problems=0)
    monkeypatch.setattr(ws, "default_recipe", lambda name="arith-warmstart": quick)
    monkeypatch.setenv("CCPO_CACHE_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    try:
        assert main(["train", "train.steps=2", "rollout.prompts_per_step=2", "eval.limit=4", "train.progress=false",
                     f"train.output_dir={out}"]) == 0
    finally:
        torch.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "before" in text and "after" in text and "Thinker removed" in text
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads(next(out.rglob("state.json")).read_text())["config"]
    assert summary["steps"] == 2 and config["policy"]["model"] == "arith-warmstart"
    assert config["credit"]["method"] == "ccpo_tree" and config["env"]["dataset_options"] == {"level": [1]}
    assert (tmp_path / "cache" / "warmstart" / quick.fingerprint() / "metrics.json").is_file()
    assert (out / "curves.png").stat().st_size > 1000


def test_first_contact_errors_are_one_line_with_exit_2(tmp_path, monkeypatch, capsys):
    """What a new user mistypes gets one line saying what was wrong and what is valid, exit code 2, no traceback."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set it here too
    cases = {
        "env.dataset=math5000": "unknown dataset 'math5000'. Did you mean 'math500'?",
        "env.dataset_options={nope: 1}": "dataset 'arith' does not take option(s) ['nope']; its options: [",
        "env.split=validation": "dataset 'arith' has no split 'validation'; its splits: 'train', 'test'",
        f"policy.model={tmp_path / 'missing'}": "does not exist; give an existing folder written by save_pretrained",
        "policy.model=Qwen/Qwen2.5-0.5B-Instruct": "could not load 'Qwen/Qwen2.5-0.5B-Instruct' from the Hugging Face Hub",
    }
    for override, message in cases.items():
        code = main(["train", override, "train.steps=1", f"train.output_dir={tmp_path / 'run'}", "--no-eval"])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (override, err[-2000:])
        assert len([line for line in err.splitlines() if line.startswith("ccpo: ")]) == 1
    # and as a real process: no traceback reaches the terminal
    proc = subprocess.run([sys.executable, "-m", "ccpo_agents.cli", "train", "env.dataset=math5000"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Did you mean 'math500'" in proc.stderr


def test_train_on_an_evaluation_set_just_works(tmp_path, capsys, monkeypatch):
    """``ccpo train env.dataset=math500``: no arith options carried over; it trains on the only split and says
    that the evaluation is on the training problems. Needs ``$CCPO_DATA_DIR/math500.jsonl``."""
    import os
    from pathlib import Path

    if not (Path(os.environ.get("CCPO_DATA_DIR", "/nonexistent")) / "math500.jsonl").is_file():
        pytest.skip("set CCPO_DATA_DIR to the benchmark data folder (../shared/data)")
    assert main(["train", "env.dataset=math500", *TINY, "policy.generation.max_new_tokens=2", "train.steps=1",
                 "eval.limit=2", f"train.output_dir={tmp_path}"]) == 0
    text = capsys.readouterr().out
    assert "on math500/test" in text and "runs on the training problems" in text
    assert "math500" in json.loads((tmp_path / "summary.json").read_text())["after"]
