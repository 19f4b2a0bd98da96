"""Shapley-value credit for voting: the coalition re-count, the exact values by hand, and training with it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from test_envs import PROBLEMS, vote
from test_rollout import PROBLEMS as ROLLOUT_PROBLEMS
from test_rollout import CountingPolicy
from test_trainer import make_trainer

from ccpo_agents.credit import (
    CreditBatch,
    assign_credit,
    credit_batch_from_episodes,
    get_credit,
    shapley_values,
)
from ccpo_env import ThinkSolveEnv, VotingEnv, rollout

VOTERS = ("voter_0", "voter_1", "voter_2")


def test_coalition_rewards_recount_every_subset():
    env = VotingEnv(PROBLEMS, num_voters=3)
    env.reset(seed=0, options={"problem": 1})  # gold 1/2
    vote(env, ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{2}"])
    v = env.coalition_rewards()
    assert len(v) == 8 and v[()] == -1.0 and v[VOTERS] == env.tally.reward == 1.0
    assert v[("voter_0",)] == v[("voter_1",)] == 1.0 and v[("voter_2",)] == -1.0
    assert v[("voter_0", "voter_2")] == 0.0  # a 1-1 tie: the expected reward
    loo = env.counterfactual_rewards()
    for agent in VOTERS:  # the sets of N - 1 are the leave-one-out re-counts
        assert v[tuple(a for a in VOTERS if a != agent)] == loo[agent]
    with pytest.raises(RuntimeError, match="finished"):
        VotingEnv(PROBLEMS).coalition_rewards()


def test_coalition_rewards_match_leave_one_out_under_random_ties():
    for seed in range(6):
        env = VotingEnv(PROBLEMS, num_voters=4, tie_break="random")
        env.reset(seed=seed, options={"problem": 0})
        vote(env, ["\\boxed{5}", "\\boxed{4}", "\\boxed{5}", "\\boxed{4}"])
        v, loo = env.coalition_rewards(), env.counterfactual_rewards()
        assert v[tuple(env.votes)] == env.tally.reward
        assert all(v[tuple(a for a in env.votes if a != agent)] == loo[agent] for agent in env.votes)
        assert v == env.coalition_rewards()  # seeded: the same draws again


def test_shapley_values_by_hand():
    # ±1 rewards, voters 0 and 1 right, voter 2 wrong: v(S) = plurality of S, a tie is worth 0, v(∅) = -1
    def value(members):
        right, wrong = sum(i < 2 for i in members), sum(i == 2 for i in members)
        return -1.0 if not members else float(np.sign(right - wrong))

    row = [value([i for i in range(3) if m >> i & 1]) for m in range(8)]
    phi = shapley_values(np.array([row]))[0]
    np.testing.assert_allclose(phi, [7 / 6, 7 / 6, -1 / 3])
    assert phi.sum() == pytest.approx(row[-1] - row[0])  # efficiency: Σφ = v(N) − v(∅)
    unanimous = shapley_values(np.array([[-1.0] + [1.0] * 7]))[0]
    np.testing.assert_allclose(unanimous, [2 / 3] * 3)  # symmetric voters share equally


def test_shapley_values_match_the_permutation_definition():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 16))  # any game on 4 players
    phi = shapley_values(v)
    for e in range(3):
        brute = np.zeros(4)
        for order in itertools.permutations(range(4)):
            mask = 0
            for i in order:
                brute[i] += v[e, mask | 1 << i] - v[e, mask]
                mask |= 1 << i
        np.testing.assert_allclose(phi[e], brute / math.factorial(4))
    with pytest.raises(ValueError, match=r"\[E, 2\^N\]"):
        shapley_values(np.zeros((1, 6)))


def test_voting_shapley_credit_is_a_centred_reward():
    v = [[-1, 1, 1, 1, -1, 0, 0, 1], [-1] * 8]
    b = CreditBatch(joint_reward=[1, -1], group=[0, 0], roles=VOTERS, coalition_reward=v)
    res = assign_credit("voting_shapley", b)
    np.testing.assert_allclose(res.rewards["voter_0"], [7 / 6, 0])
    np.testing.assert_allclose(res.rewards["voter_2"], [-1 / 3, 0])
    assert not any(res.baselined.values()) and not get_credit("voting_shapley").is_baselined("voter_0")
    with pytest.raises(ValueError, match=r"\['coalitions'\]"):
        assign_credit("voting_shapley", CreditBatch(joint_reward=[1], group=[0], roles=VOTERS))
    with pytest.raises(ValueError, match=r"2\^N"):
        CreditBatch(joint_reward=[1], group=[0], roles=VOTERS, coalition_reward=[[0, 1]])


def test_rollout_records_coalitions_only_when_asked():
    answers = iter(["\\boxed{17}", "\\boxed{17}", "\\boxed{3}"] * 10)
    policy = CountingPolicy(lambda o: next(answers))
    env = VotingEnv(ROLLOUT_PROBLEMS, num_voters=3)
    (plain,) = rollout(env, policy, [0])
    assert plain.coalition_rewards is None
    (ep,) = rollout(env, policy, [0], coalitions=True)
    assert ep.coalition_rewards[VOTERS] == 1.0 and ep.coalition_rewards[("voter_2",)] == -1.0
    batch = credit_batch_from_episodes([ep])
    assert batch.coalition_reward.shape == (1, 8)
    np.testing.assert_allclose(batch.coalition_reward[0, [3, 4]], [1.0, -1.0])  # {0,1} and {2}

    with pytest.raises(ValueError, match="coalition_rewards"):
        rollout(ThinkSolveEnv(ROLLOUT_PROBLEMS), {"thinker": lambda o: ["t"] * len(o), "solver": lambda o: ["s"] * len(o)},
                [0], coalitions=True)


def test_voting_topology_trains_with_shapley_credit(tmp_path):
    t = make_trainer(tmp_path, "env.topology=voting", "credit.method=voting_shapley", topology="voting")
    m = t.train_step()
    assert m["voter/num_samples"] == 2 * 2 * 3 and "credit/shapley_nonzero_frac" in m
