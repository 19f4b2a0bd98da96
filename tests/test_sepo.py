"""SEPO: the reward formula by hand, the rating prompt, and the JSON rating parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ccpo_agents.credit import (
    CreditBatch,
    SEPOConfig,
    SepoRatings,
    assign_credit,
    build_rating_prompt,
    parse_rating,
    ratings_from_texts,
)


def _batch(joint, group, a_t, a_s, valid_t=None, valid_s=None, **kw):
    return CreditBatch(joint_reward=joint, group=group,
                       ratings=SepoRatings(a_t, a_s, valid_t, valid_s), **kw)


def test_sepo_formula_by_hand():
    # group 0: ep0 success rated (a_T=0.7, a_S=0.5); ep1 failure rated (0.3, 0.3). group 1: one episode.
    batch = _batch(joint=[1, -1, 1], group=[0, 0, 1], a_t=[0.7, 0.3, 0.9], a_s=[0.5, 0.3, 0.1])
    res = assign_credit("sepo", batch)  # eta=0.3, lam_credit=lam_blame=0.2
    # ep0: s_T = 0.3*0.7 + 0.7*0.5 = 0.56; s_S = 0.3*(1-0.5) + 0.7*(1-0.7) = 0.36; w_T = 0.56/0.92 = 14/23
    # ep1: s_T = 0.3*0.3 + 0.7*0.3 = 0.30; s_S = 0.3*0.7 + 0.7*0.7 = 0.70;          w_T = 0.3 = 3/10
    # group-0 mean w_T = (14/23 + 3/10)/2 = 209/460; bonus_T = +-71/460; bonus_S = -bonus_T (w_S = 1 - w_T)
    b = 71 / 460
    # success: R + 0.2*bonus; failure: R - 0.2*bonus
    np.testing.assert_allclose(res.rewards["thinker"][:2], [1 + 0.2 * b, -1 - 0.2 * (-b)])
    np.testing.assert_allclose(res.rewards["solver"][:2], [1 + 0.2 * (-b), -1 - 0.2 * b])
    # a group of one: bonus = w - mean(w) = 0, whatever the ratings
    assert res.rewards["thinker"][2] == 1.0 and res.rewards["solver"][2] == 1.0
    assert res.baselined == {"thinker": False, "solver": False}
    np.testing.assert_array_equal(res.group_keys["thinker"], [0, 0, 1])
    assert res.metrics["credit/invalid_ratings"] == 0.0


def test_sepo_credit_and_blame_scales_are_separate():
    batch = _batch(joint=[1, -1], group=[0, 0], a_t=[0.7, 0.3], a_s=[0.5, 0.3])
    res = assign_credit("sepo", batch, {"lam_credit": 0.1, "lam_blame": 0.5})
    b = 71 / 460  # bonuses as in the previous test
    np.testing.assert_allclose(res.rewards["thinker"], [1 + 0.1 * b, -1 + 0.5 * b])


def test_sepo_eta_weights_self_vs_peer():
    # eta = 1: only self-ratings count -> s_T = a_T, s_S = 1 - a_S
    batch = _batch(joint=[1, 1], group=[0, 0], a_t=[0.9, 0.5], a_s=[0.9, 0.5])
    res = assign_credit("sepo", batch, SEPOConfig(eta=1.0, lam_credit=1.0))
    # ep0: s_T = 0.9, s_S = 0.1 -> w_T = 0.9; ep1: 0.5/1.0 = 0.5; mean 0.7 -> bonus_T = +-0.2
    np.testing.assert_allclose(res.rewards["thinker"], [1.2, 0.8])
    np.testing.assert_allclose(res.rewards["solver"], [0.8, 1.2])
    with pytest.raises(ValueError, match="eta"):
        SEPOConfig(eta=1.5)


def test_invalid_ratings_count_as_even_split():
    nan = float("nan")
    bad = _batch(joint=[1, -1], group=[0, 0], a_t=[nan, 0.3], a_s=[0.7, nan],
                 valid_t=[False, True], valid_s=[True, False])
    even = _batch(joint=[1, -1], group=[0, 0], a_t=[0.5, 0.3], a_s=[0.7, 0.5])
    r_bad, r_even = assign_credit("sepo", bad), assign_credit("sepo", even)
    for role in ("thinker", "solver"):
        np.testing.assert_allclose(r_bad.rewards[role], r_even.rewards[role])
    assert r_bad.metrics["credit/invalid_ratings"] == 2.0
    assert r_bad.metrics["credit/invalid_rating_frac"] == 0.5


def test_sepo_needs_ratings_and_valid_range():
    with pytest.raises(ValueError, match=r"ratings"):
        assign_credit("sepo", CreditBatch(joint_reward=[1.0], group=[0]))
    with pytest.raises(ValueError, match=r"outside \[0.1, 0.9\]"):
        SepoRatings([0.95], [0.5])
    with pytest.raises(ValueError, match="cover"):
        CreditBatch(joint_reward=[1.0, 1.0], group=[0, 0], ratings=SepoRatings([0.5], [0.5]))


def test_sepo_with_01_rewards():
    # {0,1} rewards: success means R > 0.5, the failure branch subtracts the bonus
    batch = _batch(joint=[1, 0], group=[0, 0], a_t=[0.7, 0.3], a_s=[0.5, 0.3], reward_low=0, reward_high=1)
    res = assign_credit("sepo", batch)
    b = 71 / 460
    np.testing.assert_allclose(res.rewards["thinker"], [1 + 0.2 * b, 0 + 0.2 * b])


# -------------------------------------------------------------------------------- parse_rating
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"outcome": "correct", "pair": [0.3, 0.7]}', 0.3),
        ('{"pair": [0.9, 0.1], "outcome": "incorrect"}', 0.9),
        ('{"outcome": "correct", "pair": [0.1, 0.9]}', 0.1),
        ('{"pair": [0.7, 0.3]}', 0.7),  # 0.7 + 0.3 = 0.9999999999999999 in floats: within tolerance
        # extra text and code fences around the JSON
        ('Sure. My rating:\n```json\n{"outcome": "correct", "pair": [0.6, 0.4]}\n```\nThanks!', 0.6),
        # the last object with a "pair" wins (an earlier draft is ignored) ...
        ('draft {"pair": [0.2, 0.8]} final {"outcome": "correct", "pair": [0.4, 0.6]}', 0.4),
        # ... and later objects without a "pair" do not count
        ('{"pair": [0.4, 0.6]} {"note": "done"}', 0.4),
        ('{"outcome": "correct", "pair": [0.5, 0.5], "why": {"a": 1}}', 0.5),
    ],
)
def test_parse_rating_valid(text, expected):
    a, ok = parse_rating(text)
    assert ok and a == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        '{"outcome": "correct", "pair": [0.3, 0.7}',  # malformed JSON
        '{"outcome": "correct", "pair": [0.05, 0.95]}',  # a below 0.1
        '{"pair": [1, 0]}',  # a above 0.9
        '{"pair": [0.0, 1.0]}',
        '{"pair": [0.3, 0.6]}',  # does not sum to 1
        '{"pair": [0.35, 0.65]}',  # off the 0.1 grid
        '{"pair": ["0.3", "0.7"]}',  # strings, not numbers
        '{"pair": [true, false]}',
        '{"pair": [0.3, 0.3, 0.4]}',
        '{"pair": 0.3}',
        '{"outcome": "correct"}',  # no pair
        '{"pair": [0.4, 0.6]} then {"pair": [0.45, 0.55]}',  # the final answer is invalid
        "I would say 0.3 / 0.7",
        "",
        "{{{{{{",
        '{"pair": [NaN, 0.5]}',
    ],
)
def test_parse_rating_invalid(text):
    assert parse_rating(text) == (0.5, False)


def test_parse_rating_never_raises_on_odd_input():
    assert parse_rating(None) == (0.5, False)
    assert parse_rating(b'{"pair": [0.3, 0.7]}') == (0.5, False)
    assert parse_rating("[" * 5000 + "{" * 5000) == (0.5, False)
    huge = "x" * 1_000_000 + '{"pair": [0.8, 0.2]}'
    assert parse_rating(huge) == (0.8, True)


def test_ratings_from_texts():
    r = ratings_from_texts(['{"pair": [0.8, 0.2]}', "garbage"], ['{"pair": [0.6, 0.4]}', '{"pair": [0.2, 0.8]}'])
    np.testing.assert_allclose(r.by_thinker, [0.8, 0.5])
    np.testing.assert_array_equal(r.valid_thinker, [True, False])
    np.testing.assert_allclose(r.by_solver, [0.6, 0.2])
    assert r.num_invalid == 1
    with pytest.raises(ValueError, match="ratings"):
        ratings_from_texts(["a"], [])


def test_build_rating_prompt():
    p = build_rating_prompt("solver", "What is {x}?", "Add the numbers.", r"\boxed{5}", outcome_correct=False)
    assert "You are the Solver" in p
    assert "What is {x}?" in p and "Add the numbers." in p and r"\boxed{5}" in p  # braces kept verbatim
    assert "incorrect" in p and "blame" in p
    assert "the Thinker's share" in p and "0.1, 0.2" in p
    skeleton = p[p.index('{"outcome"'):].split("\n", 1)[0]
    assert json.loads(skeleton.replace("[a, b]", "[0.2, 0.8]")) == {"outcome": "incorrect", "pair": [0.2, 0.8]}
    p = build_rating_prompt("thinker", "P", "T", "A", outcome_correct=True)
    assert "You are the Thinker" in p and '"outcome": "correct"' in p and "credit" in p
    with pytest.raises(ValueError, match="role"):
        build_rating_prompt("voter_0", "P", "T", "A", True)
