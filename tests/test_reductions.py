"""What each credit method reduces to under each advantage estimator (the table in the README, pinned).

Thinker samples are built as the trainer builds them: one per thought, carrying the thought's mean credit,
grouped by prompt. The claims tested here are exact (float tolerance), on a batch with several prompts,
thoughts and answers per thought, where the solo baseline is negative in one prompt and positive in another.
"""

from __future__ import annotations

import numpy as np
import pytest

from ccpo_agents.algos import estimate_advantages
from ccpo_agents.config.algo import EstimatorConfig
from ccpo_agents.credit import CreditBatch, GlobalHistoryNormalizer, assign_credit, ratings_from_texts

# 2 prompts x 3 thoughts x 2 answers; solo baselines: prompt 0 mostly fails (b < 0), prompt 1 mostly succeeds.
JOINT = [1, 1, 1, -1, -1, -1, 1, -1, 1, 1, -1, 1]
GROUP = [0] * 6 + [1] * 6
THOUGHT = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
SOLO, SOLO_GROUP = [-1, -1, 1, -1, 1, 1, -1, 1], [0, 0, 0, 0, 1, 1, 1, 1]


def batch(**kw) -> CreditBatch:
    return CreditBatch(joint_reward=JOINT, group=GROUP, thought=THOUGHT, solo_reward=SOLO, solo_group=SOLO_GROUP,
                       **kw)


def thinker_advantages(method: str, estimator: str, **options) -> np.ndarray:
    b = batch()
    res = assign_credit(method, b, options or None, GlobalHistoryNormalizer())
    ids, mean, first = res.per_thought("thinker", b.thought)
    keys = [res.group_keys["thinker"][i] for i in first]
    adv = estimate_advantages(EstimatorConfig(name=estimator), mean, keys, baselined=res.baselined["thinker"])
    return adv.numpy()


@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
def test_ccpo_event_is_shared_under_group_normalised_estimators(estimator):
    """Within a prompt the solo baseline b is fixed, so r_thinker is affine in R_joint: GRPO's (r − μ)/σ cancels
    it exactly; RLOO and Dr.GRPO keep the slope (1 + λ/2 for ±1 rewards, λ = 0.2 -> 1.1) when b ≠ 0."""
    event, shared = thinker_advantages("ccpo_event", estimator), thinker_advantages("shared", estimator)
    if estimator == "grpo":
        np.testing.assert_allclose(event, shared, atol=1e-6)
    else:
        np.testing.assert_allclose(event, 1.1 * shared, atol=1e-6)


def test_ccpo_event_differs_from_shared_under_batch_whitening():
    """reinforce_pp whitens over the whole batch, where the per-prompt affine maps differ: not a rescaling."""
    event, shared = thinker_advantages("ccpo_event", "reinforce_pp"), thinker_advantages("shared", "reinforce_pp")
    ratio = event / np.where(shared == 0, np.nan, shared)
    assert np.nanmax(ratio) - np.nanmin(ratio) > 1e-3


def test_centred_ccpo_tree_is_shared_with_dr_grpo():
    """Centring Δ_j = V(t_j) − V_solo over a prompt's thoughts cancels V_solo: what is left is V(t_j) − mean V,
    which is exactly shared reward's Thinker advantage under Dr.GRPO (per-thought mean reward, mean-centred)."""
    tree = thinker_advantages("ccpo_tree", "grpo", center=True, scale="none")  # baselined: passed through
    shared = thinker_advantages("shared", "dr_grpo")
    np.testing.assert_allclose(tree, shared, atol=1e-6)
    # uncentred, V_solo stays in: not shared under any estimator
    raw = thinker_advantages("ccpo_tree", "grpo", scale="none")
    assert not np.allclose(raw, shared) and not np.allclose(raw, thinker_advantages("shared", "grpo"))


def test_ccpo_tree_solver_is_shared_grouped_by_thought():
    b = batch()
    tree = assign_credit("ccpo_tree", b, None, GlobalHistoryNormalizer())
    np.testing.assert_array_equal(tree.rewards["solver"], b.joint_reward)
    np.testing.assert_array_equal(tree.group_keys["solver"], b.thought)
    assert tree.baselined == {"thinker": True, "solver": False}


def test_sepo_with_neutral_ratings_is_shared():
    """Unparseable (or all-neutral) ratings give every role the same share, so the bonus is 0: SEPO = shared."""
    b = batch(ratings=ratings_from_texts(["no json"] * len(JOINT), ["{}"] * len(JOINT)))
    sepo, shared = assign_credit("sepo", b), assign_credit("shared", b)
    for role in ("thinker", "solver"):
        np.testing.assert_allclose(sepo.rewards[role], shared.rewards[role])


def test_sepo_in_a_group_of_equal_outcomes_is_the_rating_alone_at_full_scale():
    """Where every answer to a prompt is right, shared reward's GRPO advantage is 0 for every thought. SEPO's
    rewards differ there only by the rating bonus λ·(w − mean w), ±0.04 here, and GRPO's σ scales it to unit
    size: in such groups the Thinker learns from its ratings alone, as strongly as from an outcome."""
    a = ["0.7", "0.7", "0.3", "0.3", "0.5", "0.5"]  # both raters give thought 0 the most credit, thought 1 the least
    texts = [f'{{"pair": [{x}, {round(1 - float(x), 1)}]}}' for x in a]
    b = CreditBatch(joint_reward=[1] * 6, group=[0] * 6, thought=[0, 0, 1, 1, 2, 2],
                    ratings=ratings_from_texts(texts, texts))

    def advantages(method: str) -> np.ndarray:
        res = assign_credit(method, b)
        ids, mean, first = res.per_thought("thinker", b.thought)
        np.testing.assert_allclose(mean, {"sepo": [1.04, 0.96, 1.0], "shared": [1.0, 1.0, 1.0]}[method])
        keys = [res.group_keys["thinker"][i] for i in first]
        return estimate_advantages(EstimatorConfig(name="grpo"), mean, keys, baselined=False).numpy()

    np.testing.assert_allclose(advantages("shared"), 0.0)
    np.testing.assert_allclose(advantages("sepo"), [1.0, -1.0, 0.0], atol=1e-4)  # ±0.04 / σ (sample std 0.04)
