"""Tiny Qwen2-style causal LMs with a locally trained tokenizer: no download, fully deterministic.

Tests, CPU demos and the embedded default configuration need a real ``transformers`` model (so the real
generation, chat-template and loading code paths run) without touching the Hugging Face Hub. This module
trains a byte-level BPE tokenizer with the ``tokenizers`` library on a small built-in corpus (printable
ASCII plus arithmetic problems, plans and ``\\boxed{}`` answers in the style of the ``arith`` task), gives
it a ChatML chat template (the one Qwen2 instruct models use), and builds a randomly initialised
``Qwen2ForCausalLM`` sized for it.

Digits are pre-tokenised one by one, so ``143`` is always ``1 4 3``: a small model can learn digit-wise
arithmetic, which it cannot when numbers are merged into arbitrary multi-digit tokens.

Typical use::

    tok = train_tokenizer()                       # default corpus, seeded
    model = build_tiny_model(tok, seed=0)         # ~110K parameters with the defaults
    save_tiny(model, tok, "/tmp/tiny")            # then AutoModelForCausalLM/AutoTokenizer.from_pretrained
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

__all__ = [
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "IM_START",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "TINY_PRESETS",
    "build_tiny",
    "build_tiny_model",
    "default_corpus",
    "load_tiny",
    "save_tiny",
    "train_tokenizer",
]

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, EOS_TOKEN)

# ChatML, as used by Qwen2 instruct models: each message is
# "<|im_start|>{role}\n{content}<|im_end|>\n", and the generation prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Size presets. "tiny" is for unit tests (~110K parameters with the default 512-token vocabulary);
# the larger ones give a model that can actually learn the arith task on a CPU in minutes.
TINY_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, num_layers=2, heads=4, kv_heads=2, intermediate=128),
    "tiny-small": dict(hidden_size=256, num_layers=4, heads=4, kv_heads=2, intermediate=768),
    "tiny-base": dict(hidden_size=384, num_layers=6, heads=6, kv_heads=2, intermediate=1152),
}

_WORDS = (
    "the", "answer", "is", "first", "then", "next", "finally", "compute", "add", "subtract", "multiply",
    "divide", "sum", "product", "result", "step", "plan", "solve", "problem", "thought", "hint", "use", "so",
    "we", "get", "value", "equals", "total", "remainder", "you", "are", "thinker", "solver", "voter",
    "helpful", "assistant", "write", "key", "steps", "do", "not", "give", "final", "put", "it", "on", "last",
    "line",
)  # fmt: skip


def default_corpus(num_problems: int = 400, seed: int = 0) -> list[str]:
    """A small deterministic training corpus for the tokenizer.

    Contains every printable ASCII character, arithmetic problems in the arith style
    (``Compute (23*4)+(17*3).``), worked plans, ``\\boxed{...}`` answers, some LaTeX and role prompts,
    and chat-formatted conversations so that role names and the template's newlines get merged.
    """
    rng = random.Random(seed)
    texts = [string.printable, string.ascii_letters, string.digits + string.punctuation]
    texts += [r"\boxed{", r"\frac{1}{2}", r"\sqrt{2}", r"x^2 + y^2", r"\cdot", r"\left(", r"\right)", r"\text{"]
    ops = "+-*"
    for _ in range(num_problems):
        a, b, c, d = (rng.randint(1, 99) for _ in range(4))
        o1, o2, o3 = (rng.choice(ops) for _ in range(3))
        left, right = eval(f"{a}{o1}{b}"), eval(f"{c}{o3}{d}")  # noqa: S307 - digits and +-* only
        total = eval(f"({left}){o2}({right})")  # noqa: S307
        problem = f"Compute ({a}{o1}{b}){o2}({c}{o3}{d})."
        plan = f"First compute {a}{o1}{b} = {left}. Then {c}{o3}{d} = {right}. Finally combine with {o2}."
        answer = f"The answer is \\boxed{{{total}}}."
        texts += [problem, plan, answer]
        texts.append(
            f"{IM_START}system\nYou are the Solver.{EOS_TOKEN}\n{IM_START}user\n{problem}{EOS_TOKEN}\n"
            f"{IM_START}assistant\n{plan} {answer}{EOS_TOKEN}\n"
        )
        texts.append(" ".join(rng.choice(_WORDS) for _ in range(12)).capitalize() + ".")
    return texts


def train_tokenizer(
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    *,
    min_frequency: int = 2,
    chat_template: str = CHAT_TEMPLATE,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with ChatML special tokens and return it as a HF fast tokenizer.

    Args:
        texts: training texts; defaults to :func:`default_corpus`. Training is deterministic for a given
            corpus and vocabulary size.
        vocab_size: target vocabulary size including the 256 byte symbols and the 3 special tokens (the result
            can be smaller when the corpus has too few frequent pairs).
        min_frequency: minimum pair count for a merge.
        chat_template: Jinja chat template; the default is ChatML.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token="<|im_end|>"`` and ``pad_token="<|endoftext|>"`` (Qwen2
        conventions), no BOS token, that encodes any string losslessly (byte level) and splits digits.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} for a byte-level BPE")
    tok = Tokenizer(models.BPE())
    # Digits first (one token each), then GPT-2 style byte-level splitting; no prefix space so that
    # decode(encode(s)) == s exactly.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(default_corpus() if texts is None else texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=chat_template,
        model_max_length=2048,
    )


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    max_position: int = 2048,
    tie_embeddings: bool = True,
    seed: int = 0,
) -> Qwen2ForCausalLM:
    """A randomly initialised ``Qwen2ForCausalLM`` sized for ``tokenizer``.

    The global torch RNG is left untouched (initialisation runs under ``torch.random.fork_rng``), so
    building a model never perturbs the caller's random stream. Same arguments and seed -> same weights.
    The generation config stops on ``<|im_end|>`` and ``<|endoftext|>`` and pads with ``<|endoftext|>``.
    """
    if hidden_size % heads or heads % kv_heads:
        raise ValueError("hidden_size must be divisible by heads, and heads by kv_heads")
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = [eos_id, pad_id]
    model.generation_config.pad_token_id = pad_id
    model.generation_config.bos_token_id = None
    return model.eval()


def build_tiny(
    preset: str = "tiny", *, seed: int = 0, vocab_size: int = 512, texts: Iterable[str] | None = None
) -> tuple[Qwen2ForCausalLM, PreTrainedTokenizerFast]:
    """Tokenizer plus model for a named preset of :data:`TINY_PRESETS` (e.g. ``"tiny"``, ``"tiny-small"``)."""
    if preset not in TINY_PRESETS:
        raise ValueError(f"unknown tiny preset {preset!r}; valid: {sorted(TINY_PRESETS)}")
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    return build_tiny_model(tok, seed=seed, **TINY_PRESETS[preset]), tok


def save_tiny(model: Any, tokenizer: PreTrainedTokenizerBase, path: str | Path) -> Path:
    """Save model and tokenizer with ``save_pretrained`` so ``Auto*.from_pretrained(path)`` loads them."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_tiny(path: str | Path) -> tuple[Any, PreTrainedTokenizerBase]:
    """Load a saved tiny model and tokenizer through the ordinary ``Auto*`` classes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
