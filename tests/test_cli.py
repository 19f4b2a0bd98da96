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
