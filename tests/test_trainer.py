"""The trainer on a tiny model: schedules, credit methods, NaN skipping, exact resume, errors."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import coin_verifier

from ccpo_agents.config import ConfigError, load_config
from ccpo_agents.trainer import Trainer
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv, VotingEnv

SMALL = [
    "policy.model=tiny",
    "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.answers_per_thought=2", "rollout.num_solo=2",
    "policy.generation.max_new_tokens=6", "train.progress=false", "train.plot=false", "train.tensorboard=false",
    "optim.lr=1e-3", "eval.limit=0",
]



def make_trainer(tmp_path, *overrides, topology="think_solve", **kw):
    cfg = load_config(overrides=[*SMALL, f"train.output_dir={tmp_path}", *overrides])
    if topology == "voting":
        env = VotingEnv("arith", num_voters=3, templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    else:
        env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    return Trainer(cfg, env=env, **kw)


def snapshot(trainer, role):
    return [p.detach().clone() for p in trainer.roles.trainable_parameters(role)]


def changed(before, trainer, role) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, trainer.roles.trainable_parameters(role)))


def test_joint_schedule_updates_both_roles(tmp_path):
    t = make_trainer(tmp_path, "policy.parameterisation=separate")
    before = {r: snapshot(t, r) for r in ("thinker", "solver")}
    m = t.train_step()
    assert m["trained_roles"] == "thinker,solver"
    assert changed(before["thinker"], t, "thinker") and changed(before["solver"], t, "solver")
    assert m["thinker/num_samples"] == 2 * 2  # one per thought
    assert m["solver/num_samples"] == 2 * 2 * 2  # one per joint episode
    assert 0.0 <= m["rollout/joint_acc"] <= 1.0 and "rollout/solo_acc" in m


def test_alternate_schedule_updates_only_the_trained_role(tmp_path):
    t = make_trainer(tmp_path, "policy.parameterisation=separate", "train.schedule=alternate")
    before = {r: snapshot(t, r) for r in ("thinker", "solver")}
    m = t.train_step()
    assert m["trained_roles"] == "thinker"
    assert changed(before["thinker"], t, "thinker") and not changed(before["solver"], t, "solver")
    mid = snapshot(t, "thinker")
    m = t.train_step()
    assert m["trained_roles"] == "solver"
    assert changed(before["solver"], t, "solver") and not changed(mid, t, "thinker")


def test_lora_roles_train_only_their_adapter(tmp_path):
    t = make_trainer(tmp_path, "policy.parameterisation=lora", "train.schedule=alternate", "optim.lr=1e-2")
    base = [p.detach().clone() for n, p in t.roles.model_for("thinker").named_parameters() if "lora_" not in n]
    before = {r: snapshot(t, r) for r in ("thinker", "solver")}
    t.train_step()
    assert changed(before["thinker"], t, "thinker") and not changed(before["solver"], t, "solver")
    after_base = [p for n, p in t.roles.model_for("thinker").named_parameters() if "lora_" not in n]
    assert all(torch.equal(a, b) for a, b in zip(base, after_base))


@pytest.mark.parametrize(
    "overrides",
    [
        ["credit.method=shared"],
        ["credit.method=ccpo_paired", "rollout.answers_per_thought=1"],
        ["credit.method=ccpo_event"],
        ["credit.method=ccpo_tree", "algo.estimator.name=dr_grpo"],
        ["credit.method=ccpo_tree", "credit.options={center: true}", "algo.estimator.name=rloo"],
        ["credit.method=sepo", "credit.rating_max_new_tokens=8", "algo.estimator.name=reinforce_pp"],
        ["algo.estimator.name=reinforce_pp_baseline", "algo.loss.name=gspo"],
        ["algo.loss.dual_clip=3.0", "algo.loss.agg=seq-mean-token-sum-norm", "algo.loss.mask_truncated=true"],
        ["algo.loss.kl_coef=0.1", "algo.loss.entropy_coef=0.01", "optim.ppo_epochs=2", "optim.minibatch_size=2",
         "optim.micro_batch_size=1", "optim.lr_schedule=cosine", "optim.warmup_steps=1"],
    ],
    ids=["shared", "ccpo_paired", "ccpo_event", "ccpo_tree", "tree_center", "sepo", "rf++base_gspo", "dualclip_agg",
         "kl_entropy_epochs"],
)
def test_every_credit_estimator_and_loss_is_reachable_from_config(tmp_path, overrides):
    t = make_trainer(tmp_path, *overrides)
    m = t.train_step()
    assert m["step"] == 1 and m["solver/skipped_nonfinite"] == 0
    assert not [k for k, v in m.items() if isinstance(v, float) and v != v], "no metric may be NaN"
    # SEPO's rating generations are counted, and reported apart, so a budget can leave them out
    assert (m["perf/rating_tokens"] > 0) == ("credit.method=sepo" in overrides)
    assert m["perf/rating_tokens"] < m["perf/generated_tokens"]


def test_common_random_numbers_follow_the_credit_method(tmp_path):
    paired = make_trainer(tmp_path / "p", "credit.method=ccpo_paired", "rollout.answers_per_thought=1")
    assert paired.common_random_numbers
    assert all(p.generation.row_seeded for p in paired.roles.policies().values())
    eps = paired.rollout_step(0)
    joint = [e for e in eps if not e.removed]
    solo = [e for e in eps if e.removed]
    assert len(joint) == len(solo)  # one solo answer per joint answer, each drawn with its partner's noise
    tree = make_trainer(tmp_path / "t")  # ccpo_tree uses only the solo mean: independent draws
    assert not tree.common_random_numbers
    assert not any(p.generation.row_seeded for p in tree.roles.policies().values())
    forced = make_trainer(tmp_path / "f", "rollout.common_random_numbers=true")
    assert forced.common_random_numbers
    off = make_trainer(tmp_path / "o", "credit.method=ccpo_paired", "rollout.common_random_numbers=false")
    assert not off.common_random_numbers


def test_voting_topology_trains_with_loo_credit(tmp_path):
    t = make_trainer(tmp_path, "env.topology=voting", "credit.method=voting", topology="voting")
    before = snapshot(t, "voter")
    m = t.train_step()
    assert m["voter/num_samples"] == 2 * 2 * 3  # problems x episodes x voters
    assert changed(before, t, "voter")


def test_nonfinite_loss_skips_the_update_and_logs_it(tmp_path, monkeypatch):
    import ccpo_agents.trainer.update as upd

    real = upd.sequence_logprobs

    def nan_scores(*args, **kwargs):
        out = real(*args, **kwargs)
        out.logprobs = out.logprobs * float("nan")
        return out

    t = make_trainer(tmp_path)
    before = snapshot(t, "solver")
    monkeypatch.setattr(upd, "sequence_logprobs", nan_scores)
    m = t.train_step()
    assert m["solver/skipped_nonfinite"] >= 1 and m["solver/optimizer_steps"] == 0
    assert not changed(before, t, "solver")
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["solver/skipped_nonfinite"] >= 1


def _comparable(m):
    timing = ("time/", "perf/tokens_per_s", "perf/generated_tokens_per_s", "perf/trained_tokens_per_s",
              "perf/peak_memory")  # fmt: skip  (wall-clock and memory readings differ between runs)
    return {k: v for k, v in m.items() if not k.startswith(timing)}


def test_resume_after_step_one_matches_uninterrupted_run(tmp_path):
    full = make_trainer(tmp_path / "full", "train.steps=2", "train.checkpoint_every=1")
    full_hist = full.train()
    part = make_trainer(tmp_path / "part", "train.steps=1")
    part.train()
    resumed = make_trainer(tmp_path / "part", "train.steps=2", "train.resume=true")
    assert resumed.step == 1
    hist = resumed.train()
    assert _comparable(hist[-1]) == _comparable(full_hist[-1])
    for a, b in zip(full.roles.trainable_parameters("solver"), resumed.roles.trainable_parameters("solver")):
        assert torch.equal(a, b)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2]


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    t = make_trainer(tmp_path, "train.steps=3", "train.checkpoint_every=1", "train.keep_checkpoints=2")
    t.train()
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("step_"))
    assert ckpts == ["step_000002", "step_000003"]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000003"
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_trainer_errors_are_clear(tmp_path):
    # credit x topology: the message says what is missing and which methods fit
    with pytest.raises(ConfigError, match=r"needs \['loo'\], which env.topology='think_solve' cannot provide; "
                                          r"methods for this topology: \[.*'ccpo_tree'"):
        make_trainer(tmp_path, "credit.method=voting")
    with pytest.raises(ConfigError, match=r"needs \['solo', 'thoughts'\], which env.topology='voting' cannot "
                                          r"provide; methods for this topology: \['drmas', 'magrpo', 'shared', 'voting', "
                                          r"'voting_shapley'\]"):
        make_trainer(tmp_path, "env.topology=voting", "credit.method=ccpo_tree", topology="voting")
    # schedule x roles
    with pytest.raises(ConfigError, match="alternate' needs at least two trained roles"):
        make_trainer(tmp_path, "train.schedule=alternate", "train.train_roles=[solver]")
    with pytest.raises(ConfigError, match=r"train.train_roles names role\(s\) \['critic'\]"):
        make_trainer(tmp_path, "train.train_roles=[critic]")
    with pytest.raises(ConfigError, match="answers_per_thought >= 2"):
        make_trainer(tmp_path, "rollout.answers_per_thought=1")
    with pytest.raises(ConfigError, match="divisible"):
        make_trainer(tmp_path, "rollout.prompts_per_step=3", accelerator=_FakeAccelerator(2))
    with pytest.raises(ConfigError, match="model folder '/nonexistent-model' does not exist"):
        make_trainer(tmp_path, "policy.model=/nonexistent-model")


class _FakeAccelerator:
    def __init__(self, n):
        self.num_processes, self.process_index = n, 0
        self.device = torch.device("cpu")
        self.is_main_process = True


def test_periodic_held_out_evaluation_is_logged(tmp_path):
    """``eval.every`` runs Trainer.evaluate during train(): its numbers join that step's history entry and get
    their own metrics.jsonl line (the curve the plot draws next to the training rollouts)."""
    t = make_trainer(tmp_path, "train.steps=2", "eval.every=1", "eval.limit=2")
    history = t.train()
    assert all(0.0 <= h["eval/joint_acc"] <= 1.0 and "eval/arith/pass@1_se" in h for h in history)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], "eval/joint_acc" in m) for m in lines] == [(1, False), (1, True), (2, False), (2, True)]
    assert t.last_evaluation[0] == 2 and set(t.last_evaluation[1]) == {"arith"}


def test_train_solo_adds_the_solo_answers_to_the_solver_batch(tmp_path):
    from ccpo_agents.algos import EstimatorConfig, estimate_advantages
    from ccpo_agents.trainer import RoleBatch, add_solo_answers

    t = make_trainer(tmp_path, "credit.method=ccpo_tree", "credit.train_solo=true")
    episodes = t.rollout_step(0)
    solo = [e for e in episodes if e.removed]
    batch = RoleBatch("solver")
    assert add_solo_answers(batch, solo, "solver", reward_low=-1.0, reward_high=2.0) == len(solo) == 2 * 2
    assert batch.rewards == [2.0 if e.correct else -1.0 for e in solo]
    assert batch.group_keys == [("solo", e.group) for e in solo]
    # GRPO compares each solo answer with the other solo answer to its prompt only: (r - mean) / std
    adv = estimate_advantages(EstimatorConfig(), torch.tensor(batch.rewards), batch.group_keys)
    for g in (0, 1):
        r = torch.tensor([x for x, k in zip(batch.rewards, batch.group_keys) if k == ("solo", g)])
        want = (r - r.mean()) / (r.std() + 1e-6) if r.std() > 0 else torch.zeros_like(r)
        got = adv[torch.tensor([k == ("solo", g) for k in batch.group_keys])]
        assert torch.allclose(got, want, atol=1e-5), (got, want)
    with pytest.raises(ValueError, match="baselined"):
        add_solo_answers(RoleBatch("solver", baselined=True), solo, "solver")

    m = t.train_step()
    assert m["solver/num_samples"] == 2 * 2 * 2 + 2 * 2  # joint episodes + the solo answers
    assert m["thinker/num_samples"] == 2 * 2


def test_train_solo_needs_a_method_with_solo_answers(tmp_path):
    with pytest.raises(ConfigError, match=r"credit.train_solo=true: credit.method='shared' samples no solo answers.*"
                                          r"ccpo_tree"):  # fmt: skip
        make_trainer(tmp_path, "credit.method=shared", "credit.train_solo=true")


def test_sepo_counts_the_rating_tokens_it_decodes(tmp_path):
    """Greedy ratings of a repeated (thought, answer) pair are decoded once, and only once counted: with the
    same seed, SEPO's first step generates ``shared``'s tokens plus its ratings' decoded tokens, exactly."""
    greedy = ["policy.generation.do_sample=false"]  # every sample of a prompt alike, so every rating repeats
    shared = make_trainer(tmp_path / "shared", *greedy, "credit.method=shared").train_step()
    sepo = make_trainer(tmp_path / "sepo", *greedy, "credit.method=sepo", "credit.rating_max_new_tokens=8",
                        "credit.rating_greedy=true").train_step()
    assert sepo["perf/generated_tokens"] - sepo["perf/rating_tokens"] == shared["perf/generated_tokens"]
    # 2 prompts x 4 joint episodes, rated by 2 roles: 16 ratings, of which 2 per role are distinct
    assert 0 < sepo["perf/rating_tokens"] <= 2 * 2 * 8
