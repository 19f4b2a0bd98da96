"""The batched rollout driver: call counts, batching of branches, determinism, records."""

from __future__ import annotations

import re

import pytest

import ccpo_env.envs.base as env_base
from ccpo_env import Generation, Problem, ThinkSolveEnv, Verdict, VerifiedAction, VotingEnv, rollout
from ccpo_env.verify import verify, verify_batch

PROBLEMS = [
    Problem(id=f"q{i}", problem=f"Compute {a}*{b}+{c}.", answer=str(a * b + c), source="toy",
            extras={"product": a * b, "c": c})
    for i, (a, b, c) in enumerate([(3, 4, 5), (6, 7, 1), (2, 9, 8), (5, 5, 5)])
]


class CountingPolicy:
    """Records every call; answers with ``fn(observation)``."""

    def __init__(self, fn):
        self.fn = fn
        self.calls: list[list[str]] = []

    def __call__(self, observations):
        self.calls.append(list(observations))
        return [self.fn(o) for o in observations]


def oracle_thinker(obs: str) -> str:
    a, b, _ = map(int, re.search(r"Compute (\d+)\*(\d+)\+(\d+)", obs).groups())
    return f"{a}*{b}={a * b}"


def one_step_solver(obs: str) -> str:
    """Can only add: needs the Thinker's product, so it fails alone."""
    m = re.search(r"(\d+)\*(\d+)=(\d+)", obs)
    c = int(re.search(r"\+(\d+)\.", obs).group(1))
    return f"\\boxed{{{int(m.group(3)) + c}}}" if m else "\\boxed{0}"


def test_one_policy_call_per_turn_with_branches_batched():
    env = ThinkSolveEnv(PROBLEMS)
    thinker, solver = CountingPolicy(oracle_thinker), CountingPolicy(one_step_solver)
    eps = rollout(
        env, {"thinker": thinker, "solver": solver}, [0, 1, 2],
        num_samples=2, fanout={"thinker": 3}, counterfactuals=[["thinker"]], num_counterfactual=2, seed=0,
    )
    # 3 problems x (2 thoughts x 3 answers + 2 solo) episodes
    assert len(eps) == 3 * (2 * 3 + 2)
    assert len(thinker.calls) == 1 and len(thinker.calls[0]) == 3 * 2
    # joint answers and solo (counterfactual) answers share ONE solver call
    assert len(solver.calls) == 1 and len(solver.calls[0]) == 3 * 2 * 3 + 3 * 2
    joint = [e for e in eps if not e.removed]
    solo = [e for e in eps if e.removed == ("thinker",)]
    assert all(e.correct for e in joint) and not any(e.correct for e in solo)
    assert all(e.rewards == {"thinker": 1.0, "solver": 1.0} for e in joint)
    assert all(e.rewards == {"solver": -1.0} and len(e.turns) == 1 for e in solo)
    # ordering and lineage: group, joint before counterfactual, sample, fork
    assert [e.uid for e in eps] == list(range(len(eps)))
    assert [(e.sample, e.fork) for e in eps[:6]] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    forks = [e for e in eps if e.thought_key == (0, (), 0)]
    assert len(forks) == 3 and len({e.turns[0].action for e in forks}) == 1
    assert eps[0].problem_id == "q0" and eps[0].source == "toy" and eps[0].turn("thinker").agent == "thinker"


def test_deterministic_given_seed_and_policy_seeds():
    seen: list[list[int]] = []

    def seeded_solver(observations, seeds):
        seen.append(list(seeds))
        return [f"\\boxed{{{s % 3}}}" for s in seeds]

    def run(seed):
        env = ThinkSolveEnv(PROBLEMS)
        return rollout(env, {"thinker": lambda o: ["t"] * len(o), "solver": seeded_solver}, 3,
                       num_samples=2, fanout={"thinker": 2}, seed=seed)

    a, b, c = run(5), run(5), run(6)
    key = lambda eps: [(e.problem_id, e.sample, e.fork, e.turns[-1].action) for e in eps]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)
    assert len(set(seen[0])) == len(seen[0])  # every episode and fork gets its own seed


