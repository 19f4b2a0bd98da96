"""The discrete-choice view (ccpo_env.wrappers): PettingZoo API, counterfactual hooks, proposers, features."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, seed_test

from ccpo_env import ThinkSolveEnv, VotingEnv
from ccpo_env.data import load_dataset
from ccpo_env.data.arith import arith_oracle_thought
from ccpo_env.wrappers import (
    ArithMenuProposer,
    DiscreteChoiceEnv,
    FixedMenuProposer,
    HashingFeaturizer,
    ProposalRequest,
    TextPolicyProposer,
    hash_text,
    tokenize,
)

LEVEL1 = {"level": 1}


def think_solve(seed: int = 0, **options) -> DiscreteChoiceEnv:
    return DiscreteChoiceEnv(ThinkSolveEnv("arith", dataset_options={**LEVEL1, **options}, seed=seed),
                             ArithMenuProposer(), seed=seed)


def voting(seed: int = 0) -> DiscreteChoiceEnv:
    return DiscreteChoiceEnv(VotingEnv("arith", dataset_options=LEVEL1, num_voters=3, seed=seed),
                             ArithMenuProposer(), seed=seed)


def slot_of(env: DiscreteChoiceEnv, predicate) -> int:
    hits = [i for i, c in enumerate(env.candidates) if predicate(c)]
    assert len(hits) == 1, env.candidates
    return hits[0]


@pytest.mark.parametrize("make", [think_solve, voting], ids=["think_solve", "voting"])
def test_api_test(make) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # api_test passes an unknown reset option on purpose
        api_test(make(), num_cycles=30)


@pytest.mark.parametrize("make", [think_solve, voting], ids=["think_solve", "voting"])
def test_seed_test(make) -> None:
    seed_test(make, num_cycles=30)


def test_spaces_and_observation() -> None:
    env = think_solve()
    env.reset(seed=3)
    assert env.action_space("thinker") is env.action_space("solver") and env.action_space("thinker").n == 4
    assert env.observation_space("thinker") is env.observation_space("solver")
    obs, *_ = env.last()
    assert obs["observation"].shape == (env.layout.dim,) and obs["observation"].dtype == np.float32
    assert obs["observation"].min() >= -1 and obs["observation"].max() <= 1
    assert obs["action_mask"].tolist() == [1, 1, 1, 1]
    assert env.observe("solver")["action_mask"].tolist() == [0, 0, 0, 0]  # not acting
    context, slots = env.layout.split(obs["observation"])
    assert context[0] == 1 and context[1] == 0 and context[2] == 0  # one-hot thinker, nothing removed
    assert slots.shape == (4, env.layout.slot_dim) and np.all(slots[:, 0] == 1)  # every slot holds a candidate


def test_menu_gives_the_credit_question_its_meaning() -> None:
    """Oracle thought -> the derived answer is right; wrong thought -> wrong; empty -> no derived answer."""
    problem = load_dataset("arith", split="test", level=1, limit=1)[0]
    derived = lambda c: c.startswith("Combining the steps")  # noqa: E731
    outcomes = {}
    for name, pick in [("oracle", lambda c: c == arith_oracle_thought(problem)),
                       ("empty", lambda c: c == ""),
                       ("wrong", lambda c: "=" in c and c != arith_oracle_thought(problem))]:
        env = think_solve()
        env.reset(seed=5, options={"problem": 0})
        env.step(slot_of(env, pick))
        assert env.agent_selection == "solver"
        if name == "empty":
            assert not any(derived(c) for c in env.candidates) and env.action_mask().tolist() == [1, 1, 1, 0]
            env.step(0)
        else:
            env.step(slot_of(env, derived))
        outcomes[name] = env.rewards["solver"]
    assert outcomes == {"oracle": 1.0, "empty": -1.0, "wrong": -1.0}


def test_thinker_removed_branch_is_a_choice_without_a_thought() -> None:
    env = think_solve()
    env.reset(seed=1, options={"problem": 4, "remove": ["thinker"]})
    assert env.agents == ["solver"] and env.agent_selection == "solver"
    context, _ = env.layout.split(env.observe("solver")["observation"])
    assert context[2] == 1.0  # the "an agent was removed" flag
    assert not any(c.startswith("Combining") for c in env.candidates)  # a joint item: nothing to derive alone
    # counterfactual() from a running episode: same problem, ready to step, the Solver alone.
    env.reset(seed=1, options={"problem": 4})
    branch = env.counterfactual(["thinker"])
    assert branch.agents == ["solver"] and branch.unwrapped.problem_index == 4
    assert branch.action_mask().sum() == len(branch.candidates) == 3
    branch.step(0)
    assert branch.terminations["solver"] and branch.rewards["solver"] == -1.0
    assert env.agent_selection == "thinker"  # the original episode is untouched


def test_freeride_solo_item_the_solver_derives_alone() -> None:
    ds = load_dataset("arith", split="test", level=1, variant="freeride", limit=50)
    solo = next(i for i, p in enumerate(ds) if p.extras["kind"] == "solo")
    env = think_solve(variant="freeride")
    env.reset(seed=0, options={"problem": solo, "remove": ["thinker"]})
    env.step(slot_of(env, lambda c: c.startswith("Combining")))
    assert env.rewards["solver"] == 1.0


def test_voting_infos_carry_leave_one_out_rewards() -> None:
    env = voting()
    env.reset(seed=2, options={"problem": 1})
    for agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        if term or trunc:
            loo = env.counterfactual_rewards()
            assert env.infos[agent]["loo_rewards"] == [loo[a] for a in env.possible_agents]
            env.step(None)
        else:
            env.step(0)
    assert env.agents == []


def test_bad_actions_are_explained() -> None:
    env = think_solve()
    env.reset(seed=0, options={"problem": 0})
    env.step(slot_of(env, lambda c: c == ""))  # the Solver then has 3 candidates
    with pytest.raises(ValueError, match=r"slot 3 is not a valid choice for 'solver'.*0\.\.2"):
        env.step(3)
    with pytest.raises(TypeError, match="int slot index"):
        env.step("The answer is 3")
    with pytest.raises(TypeError, match="int slot index"):
        env.step(None)
    env.step(np.int64(0))  # what tianshou and Discrete.sample() give
    assert env.terminations["solver"]


def test_fixed_menu_proposer() -> None:
    proposer = FixedMenuProposer({"thinker": ["a", "b", "c"], "voter": ["x", "y"]})
    assert proposer.num_choices == 3
    problem = load_dataset("arith", split="test", level=1, limit=1)[0]

    def request(agent: str, seed: int) -> ProposalRequest:
        return ProposalRequest(agent, "obs", problem, (), (), 0, seed)

    a, b, c = proposer.propose([request("thinker", 1), request("thinker", 1), request("voter_2", 7)])
    assert a == b and sorted(a) == ["a", "b", "c"] and sorted(c) == ["x", "y"]
    assert len({tuple(proposer.propose([request("thinker", s)])[0]) for s in range(20)}) > 1  # shuffled
    with pytest.raises(KeyError, match="no menu for agent 'solver'"):
        proposer.propose([request("solver", 0)])
    with pytest.raises(ValueError, match="4 candidates but num_choices=2"):
        FixedMenuProposer({"thinker": ["a", "b", "c", "d"]}, num_choices=2).propose([request("thinker", 0)])
    with pytest.raises(ValueError, match="needs num_choices"):
        FixedMenuProposer(lambda r: ["a"])


class SeededEcho:
    """A text policy that takes seeds=: returns one of three texts chosen by the seed; counts calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, observations: list[str], *, seeds: list[int] | None = None) -> list[str]:
        self.calls.append(len(observations))
        assert seeds is not None and len(seeds) == len(observations)
        return [f"thought {s % 3} for {o[-12:]}" for o, s in zip(observations, seeds)]


