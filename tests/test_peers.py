"""Peers' credit methods (C3, MAGRPO, Dr. MAS): hand-computed values, their reductions, and training with them.

The batch: 2 prompts x 3 thoughts x 2 answers, rewards ±1 (the same as ``test_reductions.py``).
Per-thought values V(t_j): prompt 0 -> [1, 0, -1]; prompt 1 -> [0, 1, 0].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_reductions import GROUP, JOINT, THOUGHT, batch, thinker_advantages
from test_trainer import make_trainer

from ccpo_agents.algos import estimate_advantages
from ccpo_agents.config.algo import EstimatorConfig
from ccpo_agents.credit import (
    CreditBatch,
    GlobalHistoryNormalizer,
    assign_credit,
    get_credit,
    group_loo_mean,
    group_std,
)

EPS = 1e-6


def per_thought(method: str, role: str = "thinker", **options) -> np.ndarray:
    b = batch()
    res = assign_credit(method, b, options or None)
    return res.per_thought(role, b.thought)[1]


def solver_advantages(method: str, estimator: str, **options) -> np.ndarray:
    b = batch()
    res = assign_credit(method, b, options or None, GlobalHistoryNormalizer())
    return estimate_advantages(EstimatorConfig(name=estimator), res.rewards["solver"], res.group_keys["solver"],
                               baselined=res.baselined["solver"]).numpy()


def test_group_helpers_by_hand():
    v, k = np.array([1.0, 3.0, 5.0, 7.0]), np.array([0, 0, 0, 1])
    np.testing.assert_allclose(group_loo_mean(v, k), [4, 3, 2, 7])  # a group of one keeps its own value
    np.testing.assert_allclose(group_std(v, k), [2, 2, 2, 0])


# -------------------------------------------------------------------------------------------- c3
def test_c3_by_hand():
    np.testing.assert_allclose(per_thought("c3"), [1.5, 0, -1.5, -0.5, 1, -0.5])
    res = assign_credit("c3", batch())
    # answers to one thought: [1,1] and [-1,-1] carry no signal, [1,-1] gives ±2
    np.testing.assert_allclose(res.rewards["solver"], [0, 0, 2, -2, 0, 0, 2, -2, 0, 0, -2, 2])
    np.testing.assert_array_equal(res.group_keys["solver"], THOUGHT)
    assert res.baselined == {"thinker": True, "solver": True}
    np.testing.assert_allclose(per_thought("c3", baseline="mean"), [1, 0, -1, -1 / 3, 2 / 3, -1 / 3])
    np.testing.assert_allclose(assign_credit("c3", batch(), {"baseline": "mean"}).rewards["solver"][2:4], [1, -1])


def test_c3_reduces_to_shared_under_rloo_and_tree_solver_under_rloo():
    """The Thinker's LOO over sibling thoughts is shared reward's Thinker under RLOO; the Solver's is the tree's
    Solver (grouped by thought) under RLOO. Under GRPO neither is shared's: no std scaling."""
    for estimator in ("grpo", "rloo", "dr_grpo"):  # baselined: every group estimator passes it through
        np.testing.assert_allclose(thinker_advantages("c3", estimator), thinker_advantages("shared", "rloo"))
        np.testing.assert_allclose(solver_advantages("c3", estimator), solver_advantages("ccpo_tree", "rloo"))
    assert not np.allclose(thinker_advantages("c3", "grpo"), thinker_advantages("shared", "grpo"))
    # and the LOO advantage is the centred one times n/(n-1): 3 thoughts -> 1.5
    np.testing.assert_allclose(per_thought("c3"), 1.5 * per_thought("c3", baseline="mean"))


def test_c3_declares_what_it_needs():
    spec = get_credit("c3")
    assert spec.needs_thoughts and not spec.needs_solo and spec.solo_rollouts_per_prompt(8) == 0
    with pytest.raises(ValueError, match="thoughts"):
        assign_credit("c3", CreditBatch(joint_reward=JOINT, group=GROUP))
    with pytest.raises(ValueError, match="baseline must be one of"):
        assign_credit("c3", batch(), {"baseline": "median"})
    voters = CreditBatch(joint_reward=[1, -1], group=[0, 0], thought=[0, 1], roles=("voter_0", "voter_1"))
    with pytest.raises(ValueError, match="Think–Solve method"):
        assign_credit("c3", voters)


# ---------------------------------------------------------------------------------------- magrpo
def test_magrpo_by_hand():
    res = assign_credit("magrpo", batch())
    # prompt 0 has mean 0; prompt 1 has mean 1/3
    expected = np.array(JOINT[:6] + [r - 1 / 3 for r in JOINT[6:]], dtype=float)
    np.testing.assert_allclose(res.rewards["solver"], expected)
    np.testing.assert_allclose(res.rewards["thinker"], expected)  # the same Â for every agent
    np.testing.assert_allclose(per_thought("magrpo"), [1, 0, -1, -1 / 3, 2 / 3, -1 / 3])
    loo = assign_credit("magrpo", batch(), {"baseline": "loo"}).rewards["solver"]
    np.testing.assert_allclose(loo[6:8], [1 - 1 / 5, -1 - 3 / 5])  # others' sums: 1 and 3 over 5