def test_common_random_numbers_give_a_pair_one_seed():
    seen: dict[str, list[tuple[str, int]]] = {"thinker": [], "solver": []}

    def recorder(agent):
        def policy(observations, seeds):
            seen[agent].extend(zip(observations, seeds))
            return [f"t{s}" if agent == "thinker" else f"\\boxed{{{s}}}" for s in seeds]  # the seed is the action
        return policy

    def run(crn):
        for v in seen.values():
            v.clear()
        eps = rollout(ThinkSolveEnv(PROBLEMS), {a: recorder(a) for a in ("thinker", "solver")}, [0, 1],
                      num_samples=2, fanout={"thinker": 2}, counterfactuals=[["thinker"]], num_counterfactual=4,
                      seed=3, common_random_numbers=crn)
        return eps, [s for _, s in seen["solver"]], [s for _, s in seen["thinker"]]

    eps, solver_seeds, thinker_seeds = run(True)
    # the solver call lists joint episodes then solo branches; pair c of a group = joint (sample, fork) rank c
    joint = {(e.group, e.sample * 2 + e.fork): e for e in eps if not e.removed}
    solo = {(e.group, e.sample): e for e in eps if e.removed}
    assert sorted(joint) == sorted(solo) and len(joint) == 8
    for key, e in joint.items():
        assert e.turn("solver").action == solo[key].turn("solver").action  # the same seed
        assert e.turn("thinker").action in e.turn("solver").observation
    assert len(set(solver_seeds)) == 8 and len(set(thinker_seeds)) == 4
    _, solver_seeds, _ = run(False)
    assert len(set(solver_seeds)) == 16  # independent draws without it


def test_generation_outputs_are_passed_through():
    def gen_policy(observations):
        return [Generation(text="\\boxed{17}", token_ids=[1, 2], logprobs=[-0.1, -0.2]) for _ in observations]

    eps = rollout(ThinkSolveEnv(PROBLEMS), {"thinker": lambda o: ["hi"] * len(o), "solver": gen_policy}, [0])
    turn = eps[0].turn("solver")
    assert isinstance(turn.output, Generation) and turn.output.token_ids == [1, 2]
    assert turn.action == "\\boxed{17}" and eps[0].correct is True
    assert eps[0].turn("thinker").output == "hi"


def test_single_policy_for_all_agents_and_voting_counterfactual_rewards():
    answers = iter(["\\boxed{17}", "\\boxed{17}", "\\boxed{3}"] * 10)
    policy = CountingPolicy(lambda o: next(answers))
    eps = rollout(VotingEnv(PROBLEMS, num_voters=3), policy, [0], num_samples=1)
    assert len(policy.calls) == 3  # one call per voter turn
    (ep,) = eps
    assert ep.correct and ep.rewards == {f"voter_{i}": 1.0 for i in range(3)}
    assert ep.counterfactual_rewards == {"voter_0": 0.0, "voter_1": 0.0, "voter_2": 1.0}


def test_voting_counterfactual_branches_join_the_same_calls():
    policy = CountingPolicy(lambda o: "\\boxed{17}")
    eps = rollout(VotingEnv(PROBLEMS, num_voters=3), policy, [0, 1], counterfactuals=[["voter_0"]])
    assert len(policy.calls) == 3
    assert [len(c) for c in policy.calls] == [2, 4, 4]  # voter_0 is absent from the branches
    assert sum(e.removed == ("voter_0",) for e in eps) == 2


def test_policy_errors_are_clear():
    env = ThinkSolveEnv(PROBLEMS)
    with pytest.raises(ValueError, match="exactly one output per observation"):
        rollout(env, {"thinker": lambda o: ["x"], "solver": lambda o: ["y"] * len(o)}, [0, 1])
    with pytest.raises(KeyError, match="no policy for agent 'solver'"):
        rollout(env, {"thinker": lambda o: ["x"] * len(o)}, [0])
    with pytest.raises(TypeError, match="str"):
        rollout(env, {"thinker": lambda o: [1] * len(o), "solver": lambda o: ["y"] * len(o)}, [0])
    with pytest.raises(ValueError, match="fanout"):
        rollout(env, lambda o: ["x"] * len(o), [0], fanout={"critic": 2})
    with pytest.raises(ValueError, match="non-empty"):
        rollout(env, lambda o: ["x"] * len(o), [])


def test_problem_count_draws_keep_the_envs_problem_subset():
    env = ThinkSolveEnv(PROBLEMS, problems=["q1", 3])
    eps = rollout(env, lambda o: ["\\boxed{1}"] * len(o), 12, seed=2)
    assert {e.problem_id for e in eps} == {"q1", "q3"}


def test_problem_count_draws_reproducibly():
    env = ThinkSolveEnv(dataset="arith")
    a = rollout(env, lambda o: ["\\boxed{1}"] * len(o), 4, seed=1)
    b = rollout(env, lambda o: ["\\boxed{1}"] * len(o), 4, seed=1)
    assert [e.problem_id for e in a] == [e.problem_id for e in b]
    assert len({e.problem_id for e in a}) > 1


