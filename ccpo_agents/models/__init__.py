"""Model builders: tiny Qwen2-style models with a locally trained tokenizer (tests, CPU demos)."""

from ccpo_agents.models.tiny import (
    CHAT_TEMPLATE,
    TINY_PRESETS,
    build_tiny,
    build_tiny_model,
    default_corpus,
    load_tiny,
    save_tiny,
    train_tokenizer,
)

__all__ = [
    "CHAT_TEMPLATE",
    "TINY_PRESETS",
    "build_tiny",
    "build_tiny_model",
    "default_corpus",
    "load_tiny",
    "save_tiny",
    "train_tokenizer",
]