def test_magrpo_is_shared_under_dr_grpo():
    for estimator in ("grpo", "rloo"):
        np.testing.assert_allclose(thinker_advantages("magrpo", estimator), thinker_advantages("shared", "dr_grpo"))
        np.testing.assert_allclose(solver_advantages("magrpo", estimator), solver_advantages("shared", "dr_grpo"))


# ----------------------------------------------------------------------------------------- drmas
def test_drmas_by_hand_agent_wise_and_pooled():
    s1 = math.sqrt(1 / 3)  # std of [0, 1, 0]
    np.testing.assert_allclose(per_thought("drmas"), [1 / (1 + EPS), 0, -1 / (1 + EPS),
                                                      (-1 / 3) / (s1 + EPS), (2 / 3) / (s1 + EPS), (-1 / 3) / (s1 + EPS)])
    res = assign_credit("drmas", batch())
    sd0, sd1 = math.sqrt(6 / 5), math.sqrt(48 / 45)  # the Solver's own std per prompt
    np.testing.assert_allclose(res.rewards["solver"][:2], [1 / (sd0 + EPS)] * 2)
    np.testing.assert_allclose(res.rewards["solver"][7], (-1 - 1 / 3) / (sd1 + EPS))
    # pooled over both agents' samples of prompt 0: [1, 0, -1] + six ±1 -> mean 0, unbiased var 8/8
    pooled = assign_credit("drmas", batch(), {"pooled": True})
    np.testing.assert_allclose(pooled.rewards["solver"][:6], np.array(JOINT[:6]) / (1 + EPS))
    np.testing.assert_allclose(pooled.per_thought("thinker", np.array(THOUGHT))[1][:3], [1 / (1 + EPS), 0, -1 / (1 + EPS)])
    assert pooled.metrics["credit/solver/sigma"] != res.metrics["credit/solver/sigma"]


def test_drmas_is_shared_under_grpo_and_pooled_is_not():
    for estimator in ("grpo", "dr_grpo"):
        np.testing.assert_allclose(thinker_advantages("drmas", estimator), thinker_advantages("shared", "grpo"),
                                   atol=1e-9)
        np.testing.assert_allclose(solver_advantages("drmas", estimator), solver_advantages("shared", "grpo"),
                                   atol=1e-9)
    assert not np.allclose(solver_advantages("drmas", "grpo", pooled=True), solver_advantages("shared", "grpo"))


def test_magrpo_and_drmas_work_for_any_team():
    voters = CreditBatch(joint_reward=[1, -1, 1, 1], group=[0, 0, 1, 1], roles=("voter_0", "voter_1"))
    m = assign_credit("magrpo", voters)
    np.testing.assert_allclose(m.rewards["voter_1"], [1, -1, 0, 0])  # an all-correct prompt carries no signal
    d = assign_credit("drmas", voters)
    np.testing.assert_allclose(d.rewards["voter_0"], [1 / (math.sqrt(2) + EPS), -1 / (math.sqrt(2) + EPS), 0, 0])


# -------------------------------------------------------------------------------------- training
def _params(trainer):
    return [p.detach().clone() for p in trainer.roles.trainable_parameters("solver")]


@pytest.mark.parametrize("method, reference", [
    (["credit.method=magrpo"], ["credit.method=shared", "algo.estimator.name=dr_grpo"]),
    (["credit.method=drmas"], ["credit.method=shared", "algo.estimator.name=grpo"]),
], ids=["magrpo=shared+dr_grpo", "drmas=shared+grpo"])
def test_reductions_hold_through_a_training_step(tmp_path, method, reference):
    """Same seed, same rollouts: the peer method and its reduction end a step with the same weights."""
    a, b = make_trainer(tmp_path / "a", *method), make_trainer(tmp_path / "b", *reference)
    a.train_step(), b.train_step()
    for x, y in zip(_params(a), _params(b)):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


def test_c3_trains_without_solo_answers(tmp_path):
    t = make_trainer(tmp_path, "credit.method=c3")
    before = _params(t)
    eps = t.rollout_step(0)
    assert eps and not any(e.removed for e in eps)  # no Thinker-removed rollouts are sampled
    m = t.train_step()
    assert m["solver/skipped_nonfinite"] == 0 and "credit/thinker_signal_frac" in m
    assert any(not torch.equal(x, y) for x, y in zip(before, _params(t)))
