"""Policy losses, aggregation, KL/entropy and the full objective (ccpo_agents.algos.losses / kl)."""

from __future__ import annotations

import math

import pytest
import torch

from ccpo_agents.algos import (
    KL_KINDS,
    LossConfig,
    TokenLoss,
    UnknownNameError,
    agg_loss,
    apply_truncation_mask,
    compute_policy_objective,
    entropy_from_logits,
    get_loss,
    kl_penalty,
    list_losses,
    policy_loss,
    register_loss,
    resolved_agg,
)
from ccpo_agents.algos.losses import LOSSES

LN = math.log


def leaf(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


# --------------------------------------------------------------------------------------------------------------
# Token-level PPO
# --------------------------------------------------------------------------------------------------------------

# old log-probs 0, so log π_θ = log r. Row 0 has A = +1 and ratios [1, 1.5, 0.5]; row 1 has A = −1 and ratios
# [1.5, 0.5, 4.0]. Clip range (0.8, 1.2), per-token ℓ = max(−A·r, −A·clip(r)):
#   row 0: r=1   -> max(−1, −1)       = −1    (inside)
#          r=1.5 -> max(−1.5, −1.2)   = −1.2  (clipped: no gradient)
#          r=0.5 -> max(−0.5, −0.8)   = −0.5  (unclipped: pessimistic branch is the ratio itself)
#   row 1: r=1.5 -> max(1.5, 1.2)     = 1.5   (unclipped)
#          r=0.5 -> max(0.5, 0.8)     = 0.8   (clipped)
#          r=4   -> max(4, 1.2)       = 4.0 ; dual-clip c=3: min(4, −A·c = 3) = 3 (dual-clipped: no gradient)
PPO_LOGP = [[0.0, LN(1.5), LN(0.5)], [LN(1.5), LN(0.5), LN(4.0)]]
PPO_ADV = torch.tensor([1.0, -1.0], dtype=torch.float64)


def test_ppo_hand_computed_with_dual_clip():
    logp = leaf(PPO_LOGP)
    loss, m = policy_loss("ppo", logp, torch.zeros_like(logp), PPO_ADV, torch.ones(2, 3), dual_clip=3.0)
    # token-mean: (−1 − 1.2 − 0.5 + 1.5 + 0.8 + 3) / 6 = 2.6 / 6
    assert loss.item() == pytest.approx(2.6 / 6)
    loss.backward()
    # ∂ℓ/∂log π = −A·r on unclipped tokens, 0 on clipped ones; token-mean divides by 6.
    expected = torch.tensor([[-1.0, 0.0, -0.5], [1.5, 0.0, 0.0]], dtype=torch.float64) / 6
    torch.testing.assert_close(logp.grad, expected)
    assert m["clipfrac"] == pytest.approx(2 / 6)  # (0,1) and (1,1)
    assert m["clipfrac_lower"] == pytest.approx(1 / 6)  # (1,2)
    assert (
        m["ratio_mean"] == pytest.approx(9 / 6)
        and m["ratio_min"] == 0.5
        and m["ratio_max"] == pytest.approx(4.0)
    )
    # ppo_kl = mean(−log r) = −(2 ln 1.5 + 2 ln 0.5 + ln 4) / 6 = −2 ln 1.5 / 6
    assert m["ppo_kl"] == pytest.approx(-2 * LN(1.5) / 6, rel=1e-6)
    # approx_kl = mean(r − 1 − log r) ≥ 0
    k3 = sum(r - 1 - LN(r) for r in [1, 1.5, 0.5, 1.5, 0.5, 4.0]) / 6
    assert m["approx_kl"] == pytest.approx(k3, rel=1e-6)
    assert m["nonfinite"] is False


def test_ppo_without_dual_clip_and_clip_higher():
    logp = leaf(PPO_LOGP)
    loss, m = policy_loss("ppo", logp, torch.zeros_like(logp), PPO_ADV, torch.ones(2, 3))
    assert loss.item() == pytest.approx((-2.7 + 1.5 + 0.8 + 4.0) / 6)  # the r=4 token keeps its 4.0
    loss.backward()
    assert logp.grad[1, 2].item() == pytest.approx(4.0 / 6)  # −A·r, unbounded push-down
    assert m["clipfrac_lower"] == 0.0
    # clip-higher: ε_high = 0.6 -> r = 1.5 < 1.6 is no longer clipped for A > 0 (ℓ = −1.5)
    loss_hi, m_hi = policy_loss(
        "ppo", leaf(PPO_LOGP), torch.zeros(2, 3), PPO_ADV, torch.ones(2, 3), clip_high=0.6
    )
    assert loss_hi.item() == pytest.approx((-1 - 1.5 - 0.5 + 1.5 + 0.8 + 4.0) / 6)
    assert m_hi["clipfrac"] == pytest.approx(1 / 6)


# --------------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------------

# Row 0: 4 valid tokens [1, 2, 3, 4]; row 1: 2 valid tokens [10, 20] then padding holding NaN/inf garbage.
NAN, INF = float("nan"), float("inf")
AGG_L = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, NAN, INF]])
AGG_M = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)


