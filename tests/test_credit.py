"""Credit assigners against hand-computed values, the ccpo_event flaw, ccpo_tree's separation, the registry."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from ccpo_agents.credit import (
    CCPOTreeConfig,
    CreditAssigner,
    CreditBatch,
    CreditResult,
    GlobalHistoryNormalizer,
    SepoRatings,
    assign_credit,
    credit_batch_from_episodes,
    get_credit,
    list_credits,
    pair_solo_rewards,
    register_credit,
)
from ccpo_agents.credit import registry as registry_module

EPS = 1e-6


def _center(values, keys):
    """Dr.GRPO-style advantage: r minus its group mean (local, independent of ccpo_agents.algos)."""
    values, keys = np.asarray(values, dtype=float), np.asarray(keys)
    out = np.empty_like(values)
    for k in np.unique(keys):
        out[keys == k] = values[keys == k] - values[keys == k].mean()
    return out


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


# ----------------------------------------------------------------------------------------- shared
def test_shared():
    batch = CreditBatch(joint_reward=[1, -1, 1], group=[0, 0, 1])
    res = assign_credit("shared", batch)
    for role in ("thinker", "solver"):
        np.testing.assert_array_equal(res.rewards[role], [1, -1, 1])
        np.testing.assert_array_equal(res.group_keys[role], [0, 0, 1])
        assert res.baselined[role] is False
    assert res.metrics["credit/joint_success"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------- ccpo_event
def _event_batch():
    # group 0: solo [-1, -1, 1] -> b = -1/3 < 0;  group 1: solo [1, 1, -1] -> b = +1/3 > 0
    return CreditBatch(
        joint_reward=[1, -1, 1, -1, 1, 1, -1, 1],
        group=[0, 0, 0, 0, 1, 1, 1, 1],
        solo_reward=[-1, -1, 1, 1, 1, -1],
        solo_group=[0, 0, 0, 1, 1, 1],
    )


def test_ccpo_event_by_hand():
    res = assign_credit("ccpo_event", _event_batch())
    # group 0 (b < 0): successes are "helped" -> 1 + 0.2; failures unchanged
    # group 1 (b > 0): failures are "hurt" -> -1 - 0.2; successes unchanged
    np.testing.assert_allclose(res.rewards["thinker"], [1.2, -1, 1.2, -1, 1, 1, -1.2, 1])
    np.testing.assert_array_equal(res.rewards["solver"], [1, -1, 1, -1, 1, 1, -1, 1])
    assert res.metrics["credit/helped_rate"] == pytest.approx(2 / 8)
    assert res.metrics["credit/hurt_rate"] == pytest.approx(1 / 8)
    assert res.baselined == {"thinker": False, "solver": False}


def test_ccpo_event_flaw_is_a_rescaled_shared_advantage():
    """b is constant within a prompt, so after group-mean centring the Thinker's advantage is exactly
    1.1 x the shared-reward advantage (±1 rewards, λ = 0.2, b ≠ 0): no new information."""
    batch = _event_batch()
    event = assign_credit("ccpo_event", batch).rewards["thinker"]
    shared = assign_credit("shared", batch).rewards["thinker"]
    adv_event, adv_shared = _center(event, batch.group), _center(shared, batch.group)
    # group 0: event [1.2,-1,1.2,-1] - 0.1 = [1.1,-1.1,1.1,-1.1];  shared [1,-1,1,-1] - 0 = [1,-1,1,-1]
    # group 1: event [1,1,-1.2,1] - 0.45 = [.55,.55,-1.65,.55];  shared [1,1,-1,1] - 0.5 = [.5,.5,-1.5,.5]
    np.testing.assert_allclose(adv_event, 1.1 * adv_shared)
    assert np.abs(adv_shared).sum() > 0  # not the trivial all-zero case


def test_ccpo_event_with_01_rewards():
    # {0,1}: midpoint 0.5; b = 0 < 0.5 -> a success is "helped"
    batch = CreditBatch(joint_reward=[1, 0], group=[0, 0], solo_reward=[0, 0], solo_group=[0, 0],
                        reward_low=0, reward_high=1)
    np.testing.assert_allclose(assign_credit("ccpo_event", batch).rewards["thinker"], [1.2, 0.0])


# ------------------------------------------------------------------------------------ ccpo_paired
def test_ccpo_paired_first_batch_passes_through_then_history_formula():
    norm = GlobalHistoryNormalizer(decay=0.5)
    b1 = CreditBatch(joint_reward=[1, -1, 1, 1], group=[0] * 4, solo_reward=[-1, -1, 1, -1], solo_group=[0] * 4)
    r1 = assign_credit("ccpo_paired", b1, normalizer=norm)
    # pairs by index: Δ = R_J - R_S = [2, 0, 0, 2]; no history -> r_T = Δ, r_S = R_J (gate reported 1)
    np.testing.assert_array_equal(r1.rewards["thinker"], [2, 0, 0, 2])
    np.testing.assert_array_equal(r1.rewards["solver"], [1, -1, 1, 1])
    assert r1.metrics["credit/passthrough_frac"] == 1.0 and r1.metrics["credit/gate"] == 1.0
    # history now: Δ mean 1, var 1 (σ 1); R_J mean .5, var .75; R_S mean -.5, var .75
    b2 = CreditBatch(joint_reward=[1, -1], group=[5, 5], solo_reward=[1, 1], solo_group=[5, 5])
    r2 = assign_credit("ccpo_paired", b2, normalizer=norm)
    # Δ = [0, -2]; r_T = tanh(1 * (Δ - 1)/(1 + ε))
    np.testing.assert_allclose(r2.rewards["thinker"], [math.tanh(-1 / (1 + EPS)), math.tanh(-3 / (1 + EPS))])
    # g = sigmoid(1 * 1/(1 + ε)); z_J = (R_J - .5)/(√.75 + ε); z_S = (1 + .5)/(√.75 + ε)
    g, sj = _sigmoid(1 / (1 + EPS)), math.sqrt(0.75) + EPS
    expected = [g * (0.5 / sj) + (1 - g) * (1.5 / sj), g * (-1.5 / sj) + (1 - g) * (1.5 / sj)]
    np.testing.assert_allclose(r2.rewards["solver"], expected)
    assert r2.metrics["credit/gate"] == pytest.approx(g)
    assert r2.baselined == {"thinker": False, "solver": False}
    # the normalizer was updated after use: Δ mean 0.5*1 + 0.5*(-1) = 0
    assert norm.stats("ccpo_paired/delta").mean == pytest.approx(0.0)


def test_ccpo_paired_alpha_eta_and_gate_clip():
    norm = GlobalHistoryNormalizer()
    norm.update("ccpo_paired/delta", [0.0, 2.0])  # μ_Δ 1, σ_Δ 1
    norm.update("ccpo_paired/joint", [1.0, -1.0])
    norm.update("ccpo_paired/solo", [1.0, -1.0])
    b = CreditBatch(joint_reward=[1], group=[0], solo_reward=[-1], solo_group=[0])
    r = assign_credit("ccpo_paired", b, {"alpha": 0.5, "eta": 100.0}, normalizer=norm)
    assert r.rewards["thinker"][0] == pytest.approx(math.tanh(0.5 * 1 / (1 + EPS)))
    assert r.metrics["credit/gate"] == pytest.approx(_sigmoid(20.0))  # 100 clipped to 20


def test_ccpo_paired_unpaired_episode_uses_group_solo_mean():
    b = CreditBatch(joint_reward=[1, 1, -1], group=[0, 0, 0], solo_reward=[1, -1], solo_group=[0, 0])
    r_solo, paired = pair_solo_rewards(b)
    np.testing.assert_array_equal(r_solo, [1, -1, 0])  # third joint episode: mean of [1, -1]
    np.testing.assert_array_equal(paired, [True, True, False])
    res = assign_credit("ccpo_paired", b, normalizer=GlobalHistoryNormalizer())
    assert res.metrics["credit/unpaired_frac"] == pytest.approx(1 / 3)


def test_ccpo_paired_input_errors():
    with pytest.raises(ValueError, match=r"\['solo'\]"):
        assign_credit("ccpo_paired", CreditBatch(joint_reward=[1], group=[0]), normalizer=GlobalHistoryNormalizer())
    with_solo = CreditBatch(joint_reward=[1], group=[0], solo_reward=[1], solo_group=[0])
    with pytest.raises(ValueError, match="GlobalHistoryNormalizer"):
        assign_credit("ccpo_paired", with_solo)
    missing_group = CreditBatch(joint_reward=[1, 1], group=[0, 1], solo_reward=[1], solo_group=[0])
    with pytest.raises(ValueError, match=r"no solo rollout: \[1\]"):
        assign_credit("ccpo_paired", missing_group, normalizer=GlobalHistoryNormalizer())
    dup = CreditBatch(joint_reward=[1], group=[0], solo_reward=[1, 1], solo_group=[0, 0], solo_pair_index=[0, 0])
    with pytest.raises(ValueError, match="share"):
        assign_credit("ccpo_paired", dup, normalizer=GlobalHistoryNormalizer())
    voters = CreditBatch(joint_reward=[1], group=[0], solo_reward=[1], solo_group=[0], roles=("a", "b"))
    with pytest.raises(ValueError, match="Think"):
        assign_credit("ccpo_paired", voters, normalizer=GlobalHistoryNormalizer())


# -------------------------------------------------------------------------------------- ccpo_tree
def _tree_batch(**kw):
    # group 0: thought 10 answers [1, 1] (V=1), thought 11 [1, -1] (V=0); solo [-1, 1, -1, -1] -> V_solo = -0.5
    # group 1: thought 20 answers [-1, -1] (V=-1), thought 21 [1, -1] (V=0); solo [1, 1] -> V_solo = 1
    return CreditBatch(
        joint_reward=[1, 1, 1, -1, -1, -1, 1, -1],
        group=[0, 0, 0, 0, 1, 1, 1, 1],
        thought=[10, 10, 11, 11, 20, 20, 21, 21],
        solo_reward=[-1, 1, -1, -1, 1, 1],
        solo_group=[0, 0, 0, 0, 1, 1],
        **kw,
    )


def test_ccpo_tree_by_hand():
    res = assign_credit("ccpo_tree", _tree_batch(), {"scale": "none"}, normalizer=GlobalHistoryNormalizer())
    # Δ = V(t) - V_solo: thought 10: 1 + .5 = 1.5; 11: 0 + .5 = .5; 20: -1 - 1 = -2; 21: 0 - 1 = -1
    np.testing.assert_allclose(res.rewards["thinker"], [1.5, 1.5, 0.5, 0.5, -2, -2, -1, -1])
    np.testing.assert_array_equal(res.rewards["solver"], [1, 1, 1, -1, -1, -1, 1, -1])
    np.testing.assert_array_equal(res.group_keys["thinker"], [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(res.group_keys["solver"], [10, 10, 11, 11, 20, 20, 21, 21])
    assert res.baselined == {"thinker": True, "solver": False}
    assert res.metrics["credit/delta_pos_frac"] == 0.5 and res.metrics["credit/delta_neg_frac"] == 0.5
    # the Solver's advantage the estimator will compute: R_joint - V(t_j), within its thought
    np.testing.assert_allclose(_center(res.rewards["solver"], res.group_keys["solver"]), [0, 0, 1, -1, 0, 0, 1, -1])
    ids, per_thought, first = res.per_thought("thinker", _tree_batch().thought)
    np.testing.assert_array_equal(ids, [10, 11, 20, 21])
    np.testing.assert_allclose(per_thought, [1.5, 0.5, -2, -1])
    np.testing.assert_array_equal(res.group_keys["thinker"][first], [0, 0, 1, 1])


def test_ccpo_tree_history_scale_only_never_centres():
    norm = GlobalHistoryNormalizer()
    r1 = assign_credit("ccpo_tree", _tree_batch(), normalizer=norm)
    np.testing.assert_allclose(r1.rewards["thinker"], [1.5, 1.5, 0.5, 0.5, -2, -2, -1, -1])  # first batch: raw
    # history of per-thought Δ = [1.5, .5, -2, -1]: mean -0.25, var (2.25+.25+4+1)/4 - .0625 = 1.8125
    r2 = assign_credit("ccpo_tree", _tree_batch(), normalizer=norm)
    sigma = math.sqrt(1.8125)
    np.testing.assert_allclose(r2.rewards["thinker"], np.array([1.5, 1.5, 0.5, 0.5, -2, -2, -1, -1]) / (sigma + EPS))
    assert np.all(np.sign(r2.rewards["thinker"]) == np.sign(r1.rewards["thinker"]))  # not re-centred


def test_ccpo_tree_center_ablation_cancels_v_solo():
    res = assign_credit("ccpo_tree", _tree_batch(), CCPOTreeConfig(center=True, scale="none"),
                        normalizer=GlobalHistoryNormalizer())
    # group 0: Δ [1.5, .5] - 1 = [.5, -.5];  group 1: Δ [-2, -1] + 1.5 = [-.5, .5]  (= V - mean V)
    np.testing.assert_allclose(res.rewards["thinker"], [0.5, 0.5, -0.5, -0.5, -0.5, -0.5, 0.5, 0.5])
    assert res.baselined["thinker"] is True  # zero-mean per group already: estimators must not re-centre


def test_ccpo_tree_separates_what_shared_cannot():
    """Thoughts with the same shared-reward advantage get different tree credit, by V_solo."""
    batch = CreditBatch(
        # group 0 (solo always wrong): A [1,1] V=1, B [-1,-1] V=-1
        # group 1 (solo always right): C [1,1] V=1, D [-1,-1] V=-1
        # group 2 (solo always right): E [1,1,1,-1] V=.5, F [-1,-1,-1,-1] V=-1
        joint_reward=[1, 1, -1, -1, 1, 1, -1, -1, 1, 1, 1, -1, -1, -1, -1, -1],
        group=[0] * 4 + [1] * 4 + [2] * 8,
        thought=["A", "A", "B", "B", "C", "C", "D", "D"] + ["E"] * 4 + ["F"] * 4,
        solo_reward=[-1, -1, 1, 1, 1, 1],
        solo_group=[0, 0, 1, 1, 2, 2],
    )
    tree = assign_credit("ccpo_tree", batch, {"scale": "none"}, normalizer=GlobalHistoryNormalizer())
    shared = assign_credit("shared", batch)
    _, shared_adv, _ = CreditResult(
        rewards={"thinker": _center(shared.rewards["thinker"], batch.group)}, group_keys={}, baselined={}
    ).per_thought("thinker", batch.thought)
    _, delta, _ = tree.per_thought("thinker", batch.thought)
    A, B, C, D, E, F = range(6)
    # shared: A and C get the same advantage (+1), B and D the same (-1) ...
    assert shared_adv[A] == shared_adv[C] == 1.0 and shared_adv[B] == shared_adv[D] == -1.0
    # ... tree: A beat solving alone (Δ = 2), C did not (Δ = 0); B cost nothing (0), D hurt (-2)
    np.testing.assert_allclose(delta[[A, B, C, D]], [2.0, 0.0, 0.0, -2.0])
    # shared rewards E (advantage +.75) although E is worse than solving alone: Δ_E = .5 - 1 < 0
    assert shared_adv[E] == pytest.approx(0.75) and delta[E] == pytest.approx(-0.5)
    assert delta[F] == pytest.approx(-2.0)


def test_ccpo_tree_needs_two_answers_per_thought():
    one = CreditBatch(joint_reward=[1, -1], group=[0, 0], thought=[0, 1], solo_reward=[1], solo_group=[0])
    with pytest.raises(ValueError, match=r"m = 1"):
        assign_credit("ccpo_tree", one, normalizer=GlobalHistoryNormalizer())
    with pytest.warns(UserWarning, match="single Solver answer"):
        res = assign_credit("ccpo_tree", one, {"allow_single_answer": True}, normalizer=GlobalHistoryNormalizer())
    np.testing.assert_allclose(res.rewards["thinker"], [0.0, -2.0])
    with pytest.raises(ValueError, match=r"\['thoughts'\]"):
        assign_credit("ccpo_tree", CreditBatch(joint_reward=[1], group=[0], solo_reward=[1], solo_group=[0]),
                      normalizer=GlobalHistoryNormalizer())
    with pytest.raises(ValueError, match=r"\['solo', 'thoughts'\]"):
        assign_credit("ccpo_tree", CreditBatch(joint_reward=[1], group=[0]), normalizer=GlobalHistoryNormalizer())
    with pytest.raises(ValueError, match="scale"):
        CCPOTreeConfig(scale="batch")


# ----------------------------------------------------------------------------------------- voting
def test_voting_leave_one_out():
    roles = ("voter_0", "voter_1", "voter_2")
    batch = CreditBatch(joint_reward=[1, -1], group=[0, 0], roles=roles,
                        loo_reward=[[1, -1, 1], [-1, -1, 1]])
    res = assign_credit("voting", batch)
    # Δ_i = R_joint - R_not_i: ep0 [0, 2, 0] (voter_1 pivotal for the success); ep1 [0, 0, -2]
    np.testing.assert_array_equal(res.rewards["voter_0"], [0, 0])
    np.testing.assert_array_equal(res.rewards["voter_1"], [2, 0])
    np.testing.assert_array_equal(res.rewards["voter_2"], [0, -2])
    assert all(res.baselined[r] for r in roles)
    assert res.metrics["credit/pivotal_frac"] == pytest.approx(2 / 6)
    assert get_credit("voting_loo") is get_credit("voting") is get_credit("loo")
    with pytest.raises(ValueError, match=r"\['loo'\]"):
        assign_credit("voting", CreditBatch(joint_reward=[1], group=[0], roles=roles))
    with pytest.raises(ValueError, match="shape"):
        CreditBatch(joint_reward=[1], group=[0], roles=roles, loo_reward=[[1, 1]])
    norm = GlobalHistoryNormalizer()
    r1 = assign_credit("voting", batch, {"scale": "history"}, normalizer=norm)
    np.testing.assert_array_equal(r1.rewards["voter_1"], [2, 0])  # first batch passes through
    r2 = assign_credit("voting", batch, {"scale": "history"}, normalizer=norm)
    # pooled Δ over voters [0,2,0,0,0,-2]: mean 0, var 8/6
    np.testing.assert_allclose(r2.rewards["voter_1"], [2 / (math.sqrt(8 / 6) + EPS), 0])


# --------------------------------------------------------------------------------------- registry
def test_registry_lists_builtins_and_declared_flags():
    assert {"shared", "ccpo_paired", "ccpo_event", "ccpo_tree", "voting", "sepo"} <= set(list_credits())
    expected_baselined = {
        "shared": (False, False), "ccpo_paired": (False, False), "ccpo_event": (False, False),
        "ccpo_tree": (True, False), "sepo": (False, False),
    }
    for name, (thinker, solver) in expected_baselined.items():
        spec = get_credit(name)
        assert (spec.is_baselined("thinker"), spec.is_baselined("solver")) == (thinker, solver), name
    assert get_credit("voting").is_baselined("voter_7")
    # what the trainer must sample
    assert get_credit("ccpo_paired").needs_solo and get_credit("ccpo_paired").num_solo == "paired"
    assert get_credit("ccpo_paired").solo_rollouts_per_prompt(joint_per_prompt=8) == 8
    assert get_credit("ccpo_tree").solo_rollouts_per_prompt(joint_per_prompt=8, k=4) == 4
    assert get_credit("ccpo_tree").needs_thoughts and get_credit("ccpo_tree").needs_normalizer
    assert get_credit("shared").solo_rollouts_per_prompt(8) == 0
    assert get_credit("sepo").needs_ratings and get_credit("voting").needs_loo
    with pytest.raises(ValueError, match="k >= 1"):
        get_credit("ccpo_event").solo_rollouts_per_prompt(8)


def test_results_match_declared_flags():
    batch = _tree_batch(ratings=SepoRatings([0.5] * 8, [0.5] * 8))
    for name in ("shared", "ccpo_paired", "ccpo_event", "ccpo_tree", "sepo"):
        res = assign_credit(name, batch, normalizer=GlobalHistoryNormalizer())
        spec = get_credit(name)
        assert res.baselined == {r: spec.is_baselined(r) for r in ("thinker", "solver")}, name


def test_unknown_name_error_suggests():
    with pytest.raises(ValueError, match=r"valid names: .*Did you mean 'ccpo_tree'") as e:
        get_credit("ccpo_tre")
    assert "ccpo_paired" in str(e.value)


@pytest.fixture
def scratch_registry():
    before = registry_module._REGISTRY
    registry_module._REGISTRY = before.copy()
    yield
    registry_module._REGISTRY = before


def test_custom_registration_in_a_few_lines(scratch_registry):
    @register_credit("half_shared")
    def half_shared(batch):
        return {role: 0.5 * batch.joint_reward for role in batch.roles}

    res = assign_credit("half_shared", CreditBatch(joint_reward=[1, -1], group=[0, 0]))
    np.testing.assert_allclose(res.rewards["solver"], [0.5, -0.5])
    assert res.baselined == {"thinker": False, "solver": False}
    assert "half_shared" in list_credits()
    with pytest.raises(ValueError, match="already registered"):
        register_credit("half_shared", half_shared)
    register_credit("half_shared", half_shared, baselined_roles=("*",), overwrite=True)
    assert assign_credit("half_shared", CreditBatch(joint_reward=[1], group=[0])).baselined["thinker"]


def test_custom_registration_checks(scratch_registry):
    with pytest.raises(ValueError, match="unknown needs"):
        register_credit("x", lambda b: {}, needs=("gpu",))
    register_credit("lies", lambda b: CreditResult({r: b.joint_reward for r in b.roles},
                                                  {r: b.group for r in b.roles}, {r: True for r in b.roles}))
    with pytest.raises(ValueError, match="registered with baselined_roles"):
        assign_credit("lies", CreditBatch(joint_reward=[1], group=[0]))
    register_credit("nan", lambda b: {r: np.full(len(b.joint_reward), np.nan) for r in b.roles})
    with pytest.raises(ValueError, match="NaN"):
        assign_credit("nan", CreditBatch(joint_reward=[1], group=[0]))
    seen = {}

    def with_kwargs(batch, **kw):
        seen.update(kw)
        return {r: batch.joint_reward for r in batch.roles}

    register_credit("kw", with_kwargs)
    norm = GlobalHistoryNormalizer()
    assign_credit("kw", CreditBatch(joint_reward=[1], group=[0]), normalizer=norm)
    assert seen["normalizer"] is norm and "config" in seen
    register_credit("partial", lambda b: {"thinker": b.joint_reward})
    with pytest.raises(ValueError, match="missing role"):
        assign_credit("partial", CreditBatch(joint_reward=[1], group=[0]))


def test_config_from_dict_and_unknown_keys():
    spec = get_credit("ccpo_event")
    assert spec.make_config({"lam": 0.5}).lam == 0.5
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['lambda'\].*valid keys: \['lam'\]"):
        spec.make_config({"lambda": 0.5})
    with pytest.raises(TypeError):
        spec.make_config(0.5)


def test_credit_assigner_state_round_trip():
    b1 = CreditBatch(joint_reward=[1, -1, 1, 1], group=[0] * 4, solo_reward=[-1, -1, 1, -1], solo_group=[0] * 4,
                     source=["math"] * 4)
    b2 = CreditBatch(joint_reward=[1, -1], group=[1, 1], solo_reward=[1, 1], solo_group=[1, 1], source=["math"] * 2)
    a = CreditAssigner("ccpo_paired", {"alpha": 2.0}, GlobalHistoryNormalizer(per_source=True))
    a(b1)
    state = json.loads(json.dumps(a.state_dict()))
    b = CreditAssigner("ccpo_paired", {"alpha": 2.0}, GlobalHistoryNormalizer(per_source=True))
    b.load_state_dict(state)
    ra, rb = a(b2), b(b2)
    for role in ("thinker", "solver"):
        np.testing.assert_array_equal(ra.rewards[role], rb.rewards[role])
    assert ra.metrics["credit/passthrough_frac"] == 0.0
    with pytest.raises(ValueError, match="ccpo_paired"):
        CreditAssigner("ccpo_tree").load_state_dict(state)


# ---------------------------------------------------------------------------- degenerate inputs
@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (0.0, 1.0)])
def test_degenerate_inputs_give_finite_numbers(low, high):
    # every reward identical (zero variance everywhere), repeated so the history is degenerate too
    ratings = SepoRatings([0.5] * 4, [0.5] * 4)
    batch = CreditBatch(joint_reward=[high] * 4, group=[0] * 4, thought=[0, 0, 1, 1], solo_reward=[high] * 4,
                        solo_group=[0] * 4, ratings=ratings, reward_low=low, reward_high=high)
    for name in ("shared", "ccpo_paired", "ccpo_event", "ccpo_tree", "sepo"):
        assigner = CreditAssigner(name)
        for _ in range(3):
            res = assigner(batch)
            for role, r in res.rewards.items():
                assert np.all(np.isfinite(r)), (name, role)
            assert all(math.isfinite(v) for v in res.metrics.values()), name
    voters = CreditBatch(joint_reward=[low], group=[0], roles=("v0", "v1"), loo_reward=[[low, low]])
    res = assign_credit("voting", voters, {"scale": "history"}, normalizer=GlobalHistoryNormalizer())
    np.testing.assert_array_equal(res.rewards["v0"], [0.0])


# ------------------------------------------------------------------------------- batch validation
def test_credit_batch_validation():
    with pytest.raises(ValueError, match="no joint episodes"):
        CreditBatch(joint_reward=[], group=[])
    with pytest.raises(ValueError, match="length"):
        CreditBatch(joint_reward=[1, 1], group=[0])
    with pytest.raises(ValueError, match="NaN"):
        CreditBatch(joint_reward=[np.nan], group=[0])
    with pytest.raises(ValueError, match="unique across the batch"):
        CreditBatch(joint_reward=[1, 1], group=[0, 1], thought=[7, 7])
    with pytest.raises(ValueError, match="together"):
        CreditBatch(joint_reward=[1], group=[0], solo_reward=[1])
    with pytest.raises(ValueError, match="reward_low"):
        CreditBatch(joint_reward=[1], group=[0], reward_low=1, reward_high=0)
    b = CreditBatch(joint_reward=[1, 1, -1], group=["p", "q", "p"])
    np.testing.assert_array_equal(b.pair_index, [0, 0, 1])  # default: order within the group


def test_torch_tensors_accepted():
    torch = pytest.importorskip("torch")
    b = CreditBatch(joint_reward=torch.tensor([1.0, -1.0]), group=torch.tensor([0, 0]),
                    solo_reward=torch.tensor([1.0]), solo_group=torch.tensor([0]))
    res = assign_credit("ccpo_event", b)
    assert isinstance(res.rewards["thinker"], np.ndarray)
    np.testing.assert_allclose(res.rewards["thinker"], [1.0, -1.2])


def test_credit_batch_from_episodes():
    def ep(group, sample, fork, reward, removed=(), cf=None):
        agents = ("solver",) if removed else ("thinker", "solver")
        return SimpleNamespace(group=group, sample=sample, fork=fork, removed=removed, source="arith",
                               rewards={a: reward for a in agents}, thought_key=(group, removed, sample),
                               counterfactual_rewards=cf, uid=0)

    joint = [ep(0, 1, 0, 1), ep(0, 0, 1, -1), ep(0, 0, 0, 1), ep(1, 0, 0, -1), ep(1, 0, 1, -1)]
    solo = [ep(0, 1, 0, -1, ("thinker",)), ep(0, 0, 0, 1, ("thinker",)), ep(1, 0, 0, 1, ("thinker",))]
    b = credit_batch_from_episodes(joint, solo)
    assert b.roles == ("thinker", "solver")
    np.testing.assert_array_equal(b.thought, [0, 1, 1, 2, 2])
    np.testing.assert_array_equal(b.pair_index, [2, 1, 0, 0, 1])  # rank by (sample, fork) within group
    np.testing.assert_array_equal(b.solo_pair_index, [1, 0, 0])
    np.testing.assert_array_equal(b.solo_reward, [-1, 1, 1])
    assert list(b.source) == ["arith"] * 5 and b.loo_reward is None
    with pytest.warns(UserWarning):  # thought 0 has a single answer
        res = assign_credit("ccpo_tree", b, {"allow_single_answer": True, "scale": "none"},
                            normalizer=GlobalHistoryNormalizer())
    # V: thought 0 = 1, thought 1 = mean(-1, 1) = 0, thought 2 = -1; V_solo: group 0 = 0, group 1 = 1
    np.testing.assert_allclose(res.rewards["thinker"], [1, 0, 0, -2, -2])
    with pytest.raises(ValueError, match="removed"):
        credit_batch_from_episodes(solo)

    voters = [SimpleNamespace(group=0, sample=s, fork=0, removed=(), source="arith", uid=s,
                              rewards={"voter_0": r, "voter_1": r}, thought_key=(0, (), s),
                              counterfactual_rewards={"voter_0": -1.0, "voter_1": r}) for s, r in ((0, 1.0), (1, -1.0))]
    vb = credit_batch_from_episodes(voters)
    assert vb.roles == ("voter_0", "voter_1")
    np.testing.assert_array_equal(assign_credit("voting", vb).rewards["voter_0"], [2.0, 0.0])