def test_text_policy_proposer_calls_once_per_turn_with_k_samples() -> None:
    thinker, solver = SeededEcho(), SeededEcho()
    proposer = TextPolicyProposer({"thinker": thinker, "solver": solver}, num_choices=4)
    env = DiscreteChoiceEnv(ThinkSolveEnv("arith", dataset_options=LEVEL1, seed=0), proposer, seed=0)
    env.reset(seed=0)
    assert thinker.calls == [4] and solver.calls == []  # one call, K prompts
    k = len(env.candidates)
    assert 1 <= k <= 3 and env.action_mask().tolist() == [1] * k + [0] * (4 - k)  # duplicates dropped, masked
    first = list(env.candidates)
    env.step(0)
    assert solver.calls == [4] and thinker.calls == [4]
    env.reset(seed=0)
    assert env.candidates == first  # reproducible from the turn's seed
    # A batch of requests of one role is one call.
    batch_policy = SeededEcho()
    problem = env.unwrapped.problem
    reqs = [ProposalRequest("thinker", f"obs {i}", problem, (), (), 0, i) for i in range(5)]
    out = TextPolicyProposer(batch_policy, num_choices=3).propose(reqs)
    assert batch_policy.calls == [15] and len(out) == 5


def test_text_policy_proposer_rejects_bad_outputs() -> None:
    problem = load_dataset("arith", split="test", level=1, limit=1)[0]
    req = ProposalRequest("thinker", "obs", problem, (), (), 0, 0)
    with pytest.raises(ValueError, match="returned 1 outputs for 2 prompts"):
        TextPolicyProposer(lambda obs: ["only one"], num_choices=2).propose([req])
    with pytest.raises(TypeError, match="callable or a mapping"):
        TextPolicyProposer("not a policy")
    with pytest.raises(ValueError, match="positive int"):
        TextPolicyProposer(lambda obs: obs, num_choices=0)


