"""PettingZoo conventions: module constructors, wrappers, the Parallel voting env, seeding and PettingZoo's test utilities."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test, seed_test
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from ccpo_env import Problem, ThinkSolveEnv, VotingEnv, VotingParallelEnv, rollout
from ccpo_env.envs import think_solve, voting
from ccpo_env.verify import verify_batch

PROBLEMS = [
    Problem(id="p0", problem="What is 2+3?", answer="5", source="toy"),
    Problem(id="p1", problem="What is 1/2 as a decimal?", answer="\\frac{1}{2}", source="toy"),
    Problem(id="p2", problem="Is the sky blue?", answer="True", source="toy", answer_type="label"),
]
# Short actions: PettingZoo's utilities sample random Text actions, and every one is verified.
SMALL = dict(dataset=PROBLEMS, max_action_chars=24)
MODULES = {"think_solve": think_solve, "voting": voting}

# max_cycles_test does not apply: it needs `env(max_cycles=...)` on an env whose episodes only end by that
# cap. These episodes end by construction once every live agent has acted once (at most len(agents) steps),
# so there is nothing to cap and no max_cycles argument.


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PettingZoo warns that Text observations are not numpy arrays
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- constructors and wrappers
@pytest.mark.parametrize("name", ["think_solve", "voting"])
def test_module_constructors_follow_pettingzoo(name):
    mod = MODULES[name]
    assert mod.raw_env is {"think_solve": ThinkSolveEnv, "voting": VotingEnv}[name]
    wrapped = mod.env(**SMALL)
    assert isinstance(wrapped, OrderEnforcingWrapper) and isinstance(wrapped.unwrapped, mod.raw_env)
    with pytest.raises(AttributeError, match="before reset"):
        wrapped.agent_selection  # noqa: B018 - the order check is the point
    quiet(api_test, wrapped, num_cycles=30)
    quiet(api_test, mod.raw_env(**SMALL), num_cycles=30)


def test_hooks_forward_through_the_wrapper():
    e = think_solve.env(dataset=PROBLEMS)
    e.reset(seed=0, options={"problem": "p1"})
    assert e.resolve_problem("p2") == 2 and e.problem.id == "p1"
    branch = e.counterfactual(remove=["thinker"])
    assert isinstance(branch, ThinkSolveEnv) and branch.agents == ["solver"] and branch.problem.id == "p1"
    v = voting.env(dataset=PROBLEMS, num_voters=3)
    v.reset(seed=0, options={"problem": 0})
    for answer in ("\\boxed{5}", "\\boxed{5}", "\\boxed{4}"):
        v.step(answer)
    assert v.counterfactual_rewards() == {"voter_0": 0.0, "voter_1": 0.0, "voter_2": 1.0}
    assert v.spawn().num_voters == 3


def test_rollout_takes_a_wrapped_template():
    policies = {"thinker": lambda o: ["2+3"] * len(o), "solver": lambda o: ["\\boxed{5}"] * len(o)}
    kw = dict(num_samples=2, counterfactuals=[["thinker"]], seed=1)
    wrapped = rollout(think_solve.env(dataset=PROBLEMS), policies, [0, 1], **kw)
    raw = rollout(ThinkSolveEnv(PROBLEMS), policies, [0, 1], **kw)
    assert [(e.problem_id, e.removed, e.rewards) for e in wrapped] == [(e.problem_id, e.removed, e.rewards) for e in raw]
    assert [e.correct for e in raw] == [True, True, True, False, False, False]


def test_tianshou_accepts_the_wrapped_env():
    pytest.importorskip("tianshou")
    from tianshou.env import PettingZooEnv

    wrapped = PettingZooEnv(think_solve.env(dataset=PROBLEMS))
    obs, _ = wrapped.reset(seed=0)
    assert obs["agent_id"] == "thinker"
    wrapped.step("a plan")
    *_, term, _, _ = wrapped.step("\\boxed{5}")
    assert term


# ----------------------------------------------------------------------------- Parallel voting
def test_parallel_voting_passes_parallel_api_and_seed_tests():
    par = voting.parallel_env(**SMALL, num_voters=3)
    assert isinstance(par, VotingParallelEnv) and par.metadata["is_parallelizable"] is True
    quiet(parallel_api_test, par, num_cycles=20)
    quiet(parallel_seed_test, lambda: voting.parallel_env(**SMALL, num_voters=3), num_cycles=20)
    quiet(parallel_seed_test, lambda: voting.parallel_env(**SMALL, num_voters=2, tie_break="random"), num_cycles=20)


def test_parallel_voting_one_step_casts_every_vote_and_matches_the_aec_env():
    par = voting.parallel_env(dataset=PROBLEMS, num_voters=3)
    obs, infos = par.reset(seed=0, options={"problem": 1})
    assert set(obs) == set(infos) == {"voter_0", "voter_1", "voter_2"}
    assert "1/2 as a decimal" in obs["voter_0"] and obs["voter_0"] == obs["voter_2"]
    votes = {"voter_0": "\\boxed{0.5}", "voter_1": "\\boxed{2}", "voter_2": "\\boxed{\\frac12}"}
    _, rewards, terms, truncs, infos = par.step(votes)
    assert rewards == {"voter_0": 1.0, "voter_1": 1.0, "voter_2": 1.0}
    assert all(terms.values()) and not any(truncs.values()) and par.agents == []
    assert infos["voter_1"]["vote_correct"] is False and infos["voter_0"]["correct"] is True
    # the counterfactual hooks are reachable on the parallel env
    assert par.counterfactual_rewards() == {"voter_0": 0.0, "voter_1": 1.0, "voter_2": 0.0}
    assert par.tally.winner == 0 and par.problem.id == "p1"
    aec = VotingEnv(PROBLEMS, num_voters=3)
    aec.reset(seed=0, options={"problem": 1})
    for a in aec.possible_agents:
        aec.step(votes[a])
    assert aec.counterfactual_rewards() == par.counterfactual_rewards()
    # a removal is a reset option under the Parallel API too
    obs, _ = par.reset(seed=0, options={"problem": 1, "remove": ["voter_1"]})
    assert set(obs) == {"voter_0", "voter_2"}
    _, rewards, *_ = par.step({"voter_0": "\\boxed{3}", "voter_2": "\\boxed{0.5}"})
    assert rewards == {"voter_0": 0.0, "voter_2": 0.0}  # a 1-1 tie between right and wrong


def test_parallel_voting_verifies_a_round_in_one_call():
    sizes = []

    def single(response, gold, *, answer_type="math"):
        raise AssertionError("the parallel env must use the batch form")

    def batch(responses, golds, *, answer_types):
        sizes.append(len(responses))
        return verify_batch(responses, golds, answer_types=answer_types)

    single.batch = batch
    par = voting.parallel_env(dataset=PROBLEMS, num_voters=3, verifier=single)
    par.reset(seed=0, options={"problem": 0, "remove": ["voter_2"]})
    _, rewards, *_ = par.step({"voter_0": "\\boxed{5}", "voter_1": "\\boxed{5}"})
    assert sizes == [2] and rewards == {"voter_0": 1.0, "voter_1": 1.0}
    par.reset(seed=0)
    with pytest.raises(TypeError, match="voter_1"):
        par.step({"voter_0": "\\boxed{5}", "voter_1": 7, "voter_2": "x"})


def test_parallel_voting_refuses_visible_votes_and_other_envs():
    with pytest.raises(ValueError, match="deliberation chain"):
        voting.parallel_env(dataset=PROBLEMS, visible_votes=True)
    with pytest.raises(ValueError, match="deliberation chain"):
        VotingParallelEnv(VotingEnv(PROBLEMS, visible_votes=True))
    with pytest.raises(TypeError, match="wraps a VotingEnv"):
        VotingParallelEnv(ThinkSolveEnv(PROBLEMS))
    assert VotingEnv(PROBLEMS, visible_votes=True).metadata["is_parallelizable"] is False
    assert ThinkSolveEnv.metadata["is_parallelizable"] is False


# ----------------------------------------------------------------------------- seeding
@pytest.mark.parametrize(
    "make",
    [
        lambda: think_solve.env(**SMALL),
        lambda: ThinkSolveEnv(**SMALL),
        lambda: voting.env(**SMALL, num_voters=3),
        lambda: VotingEnv(**SMALL, num_voters=4, visible_votes=True, tie_break="random"),
    ],
    ids=["think_solve", "think_solve_raw", "voting", "voting_visible_random"],
)
def test_pettingzoo_seed_test_passes(make):
    quiet(seed_test, make, num_cycles=20)


@pytest.mark.parametrize("name", ["think_solve", "voting"])
def test_pettingzoo_render_test_passes(name, capsys):
    mod = MODULES[name]
    quiet(render_test, lambda render_mode=None: mod.env(**SMALL, render_mode=render_mode))
    assert "problem: " in capsys.readouterr().out  # "human" printed the transcript


def play_by_sampling(env, seed):
    """An episode whose actions are drawn from the env's own action space (no explicit space seeding)."""
    env.reset(seed=seed)
    trace = []
    for agent in env.agent_iter():
        obs, reward, term, trunc, _ = env.last()
        action = None if term or trunc else env.action_space(agent).sample()
        trace.append((agent, str(obs), reward, action))
        env.step(action)
    return trace


