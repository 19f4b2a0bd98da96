"""ThinkSolveEnv / VotingEnv: the AEC contract, spaces, rewards, infos and counterfactual hooks."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from pettingzoo.test import api_test

from ccpo_env import Problem, PromptTemplates, TextObservation, ThinkSolveEnv, VotingEnv, text_space

PROBLEMS = [
    Problem(id="p0", problem="What is 2+3?", answer="5", source="toy"),
    Problem(id="p1", problem="What is 1/2 as a decimal?", answer="\\frac{1}{2}", source="toy"),
    Problem(id="p2", problem="Is the sky blue?", answer="True", source="toy", answer_type="label"),
]


def play(env, actions: dict[str, str]) -> None:
    for agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else actions[agent])


# ----------------------------------------------------------------------------- api_test
@pytest.mark.parametrize(
    "make",
    [
        lambda: ThinkSolveEnv(PROBLEMS, max_action_chars=64),
        lambda: ThinkSolveEnv(dataset="arith", max_action_chars=64),
        lambda: VotingEnv(PROBLEMS, num_voters=3, max_action_chars=64),
        lambda: VotingEnv(PROBLEMS, num_voters=4, visible_votes=True, tie_break="random", max_action_chars=64),
    ],
    ids=["think_solve", "think_solve_arith", "voting", "voting_visible_random"],
)
def test_pettingzoo_api_test_passes(make):
    env = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # api_test warns that text is not a numpy array; errors still raise
        api_test(env, num_cycles=60)


def test_spaces_stable_per_env_shared_by_agents_never_across_envs_and_printable():
    env = ThinkSolveEnv(PROBLEMS)
    env2 = ThinkSolveEnv(PROBLEMS)
    for agent in env.possible_agents:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) is env.action_space(agent)
    # one object for all agents of an env (tianshou's PettingZooEnv), a different one in another env
    assert env.observation_space("thinker") is env.observation_space("solver")
    assert env.action_space("thinker") is env.action_space("solver")
    assert env.observation_space("thinker") is not env2.observation_space("thinker")
    assert env.action_space("thinker") is not env2.action_space("thinker")
    assert env.action_space("thinker") is not env.observation_space("thinker")
    space = env.observation_space("thinker")
    assert space == env2.observation_space("thinker") == text_space(env.max_observation_chars)
    assert text_space(env.max_observation_chars) is not text_space(env.max_observation_chars)
    assert {"a", "Z", "0", " ", "\n", "\\", "{", "’", "−"} <= set(space.character_set)
    assert "\x00" not in space.character_set
    with pytest.raises(ValueError, match="min_length"):
        text_space(3, 5)


def test_observation_is_a_str_with_the_space_dtype():
    env = ThinkSolveEnv(PROBLEMS)
    env.reset(seed=0, options={"problem": 0})
    obs, *_ = env.last()
    assert isinstance(obs, str) and isinstance(obs, TextObservation)
    assert obs.dtype == env.observation_space("thinker").dtype
    assert env.observation_space("thinker").contains(obs)


# ----------------------------------------------------------------------------- ThinkSolve
def test_think_solve_flow_rewards_and_infos():
    env = ThinkSolveEnv(PROBLEMS)
    env.reset(seed=1, options={"problem": "p0"})
    assert env.agents == ["thinker", "solver"] and env.agent_selection == "thinker"
    obs, *_ = env.last()
    assert "What is 2+3?" in obs and "\\boxed{}" in obs
    assert "gold" not in env.infos["thinker"] and "gold" not in env.infos["solver"]
    env.step("add them: 2+3 gives five \\boxed{5}")
    assert env.infos["thinker"]["boxed_stripped"] is True
    assert env.thought == "add them: 2+3 gives five"
    obs, *_ = env.last()
    assert env.agent_selection == "solver"
    assert "add them: 2+3 gives five" in obs and "\\boxed{5}" not in obs
    assert "gold" not in env.infos["solver"]
    env.step("so the answer is \\boxed{5}")
    for agent in ("thinker", "solver"):
        assert env.terminations[agent]
        info = env.infos[agent]
        assert info["correct"] is True and info["pred"] == "5" and info["gold"] == "5" and info["reason"]
    rewards = {}
    for agent in env.agent_iter():
        _, reward, term, trunc, _ = env.last()
        assert term
        rewards[agent] = reward
        env.step(None)
    assert rewards == {"thinker": 1.0, "solver": 1.0}
    assert env.agents == []


@pytest.mark.parametrize(
    ("extraction", "prose_pays", "anchor_pays"),
    [("anchored", False, True), ("lenient", True, True), ("boxed", False, False)],
)
def test_reward_extraction_mode(extraction, prose_pays, anchor_pays):
    """Rewards default to anchored extraction: prose conclusions are not read unless asked for."""
    default = ThinkSolveEnv(PROBLEMS)
    assert default.extraction == "anchored"
    for text, pays in (("Adding the two numbers gives 5.", prose_pays), ("The answer is 5", anchor_pays)):
        env = ThinkSolveEnv(PROBLEMS, extraction=extraction)
        env.reset(seed=0, options={"problem": "p0"})
        env.step("add")
        env.step(text)
        assert env.infos["solver"]["correct"] is pays, (extraction, text)
        # the batched path used by the rollout driver agrees with step()
        env.reset(seed=0, options={"problem": "p0"})
        env.step("add")
        (verdict,) = env.verify_requests([env.verification_request(text)])
        assert verdict.correct is pays
    # a counterfactual branch keeps the mode
    env = ThinkSolveEnv(PROBLEMS, extraction="lenient")
    env.reset(seed=0, options={"problem": "p0"})
    assert env.counterfactual(remove=["thinker"]).extraction == "lenient"
    with pytest.raises(ValueError, match="unknown extraction mode 'loose'; valid: boxed, anchored, lenient"):
        ThinkSolveEnv(PROBLEMS, extraction="loose")


@pytest.mark.parametrize("low", [-1.0, 0.0])
def test_think_solve_wrong_answer_reward_values(low):
    env = ThinkSolveEnv(PROBLEMS, reward_incorrect=low)
    env.reset(seed=0, options={"problem": 0})
    env.step("think")
    env.step("\\boxed{6}")
    assert env.rewards == {"thinker": low, "solver": low}
    assert env.infos["solver"]["correct"] is False


def test_label_answers_and_long_actions_truncated():
    env = ThinkSolveEnv(PROBLEMS, max_action_chars=30)
    env.reset(seed=0, options={"problem": "p2"})
    env.step("x" * 100)
    assert env.infos["thinker"]["action_truncated"] is True and len(env.thought) == 30
    env.step("The answer is \\boxed{True}")
    assert env.infos["solver"]["action_truncated"] is False
    assert env.rewards["solver"] == 1.0


def test_counterfactual_reset_option_gives_solo_prompt():
    env = ThinkSolveEnv(PROBLEMS)
    env.reset(seed=0, options={"problem": 1, "remove": ["thinker"]})
    assert env.agents == ["solver"] and env.agent_selection == "solver"
    obs, *_ = env.last()
    assert obs == env.templates.render("solver_solo", problem=PROBLEMS[1].problem)
    env.step("\\boxed{0.5}")
    assert env.rewards == {"solver": 1.0}
    assert env.infos["solver"]["removed"] == ["thinker"]


def test_counterfactual_branch_same_problem_fresh_env():
    env = ThinkSolveEnv(PROBLEMS, seed=3)
    env.reset()
    env.step("a thought")
    branch = env.counterfactual(remove=["thinker"])
    assert branch is not env and branch.dataset is env.dataset
    assert branch.problem_index == env.problem_index and branch.agents == ["solver"]
    assert env.agent_selection == "solver" and env.thought == "a thought"  # the original is untouched
    other = env.counterfactual(remove=["thinker"])
    assert other.problem_index == env.problem_index
    full = env.counterfactual(remove=[])
    assert full.agents == ["thinker", "solver"] and full.thought is None


def test_bad_reset_options_raise_and_keep_state():
    env = ThinkSolveEnv(PROBLEMS)
    env.reset(seed=0, options={"problem": 0})
    env.step("a thought")
    with pytest.raises(ValueError, match="every agent"):
        env.reset(options={"remove": ["thinker", "solver"]})
    with pytest.raises(ValueError, match="cannot be removed"):
        env.reset(options={"remove": ["solver"]})
    with pytest.raises(ValueError, match="unknown agent"):
        env.reset(options={"remove": ["critic"]})
    with pytest.raises(KeyError, match="nope"):
        env.reset(options={"problem": "nope"})
    with pytest.raises(IndexError):
        env.reset(options={"problem": 99})
    assert env.agent_selection == "solver" and env.thought == "a thought"
    with pytest.warns(UserWarning, match="unknown option"):
        env.reset(seed=0, options={"problme": 1})
    with pytest.raises(RuntimeError, match="reset"):
        ThinkSolveEnv(PROBLEMS).counterfactual(remove=["thinker"])


def test_bad_actions_raise_without_changing_state():
    env = ThinkSolveEnv(PROBLEMS)
    env.reset(seed=0, options={"problem": 0})
    with pytest.raises(TypeError, match="str"):
        env.step(42)
    with pytest.raises(ValueError, match="None"):
        env.step(None)
    assert env.agent_selection == "thinker" and env.thought is None
    env.step("ok")
    assert env.agent_selection == "solver"


def test_constructor_validation():
    with pytest.raises(ValueError, match="render_mode"):
        ThinkSolveEnv(PROBLEMS, render_mode="rgb_array")
    with pytest.raises(ValueError, match="reward_correct"):
        ThinkSolveEnv(PROBLEMS, reward_correct=0.0, reward_incorrect=0.0)
    with pytest.raises(ValueError, match="num_voters"):
        VotingEnv(PROBLEMS, num_voters=0)
    with pytest.raises(ValueError, match="tie_break"):
        VotingEnv(PROBLEMS, tie_break="coin")
    with pytest.raises(ValueError, match="placeholder"):
        ThinkSolveEnv(PROBLEMS, templates=PromptTemplates(thinker="{problem} {answer}"))


def test_seeded_problem_choice_and_subset():
    a = ThinkSolveEnv(dataset="arith", seed=7)
    b = ThinkSolveEnv(dataset="arith", seed=7)
    seq_a, seq_b = [], []
    for _ in range(5):
        a.reset()
        b.reset()
        seq_a.append(a.problem.id)
        seq_b.append(b.problem.id)
    assert seq_a == seq_b and len(set(seq_a)) > 1
    env = ThinkSolveEnv(PROBLEMS, problems=["p1", 2])
    seen = set()
    for s in range(20):
        env.reset(seed=s)
        seen.add(env.problem.id)
    assert seen == {"p1", "p2"}


def test_custom_templates_are_used():
    templates = PromptTemplates(thinker="T> {problem}", solver_joint="S> {problem} | {thought}", solver_solo="SOLO> {problem}")
    env = ThinkSolveEnv(PROBLEMS, templates=templates)
    env.reset(seed=0, options={"problem": 0})
    assert env.observe("thinker") == "T> What is 2+3?"
    env.step("hint")
    assert env.observe("solver") == "S> What is 2+3? | hint"
    assert env.counterfactual(remove=["thinker"]).observe("solver") == "SOLO> What is 2+3?"


def test_render_and_close(capsys):
    env = ThinkSolveEnv(PROBLEMS, render_mode="ansi")
    env.reset(seed=0, options={"problem": 0})
    play(env, {"thinker": "sum", "solver": "\\boxed{5}"})
    text = env.render()
    assert "What is 2+3?" in text and "thinker" in text and "correct" in text
    human = ThinkSolveEnv(PROBLEMS, render_mode="human")
    human.reset(seed=0, options={"problem": 0})
    assert human.render() is None and "What is 2+3?" in capsys.readouterr().out
    env.close()
    with pytest.warns(UserWarning, match="render_mode"):
        ThinkSolveEnv(PROBLEMS).render()


# ----------------------------------------------------------------------------- Voting
def vote(env, answers: list[str]) -> None:
    it = iter(answers)
    for _agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else next(it))


def test_voting_plurality_over_equivalence_classes():
    env = VotingEnv(PROBLEMS, num_voters=3)
    env.reset(seed=0, options={"problem": 1})  # gold 1/2
    assert env.agents == ["voter_0", "voter_1", "voter_2"]
    env.step("\\boxed{0.5}")
    env.step("\\boxed{\\frac{1}{2}}")
    env.step("\\boxed{2}")
    assert env.tally.classes[0][1] == 2 and env.tally.classes[0][2] is True
    assert all(env.rewards[a] == 1.0 for a in env.agents)
    assert env.counterfactual_rewards() == {"voter_0": 0.0, "voter_1": 0.0, "voter_2": 1.0}


def test_voting_ties_expected_and_random():
    env = VotingEnv(PROBLEMS, num_voters=2)
    env.reset(seed=0, options={"problem": 0})
    vote(env, ["\\boxed{5}", "\\boxed{4}"])
    assert env.tally.reward == 0.0 and env.tally.winner is None and env.tally.tied == (0, 1)

    draws = set()
    for s in range(12):
        r = VotingEnv(PROBLEMS, num_voters=2, tie_break="random")
        r.reset(seed=s, options={"problem": 0})
        r.step("\\boxed{5}")
        r.step("\\boxed{4}")
        again = VotingEnv(PROBLEMS, num_voters=2, tie_break="random")
        again.reset(seed=s, options={"problem": 0})
        again.step("\\boxed{5}")
        again.step("\\boxed{4}")
        assert again.tally.reward == r.tally.reward  # same seed, same draw
        draws.add(r.tally.reward)
    assert draws == {1.0, -1.0}


def test_voting_abstentions_and_removed_voters():
    env = VotingEnv(PROBLEMS, num_voters=3)
    env.reset(seed=0, options={"problem": 0, "remove": ["voter_1"]})
    assert env.agents == ["voter_0", "voter_2"]
    vote(env, ["no idea", "\\boxed{5}"])
    assert env.tally.reward == 1.0
    assert env.counterfactual_rewards() == {"voter_0": 1.0, "voter_2": -1.0}
    env.reset(seed=0, options={"problem": 0})
    env.step("hmm")
    env.step("")
    env.step("?")
    assert env.tally.reward == -1.0 and env.tally.classes == ()
    with pytest.raises(RuntimeError, match="finished"):
        VotingEnv(PROBLEMS).counterfactual_rewards()


def test_visible_votes_show_earlier_answers():
    env = VotingEnv(PROBLEMS, num_voters=3, visible_votes=True)
    env.reset(seed=0, options={"problem": 0})
    assert "(none yet)" in env.observe("voter_0")
    env.step("I think \\boxed{7}")
    obs = env.observe("voter_1")
    assert "voter_0: 7" in obs
    hidden = VotingEnv(PROBLEMS, num_voters=3)
    hidden.reset(seed=0, options={"problem": 0})
    hidden.step("\\boxed{7}")
    assert "7" not in hidden.observe("voter_1").replace("What is 2+3?", "")


def test_voting_counterfactual_branch():
    env = VotingEnv(PROBLEMS, num_voters=3, visible_votes=True)
    env.reset(seed=0, options={"problem": 2})
    branch = env.counterfactual(remove=["voter_0"])
    assert branch.agents == ["voter_1", "voter_2"] and branch.visible_votes and branch.problem.id == "p2"


# ----------------------------------------------------------------------------- packaging
def test_ccpo_env_never_imports_torch():
    code = (
        "import sys, ccpo_env, ccpo_env.rollout, ccpo_env.verify, ccpo_env.data\n"
        "env = ccpo_env.ThinkSolveEnv(dataset='arith'); env.reset(seed=0)\n"
        "env.step('x'); env.step('\\\\boxed{1}')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ccpo_agents', 'transformers'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tianshou_pettingzoo_wrapper_accepts_env():
    pytest.importorskip("tianshou")
    from tianshou.env import PettingZooEnv

    wrapped = PettingZooEnv(ThinkSolveEnv(PROBLEMS))
    obs, info = wrapped.reset(seed=0)
    assert obs["agent_id"] == "thinker" and "What is" in obs["obs"]
    obs, rew, term, trunc, info = wrapped.step("a plan")
    assert obs["agent_id"] == "solver"
    obs, rew, term, trunc, info = wrapped.step("\\boxed{5}")
    assert term


def test_space_repr_is_short_and_transcript_is_sanitised():
    env = ThinkSolveEnv(PROBLEMS, render_mode="ansi")
    assert len(repr(env.observation_space("thinker"))) < 100
    env.reset(seed=0, options={"problem": 0})
    env.step("evil \x1b[2J escape")
    env.step("\\boxed{5}")
    text = env.render()
    assert "\x1b" not in text and "\ufffd[2J" in text


@pytest.mark.skipif(not __import__("os").environ.get("CCPO_DATA_DIR"), reason="needs CCPO_DATA_DIR")
@pytest.mark.parametrize("name", ["math500", "folio"])
def test_real_benchmarks_through_ccpo_data_dir(name):
    env = ThinkSolveEnv(dataset=name)
    assert len(env.dataset) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api_test(env, num_cycles=20)
    env.reset(seed=0, options={"problem": 0})
    env.step("plan")
    env.step(f"\\boxed{{{env.problem.answer}}}")
    assert env.rewards["solver"] == 1.0 and env.infos["solver"]["gold"] == env.problem.answer
