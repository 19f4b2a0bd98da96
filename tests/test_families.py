"""The paper's model families as tiny random stand-ins: format, generation, log-probs, LoRA, training, resume."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import coin_verifier

from ccpo_agents.config import load_config
from ccpo_agents.models.families import FAMILIES, build_family
from ccpo_agents.models.registry import list_models, resolve_model
from ccpo_agents.policies import (
    GenerationConfig,
    HFPolicy,
    LoraSettings,
    RoleModels,
    pad_batch,
    sequence_logprobs,
)
from ccpo_agents.policies.base import render_prompt
from ccpo_agents.policies.loading import load_model_and_tokenizer
from ccpo_agents.trainer import Trainer
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv

NAMES = sorted(FAMILIES)
OBS = ["Compute (23*4)+(17*3).", "Compute 1+2."]
ARCH = {"tiny-qwen2.5": "Qwen2ForCausalLM", "tiny-llama3.1": "LlamaForCausalLM",
        "tiny-qwen3-base": "Qwen3ForCausalLM", "tiny-olmo3": "Olmo3ForCausalLM"}  # fmt: skip
# Each family's prompt for [system="S", user="U"], written out by hand from the real formats.
EXPECTED_PROMPT = {
    "tiny-qwen2.5": "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
    "tiny-olmo3": "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
    "tiny-llama3.1": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                     "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "tiny-qwen3-base": "S\n\nU",  # a base model: plain text, no template
}


@pytest.fixture(scope="module")
def built() -> dict:
    return {name: build_family(name, seed=0) for name in NAMES}


def _recompute(model, gens):
    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
    with torch.no_grad():
        return sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_mask).logprobs


@pytest.mark.parametrize("name", NAMES)
def test_family_architecture_tokenizer_and_prompt_format(built, name):
    model, tok = built[name]
    assert type(model).__name__ == ARCH[name] and resolve_model(name).kind == "registered" and name in list_models()
    cfg = model.config
    assert (cfg.head_dim if getattr(cfg, "head_dim", None) else cfg.hidden_size // cfg.num_attention_heads) >= 32
    text, templated = render_prompt(tok, "U", "S")
    assert text == EXPECTED_PROMPT[name] and templated == FAMILIES[name].instruct
    # every special token is one token; the round trip is lossless; the model stops on the family's end token
    for special in FAMILIES[name].special_tokens:
        assert tok(special, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(special)]
    s = "Compute (23*4)+(17*3). The answer is \\boxed{143}."
    assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s
    assert tok.convert_tokens_to_ids(FAMILIES[name].eos) in model.generation_config.eos_token_id
    # same seed -> same weights; another seed -> other weights
    again, _ = build_family(name, seed=0)
    other, _ = build_family(name, seed=1)
    w = model.get_input_embeddings().weight
    assert torch.equal(w, again.get_input_embeddings().weight)
    assert not torch.equal(w, other.get_input_embeddings().weight)


def test_llama_plain_text_gets_bos_but_a_rendered_template_not_twice(built):
    _, tok = built["tiny-llama3.1"]
    bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert tok("hi")["input_ids"][0] == bos and tok("hi", add_special_tokens=False)["input_ids"][0] != bos
    policy = HFPolicy(built["tiny-llama3.1"][0], tok, system_prompt="S", generation=GenerationConfig(max_new_tokens=2))
    assert policy.encode("U").count(bos) == 1
    base_tok = copy.deepcopy(tok)
    base_tok.chat_template = None  # the same tokenizer as a base model: plain prompt with one BOS
    plain = HFPolicy(built["tiny-llama3.1"][0], base_tok, system_prompt="S", generation=GenerationConfig(max_new_tokens=2))
    ids = plain.encode("U")
    assert ids[0] == bos and ids.count(bos) == 1 and base_tok.decode(ids[1:]) == "S\n\nU"


@pytest.mark.parametrize("name", NAMES)
def test_generate_and_logprobs_match_recomputation(built, name):
    model, tok = built[name]
    policy = HFPolicy(model, tok, role="solver", system_prompt="You are the Solver.",
                      generation=GenerationConfig(max_new_tokens=8))  # fmt: skip
    gens = policy(OBS * 2, seeds=[0, 1, 2, 3])
    assert [g.token_ids for g in gens[:2]] != [g.token_ids for g in gens[2:]]  # other seeds, other samples
    assert tok.decode(gens[0].prompt_token_ids) == render_prompt(tok, OBS[0], "You are the Solver.")[0]
    ref = _recompute(model, gens)
    gap = max((ref[i, : len(g.token_ids)] - torch.tensor(g.logprobs)).abs().max().item() for i, g in enumerate(gens))
    assert gap < 1e-4
    again = policy(OBS * 2, seeds=[0, 1, 2, 3])
    assert [g.token_ids for g in again] == [g.token_ids for g in gens]


@pytest.mark.parametrize("name", NAMES)
def test_lora_per_role_on_each_family(built, name):
    model, tok = copy.deepcopy(built[name][0]), built[name][1]
    roles = RoleModels.lora(model, tok, ("thinker", "solver"), LoraSettings(r=4),
                            generation=GenerationConfig(max_new_tokens=6))  # fmt: skip
    names = {r: {n for n, _ in roles.named_trainable_parameters(r)} for r in roles.roles}
    assert names["thinker"] and not names["thinker"] & names["solver"]
    gens = roles.policy_for("solver")(OBS, seeds=[0, 1])
    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
    with roles.activate("thinker") as m:
        sequence_logprobs(m, batch.input_ids, batch.attention_mask, batch.completion_mask).logprobs.sum().backward()
    assert all(p.grad is not None for p in roles.trainable_parameters("thinker"))
    assert all(p.grad is None for p in roles.trainable_parameters("solver"))


SMALL = [
    "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.answers_per_thought=2", "rollout.num_solo=2",
    "policy.generation.max_new_tokens=6", "train.progress=false", "train.plot=false", "train.tensorboard=false",
    "optim.lr=1e-2", "eval.limit=0",
]  # fmt: skip


def _trainer(out, name, *overrides):
    cfg = load_config(overrides=[*SMALL, f"policy.model={name}", f"train.output_dir={out}", *overrides])
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    return Trainer(cfg, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_two_lora_trainer_steps_checkpoint_and_exact_resume(tmp_path, name):
    full = _trainer(tmp_path / "full", name, "policy.parameterisation=lora", "train.steps=2")
    before = [p.detach().clone() for p in full.roles.trainable_parameters("solver")]
    hist = full.train()
    assert [h["step"] for h in hist] == [1, 2] and all(h["solver/optimizer_steps"] >= 1 for h in hist)
    assert any(not torch.equal(a, b) for a, b in zip(before, full.roles.trainable_parameters("solver")))
    # instruct families are prompted through their template, the base model with plain text
    prompt_ids = full.roles.policy_for("solver")(OBS[:1])[0].prompt_token_ids
    assert full.roles.tokenizer_for("solver").decode(prompt_ids).startswith("<|") == FAMILIES[name].instruct
    part = _trainer(tmp_path / "part", name, "policy.parameterisation=lora", "train.steps=1")
    part.train()
    resumed = _trainer(tmp_path / "part", name, "policy.parameterisation=lora", "train.steps=2", "train.resume=true")
    assert resumed.step == 1
    resumed.train()
    for role in ("thinker", "solver"):
        for a, b in zip(full.roles.trainable_parameters(role), resumed.roles.trainable_parameters(role)):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["tiny-llama3.1", "tiny-qwen3-base"])
def test_a_saved_family_folder_loads_as_policy_model(tmp_path, built, name):
    model, tok = built[name]
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, ltok = load_model_and_tokenizer(str(tmp_path / "m"), device="cpu")
    assert type(loaded).__name__ == ARCH[name] and ltok.chat_template == tok.chat_template
    ids = torch.tensor([tok("Compute 1+2.")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
    assert render_prompt(ltok, "U", "S")[0] == EXPECTED_PROMPT[name]
    t = _trainer(tmp_path / "run", str(tmp_path / "m"), "train.steps=1")
    assert type(t.roles.model_for("solver")).__name__ == ARCH[name]
    assert t.train_step()["step"] == 1


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown model family 'tiny-gpt2'; valid: \['tiny-llama3.1'"):
        build_family("tiny-gpt2")