def test_agg_modes_on_ragged_mask():
    # token-mean: (10 + 30) / 6 tokens
    assert agg_loss(AGG_L, AGG_M, "token-mean").item() == pytest.approx(40 / 6)
    # seq-mean-token-mean: (10/4 + 30/2) / 2 = (2.5 + 15) / 2
    assert agg_loss(AGG_L, AGG_M, "seq-mean-token-mean").item() == pytest.approx(8.75)
    # seq-mean-token-sum-norm, L = T = 4: (10/4 + 30/4) / 2
    assert agg_loss(AGG_L, AGG_M, "seq-mean-token-sum-norm").item() == pytest.approx(5.0)
    # ... with L = 8 (the generation budget): (10/8 + 30/8) / 2
    assert agg_loss(AGG_L, AGG_M, "seq-mean-token-sum-norm", norm_len=8).item() == pytest.approx(2.5)


def test_agg_fully_masked_row_counts_in_sequence_denominator():
    lm = torch.cat([AGG_L, torch.full((1, 4), NAN)])
    mm = torch.cat([AGG_M, torch.zeros(1, 4, dtype=torch.bool)])
    assert agg_loss(lm, mm, "token-mean").item() == pytest.approx(40 / 6)  # no new tokens
    assert agg_loss(lm, mm, "seq-mean-token-mean").item() == pytest.approx(17.5 / 3)  # empty row = 0, B = 3
    assert agg_loss(lm, mm, "seq-mean-token-sum-norm").item() == pytest.approx(10 / 3)
    assert agg_loss(torch.full((2, 3), NAN), torch.zeros(2, 3), "token-mean").item() == 0.0  # nothing valid


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_agg_global_denominators_make_microbatches_sum_to_full_batch(mode):
    full = agg_loss(AGG_L, AGG_M, mode)
    parts = sum(
        agg_loss(AGG_L[s], AGG_M[s], mode, num_tokens=6, num_seqs=2, norm_len=4)
        for s in (slice(0, 1), slice(1, 2))
    )
    assert parts.item() == pytest.approx(full.item())


def test_agg_errors():
    with pytest.raises(ValueError, match="token-mean"):
        agg_loss(AGG_L, AGG_M, "seq-mean")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        agg_loss(AGG_L, AGG_M[:, :2], "token-mean")


# --------------------------------------------------------------------------------------------------------------
# GSPO
# --------------------------------------------------------------------------------------------------------------


def _random_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(3, 5, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    adv = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64)
    return logp, mask, adv


@pytest.mark.parametrize("agg", ["seq-mean-token-mean", "token-mean"])
def test_gspo_equals_token_ppo_at_ratio_one(agg):
    # On-policy (old = sg[log π_θ]) both ratios are 1 with gradient ∇ log π_θ per token, so loss AND gradient
    # coincide under the same aggregation. seq-mean-token-mean is GSPO's own aggregation.
    logp_a, mask, adv = _random_batch()
    logp_b = logp_a.detach().clone().requires_grad_(True)
    loss_p, m_p = policy_loss("ppo", logp_a, logp_a.detach(), adv, mask, agg=agg)
    loss_g, m_g = policy_loss("gspo", logp_b, logp_b.detach(), adv, mask, agg=agg)
    torch.testing.assert_close(loss_p, loss_g)
    loss_p.backward()
    loss_g.backward()
    torch.testing.assert_close(logp_a.grad, logp_b.grad)
    assert m_p["ratio_mean"] == m_g["ratio_mean"] == 1.0
    assert (logp_a.grad[~mask] == 0).all()


def test_gspo_default_agg_is_seq_mean_token_mean():
    assert get_loss("gspo").agg == "seq-mean-token-mean" and get_loss("ppo").agg == "token-mean"
    assert (get_loss("gspo").clip_low, get_loss("gspo").clip_high) == (3e-4, 4e-4)
    logp, mask, adv = _random_batch()
    a, _ = policy_loss("gspo", logp, logp.detach(), adv, mask)
    b, _ = policy_loss("ppo", logp, logp.detach(), adv, mask, agg="seq-mean-token-mean")
    torch.testing.assert_close(a, b)


