"""SEPO rating examples for the warm start: targets, cases, SFT rows, and the parse/informativeness check."""

from __future__ import annotations

import json
import re

import pytest

from ccpo_agents.credit import parse_rating
from ccpo_agents.models.rating_examples import evaluate_ratings, rating_cases, rating_target
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
