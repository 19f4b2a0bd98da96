"""Shared pytest fixtures: a tiny Qwen2-style model and a locally trained tokenizer (no download).

The tokenizer and model are built once per session, seeded; tests that modify weights or register hooks
get a private copy through the function-scoped ``tiny_model`` fixture.
"""

from __future__ import annotations

import os

# OpenMP's default busy-waiting makes 2 torch threads several times slower on a shared 2-core
# machine; set before any test imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy  # noqa: E402
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """Byte-level BPE tokenizer (512 tokens, ChatML template) trained on the built-in corpus."""
    from ccpo_agents.models.tiny import train_tokenizer

    return train_tokenizer()


@pytest.fixture(scope="session")
def _tiny_model_session(tiny_tokenizer: Any) -> Any:
    from ccpo_agents.models.tiny import build_tiny_model

    return build_tiny_model(tiny_tokenizer, seed=0)


@pytest.fixture
def tiny_model(_tiny_model_session: Any) -> Any:
    """A private copy (eval mode) of the ~110K-parameter tiny Qwen2 model; safe to modify."""
    return copy.deepcopy(_tiny_model_session).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, _tiny_model_session: Any, tiny_tokenizer: Any) -> Path:
    """The tiny model and tokenizer saved with ``save_pretrained`` (loadable with ``Auto*.from_pretrained``)."""
    from ccpo_agents.models.tiny import save_tiny

    return save_tiny(_tiny_model_session, tiny_tokenizer, tmp_path_factory.mktemp("tiny-model"))
