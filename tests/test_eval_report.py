"""``ccpo eval`` reports: the averaged row, the plot, and resuming an interrupted evaluation from its chunks."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from ccpo_agents.evaluation import average_row, evaluate_env, plot_results
from ccpo_env import Problem, ThinkSolveEnv

PROBLEMS = [Problem(id=f"p{i}", problem=f"What is {i}+1?", answer=str(i + 1), source="toy") for i in range(5)]


class Counting:
    """A Solver that answers right on even problems and counts the observations it decoded; ``fail_after``
    raises once that many calls were made (an interrupted run)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.seen = 0
        self.fail_after = fail_after

    def __call__(self, observations):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        self.seen += len(observations)
        out = []
        for o in observations:
            i = next(int(p.problem.split()[2].split("+")[0]) for p in PROBLEMS if p.problem in o)
            out.append(f"\\boxed{{{i + 1 if i % 2 == 0 else 0}}}")
        return out


def thinker(observations):
    return ["think"] * len(observations)


def test_average_row_against_hand_values():
    rows = {"a": {"n": 10, "pass@1": 0.5, "pass@1_se": 0.3, "solo_pass@1": 0.25, "maj@4": 0.6},
            "b": {"n": 30, "pass@1": 0.7, "pass@1_se": 0.4, "solo_pass@1": 0.75}}
    avg = average_row(rows)
    assert avg["n"] == 40 and avg["benchmarks"] == 2
    assert avg["pass@1"] == pytest.approx(0.6) and avg["pass@1_se"] == pytest.approx(0.25)  # sqrt(.09+.16)/2
    assert avg["solo_pass@1"] == pytest.approx(0.5) and "solo_pass@1_se" not in avg
    assert "maj@4" not in avg  # only one benchmark has it
    assert average_row({}) == {}


def test_interrupted_evaluation_resumes_without_recomputing(tmp_path):
    env = ThinkSolveEnv(PROBLEMS)
    opts = dict(num_samples=2, batch_problems=2, seed=3, diagnostic=True)
    full = evaluate_env(env, {"thinker": thinker, "solver": Counting()}, **opts)
    assert full["pass@1"] == pytest.approx(3 / 5) and full["solo_pass@1"] == pytest.approx(3 / 5)

    # one Solver call per chunk (joint and solo answers batched together): stop at the second chunk
    broken = Counting(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        evaluate_env(env, {"thinker": thinker, "solver": broken}, cache_dir=tmp_path, **opts)
    chunks = sorted(p.name for p in tmp_path.glob("chunk_*.json"))
    assert len(chunks) == 1 and chunks[0].startswith("chunk_000000_")
    assert not list(tmp_path.glob("*.tmp*"))  # no half-written chunk

    resumed = Counting()
    again = evaluate_env(env, {"thinker": thinker, "solver": resumed}, cache_dir=tmp_path, **opts)
    assert again == full
    # only problems 2..4 were decoded again: (2 joint + 2 solo) answers per problem
    assert resumed.seen == 3 * 4
    assert len(list(tmp_path.glob("chunk_*.json"))) == 3

    # a finished run decodes nothing; another checkpoint (cache_key) or other options decode everything
    cached = Counting()
    assert evaluate_env(env, {"thinker": thinker, "solver": cached}, cache_dir=tmp_path, **opts) == full
    assert cached.seen == 0
    other = Counting()
    evaluate_env(env, {"thinker": thinker, "solver": other}, cache_dir=tmp_path, cache_key="ckpt-2", **opts)
    assert other.seen == 5 * 4


def test_plot_results(tmp_path):
    pytest.importorskip("matplotlib")
    cols = {"Untrained": {"math500": {"pass@1": 0.5, "pass@1_se": 0.1, "solo_pass@1": 0.4}},
            "CCPO": {"math500": {"pass@1": 0.6, "solo_pass@1": 0.5}, "gsm8k": {"pass@1": 0.7}}}
    out = plot_results(cols, tmp_path / "p.png")
    assert out is not None and out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_ccpo_eval_on_real_benchmarks_resumes(tmp_path, capsys):
    """``ccpo eval`` on math500, gsm8k and folio (2 problems each, the tiny default model): table with the
    average, JSON with the averaged row, plot; a rerun reads every chunk back. Needs ``$CCPO_DATA_DIR``."""
    data = Path(os.environ.get("CCPO_DATA_DIR", "/nonexistent"))
    if not all((data / f"{n}.jsonl").is_file() for n in ("math500", "gsm8k", "folio")):
        pytest.skip("CCPO_DATA_DIR has no math500/gsm8k/folio")
    from ccpo_agents.cli import main

    out = tmp_path / "res"
    argv = ["eval", "--results-dir", str(out), "--no-progress", "eval.datasets=[math500,gsm8k,folio]",
            "eval.limit=2", "policy.generation.max_new_tokens=4", "eval.batch_problems=1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "average" in text and "folio" in text and "Thinker removed" in text
    report = json.loads((out / "results.json").read_text())["Untrained"]
    assert set(report) == {"math500", "gsm8k", "folio", "average"}
    assert report["math500"]["n"] == 2 and report["average"]["n"] == 6
    assert math.isclose(report["average"]["pass@1"],
                        sum(report[d]["pass@1"] for d in ("math500", "gsm8k", "folio")) / 3)
    assert (out / "results.png").is_file() and (out / "table.txt").is_file()
    chunks = {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("chunk_*.json")}
    assert len(chunks) == 6
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("chunk_*.json")} == chunks
    assert json.loads((out / "results.json").read_text())["Untrained"] == report
