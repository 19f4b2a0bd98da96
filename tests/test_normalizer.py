"""GlobalHistoryNormalizer: EMA math by hand, first-batch pass-through, per-source buckets, state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ccpo_agents.credit import GLOBAL_SOURCE, GlobalHistoryNormalizer

EPS = 1e-6


def test_ema_math_by_hand():
    norm = GlobalHistoryNormalizer(decay=0.9, eps=EPS)
    norm.update("x", [1.0, 3.0])
    # first batch seeds the stats: mean 2, population variance ((1-2)^2 + (3-2)^2)/2 = 1
    st = norm.stats("x")
    assert (st.mean, st.var, st.count, st.n) == (2.0, 1.0, 1, 2)

    norm.update("x", [0.0, 0.0, 6.0, 6.0])
    # batch: m_b = 3, v_b = 9
    # mean' = 0.9*2 + 0.1*3 = 2.1
    # var'  = 0.9*1 + 0.1*9 + 0.9*0.1*(2-3)^2 = 0.9 + 0.9 + 0.09 = 1.89
    st = norm.stats("x")
    assert st.mean == pytest.approx(2.1)
    assert st.var == pytest.approx(1.89)
    assert st.std(EPS) == pytest.approx(math.sqrt(1.89))
    assert (st.count, st.n) == (2, 6)


def test_mixture_variance_equals_weighted_pooled_variance():
    # The update is the variance of the mixture {history: weight d, batch: weight 1-d}.
    d = 0.7
    norm = GlobalHistoryNormalizer(decay=d)
    a, b = np.array([1.0, 2.0, 4.0]), np.array([10.0, 12.0])
    norm.update("x", a)
    norm.update("x", b)
    mix_mean = d * a.mean() + (1 - d) * b.mean()
    mix_var = d * np.mean((a - mix_mean) ** 2) + (1 - d) * np.mean((b - mix_mean) ** 2)
    assert norm.stats("x").mean == pytest.approx(mix_mean)
    assert norm.stats("x").var == pytest.approx(mix_var)


def test_first_batch_passes_through_then_uses_stats_from_before_the_batch():
    norm = GlobalHistoryNormalizer(decay=0.9, eps=EPS)
    x1 = np.array([1.0, 3.0])
    out1 = norm.normalize("x", x1)
    np.testing.assert_array_equal(out1, x1)  # no history: unchanged (no centring, no scaling)
    assert norm.stats("x").mean == 2.0  # ... but the batch seeded the statistics

    out2 = norm.normalize("x", [4.0])
    # uses mean 2, std 1 from BEFORE this batch: (4 - 2) / (1 + 1e-6)
    assert out2[0] == pytest.approx(2.0 / (1.0 + EPS))
    # then updated: m_b = 4, v_b = 0 -> mean 0.9*2 + 0.1*4 = 2.2; var 0.9*1 + 0 + 0.09*(2-4)^2 = 1.26
    assert norm.stats("x").mean == pytest.approx(2.2)
    assert norm.stats("x").var == pytest.approx(1.26)


def test_scale_only_and_no_update():
    norm = GlobalHistoryNormalizer(decay=0.9)
    norm.update("x", [0.0, 4.0])  # mean 2, var 4, std 2
    out = norm.normalize("x", [-2.0, 6.0], center=False, update=False)
    np.testing.assert_allclose(out, [-2.0 / (2 + EPS), 6.0 / (2 + EPS)])  # sign kept: never re-centred
    assert norm.stats("x").count == 1  # update=False left the history alone


def test_lookup_reports_unknown_elements():
    norm = GlobalHistoryNormalizer()
    mean, std, known = norm.lookup("never", None, 3)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(std, 1.0)
    assert not known.any()
    assert norm.stats("never") is None


def test_per_source_separation():
    norm = GlobalHistoryNormalizer(decay=0.5, per_source=True)
    norm.update("x", [0.0, 2.0, 10.0], sources=["a", "a", "b"])
    assert norm.stats("x", "a").mean == 1.0 and norm.stats("x", "a").var == 1.0
    assert norm.stats("x", "b").mean == 10.0 and norm.stats("x", "b").var == 0.0
    assert norm.stats("x") is None  # no global bucket when every element had a source

    # one batch mixing a known source and a new one: "c" passes through, "a"/"b" are normalised
    out = norm.normalize("x", [3.0, 12.0, 7.0], sources=["a", "b", "c"])
    assert out[0] == pytest.approx((3.0 - 1.0) / (1.0 + EPS))
    # source b has var 0 <= eps -> std falls back to 1.0
    assert out[1] == pytest.approx((12.0 - 10.0) / (1.0 + EPS))
    assert out[2] == 7.0
    # each source updated with its own elements only: a: 0.5*1 + 0.5*3 = 2
    assert norm.stats("x", "a").mean == pytest.approx(2.0)
    assert norm.stats("x", "b").mean == pytest.approx(11.0)
    assert norm.stats("x", "c").mean == 7.0

    glob = GlobalHistoryNormalizer(per_source=False)
    glob.update("x", [0.0, 2.0, 10.0], sources=["a", "a", "b"])  # sources ignored
    assert glob.stats("x").mean == pytest.approx(4.0)
    assert glob.stats("x", "a").mean == pytest.approx(4.0)


def test_state_round_trip_is_json_and_continues_exactly():
    a = GlobalHistoryNormalizer(decay=0.8, per_source=True)
    a.normalize("d", [1.0, -1.0, 2.0], sources=["s1", "s2", "s1"])
    a.normalize("j", [1.0, 1.0, -1.0], sources=["s1", "s2", "s1"])
    state = json.loads(json.dumps(a.state_dict()))  # plain JSON types only

    b = GlobalHistoryNormalizer(decay=0.8, per_source=True)
    b.load_state_dict(state)
    assert b.state_dict() == a.state_dict()
    x, src = [0.5, 3.0, -2.0], ["s1", "s2", "s3"]
    np.testing.assert_array_equal(a.normalize("d", x, src), b.normalize("d", x, src))
    assert b.state_dict() == a.state_dict()


def test_load_state_checks():
    state = GlobalHistoryNormalizer(per_source=True).state_dict()
    with pytest.raises(ValueError, match="per_source"):
        GlobalHistoryNormalizer(per_source=False).load_state_dict(state)
    with pytest.raises(ValueError, match="state dict"):
        GlobalHistoryNormalizer().load_state_dict({"nope": 1})
    with pytest.warns(UserWarning, match="decay"):
        GlobalHistoryNormalizer(decay=0.5, per_source=True).load_state_dict(state)


def test_degenerate_inputs_stay_finite():
    norm = GlobalHistoryNormalizer()
    for _ in range(3):
        out = norm.normalize("c", np.ones(4))  # constant signal: var 0 -> std 1
        assert np.all(np.isfinite(out))
    assert norm.stats("c").std(norm.eps) == 1.0
    out = norm.normalize("c", [1.0, -1.0])
    np.testing.assert_allclose(out, [0.0, -2.0 / (1 + EPS)])
    norm.update("c", [])  # empty batch: no-op
    assert norm.stats("c").count == 4
    with pytest.raises(ValueError, match="NaN"):
        norm.update("c", [np.nan])


def test_constructor_validation_and_metrics():
    with pytest.raises(ValueError, match="decay"):
        GlobalHistoryNormalizer(decay=1.0)
    norm = GlobalHistoryNormalizer(per_source=True)
    norm.update("x", [1.0, 3.0], sources=["a", "a"])
    norm.update("y", [2.0])
    m = norm.metrics()
    assert m["normalizer/x/a/mean"] == 2.0 and m["normalizer/y/mean"] == 2.0
    assert GLOBAL_SOURCE not in "".join(m)
