"""Advantage estimators vs hand-computed values (ccpo_agents.algos.advantages)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ccpo_agents.algos import (
    EstimatorConfig,
    UnknownNameError,
    compute_advantages,
    estimate_advantages,
    get_estimator,
    group_index,
    list_estimators,
    register_estimator,
)
from ccpo_agents.algos.advantages import ESTIMATORS

GROUP_ESTIMATORS = ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"]

# A small interleaved batch with tuple keys (prompt, thought), 4 groups:
#   A = ("p0", "t0"): rewards 1, 0, 0   (positions 0, 2, 5)
#   B = ("p0", "t1"): rewards 2, 4      (positions 1, 4)
#   C = ("p1", "t0"): rewards 1, 1      (positions 3, 7)  -> zero variance
#   D = ("p2", "t0"): reward  5         (position 6)      -> singleton
A, B, C, D = ("p0", "t0"), ("p0", "t1"), ("p1", "t0"), ("p2", "t0")
KEYS = [A, B, A, C, B, A, D, C]
R = torch.tensor([1.0, 2.0, 0.0, 1.0, 4.0, 0.0, 5.0, 1.0])
EPS = 1e-6

# Group A: mean 1/3; unbiased var = ((2/3)² + 2·(1/3)²) / 2 = (4/9 + 2/9) / 2 = 1/3; std = 1/√3.
STD_A = 1 / math.sqrt(3)
# Group B: mean 3; unbiased var = (1 + 1) / 1 = 2; std = √2.
STD_B = math.sqrt(2)


def close(actual: torch.Tensor, expected: list[float], atol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


def test_grpo_hand_computed():
    adv = compute_advantages("grpo", R, KEYS)
    a_hi, a_lo = (2 / 3) / (STD_A + EPS), (-1 / 3) / (STD_A + EPS)  # ≈ 1.1547, −0.5774
    b = 1 / (STD_B + EPS)  # (4 − 3)/√2 ≈ 0.7071
    close(adv, [a_hi, -b, a_lo, 0.0, b, a_lo, 0.0, 0.0])
    assert adv.dtype == torch.float32


def test_dr_grpo_hand_computed():
    # r − μ_g: A: 1−1/3, 0−1/3, 0−1/3; B: 2−3, 4−3; C, D: 0.
    close(compute_advantages("dr_grpo", R, KEYS), [2 / 3, -1, -1 / 3, 0, 1, -1 / 3, 0, 0])


def test_grpo_without_std_is_dr_grpo():
    torch.testing.assert_close(
        compute_advantages("grpo", R, KEYS, norm_by_std=False), compute_advantages("dr_grpo", R, KEYS)
    )


def test_rloo_hand_computed():
    # r_i − mean of the others. A: 1 − (0+0)/2 = 1; 0 − (1+0)/2 = −0.5 (twice). B: 2 − 4 = −2; 4 − 2 = 2.
    close(compute_advantages("rloo", R, KEYS), [1, -2, -0.5, 0, 2, -0.5, 0, 0])


def test_reinforce_pp_hand_computed():
    # Batch: Σr = 14, μ = 1.75; deviations −.75 .25 −1.75 −.75 2.25 −1.75 3.25 −.75;
    # Σdev² = .5625+.0625+3.0625+.5625+5.0625+3.0625+10.5625+.5625 = 23.5; σ = √(23.5/7) ≈ 1.83225.
    sigma = math.sqrt(23.5 / 7)
    dev = [-0.75, 0.25, -1.75, -0.75, 2.25, -1.75, 3.25, -0.75]
    close(compute_advantages("reinforce_pp", R, None), [d / (sigma + EPS) for d in dev])
    # group ids are accepted and ignored
    torch.testing.assert_close(
        compute_advantages("reinforce_pp", R, KEYS), compute_advantages("reinforce_pp", R, None)
    )


def test_reinforce_pp_baseline_hand_computed():
    # a = r − μ_g = [2/3, −1, −1/3, 0, 1, −1/3, 0, 0]; Σa = 0 by construction;
    # Σa² = 4/9 + 1 + 1/9 + 1 + 1/9 = 8/3; σ_B(a) = √((8/3)/7) = √(8/21) ≈ 0.61721.
    sigma = math.sqrt(8 / 21)
    a = [2 / 3, -1, -1 / 3, 0, 1, -1 / 3, 0, 0]
    close(compute_advantages("reinforce_pp_baseline", R, KEYS), [x / (sigma + EPS) for x in a])


@pytest.mark.parametrize("name", GROUP_ESTIMATORS)
def test_zero_variance_and_singletons_are_exactly_zero(name):
    # In float64, (0.1+0.1+0.1)/3 − 0.1 = −1.4e-17, not 0; divided by σ+ε ≈ 1e-6 that would give −1.4e-11.
    r = torch.tensor([0.1, 0.1, 0.1, 0.7, 1 / 3, 1 / 3, 1 / 3, 2.0], dtype=torch.float64)
    keys = [0, 0, 0, 1, 2, 2, 2, 3]  # groups 1 and 3 are singletons
    adv = compute_advantages(name, r, keys)
    assert torch.isfinite(adv).all()
    assert (adv == 0).all(), adv  # exactly zero, not 1e-11
    assert adv.dtype == torch.float64


def test_reinforce_pp_constant_batch_and_single_sample():
    assert (compute_advantages("reinforce_pp", torch.full((5,), 0.7), None) == 0).all()
    one = compute_advantages("reinforce_pp", torch.tensor([3.0]), None)
    assert one.tolist() == [0.0]
    assert compute_advantages("grpo", torch.zeros(0), []).shape == (0,)


@pytest.mark.parametrize("name", GROUP_ESTIMATORS)
def test_baselined_group_estimators_pass_through(name):
    # A ccpo_tree Thinker signal Δ_j = V(t_j) − V_solo, already normalised: two thoughts of one prompt that both
    # beat solving alone. Centring would make one of them negative and cancel V_solo.
    delta = torch.tensor([0.5, 0.25, 0.5, -0.75])
    keys = ["p0", "p0", "p1", "p1"]
    out = compute_advantages(name, delta, keys, baselined=True)
    torch.testing.assert_close(out, delta, atol=0, rtol=0)
    assert out.data_ptr() != delta.data_ptr()  # a copy: callers may edit it
    centred = compute_advantages(name, delta, keys)
    assert centred[1] < 0 < out[1]  # what centring would have done to a thought that helped


def test_baselined_reinforce_pp_only_scales():
    delta = torch.tensor([1.0, 2.0, 3.0])
    # batch σ (unbiased) = √(((−1)² + 0 + 1²)/2) = 1 -> unchanged up to ε; the mean 2 is NOT subtracted.
    close(
        compute_advantages("reinforce_pp", delta, None, baselined=True),
        [1 / (1 + EPS), 2 / (1 + EPS), 3 / (1 + EPS)],
    )
    delta2 = torch.tensor([0.0, 4.0])  # σ = √8 -> values / √8, sign of each kept
    close(compute_advantages("reinforce_pp", delta2, None, baselined=True), [0.0, 4 / (math.sqrt(8) + EPS)])
    # all-equal baselined batch: returned as is (no division by ε)
    close(compute_advantages("reinforce_pp", torch.full((3,), 0.5), None, baselined=True), [0.5, 0.5, 0.5])


def test_group_index_key_types():
    idx, n = group_index([("a", 1), ("b", 2), ("a", 1)])
    assert n == 2 and idx.tolist() == [0, 1, 0]
    idx, n = group_index(torch.tensor([7, 3, 7, 9]))
    assert n == 3 and idx[0] == idx[2] and len(set(idx.tolist())) == 3
    idx, n = group_index(torch.tensor([[0, 1], [0, 2], [0, 1]]))  # rows as composite keys
    assert n == 2 and idx[0] == idx[2] != idx[1]
    idx, n = group_index(np.array(["x", "y", "x"]))
    assert n == 2 and idx.tolist() == [0, 1, 0]
    with pytest.raises(TypeError, match="hashable"):
        group_index([[1, 2], [1, 2]])


def test_tensor_and_tuple_keys_agree():
    int_keys = torch.tensor([0, 1, 0, 2, 1, 0, 3, 2])  # the same partition as KEYS
    for name in GROUP_ESTIMATORS:
        torch.testing.assert_close(compute_advantages(name, R, KEYS), compute_advantages(name, R, int_keys))


def test_errors():
    with pytest.raises(UnknownNameError) as e:
        compute_advantages("gpro", R, KEYS)
    msg = str(e.value)
    assert all(n in msg for n in list_estimators()) and "Did you mean 'grpo'" in msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(ValueError, match="group ids"):
        compute_advantages("grpo", R, KEYS[:-1])
    with pytest.raises(ValueError, match="needs group_ids"):
        compute_advantages("rloo", R, None)
    with pytest.raises(ValueError, match="1-D"):
        compute_advantages("grpo", R.view(2, 4), [0, 1])


def test_register_custom_estimator():
    def max_baseline(rewards, group_index, *, baselined=False, eps=1e-6):
        # A_i = r_i − max_g r  (index is already contiguous)
        if baselined:
            return rewards.clone()
        gmax = rewards.new_full((int(group_index.max()) + 1,), -math.inf).scatter_reduce(
            0, group_index, rewards, "amax"
        )
        return rewards - gmax[group_index]

    register_estimator("test_max_baseline", max_baseline)
    try:
        assert "test_max_baseline" in list_estimators()
        assert get_estimator("test_max_baseline") is max_baseline
        close(compute_advantages("test_max_baseline", R, KEYS), [0, -2, -1, 0, 0, -1, 0, 0])
        with pytest.raises(ValueError, match="already registered"):
            register_estimator("test_max_baseline", lambda *a, **k: None)
    finally:
        ESTIMATORS.unregister("test_max_baseline")


def test_estimator_config():
    cfg = EstimatorConfig()
    assert (cfg.name, cfg.eps, cfg.norm_by_std, cfg.respect_baselined) == ("grpo", 1e-6, True, True)
    torch.testing.assert_close(estimate_advantages(cfg, R, KEYS), compute_advantages("grpo", R, KEYS))
    torch.testing.assert_close(
        estimate_advantages(EstimatorConfig(norm_by_std=False), R, KEYS), compute_advantages("dr_grpo", R, KEYS)
    )
    delta = torch.tensor([0.5, 0.25])
    torch.testing.assert_close(estimate_advantages(cfg, delta, ["p", "p"], baselined=True), delta)
    # the ablation: ignore the baselined flag and centre anyway
    ablation = EstimatorConfig(name="dr_grpo", respect_baselined=False)
    close(estimate_advantages(ablation, delta, ["p", "p"], baselined=True), [0.125, -0.125])
    with pytest.raises(UnknownNameError, match="rloo"):
        EstimatorConfig(name="rlo")
    with pytest.raises(ValueError, match="norm_by_std"):
        EstimatorConfig(name="rloo", norm_by_std=False)


def test_builtin_names_known_to_the_torch_free_config_are_the_registered_ones():
    from ccpo_agents.algos import list_estimators
    from ccpo_agents.algos.losses import LOSSES
    from ccpo_agents.config.algo import BUILTIN_ESTIMATORS, BUILTIN_LOSSES

    assert set(BUILTIN_ESTIMATORS) <= set(list_estimators()) and set(BUILTIN_LOSSES) <= set(LOSSES.names())