@pytest.mark.parametrize("make", [lambda: ThinkSolveEnv(**SMALL), lambda: VotingEnv(**SMALL, num_voters=3)],
                         ids=["think_solve", "voting"])
def test_same_seed_same_episode_including_action_sampling(make):
    a, b = make(), make()
    assert play_by_sampling(a, 7) == play_by_sampling(b, 7)
    assert play_by_sampling(a, 7) == play_by_sampling(a, 7)
    assert play_by_sampling(a, 7) != play_by_sampling(a, 8)


def test_seeding_or_sampling_one_env_leaves_another_alone():
    a, b = ThinkSolveEnv(**SMALL), ThinkSolveEnv(**SMALL)
    b.reset(seed=1)
    expected = [b.action_space("thinker").sample() for _ in range(3)]
    b.reset(seed=1)
    a.reset(seed=99)
    a.action_space("thinker").seed(5)
    [a.action_space("solver").sample() for _ in range(4)]
    assert [b.action_space("thinker").sample() for _ in range(3)] == expected
    # the constructor seed seeds the spaces too
    c, d = ThinkSolveEnv(**SMALL, seed=3), ThinkSolveEnv(**SMALL, seed=3)
    assert c.action_space("solver").sample() == d.action_space("solver").sample()


def test_env_cards_examples_run():
    text = (Path(__file__).resolve().parent.parent / "docs" / "envs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/envs.md block {i}", "exec"), {})