def test_features() -> None:
    assert tokenize("23*4=92, 17 * 3 = 51 so \\boxed{143}") == ["23*4=92", ",", "17*3=51", "so", "\\boxed{143}"]
    v = hash_text("7*8=56, Let me", 32)
    assert v.shape == (32,) and np.isclose(np.linalg.norm(v), 1.0)
    assert np.array_equal(v, hash_text("7*8=56, let me", 32))  # deterministic, lower-cased
    assert not hash_text("", 8).any()
    f = HashingFeaturizer(problem_dim=8, moves_dim=8, candidate_dim=8)
    x = f(agent_index=1, num_agents=2, removed=False, problem="Compute (7*8)+5.", moves=["7*8=56"],
          candidates=["Combining the steps: \\boxed{61}.", ""], num_choices=3)
    layout = f.layout(2, 3)
    context, slots = layout.split(x)
    assert x.shape == (layout.dim,) and context[:3].tolist() == [0, 1, 0]
    assert slots[0, :5].tolist() == pytest.approx([1, 0, 1, np.log1p(32) / np.log1p(256), 0.0])
    assert slots[1, :5].tolist() == [1, 1, 0, 0, 0] and not slots[2].any()
    with pytest.raises(ValueError, match="do not fit in 1 slots"):
        f(agent_index=0, num_agents=2, removed=False, problem="p", moves=[], candidates=["a", "b"], num_choices=1)
    with pytest.raises(ValueError, match="positive int"):
        HashingFeaturizer(problem_dim=0)


def test_wrapper_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="wraps a PettingZoo AECEnv"):
        DiscreteChoiceEnv(object(), ArithMenuProposer())
    with pytest.raises(TypeError, match="num_choices and propose"):
        DiscreteChoiceEnv(ThinkSolveEnv("arith"), object())
    env = think_solve()
    with pytest.raises(RuntimeError, match="call reset"):
        env.counterfactual(["thinker"])


def test_api_test_with_a_text_policy_proposer() -> None:
    """Candidate counts vary per turn (duplicates masked): the wrapper still passes api_test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api_test(DiscreteChoiceEnv(ThinkSolveEnv("arith", dataset_options=LEVEL1, seed=0),
                                   TextPolicyProposer(SeededEcho(), num_choices=4), seed=0), num_cycles=20)


def test_wrappers_never_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ccpo_env import ThinkSolveEnv\n"
        "from ccpo_env.wrappers import ArithMenuProposer, DiscreteChoiceEnv\n"
        "env = DiscreteChoiceEnv(ThinkSolveEnv('arith'), ArithMenuProposer()); env.reset(seed=0)\n"
        "env.step(0); env.step(0)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ccpo_agents', 'tianshou'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
