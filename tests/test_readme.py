"""The README's code runs as written (the training snippet with fewer steps)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.skipif(not os.environ.get("CCPO_DATA_DIR"), reason="the quick tour reads math500 via CCPO_DATA_DIR")
def test_quick_tour_runs(capsys):
    block = python_blocks()[0]
    exec(compile(block, "README quick tour", "exec"), {})
    out = capsys.readouterr().out
    assert "episodes;" in out


def test_training_snippet_runs(tmp_path, monkeypatch):
    block = python_blocks()[1]
    assert "train.steps=50" in block
    fast = block.replace('"train.steps=50", "train.output_dir=runs/demo"',
                         f'"policy.model=tiny", "train.steps=1", "train.output_dir={tmp_path}", "rollout.prompts_per_step=2", '
                         '"rollout.num_thoughts=2", "rollout.num_solo=2", "policy.generation.max_new_tokens=4", '
                         '"train.progress=false", "train.plot=false"')
    assert fast != block
    exec(compile(fast, "README training snippet", "exec"), {})
    assert (tmp_path / "metrics.jsonl").is_file()


def test_readme_setup_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    install = 'pip install -c constraints/cpu.txt -e ".[agents,tianshou,trl,dev]"'
    test_cmd = "CCPO_DATA_DIR=../shared/data python -m pytest -q"
    assert f"{install} && {test_cmd}" in text
    assert install in ci and test_cmd in ci
    assert 'pip install -c constraints/cpu.txt -e ".[agents]" && ccpo train' in text
