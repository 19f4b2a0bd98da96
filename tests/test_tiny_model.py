"""Tiny model + locally trained tokenizer: tokenisation, chat template, determinism, save/load round trip."""

from __future__ import annotations

import string

import pytest
import torch

from ccpo_agents.models.tiny import (
    CHAT_TEMPLATE,
    EOS_TOKEN,
    PAD_TOKEN,
    TINY_PRESETS,
    build_tiny_model,
    default_corpus,
    load_tiny,
    train_tokenizer,
)


def test_digits_are_single_tokens(tiny_tokenizer):
    tokens = tiny_tokenizer.tokenize("Compute (23*4)+(17*3). \\boxed{143} 1000000")
    digit_tokens = [t for t in tokens if any(ch.isdigit() for ch in t)]
    assert digit_tokens, tokens
    assert all(len(t) == 1 for t in digit_tokens), digit_tokens
    assert [t for t in tokens if t.isdigit()][-7:] == list("1000000")


@pytest.mark.parametrize(
    "text",
    [string.printable, "Compute (23*4)+(17*3). The answer is \\boxed{143}.", "unicode: héllo ∑ 数学 🙂", "  a\n\n b\t"],
)
def test_lossless_round_trip(tiny_tokenizer, text):
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.decode(ids) == text


def test_special_tokens(tiny_tokenizer):
    assert tiny_tokenizer.eos_token == EOS_TOKEN and tiny_tokenizer.pad_token == PAD_TOKEN
    assert tiny_tokenizer.bos_token is None
    for tok in ("<|im_start|>", EOS_TOKEN, PAD_TOKEN):
        assert len(tiny_tokenizer(tok, add_special_tokens=False)["input_ids"]) == 1
    # No BOS/EOS is added implicitly (chat prompts carry their own markers).
    assert tiny_tokenizer("ab")["input_ids"] == tiny_tokenizer("ab", add_special_tokens=False)["input_ids"]
    assert len(tiny_tokenizer) == 512


def test_chat_template_round_trip(tiny_tokenizer):
    messages = [
        {"role": "system", "content": "You are the Solver."},
        {"role": "user", "content": "Compute 2+3."},
    ]
    text = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are the Solver.<|im_end|>\n"
        "<|im_start|>user\nCompute 2+3.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.decode(ids) == text
    assert ids.count(tiny_tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    no_prompt = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert text.startswith(no_prompt) and not no_prompt.endswith("assistant\n")
    assert tiny_tokenizer.chat_template == CHAT_TEMPLATE


def test_tokenizer_training_is_deterministic(tiny_tokenizer):
    again = train_tokenizer()
    assert again.get_vocab() == tiny_tokenizer.get_vocab()
    small = train_tokenizer(default_corpus(num_problems=20, seed=1), vocab_size=300)
    assert len(small) <= 300
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["abc"], vocab_size=100)


def test_build_model_deterministic_and_small(tiny_tokenizer):
    rng_before = torch.get_rng_state()
    a = build_tiny_model(tiny_tokenizer, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before), "building must not consume the global RNG"
    b = build_tiny_model(tiny_tokenizer, seed=0)
    c = build_tiny_model(tiny_tokenizer, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    n_params = sum(p.numel() for p in a.parameters())
    assert 50_000 < n_params < 300_000
    assert a.config.vocab_size == len(tiny_tokenizer)
    assert a.config.eos_token_id == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.eos_token_id in a.generation_config.eos_token_id


def test_presets_scale_up(tiny_tokenizer):
    model = build_tiny_model(tiny_tokenizer, **TINY_PRESETS["tiny-small"])
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 10_000_000
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_model(tiny_tokenizer, hidden_size=30, heads=4)


def test_save_and_load_with_auto_classes(tiny_model_dir, _tiny_model_session, tiny_tokenizer):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert tok.chat_template == tiny_tokenizer.chat_template
    assert tok.eos_token == EOS_TOKEN and tok.pad_token == PAD_TOKEN
    text = "Compute (23*4)+(17*3)."
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == tiny_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, _tiny_model_session(ids).logits, atol=1e-6)
    assert model.generation_config.eos_token_id == _tiny_model_session.generation_config.eos_token_id
    model2, tok2 = load_tiny(tiny_model_dir)
    assert type(model2).__name__ == "Qwen2ForCausalLM" and tok2.chat_template == CHAT_TEMPLATE
