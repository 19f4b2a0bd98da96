"""The one evaluation module: pass@1 with its standard error, maj@k, the Thinker-removed diagnostic, tables."""

from __future__ import annotations

import math

import pytest

from ccpo_agents.evaluation import evaluate, evaluate_env, format_metric_table, format_table, greedy
from ccpo_env import Problem, ThinkSolveEnv, VotingEnv

PROBLEMS = [
    Problem(id="p0", problem="What is 1+2?", answer="3", source="toy", extras={"level": 1}),
    Problem(id="p1", problem="What is 2+3?", answer="5", source="toy", extras={"level": 2}),
]


def thinker(observations):
    return ["THOUGHT"] * len(observations)


def solver(observations):
    """With the thought it always says 3 (right for p0 only); alone it always says 5 (right for p1 only)."""
    return ["\\boxed{3}" if "THOUGHT" in o else "\\boxed{5}" for o in observations]


def test_think_solve_metrics_against_hand_values():
    env = ThinkSolveEnv(PROBLEMS)
    r = evaluate_env(env, {"thinker": thinker, "solver": solver}, num_samples=2,
                     thought_check=lambda problem, thought: problem.answer == "3", group_by="level")
    # joint: p0 right, p1 wrong -> per-problem [1, 0]: mean 0.5, s.e. std([1, 0], ddof=1)/sqrt(2) = 0.5
    assert r["n"] == 2 and r["samples"] == 2
    assert r["pass@1"] == 0.5 and r["pass@1_se"] == pytest.approx(0.5)
    assert r["maj@2"] == 0.5
    # solo: p0 wrong, p1 right; contribution per problem [1, -1]: mean 0, s.e. sqrt(2)/sqrt(2) = 1
    assert r["solo_pass@1"] == 0.5 and r["contribution"] == 0.0 and r["contribution_se"] == pytest.approx(1.0)
    # thoughts beating solo: p0's two thoughts (1 > 0), not p1's (0 > 1)
    assert r["thought_beats_solo"] == 0.5 and r["thought_ok"] == 0.5
    assert r["by_level"][1]["pass@1"] == 1.0 and r["by_level"][2]["solo_pass@1"] == 1.0


def test_no_diagnostic_and_several_datasets():
    rows = evaluate(lambda name: ThinkSolveEnv(PROBLEMS[:1]), {"thinker": thinker, "solver": solver}, ["a", "b"],
                    diagnostic=False, progress=False)
    assert list(rows) == ["a", "b"] and rows["a"]["pass@1"] == 1.0 and "solo_pass@1" not in rows["a"]
    assert rows["a"]["pass@1_se"] == 0.0  # one problem


def test_voting_solo_is_a_single_voter():
    env = VotingEnv(PROBLEMS, num_voters=3)
    answers = iter(["\\boxed{3}", "\\boxed{3}", "\\boxed{4}"] * 10)
    r = evaluate_env(env, {f"voter_{i}": (lambda obs: [next(answers) for _ in obs]) for i in range(3)},
                     problems=[0])
    # plurality "3" is right; a single voter is right 2 times in 3
    assert r["pass@1"] == 1.0 and r["solo_pass@1"] == pytest.approx(2 / 3)


def test_tables():
    columns = {"before": {"arith": {"pass@1": 0.5, "pass@1_se": 0.05}},
               "after": {"arith": {"pass@1": 0.72, "pass@1_se": 0.04}, "gsm8k": {"pass@1": 0.1}}}
    text = format_table(columns, "pass@1")
    assert "50.0% ±5.0" in text and "72.0% ±4.0" in text and "average" in text
    assert text.splitlines()[-2].split()[1] == "-"  # gsm8k has no "before"
    rows = format_metric_table({"T=1": {"joint": 0.5}, "greedy": {"joint": 0.8}}, {"joint": "(a) joint",
                                                                                  "solo": "(c) solo"})
    assert "(a) joint" in rows and "80.0%" in rows and "(c) solo" not in rows


def test_greedy_restores_the_generation_config():
    from ccpo_agents.config.policy import GenerationConfig

    class P:
        generation = GenerationConfig()

    p = P()
    with greedy({"a": p}):
        assert p.generation.do_sample is False
    assert p.generation.do_sample is True and not math.isnan(p.generation.temperature)
