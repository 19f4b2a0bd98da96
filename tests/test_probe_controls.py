"""Free-riding probe controls: a per-token thought cost every method shares, and the ``solver_only`` positive
control (the Thinker gets no credit from the outcome)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_trainer import make_trainer

from ccpo_agents.config import ConfigError, load_config
from ccpo_agents.credit import CreditBatch, assign_credit, get_credit
from ccpo_agents.trainer.samples import RoleBatch, apply_thought_cost
from ccpo_env import Generation


def test_solver_only_gives_the_thinker_nothing():
    b = CreditBatch(joint_reward=[1, -1, 1, 1], group=[0, 0, 1, 1], thought=[0, 1, 2, 3])
    res = assign_credit("solver_only", b)
    np.testing.assert_array_equal(res.rewards["thinker"], 0)
    np.testing.assert_array_equal(res.rewards["solver"], [1, -1, 1, 1])
    assert not any(res.baselined.values()) and get_credit("solver_only").team == ("thinker", "solver")
    with pytest.raises(ValueError, match="Think–Solve method"):
        assign_credit("solver_only", CreditBatch(joint_reward=[1], group=[0], roles=("voter_0",)))


def test_thought_cost_is_centred_per_prompt_by_hand():
    gens = [Generation(text="", token_ids=list(range(n))) for n in (2, 6, 3, 3)]
    batch = RoleBatch("thinker", generations=gens, rewards=[1.0, 1.0, 0.0, 0.5], group_keys=[0, 0, 1, 1])
    assert apply_thought_cost(batch, 0.1) == pytest.approx(3.5)
    # prompt 0: lengths 2, 6 (mean 4) -> +0.2, -0.2; prompt 1: 3, 3 -> unchanged
    np.testing.assert_allclose(batch.rewards, [1.2, 0.8, 0.0, 0.5])


def _thinker(trainer):
    return [p.detach().clone() for p in trainer.roles.trainable_parameters("thinker")]


def test_solver_only_thinker_learns_only_from_the_cost(tmp_path):
    base = ("policy.parameterisation=separate", "credit.method=solver_only", "policy.generation.max_new_tokens=8")
    still = make_trainer(tmp_path / "a", *base)
    before = _thinker(still)
    m = still.train_step()
    assert m["thinker/adv_std"] == 0.0  # a constant 0 has no advantage
    assert all(torch.equal(x, y) for x, y in zip(before, _thinker(still)))
    # the tiny model never samples EOS: stopping on many ids gives thoughts of different lengths
    stops = "policy.generation.stop_token_ids=[" + ",".join(map(str, range(200))) + "]"
    costly = make_trainer(tmp_path / "b", *base, stops, "credit.thought_cost=0.1")
    before = _thinker(costly)
    m = costly.train_step()
    assert m["thinker/reward_std"] > 0  # thoughts of different lengths now differ in reward
    assert any(not torch.equal(x, y) for x, y in zip(before, _thinker(costly)))


def test_thought_cost_and_team_are_checked_at_config_time():
    with pytest.raises(ConfigError, match="thought_cost must be >= 0"):
        load_config(overrides=["credit.thought_cost=-1"])
    with pytest.raises(ConfigError, match="has no Thinker"):
        load_config(overrides=["env.topology=voting", "credit.method=voting", "rollout.answers_per_thought=1",
                               "credit.thought_cost=0.1"])
    with pytest.raises(ConfigError, match=r"written for the roles \['thinker', 'solver'\].*'voting'"):
        load_config(overrides=["env.topology=voting", "credit.method=solver_only", "rollout.answers_per_thought=1"])
