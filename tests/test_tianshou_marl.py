"""ccpo credit as reward transforms for tianshou, and independent PPO learning the discrete-choice task."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ccpo_agents.credit import CreditResult
from ccpo_agents.interop import CreditRewards, TeamEpisodes, agent_rewards

# tianshou JIT-compiles numba kernels when it builds a policy (~10 s); these buffers are tiny. Only takes
# effect if numba is not imported yet in this process (otherwise the tests are just slower).
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

DYAD = ("thinker", "solver")


# ------------------------------------------------------------------------------------------ adapter
def test_shared_gives_every_agent_the_team_reward() -> None:
    eps = TeamEpisodes(agents=DYAD, joint_reward=[1.0, -1.0, 1.0], group=[0, 1, 1])
    assert CreditRewards("shared")(eps).tolist() == [[1, 1], [-1, -1], [1, 1]]


def test_ccpo_tree_thinker_credit_is_joint_minus_solo_mean() -> None:
    # groups 0 and 1; solo means: V_solo(0) = -1, V_solo(1) = (1 - 1) / 2 = 0.
    eps = TeamEpisodes(agents=DYAD, joint_reward=[1.0, -1.0, 1.0], group=[0, 1, 1],
                       solo_reward=np.array([-1.0, 1.0, -1.0]), solo_group=np.array([0, 1, 1]))
    credit = CreditRewards("ccpo_tree")
    assert credit.needs_solo and not credit.needs_loo
    # First batch: no history yet, so Δ is not scaled. Thinker Δ = R - V_solo, Solver R_joint.
    assert credit(eps).tolist() == [[2.0, 1.0], [-1.0, -1.0], [1.0, -1.0 + 2.0]]
    # Agent order follows TeamEpisodes.agents.
    flipped = TeamEpisodes(agents=("solver", "thinker"), joint_reward=[1.0], group=[0],
                           solo_reward=np.array([1.0]), solo_group=np.array([0]))
    assert CreditRewards("ccpo_tree", {"scale": "none"})(flipped).tolist() == [[1.0, 0.0]]


def test_ccpo_tree_needs_solo_branches() -> None:
    with pytest.raises(ValueError, match="missing required input"):
        CreditRewards("ccpo_tree")(TeamEpisodes(agents=DYAD, joint_reward=[1.0], group=[0]))


def test_voting_credit_is_leave_one_out() -> None:
    voters = ("voter_0", "voter_1", "voter_2")
    eps = TeamEpisodes(agents=voters, joint_reward=[1.0, -1.0], group=[3, 4],
                       loo_reward=np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]))
    credit = CreditRewards("voting")
    assert credit.needs_loo
    assert credit(eps).tolist() == [[0.0, 2.0, 0.0], [0.0, 0.0, -2.0]]


def test_agent_rewards_checks_the_agents() -> None:
    result = CreditResult(rewards={"thinker": np.array([1.0]), "solver": np.array([0.5])},
                          group_keys={"thinker": np.array([0]), "solver": np.array([0])},
                          baselined={"thinker": True, "solver": False})
    assert agent_rewards(result, ["solver", "thinker"]).tolist() == [[0.5, 1.0]]
    with pytest.raises(ValueError, match=r"no rewards for \['voter_0'\]"):
        agent_rewards(result, ["voter_0"])
    with pytest.raises(ValueError, match="needs"):
        CreditRewards("sepo")  # ratings are not produced by this loop


# ------------------------------------------------------------------------------------------ tianshou
@pytest.fixture(scope="module")
def marl():
    pytest.importorskip("tianshou")
    import logging

    from ccpo_agents.interop import tianshou_marl

    logging.getLogger("tianshou.data.stats").setLevel(logging.ERROR)
    return tianshou_marl


def test_apply_credit_rewrites_the_buffer(marl) -> None:
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv

    cfg = marl.MARLConfig(num_envs=2, episodes_per_iter=4)
    template = marl.TeamPettingZooEnv(marl.make_choice_env(cfg))
    algorithm = marl.build_algorithm(cfg, template)
    venv = DummyVectorEnv([lambda i=i: marl.TeamPettingZooEnv(marl.make_choice_env(cfg, seed=i)) for i in range(2)])
    collector = Collector(algorithm, venv, VectorReplayBuffer(32, 2))
    collector.reset()
    collector.collect(n_episode=4)
    buffer = collector.buffer
    idx = buffer.sample_indices(0)
    assert len(idx) == 8 and buffer.done[idx].sum() == 4  # the team reward arrives on the Solver's step only
    team = marl.apply_credit(buffer, CreditRewards("shared"), list(template.agents))
    assert len(team.joint_reward) == 4
    agents = np.asarray(buffer.obs.agent_id[idx]).astype(str)
    rew = np.asarray(buffer.rew[idx])
    assert buffer.terminated[idx].all() and buffer.done[idx].all()  # every decision is a one-step problem
    assert np.array_equal(rew[agents == "thinker", 0], team.joint_reward)  # the Thinker now sees the outcome
    assert not rew[agents == "thinker", 1].any() and not rew[agents == "solver", 0].any()
    with pytest.raises(ValueError, match="needs Thinker-removed branches"):
        marl.apply_credit(buffer, CreditRewards("ccpo_tree"), list(template.agents))
    with pytest.raises(ValueError, match=r"has turns \['thinker'\]; credit needs one turn per agent"):
        marl.apply_credit(buffer, CreditRewards("shared"), list(template.agents))  # already credited


def test_solo_branches_are_the_solver_choosing_alone(marl) -> None:
    cfg = marl.MARLConfig()
    template = marl.TeamPettingZooEnv(marl.make_choice_env(cfg))
    algorithm = marl.build_algorithm(cfg, template)
    import torch

    run = marl.solo_branches(algorithm.policy.policies["solver"], template.env, k=2, seed=0)
    torch.manual_seed(0)
    rewards, groups = run([5, 9])
    assert groups.tolist() == [5, 5, 9, 9] and set(rewards.tolist()) <= {-1.0, 1.0}
    torch.manual_seed(0)  # the Solver samples its choice with torch's generator
    assert rewards.tolist() == run([5, 9])[0].tolist()  # same branches, same menus, same choices


def test_credit_on_identical_episodes(marl) -> None:
    cfg = marl.MARLConfig()
    algorithm = marl.build_algorithm(cfg, marl.TeamPettingZooEnv(marl.make_choice_env(cfg)))
    team, rewards = marl.credit_on_identical_episodes(algorithm, cfg, ["shared", "ccpo_tree"], episodes=6)
    joint = team.joint_reward
    v_solo = np.array([team.solo_reward[team.solo_group == g].mean() for g in team.group])
    assert len(joint) == 6 and len(team.solo_reward) == 6 * cfg.solo_per_episode
    assert rewards["shared"].tolist() == np.stack([joint, joint], 1).tolist()
    assert rewards["ccpo_tree"].tolist() == np.stack([joint - v_solo, joint], 1).tolist()  # unscaled: fresh history


def test_config_errors(marl) -> None:
    with pytest.raises(ValueError, match="multiple of num_envs"):
        marl.MARLConfig(episodes_per_iter=10, num_envs=4)
    with pytest.raises(ValueError, match="env must be one of"):
        marl.MARLConfig(env="chess")
    with pytest.raises(ValueError, match="use env='voting'"):
        marl.train_marl(marl.MARLConfig(credit="voting"))


@pytest.mark.parametrize("credit", ["shared", "ccpo_tree"])
def test_independent_ppo_learns_the_dyad(marl, credit) -> None:
    """A short seeded run: the held-out greedy team return rises well above the untrained policy's."""
    cfg = marl.MARLConfig(credit=credit, iterations=4, episodes_per_iter=32, eval_problems=100, seed=0)
    result = marl.train_marl(cfg)
    assert result.after["return"] > result.before["return"] + 0.3, (result.before, result.after)
    assert result.after["accuracy_solo"] >= 0.8  # the Solver learned to derive the answer itself
    assert len(result.train_return) == 4 and result.curve[0] == (0, 0, result.before["return"])


