"""SEPO rating examples for the warm start: targets, cases, SFT rows, and the parse/informativeness check."""

from __future__ import annotations

import json
import re

import pytest

from ccpo_agents.credit import parse_rating
from ccpo_agents.models.rating_examples import (
    evaluate_ratings,
    evaluate_rollout_ratings,
    rating_cases,
    rating_target,
)
from ccpo_env.data import ArithDataset, arith_thought_correct


def test_targets_follow_thought_quality_and_outcome():
    assert json.loads(rating_target(True, True)) == {"outcome": "correct", "pair": [0.7, 0.3]}
    assert json.loads(rating_target(False, False)) == {"outcome": "incorrect", "pair": [0.7, 0.3]}
    assert json.loads(rating_target(True, False)) == {"outcome": "incorrect", "pair": [0.3, 0.7]}
    assert json.loads(rating_target(False, True)) == {"outcome": "correct", "pair": [0.3, 0.7]}
    assert all(parse_rating(rating_target(a, b))[1] for a in (True, False) for b in (True, False))


def test_four_cases_per_problem_with_real_good_and_bad_thoughts():
    data = ArithDataset("train", [1], seed=0, size=5)
    cases = rating_cases(list(data), seed=0)
    assert len(cases) == 20
    for k, problem in enumerate(data):
        mine = cases[4 * k: 4 * k + 4]
        assert [(c[2], c[3]) for c in mine] == [(True, True), (True, False), (False, True), (False, False)]
        for role, prompt, thought_ok, outcome_ok in mine:
            thought = re.search(r"Thinker's thought:\n(.*)\n", prompt).group(1)
            assert arith_thought_correct(problem, thought) == thought_ok
            assert ("it is correct." in prompt) == outcome_ok and role in ("thinker", "solver")
    assert rating_cases(list(data), seed=0) == cases  # seeded


def test_evaluate_ratings_by_hand():
    data = list(ArithDataset("test", [1], seed=1, size=3))
    cases = {c[1]: c for c in rating_cases(data, seed=0)}

    def rule(prompts, seeds=None):  # always follows the rule
        return [rating_target(cases[p][2], cases[p][3]) for p in prompts]

    def contrarian(prompts, seeds=None):  # always the opposite share
        return [rating_target(not cases[p][2], cases[p][3]) for p in prompts]

    good = evaluate_ratings({"thinker": rule, "solver": rule}, data)
    assert good == {"n": 12.0, "parsed": 1.0, "agrees": 1.0, "corr": pytest.approx(1.0)}
    bad = evaluate_ratings({"thinker": contrarian, "solver": contrarian}, data)
    assert bad["agrees"] == 0.0 and bad["corr"] == pytest.approx(-1.0)
    none = evaluate_ratings({"thinker": lambda p, seeds=None: ["?"] * len(p),
                             "solver": lambda p, seeds=None: ["{}"] * len(p)}, data)
    assert none == {"n": 12.0, "parsed": 0.0}


def test_rater_rows_are_what_the_trainer_sends(tiny_tokenizer):
    from ccpo_agents.models.warmstart import WarmStartRecipe, make_sft_examples
    from ccpo_agents.policies.base import encode_prompt

    recipe = WarmStartRecipe(model="tiny", example_mix={"solver_joint": 1.0, "rater": 1.0}, eval_problems=0)
    rows = [e for e in make_sft_examples(recipe, tiny_tokenizer, 3) if e.kind == "rater"]
    assert len(rows) == 12
    for e in rows:
        assert e.prompt_ids == encode_prompt(tiny_tokenizer, e.observation)  # no system prompt in this recipe
        assert parse_rating(e.target)[1] and tiny_tokenizer.decode(e.completion_ids).startswith(e.target)


def test_checked_targets_show_their_work_and_parse_to_the_same_share():
    assert rating_target(False, True, "4*4=16") == '4*4=16 bad correct {"pair": [0.3, 0.7]}'
    assert rating_target(False, False, "4*4=16") == '4*4=16 bad incorrect {"pair": [0.7, 0.3]}'
    assert rating_target(True, True, "") == 'good correct {"pair": [0.7, 0.3]}'  # no intermediate step
    for ok_t in (True, False):
        for ok_o in (True, False):
            assert parse_rating(rating_target(ok_t, ok_o, "7*8=56")) == parse_rating(rating_target(ok_t, ok_o))


def test_checked_rater_rows_recompute_the_step(tiny_tokenizer):
    from ccpo_agents.models.warmstart import WarmStartRecipe, make_sft_examples

    plain = WarmStartRecipe(model="tiny", example_mix={"solver_joint": 1.0, "rater": 1.0}, eval_problems=0)
    checked = plain.replace(rating_check=True)
    assert checked.fingerprint() != plain.fingerprint()
    assert "rating_check" not in plain.to_dict()  # recipes from before the checked format keep their cache key
    data = ArithDataset("train", [1], seed=0, size=3)
    rows = [e for e in make_sft_examples(checked, tiny_tokenizer, 3) if e.kind == "rater"]
    assert len(rows) == 12
    for k, e in enumerate(rows):
        problem = data[k // 4]
        step = problem.extras["steps"][0]
        thought = re.search(r"Thought: (.*)\n", e.observation).group(1)
        verdict = "good" if arith_thought_correct(problem, thought) else "bad"
        outcome = "correct" if "Outcome: correct" in e.observation else "incorrect"
        assert e.target.startswith(f"{step} {verdict} {outcome} {{") and parse_rating(e.target)[1]


def test_rollout_ratings_score_the_policies_own_episodes():
    """A scripted team whose Thinker is wrong on every other call and whose raters follow (or defy) the rule."""
    from ccpo_env import TEMPLATE_PRESETS, ThinkSolveEnv
    from ccpo_env.data import arith_oracle_thought

    data = ArithDataset("test", [1], seed=1, size=6)
    by_text = {p.problem: p for p in data}
    env = ThinkSolveEnv(dataset=data, templates=TEMPLATE_PRESETS["compact"])
    calls = iter(range(10**6))

    def problem_in(text):
        return by_text[re.search(r"Compute [^ ]*\.", text).group(0)]

    def thinker(obs):
        out = []
        for o in obs:
            good = arith_oracle_thought(problem_in(o))
            out.append(good if next(calls) % 2 else good.replace("=", "=1"))  # "8*9=172": a wrong product
        return out

    def solver(obs):  # right exactly when the plan holds the right product
        out = []
        for o in obs:
            p = problem_in(o)
            plan = o.split("Plan: ")[-1]
            out.append(f"\\boxed{{{p.answer if arith_thought_correct(p, plan) else 0}}}")
        return out

    def team(rule_sign):
        def act(obs, seeds=None):
            if not obs[0].startswith("Rate"):
                return thinker(obs) if obs[0].startswith("Plan") else solver(obs)
            replies = []
            for o in obs:
                ok_t = arith_thought_correct(problem_in(o), re.search(r"Thought: (.*)\n", o).group(1))
                replies.append(rating_target(ok_t if rule_sign else not ok_t, "Outcome: correct" in o))
            return replies
        return {"thinker": act, "solver": act}

    good = evaluate_rollout_ratings(env, team(True), range(6), num_samples=2, template="compact")
    assert good["n"] == 24 and good["parsed"] == 1.0 and good["agrees"] == 1.0
    assert good["thought_ok"] == 0.5 and good["correct"] == 0.5  # every other thought is wrong, and so its answer
    bad = evaluate_rollout_ratings(env, team(False), range(6), num_samples=2, template="compact")
    assert bad["agrees"] == 0.0