def test_gspo_gradient_is_the_sequence_ratio_gradient():
    # Off-policy, clipping disabled: GSPO's token form must give the gradient of the sequence objective
    # (1/B) Σ_i −A_i · s_i,  s_i = exp(mean_t log π_θ/π_old), i.e. −A_i s_i / (B |y_i|) per valid token.
    logp, mask, adv = _random_batch(1)
    old = logp.detach() + 0.05 * torch.randn(
        3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    loss, _ = policy_loss("gspo", logp, old, adv, mask, clip_low=0.99, clip_high=100.0)
    loss.backward()
    ref = logp.detach().clone().requires_grad_(True)
    n = mask.sum(-1)
    s = torch.exp(torch.where(mask, ref - old, 0.0).sum(-1) / n)
    (-(adv * s).mean()).backward()
    torch.testing.assert_close(loss, -(adv * s.detach()).mean())
    torch.testing.assert_close(logp.grad, torch.where(mask, ref.grad, 0.0))


def test_gspo_clips_whole_sequences_ppo_clips_tokens():
    # A = +1 for both rows, old = 0, 4 tokens each.
    #   row 0: log r = [0.5, 0, 0, 0]    -> token PPO clips token 0 only (r = e^0.5 ≈ 1.65 > 1.2);
    #          GSPO s_0 = e^(0.5/4) ≈ 1.133 > 1 + 4e-4 -> the WHOLE sequence is clipped (no gradient at all).
    #   row 1: log r = [0.5, −0.5, 0, 0] -> token PPO clips token 0 (r ≈ 1.65); token 1 (r ≈ 0.61, A > 0) is not;
    #          GSPO s_1 = e^0 = 1 -> nothing clipped, every token (including token 0) gets gradient.
    rows = [[0.5, 0.0, 0.0, 0.0], [0.5, -0.5, 0.0, 0.0]]
    mask, adv, old = (
        torch.ones(2, 4),
        torch.ones(2, dtype=torch.float64),
        torch.zeros(2, 4, dtype=torch.float64),
    )
    agg = "seq-mean-token-mean"

    lp_ppo = leaf(rows)
    loss_ppo, m_ppo = policy_loss("ppo", lp_ppo, old, adv, mask, agg=agg)
    loss_ppo.backward()
    assert m_ppo["clipfrac"] == pytest.approx(2 / 8)
    # per-token ∂/∂log π = −A·r / (B·|y|) = −r/8 where unclipped
    exp_ppo = torch.tensor([[0.0, -1, -1, -1], [0.0, -math.exp(-0.5), -1, -1]], dtype=torch.float64) / 8
    torch.testing.assert_close(lp_ppo.grad, exp_ppo)

    lp_gspo = leaf(rows)
    loss_gspo, m_gspo = policy_loss("gspo", lp_gspo, old, adv, mask)
    loss_gspo.backward()
    assert m_gspo["clipfrac"] == pytest.approx(4 / 8)  # all of row 0, none of row 1
    assert (lp_gspo.grad[0] == 0).all()  # the whole sequence is clipped
    torch.testing.assert_close(
        lp_gspo.grad[1], torch.full((4,), -1 / 8, dtype=torch.float64)
    )  # −A·s_1/(B|y|)
    assert lp_ppo.grad[1, 0] == 0 and lp_gspo.grad[1, 0] != 0  # the token PPO clipped still learns under GSPO
    # values: row 0 clipped at 1 + 4e-4, row 1 at s = 1: (−1.0004 − 1) / 2
    assert loss_gspo.item() == pytest.approx((-(1 + 4e-4) - 1) / 2)
    assert m_gspo["ratio_max"] == pytest.approx(math.exp(0.125))


# --------------------------------------------------------------------------------------------------------------
# KL and entropy
# --------------------------------------------------------------------------------------------------------------


def test_kl_estimators():
    g = torch.Generator().manual_seed(0)
    logp, ref = -3 * torch.rand(4, 7, generator=g), -3 * torch.rand(4, 7, generator=g)
    k3 = kl_penalty(logp, ref, "k3")
    assert (k3 >= 0).all()
    assert (kl_penalty(logp, logp, "k3") == 0).all()
    torch.testing.assert_close(kl_penalty(logp, ref, "low_var_kl"), k3)
    # log π = −1, log π_ref = −2 (δ = ref − logp = −1): k1 = 1, k2 = ½, k3 = e^−1 − (−1) − 1 = e^−1
    lp, rf = torch.tensor([-1.0]), torch.tensor([-2.0])
    assert kl_penalty(lp, rf, "k1").item() == pytest.approx(1.0)
    assert kl_penalty(lp, rf, "k2").item() == pytest.approx(0.5)
    assert kl_penalty(lp, rf, "k3").item() == pytest.approx(math.exp(-1))
    assert kl_penalty(lp, rf, "abs").item() == pytest.approx(1.0)
    # verl's clamps: far off-policy tokens are bounded by 10
    assert kl_penalty(torch.tensor([-50.0]), torch.tensor([0.0]), "k3").item() == 10.0
    assert set(KL_KINDS) >= {"k1", "k2", "k3", "low_var_kl"}
    with pytest.raises(ValueError, match="k3"):
        kl_penalty(lp, rf, "k4")


def test_entropy_from_logits():
    v = 11
    h = entropy_from_logits(torch.randn(2, 3, 1).expand(2, 3, v))  # uniform rows (equal logits)
    torch.testing.assert_close(h, torch.full((2, 3), math.log(v)))
    logits = torch.tensor([[0.0, 0.0, 0.0, -INF]], requires_grad=True)  # masked vocab entry
    h = entropy_from_logits(logits)
    assert h.item() == pytest.approx(math.log(3))
    h.sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert entropy_from_logits(torch.tensor([100.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Full objective: truncation, NaN safety, KL/entropy terms, config
# --------------------------------------------------------------------------------------------------------------


def test_truncated_rows_get_zero_weight():
    logp = leaf([[-1.0, -2.0, -0.5], [-0.3, -0.2, -0.1]])
    old = logp.detach() + 0.1
    adv = torch.tensor([1.0, -2.0], dtype=torch.float64)
    truncated = torch.tensor([False, True])
    loss, m = compute_policy_objective(
        logp, old, adv, torch.ones(2, 3), LossConfig(mask_truncated=True), truncated=truncated
    )
    loss.backward()
    assert (logp.grad[1] == 0).all() and (logp.grad[0] != 0).all()
    assert m["num_tokens"] == 3 and "truncated_frac" not in m  # the trainer reports it, once
    # equals the loss of the untruncated row alone (token-mean)
    alone, _ = policy_loss("ppo", logp[:1], old[:1], adv[:1], torch.ones(1, 3))
    assert loss.item() == pytest.approx(alone.item())
    # without mask_truncated the flag changes nothing
    loss_all, m_all = compute_policy_objective(logp, old, adv, torch.ones(2, 3), truncated=truncated)
    assert m_all["num_tokens"] == 6 and loss_all.item() != pytest.approx(loss.item())
    with pytest.raises(ValueError, match="truncated"):
        compute_policy_objective(logp, old, adv, torch.ones(2, 3), LossConfig(mask_truncated=True))
    assert apply_truncation_mask(torch.ones(2, 3), truncated).sum() == 3


@pytest.mark.parametrize("name", ["ppo", "gspo"])
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_fully_masked_rows_and_inf_padding_do_not_give_nan(name, agg):
    # Row 1 is empty; padding log-probs are −inf/NaN (as a model may produce for pad tokens).
    logp = leaf([[-1.0, -2.0, -INF], [NAN, -INF, -INF]])
    old = torch.tensor([[-1.1, -1.9, -INF], [-INF, NAN, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    ref = torch.tensor([[-1.0, -1.0, NAN], [NAN, NAN, NAN]], dtype=torch.float64)
    cfg = LossConfig(name=name, agg=agg, kl_coef=0.1)
    loss, m = compute_policy_objective(logp, old, torch.tensor([1.0, NAN]), mask, cfg, ref_logprobs=ref)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert (logp.grad[1] == 0).all()
    assert m["nonfinite"] is False and all(math.isfinite(v) for v in m.values())
    # nothing valid at all: loss 0, metrics defined
    loss0, m0 = policy_loss(
        name, leaf([[NAN, NAN]]), torch.zeros(1, 2), torch.ones(1), torch.zeros(1, 2), agg=agg
    )
    assert loss0.item() == 0.0 and m0["ratio_mean"] == 1.0 and m0["nonfinite"] is False


def test_nonfinite_inputs_are_flagged():
    mask = torch.ones(2, 2)
    ok = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    bad = torch.tensor([[-1.0, NAN], [-1.0, -1.0]])
    adv = torch.ones(2)
    assert policy_loss("ppo", ok, ok, adv, mask)[1]["nonfinite"] is False
    assert policy_loss("ppo", bad, ok, adv, mask)[1]["nonfinite"] is True
    assert policy_loss("ppo", ok, bad, adv, mask)[1]["nonfinite"] is True
    assert policy_loss("gspo", ok, ok, torch.tensor([1.0, INF]), mask)[1]["nonfinite"] is True
    inf_ref = torch.tensor([[-1.0, -INF], [-1.0, -1.0]])
    _, m = compute_policy_objective(ok, ok, adv, mask, LossConfig(kl_coef=0.1), ref_logprobs=inf_ref)
    assert m["nonfinite"] is True
    _, m = compute_policy_objective(ok, ok, adv, mask, entropy=torch.tensor([[1.0, NAN], [1.0, 1.0]]))
    assert m["nonfinite"] is True


def test_objective_combines_kl_and_entropy():
    logp = leaf([[-1.0, -2.0], [-0.5, -0.7]])
    old = logp.detach() - 0.05
    ref = logp.detach() - 0.3
    ent = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    adv, mask = torch.tensor([1.0, -1.0], dtype=torch.float64), torch.ones(2, 2)
    cfg = LossConfig(kl_coef=0.2, entropy_coef=0.01)
    total, m = compute_policy_objective(logp, old, adv, mask, cfg, ref_logprobs=ref, entropy=ent)
    pg, _ = policy_loss("ppo", logp, old, adv, mask)
    k3 = math.exp(-0.3) + 0.3 - 1  # δ = ref − logp = −0.3 on every token
    assert m["kl"] == pytest.approx(k3, rel=1e-6) and m["entropy"] == pytest.approx(2.5)
    assert total.item() == pytest.approx(pg.item() + 0.2 * k3 - 0.01 * 2.5)
    assert m["loss"] == pytest.approx(total.item()) and m["pg_loss"] == pytest.approx(pg.item())
    with pytest.raises(ValueError, match="ref_logprobs"):
        compute_policy_objective(logp, old, adv, mask, LossConfig(kl_coef=0.1))
    with pytest.raises(ValueError, match="entropy"):
        compute_policy_objective(logp, old, adv, mask, LossConfig(entropy_coef=0.1))
    # entropy from logits, bonus gradient flows into the logits
    logits = torch.zeros(2, 2, 5, requires_grad=True)
    _, m = compute_policy_objective(logp, old, adv, mask, LossConfig(entropy_coef=0.1), logits=logits)
    assert m["entropy"] == pytest.approx(math.log(5), rel=1e-6)


def test_loss_config_defaults_and_validation():
    cfg = LossConfig()
    assert (cfg.name, cfg.clip_low, cfg.clip_high, cfg.dual_clip, cfg.agg) == ("ppo", None, None, None, None)
    assert (cfg.norm_len, cfg.kl_coef, cfg.kl_kind, cfg.entropy_coef, cfg.mask_truncated) == (
        None,
        0.0,
        "k3",
        0.0,
        False,
    )
    assert resolved_agg(cfg) == "token-mean" and resolved_agg(LossConfig(name="gspo")) == "seq-mean-token-mean"
    with pytest.raises(UnknownNameError, match="Did you mean 'gspo'"):
        LossConfig(name="gpso")
    with pytest.raises(ValueError, match="seq-mean-token-mean"):
        LossConfig(agg="seq-mean")
    with pytest.raises(ValueError, match="dual_clip"):
        LossConfig(dual_clip=0.5)
    with pytest.raises(ValueError, match="kl_kind"):
        LossConfig(kl_kind="k5")
    with pytest.raises(ValueError, match="clip_low"):
        LossConfig(clip_low=1.0)
    assert set(list_losses()) >= {"ppo", "gspo"}


def test_register_custom_loss():
    def vanilla_pg(logprobs, old_logprobs, advantages, mask, *, clip_low, clip_high, dual_clip):
        # ℓ_t = −A · log π_θ  (no ratio, no clipping)
        return TokenLoss(loss=-advantages * logprobs, ratio=torch.exp(logprobs - old_logprobs))

    register_loss("test_vanilla_pg", vanilla_pg, agg="seq-mean-token-sum-norm")
    try:
        logp = leaf([[-1.0, -2.0], [-3.0, -4.0]])
        loss, m = compute_policy_objective(
            logp, logp.detach(), torch.tensor([1.0, 2.0]), torch.ones(2, 2), LossConfig(name="test_vanilla_pg")
        )
        # seq sums: −(−3) = 3 and −2·(−7) = 14, /L=2 -> 1.5, 7; mean over 2 rows = 4.25
        assert loss.item() == pytest.approx(4.25) and m["clipfrac"] == 0.0
        with pytest.raises(ValueError, match="already registered"):
            register_loss("test_vanilla_pg", lambda *a, **k: None)
    finally:
        LOSSES.unregister("test_vanilla_pg")
