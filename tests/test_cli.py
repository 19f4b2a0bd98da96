"""The ``ccpo`` command line on a tiny, seconds-long run."""

from __future__ import annotations

import json
import subprocess
import sys

from ccpo_agents.cli import main

TINY = ["policy.model=tiny", "train.steps=2", "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.num_solo=2",
        "policy.generation.max_new_tokens=6", "eval.limit=4", "train.progress=false"]


def test_train_then_eval_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, f"train.output_dir={out}"]) == 0
    text = capsys.readouterr().out
    assert "[pass@1]" in text and "before" in text and "after" in text and "Thinker removed" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and "arith" in summary["after"]
    assert (out / "curves.png").stat().st_size > 1000
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    assert main(["eval", "--checkpoint", f"Trained={out}", "eval.limit=4"]) == 0
    text = capsys.readouterr().out
    assert "Untrained" in text and "Trained" in text and "Collaboration diagnostic" in text
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # eval never touches the run

    assert main(["train", *[x for x in TINY if x != "train.steps=2"], "--resume", "train.steps=3", f"train.output_dir={out}", "--no-eval"]) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


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