def test_independent_ppo_learns_to_vote(marl) -> None:
    # Voters learn slower: right and wrong worked answers differ only in an arithmetic fact they must learn.
    cfg = marl.MARLConfig(env="voting", variant="standard", credit="voting", iterations=10, episodes_per_iter=32,
                          eval_problems=200, seed=0)
    result = marl.train_marl(cfg)
    assert result.after["return"] > result.before["return"] + 0.15, (result.before, result.after)


@pytest.mark.slow
def test_bench_marl_credit_quick(tmp_path) -> None:
    pytest.importorskip("tianshou")
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_marl_credit.py"
    spec = importlib.util.spec_from_file_location("bench_marl_credit_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "marl.json"
    module.main(["--quick", "--seeds", "2", "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["benchmark"] == "bench_marl_credit"
    methods = [(r["study"], r["method"]) for r in res["rows"]]
    assert methods == [("think_solve", "shared"), ("think_solve", "ccpo_tree"), ("think_solve", "ccpo_tree_k4"),
                       ("voting", "shared"), ("voting", "voting")]
    for row in res["rows"]:
        assert row["final"]["n"] == 2 and np.isfinite(row["final"]["ci95"])
    # Paired seeds: both methods see the same first round of episodes.
    runs = res["studies"]["think_solve"]
    assert runs["shared"][0]["train_return"][0] == runs["ccpo_tree"][0]["train_return"][0]
    assert module.t975(9) == pytest.approx(2.262) and module.t975(60) == pytest.approx(2.000, abs=2e-3)


@pytest.mark.slow
def test_frozen_hf_policy_proposes_the_candidates() -> None:
    """A frozen tiny HFPolicy (random weights) samples K candidates per turn in one batched call."""
    pytest.importorskip("transformers")
    from ccpo_agents.models.tiny import build_tiny
    from ccpo_agents.policies import GenerationConfig, HFPolicy
    from ccpo_env import ThinkSolveEnv
    from ccpo_env.wrappers import DiscreteChoiceEnv, TextPolicyProposer

    model, tokenizer = build_tiny("tiny", seed=0)
    policy = HFPolicy(model, tokenizer, generation=GenerationConfig(max_new_tokens=4))
    calls = []

    def counted(observations, *, seeds=None):
        calls.append(len(observations))
        return policy(observations, seeds=seeds)

    env = DiscreteChoiceEnv(ThinkSolveEnv("arith", dataset_options={"level": 1}, seed=0),
                            TextPolicyProposer(counted, num_choices=3), seed=0)
    env.reset(seed=0)
    first = list(env.candidates)
    assert calls == [3] and 1 <= len(first) <= 3
    env.step(0)
    assert calls == [3, 3] and env.agent_selection == "solver"
    env.step(0)
    assert env.terminations["solver"] and env.rewards["solver"] in (-1.0, 1.0)
    env.reset(seed=0)
    assert env.candidates == first  # seeded samples: the same candidates again