# ----------------------------------------------------------------------------- batched verification
class CountingVerifier:
    """The default verifier, counting item calls and (when ``batch``) batch calls."""

    def __init__(self, batch: bool):
        self.items = 0
        self.batches: list[int] = []
        if batch:
            self.batch = self._batch

    def __call__(self, response, gold, *, answer_type="math"):
        self.items += 1
        return verify(response, gold, answer_type=answer_type)

    def _batch(self, responses, golds, *, answer_types):
        self.batches.append(len(responses))
        return verify_batch(responses, golds, answer_types=answer_types)


def outcome(eps):
    return [(e.problem_id, e.removed, e.sample, e.fork, e.correct, e.rewards, e.turns[-1].info.get("reason")) for e in eps]


def test_verifier_is_called_once_per_turn_for_the_whole_batch():
    kwargs = dict(num_samples=2, fanout={"thinker": 3}, counterfactuals=[["thinker"]], num_counterfactual=2, seed=0)
    policies = {"thinker": CountingPolicy(oracle_thinker), "solver": CountingPolicy(one_step_solver)}
    reference = rollout(ThinkSolveEnv(PROBLEMS), policies, [0, 1, 2], **kwargs)
    batched = CountingVerifier(batch=True)
    eps = rollout(ThinkSolveEnv(PROBLEMS, verifier=batched), policies, [0, 1, 2], **kwargs)
    assert batched.batches == [3 * (2 * 3 + 2)] and batched.items == 0  # one call: every Solver answer
    assert outcome(eps) == outcome(reference)
    single = CountingVerifier(batch=False)  # a custom verifier with no batch form: item by item
    eps = rollout(ThinkSolveEnv(PROBLEMS, verifier=single), policies, [0, 1, 2], **kwargs)
    assert single.items == 3 * (2 * 3 + 2) and outcome(eps) == outcome(reference)


def test_default_verifier_goes_through_verify_batch_and_forks_are_not_reverified(monkeypatch):
    sizes: list[int] = []

    def counting_batch(responses, golds, **kw):
        sizes.append(len(responses))
        return verify_batch(responses, golds, **kw)

    monkeypatch.setattr(env_base, "verify_batch", counting_batch)
    answers = iter(["\\boxed{17}", "\\boxed{3}"] * 50)
    eps = rollout(VotingEnv(PROBLEMS, num_voters=3), lambda o: [next(answers) for _ in o], [0, 1],
                  fanout={"voter_0": 2})
    # voter_0 votes in 2 episodes, then 4 copies vote for voter_1 and voter_2; the replayed vote is not re-scored
    assert sizes == [2, 4, 4] and len(eps) == 4
    assert all(len(e.turns) == 3 for e in eps)


def test_precomputed_verdict_is_used_only_when_it_matches():
    env = ThinkSolveEnv(PROBLEMS, max_action_chars=12)
    env.reset(seed=0, options={"problem": 0})
    assert env.verification_request("a thought") is None  # the Thinker is not verified
    with pytest.raises(TypeError, match="str"):
        env.verification_request(3)  # but its action is checked as step would
    env.step("a thought")
    request = env.verification_request("so \\boxed{17} it is")
    assert request.response == "so \\boxed{17" and request.gold == "17"  # cut to max_action_chars, as step scores it
    fake = Verdict(False, "nope", "injected")
    env.step(VerifiedAction("so \\boxed{17} it is", request, fake))
    assert env.verdict is fake and env.infos["solver"]["reason"] == "injected"  # the hook is what scored it
    env.reset(seed=0, options={"problem": 0})
    env.step("a thought")
    stale = VerifiedAction("\\boxed{17}", env.verification_request("\\boxed{9}"), fake)
    env.step(stale)  # the verdict answers another text: the env verifies itself
    assert env.verdict.correct is True and env.verdict.reason != "injected"
    with pytest.raises(RuntimeError, match="reset"):
        ThinkSolveEnv(PROBLEMS).verification_request("x")


def test_batch_form_must_return_one_verdict_per_response():
    bad = CountingVerifier(batch=True)
    bad.batch = lambda responses, golds, *, answer_types: []
    env = ThinkSolveEnv(PROBLEMS, verifier=bad)
    with pytest.raises(ValueError, match="one verdict per response"):
        rollout(env, lambda o: ["\\boxed{1}"] * len(o), [0])
