"""Random-initialised tiny stand-ins for the paper's model families, each with its real format.

The experiments use qwen2.5-{1.5b,7b}-instruct, llama3.1-8b-instruct, qwen3-4b-base and olmo3-7b-instruct.
Their weights cannot be downloaded here, but the code paths that differ between them can be exercised
without them: the architecture class (``Qwen2ForCausalLM``, ``LlamaForCausalLM``, ``Qwen3ForCausalLM`` with
its q/k norms and explicit ``head_dim``, ``Olmo3ForCausalLM`` with post-norms and sliding-window layers), the
special tokens (Llama's BOS and ``<|eot_id|>``, OLMo's ``<|pad|>``), and the prompt format: ChatML for
Qwen2.5 and OLMo 3, Llama 3's header format, and no chat template at all for the Qwen3 *base* model, which is
prompted with plain text.

Each family gets a byte-level BPE tokenizer trained locally (the same recipe as
:func:`ccpo_agents.models.tiny.train_tokenizer`: one token per digit, lossless round trip) on the tiny
corpus plus conversations rendered in that family's format, so its special tokens and headers are merged.
The shapes keep ``head_dim >= 32`` because vLLM's CPU attention refuses smaller heads.

Differences from the real checkpoints, on purpose: the templates omit tool-calling sections and dates
(Llama 3.1's "Cutting Knowledge Date" preamble, OLMo 3's long function-calling system prompt is shortened);
Llama 3.1's ``llama3`` RoPE scaling is left at the default (it only matters beyond 8K tokens).

Typical use::

    model, tok = build_family("tiny-llama3.1", seed=0)     # or policy.model=tiny-llama3.1
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ccpo_agents.models.tiny import default_corpus

__all__ = ["CHATML_TEMPLATE", "FAMILIES", "LLAMA3_TEMPLATE", "OLMO3_TEMPLATE", "Family", "build_family",
           "family_tokenizer"]  # fmt: skip

# ChatML as in Qwen2.5-Instruct: a default system turn when the conversation has none.
CHATML_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Llama 3 / 3.1 instruct: BOS, then "<|start_header_id|>role<|end_header_id|>\n\n" + content + "<|eot_id|>".
LLAMA3_TEMPLATE = (
    "{{ '<|begin_of_text|>' }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# OLMo 3 instruct: ChatML with OLMo's default system turn (shortened from the release's function-calling one).
OLMO3_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are OLMo, a helpful AI assistant built by Ai2.<|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """One model family's tiny stand-in.

    Attributes:
        name: the registered name (``policy.model=...``).
        real: the checkpoint it stands in for.
        config_class: the ``transformers`` config class name.
        special_tokens: special tokens, in vocabulary order (ids 0, 1, ...).
        eos: the token generation stops on (and the tokenizer's ``eos_token``).
        pad: the padding token.
        bos: the token prepended to plain-text prompts (Llama), or None.
        stop: extra tokens generation stops on.
        chat_template: the Jinja template, or None for a base model (plain prompts).
        shape: config keyword arguments (sizes, norms, RoPE base, tying).
    """

    name: str
    real: str
    config_class: str
    special_tokens: tuple[str, ...]
    eos: str
    pad: str
    bos: str | None = None
    stop: tuple[str, ...] = ()
    chat_template: str | None = None
    shape: dict[str, Any] = field(default_factory=dict)

    @property
    def instruct(self) -> bool:
        """Whether prompts go through a chat template (an instruct model) or are plain text (a base model)."""
        return self.chat_template is not None


_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1, max_position_embeddings=2048)  # fmt: skip  (head_dim 32)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("tiny-qwen2.5", "Qwen/Qwen2.5-1.5B-Instruct (and 7B)", "Qwen2Config",
               ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>", pad="<|endoftext|>",
               stop=("<|endoftext|>",), chat_template=CHATML_TEMPLATE,
               shape=dict(_SMALL, tie_word_embeddings=True, rope_theta=1_000_000.0, rms_norm_eps=1e-6)),
        Family("tiny-llama3.1", "meta-llama/Llama-3.1-8B-Instruct", "LlamaConfig",
               ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                "<|finetune_right_pad_id|>"), eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
               bos="<|begin_of_text|>", stop=("<|end_of_text|>",), chat_template=LLAMA3_TEMPLATE,
               shape=dict(_SMALL, tie_word_embeddings=False, rope_theta=500_000.0, rms_norm_eps=1e-5)),
        Family("tiny-qwen3-base", "Qwen/Qwen3-4B-Base", "Qwen3Config",
               ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|endoftext|>", pad="<|endoftext|>",
               chat_template=None,
               shape=dict(_SMALL, head_dim=32, tie_word_embeddings=True, rope_theta=1_000_000.0, rms_norm_eps=1e-6)),
        Family("tiny-olmo3", "allenai/Olmo-3-7B-Instruct", "Olmo3Config",
               ("<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>", pad="<|pad|>",
               stop=("<|endoftext|>",), chat_template=OLMO3_TEMPLATE,
               shape=dict(_SMALL, tie_word_embeddings=False, rope_theta=500_000.0, rms_norm_eps=1e-6,
                          sliding_window=4096, layer_types=["sliding_attention", "full_attention"])),
    )
}


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; valid: {sorted(FAMILIES)}")
    return FAMILIES[name]


def _corpus(family: Family) -> list[str]:
    """The tiny corpus plus conversations in the family's own format (so its headers get merged)."""
    texts = [t for t in default_corpus() if "<|im_start|>" not in t]
    if family.chat_template is None:
        return texts
    from jinja2 import Template

    template = Template(family.chat_template)
    problems = [t for t in texts if t.startswith("Compute (")][:200]
    for i, problem in enumerate(problems):
        messages = [{"role": "system", "content": "You are the Solver."}] if i % 2 else []
        messages += [{"role": "user", "content": problem}, {"role": "assistant", "content": "The answer is 3."}]
        texts.append(template.render(messages=messages, add_generation_prompt=False))
    return texts


def family_tokenizer(name: str, texts: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with family ``name``'s special tokens, chat template and BOS rule.

    Trained like :func:`ccpo_agents.models.tiny.train_tokenizer` (digits split one by one, no prefix space, so
    ``decode(encode(s)) == s``). A family with a BOS token (Llama) prepends it when plain text is encoded with
    special tokens, as the real tokenizer does; a rendered chat template already starts with it.
    """
    family = _family(name)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(family.special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tok.train_from_iterator(list(_corpus(family) if texts is None else texts), trainer=trainer)
    if family.bos is not None:
        bos_id = tok.token_to_id(family.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B", special_tokens=[(family.bos, bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=family.eos, pad_token=family.pad, bos_token=family.bos,
        chat_template=family.chat_template, model_max_length=2048,
    )  # fmt: skip


def build_family(name: str, *, seed: int = 0, vocab_size: int = 512, model_vocab_size: int | None = None,
                 **shape: Any) -> tuple[Any, PreTrainedTokenizerFast]:  # fmt: skip
    """``(model, tokenizer)`` of family ``name`` (a key of :data:`FAMILIES`), randomly initialised with ``seed``.

    ``vocab_size`` is the tokenizer's; ``model_vocab_size`` the embedding's rows (default: the tokenizer's
    size; a real model's 151,936 gives its shape and cost, the tokenizer's ids being a subset).
    ``shape`` overrides config fields (e.g. ``num_hidden_layers=4``). The global torch RNG is untouched
    (``fork_rng``). The generation config stops on the family's end-of-turn token and its other stop tokens.
    """
    import transformers
    from transformers import AutoModelForCausalLM

    family = _family(name)
    tok = family_tokenizer(name, vocab_size=vocab_size)
    ids = {t: tok.convert_tokens_to_ids(t) for t in family.special_tokens}
    config_kwargs = dict(family.shape, **shape)
    layers = config_kwargs["num_hidden_layers"]
    if "layer_types" in config_kwargs and len(config_kwargs["layer_types"]) != layers:  # OLMo 3: every 4th full
        config_kwargs["layer_types"] = ["full_attention" if (i + 1) % 4 == 0 else "sliding_attention"
                                        for i in range(layers)]  # fmt: skip
    if model_vocab_size is not None and model_vocab_size < len(tok):
        raise ValueError(f"model_vocab_size {model_vocab_size} < the tokenizer's {len(tok)} tokens")
    head_dim = config_kwargs.get("head_dim", config_kwargs["hidden_size"] // config_kwargs["num_attention_heads"])
    if head_dim < 32:
        raise ValueError(f"{name}: head_dim {head_dim} < 32; vLLM's CPU attention needs head_dim >= 32")
    config = getattr(transformers, family.config_class)(
        vocab_size=model_vocab_size or len(tok), bos_token_id=ids.get(family.bos) if family.bos else None,
        eos_token_id=ids[family.eos], pad_token_id=ids[family.pad], **config_kwargs,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    stops = [ids[family.eos]] + [ids[t] for t in family.stop if t != family.eos]
    model.generation_config.eos_token_id = stops
    model.generation_config.pad_token_id = ids[family.pad]
    model.generation_config.bos_token_id = ids.get(family.bos) if family.bos else None
    return model.eval(), tok
