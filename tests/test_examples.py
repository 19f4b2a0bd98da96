"""Every example runs as-is (with its fastest flags) and prints what its docstring promises.

Examples run in-process with ``runpy`` (imports are shared, so this is fast), except the tianshou one,
which runs in a subprocess: it sets ``NUMBA_DISABLE_JIT`` before importing tianshou, which only takes
effect in a process where numba has not been imported yet (other tests import tianshou).
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    """Run ``examples/<name>`` as ``__main__`` with ``args``; return its stdout."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the examples prepend their folder; undo it afterwards
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def number_after(label: str, text: str) -> float:
    m = re.search(re.escape(label) + r"\s+([+-]?[0-9.]+)", text)
    assert m, f"{label!r} not found in output:\n{text}"
    return float(m.group(1))


def test_examples_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts, "no examples found"
    for name in scripts:
        assert name in readme, f"examples/README.md does not mention {name}"


def test_quickstart(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("quickstart.py", ["--problems", "12"], monkeypatch, capsys)
    joint = number_after("team (Thinker -> Solver)", out)
    solo = number_after("Solver alone (Thinker removed)", out)
    assert joint > solo, out
    assert number_after("Thinker contribution (joint - solo)", out) == pytest.approx(joint - solo, abs=2e-3)
    assert "=== ThinkSolveEnv" in out and "removed: thinker" in out  # transcript and its branch
    plurality = number_after("plurality vote accuracy", out)
    single = number_after("single voter accuracy", out)
    assert 0.0 <= single <= 1.0 and 0.0 <= plurality <= 1.0
    assert "R_not_i" in out and "=== VotingEnv" in out


def test_custom_policy_loop(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("transformers")
    out = run_example("custom_policy_loop.py", ["--max-new-tokens", "4", "--problems", "1"], monkeypatch, capsys)
    assert "RANDOM weights" in out
    assert "[thinker] says:" in out and "[solver] done: reward" in out
    assert "removed ('thinker',)" in out and "first to act is 'solver'" in out
    # 1 problem x 2 thoughts x 2 answers + 2 solo = 6 episodes, one policy call per agent turn.
    assert "6 episodes; policy calls: thinker 1 call(s) / 2 observations, solver 1 call(s) / 6 observations" in out


def test_custom_credit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from ccpo_agents.credit import registry

    monkeypatch.setattr(registry, "_REGISTRY", registry._REGISTRY.copy())  # keep the global registry clean
    out = run_example("custom_credit.py", ["--problems", "2", "--clip", "1.0"], monkeypatch, capsys)
    assert "ccpo_simple" in out.splitlines()[0]  # registered and listed by name
    assert "ccpo_simple  baselined {'thinker': True, 'solver': False}" in out
    assert "shared" in out and "ccpo_tree" in out
    # with --clip 1.0 the custom Thinker credit (field 9 of each row) stays within [-1, 1]
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+\d+\s+(joint|solo)\s", line)]
    assert len(rows) == 8
    assert all(abs(float(r[9])) <= 1.0 for r in rows)


def test_custom_credit_is_short() -> None:
    """The custom assigner (config + registration + function) stays under 30 lines of code."""
    text = (EXAMPLES / "custom_credit.py").read_text()
    start = text.index("@dataclass(frozen=True)\nclass SimpleConfig")
    end = text.index("# -----", start)
    code = [
        line for line in text[start:end].splitlines()
        if line.strip() and not line.strip().startswith("#") and not line.strip().startswith('"""')
    ]
    assert len(code) < 30, code


def test_trl_reward(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("trl_reward.py", [], monkeypatch, capsys)
    assert "ccpo_verifier_answer" in out
    rewards = [float(x) for x in re.findall(r"reward ([+-][0-9.]+)", out)]
    assert rewards == [1, 0, 0, 1, 0, 0, 1, 1, -0.1, 1, 1, 1, 0]


def _run_tianshou(args: list[str]) -> str:
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "tianshou_interop.py"), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_tianshou_interop() -> None:
    pytest.importorskip("tianshou")
    out = _run_tianshou(["--episodes", "4", "--envs", "2"])
    assert int(re.search(r"collected (\d+) episodes", out).group(1)) >= 1
    assert number_after("mean reward: thinker", out) > 0  # the scripted team mostly succeeds
    assert "[solver] act 'The result is" in out


@pytest.mark.slow
def test_tianshou_interop_with_hf_policy() -> None:
    pytest.importorskip("tianshou")
    pytest.importorskip("transformers")
    out = _run_tianshou(["--hf", "--episodes", "2", "--envs", "2", "--max-new-tokens", "4"])
    assert int(re.search(r"collected (\d+) episodes", out).group(1)) >= 1
    assert "tiny random-weights HFPolicy" in out


def test_tianshou_marl() -> None:
    pytest.importorskip("tianshou")
    proc = subprocess.run(  # a subprocess for the same NUMBA_DISABLE_JIT reason as tianshou_interop.py
        [sys.executable, str(EXAMPLES / "tianshou_marl.py"), "--iterations", "3", "--episodes-per-iter", "32",
         "--eval-problems", "50", "--eval-every", "0", "--credit", "ccpo_tree"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"held-out team return untrained ([+-][0-9.]+) -> trained ([+-][0-9.]+)", proc.stdout)
    assert m, proc.stdout
    assert float(m.group(2)) > float(m.group(1)), proc.stdout  # seeded: it learns in 96 episodes
    assert "MultiAgentOnPolicyAlgorithm" in proc.stdout and "96 training episodes" in proc.stdout
    assert "credit on 6 identical episodes" in proc.stdout and "ccpo_tree:thinker" in proc.stdout
