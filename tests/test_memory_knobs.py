"""Memory and throughput knobs: token-budget micro-batches, gradient checkpointing, per-step perf metrics."""

from __future__ import annotations

import json
import resource

import pytest
import torch
from helpers import coin_verifier

from ccpo_agents.config import ConfigError, load_config
from ccpo_agents.trainer import Trainer
from ccpo_agents.trainer.update import micro_batches
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv

SMALL = [
    "policy.model=tiny-qwen2.5",
    "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.answers_per_thought=2", "rollout.num_solo=2",
    "policy.generation.max_new_tokens=8", "train.progress=false", "train.plot=false", "train.tensorboard=false",
    "optim.lr=1e-3", "eval.limit=0", "train.train_roles=[solver]",
]  # fmt: skip


def make_trainer(tmp_path, *overrides):
    cfg = load_config(overrides=[*SMALL, f"train.output_dir={tmp_path}", *overrides])
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    return Trainer(cfg, env=env)


def test_micro_batches_respect_rows_and_padded_token_budget():
    lengths = [(3, 2), (3, 5), (2, 1), (10, 10), (1, 1)]
    # [0,1]: 2 rows x (3+5) = 16 fits; adding 2 would cost 3 x 8 = 24; 3 alone costs 20 > 16 but cannot split
    assert micro_batches([0, 1, 2, 3, 4], lengths, 16, 16) == [[0, 1], [2], [3], [4]]
    assert micro_batches([0, 1, 2, 3, 4], lengths, 2) == [[0, 1], [2, 3], [4]]  # no budget: rows only
    assert micro_batches([4, 2, 0], lengths, 2, 100) == [[4, 2], [0]]  # order kept, the row cap still applies
    assert micro_batches([], lengths, 4, 8) == []
    with pytest.raises(ConfigError, match=r"optim.micro_batch_tokens must be >= 0 \(0 = no token bound\), got -1"):
        load_config(overrides=["optim.micro_batch_tokens=-1"])


def _forward_shapes(monkeypatch):
    import ccpo_agents.trainer.update as upd

    shapes = []
    real = upd.sequence_logprobs

    def spy(model, input_ids, *args, **kwargs):
        shapes.append(tuple(input_ids.shape))
        return real(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(upd, "sequence_logprobs", spy)
    return shapes


def test_token_budget_bounds_every_forward_and_gives_the_same_update(tmp_path, monkeypatch):
    plain = make_trainer(tmp_path / "plain")
    m_plain = plain.train_step()
    shapes = _forward_shapes(monkeypatch)
    budget = make_trainer(tmp_path / "budget", "optim.micro_batch_tokens=64")
    m_budget = budget.train_step()
    assert len(shapes) > 1, "the budget must split the role batch into several micro-batches"
    assert all(rows * width <= 64 or rows == 1 for rows, width in shapes), shapes
    assert sum(rows for rows, _ in shapes) == m_budget["solver/num_samples"]
    # gradient accumulation over smaller micro-batches computes the same gradient (up to summation order)
    assert m_budget["solver/grad_norm"] == pytest.approx(m_plain["solver/grad_norm"], rel=1e-5)
    for a, b in zip(plain.roles.trainable_parameters("solver"), budget.roles.trainable_parameters("solver")):
        assert torch.allclose(a, b, atol=1e-5)


def test_gradient_checkpointing_recomputes_layers_and_gives_the_same_update(tmp_path):
    def run(out, *overrides):
        t = make_trainer(out, *overrides)
        calls = []
        attn = t.roles.model_for("solver").model.layers[0].self_attn
        handle = attn.register_forward_hook(lambda mod, inp, out: calls.append(torch.is_grad_enabled()))
        m = t.train_step()
        handle.remove()
        return t, m, calls

    plain, m_plain, calls_plain = run(tmp_path / "plain")
    ckpt, m_ckpt, calls_ckpt = run(tmp_path / "ckpt", "policy.gradient_checkpointing=true")
    layer = ckpt.roles.model_for("solver").model.layers[0]
    assert layer.gradient_checkpointing and not layer.training, "checkpointing on, model left in eval mode"
    # generation calls are the same; the training forward runs the attention once more (backward recompute)
    assert calls_ckpt.count(False) == calls_plain.count(False)
    assert len(calls_ckpt) > len(calls_plain)
    assert m_ckpt["solver/grad_norm"] == pytest.approx(m_plain["solver/grad_norm"], rel=1e-6)
    for a, b in zip(plain.roles.trainable_parameters("solver"), ckpt.roles.trainable_parameters("solver")):
        assert torch.allclose(a, b, atol=1e-6)


def test_gradient_checkpointing_with_lora_roles_trains_the_adapter(tmp_path):
    t = make_trainer(tmp_path, "policy.parameterisation=lora", "policy.gradient_checkpointing=true", "optim.lr=1e-2")
    before = [p.detach().clone() for p in t.roles.trainable_parameters("solver")]
    m = t.train_step()
    assert m["solver/optimizer_steps"] == 1 and m["solver/grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, t.roles.trainable_parameters("solver")))


def test_each_step_logs_peak_memory_and_throughput(tmp_path):
    t = make_trainer(tmp_path, "train.steps=2", "optim.ppo_epochs=2")
    t.train()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # CPU: the process high-water mark
    for r in rows:
        # only the solver trains: its completion tokens, once per PPO epoch
        assert r["perf/trained_tokens"] == pytest.approx(2 * r["solver/response_len"] * r["solver/num_samples"])
        assert r["perf/trained_tokens_per_s"] > 0 and r["perf/generated_tokens_per_s"] > 0
        assert r["perf/generated_tokens"] > 0
        assert 10 < r["perf/peak_memory_mb"] <= rss_mb
    assert rows[1]["perf/peak_memory_mb"] >= rows[0]["perf/peak_memory_mb"]
