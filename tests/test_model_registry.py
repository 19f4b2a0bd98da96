"""Model names: local folders, registered names (tiny shapes, warm starts), Hub ids, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccpo_agents.models.registry import MODELS, ModelNotFoundError, list_models, register_model, resolve_model
from ccpo_agents.policies.loading import load_model_and_tokenizer


def test_resolution_order(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert resolve_model(str(tiny_model_dir)).kind == "folder"
    assert resolve_model("tiny").kind == "registered" and resolve_model("arith-warmstart").kind == "registered"
    assert resolve_model("Qwen/Qwen2.5-1.5B-Instruct").kind == "hub"
    assert {"tiny", "tiny-small", "arith-warmstart", "arith-warmstart-freeride"} <= set(list_models())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model("./runs/not-there")
    with pytest.raises(ModelNotFoundError, match="Did you mean 'tiny-small'"):
        resolve_model("tiny-smal")


def test_a_registered_builder_is_what_the_loader_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from ccpo_agents.models import registry

    monkeypatch.setattr(registry, "MODELS", MODELS.copy())
    calls = []

    def build(name: str, seed: int = 0):
        from ccpo_agents.models.tiny import build_tiny

        calls.append((name, seed))
        return build_tiny("tiny", seed=seed)

    register_model("my-tiny", build=build, description="a test model")
    model, tok = load_model_and_tokenizer("my-tiny", seed=3, device="cpu")
    assert calls == [("my-tiny", 3)] and tok.eos_token == "<|im_end|>" and not model.training
    with pytest.raises(ValueError, match="already registered"):
        register_model("my-tiny", build=build)
    with pytest.raises(ValueError, match="exactly one of build= or folder="):
        register_model("other")


def test_hub_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set it here too
    with pytest.raises(ModelNotFoundError, match=r"could not load 'nobody/no-such-model' from the Hugging Face Hub "
                                                 r"\(HF_HUB_OFFLINE is set"):
        load_model_and_tokenizer("nobody/no-such-model")


def test_public_constructors_say_what_is_valid(tmp_path: Path) -> None:
    """The same one-line errors reach users who build policies and envs directly, not only through the CLI."""
    from ccpo_agents.config.policy import PolicyConfig
    from ccpo_agents.policies import HFPolicy, RoleModels
    from ccpo_env import ThinkSolveEnv
    from ccpo_env.data import DatasetArgumentError, UnknownDatasetError

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        HFPolicy.from_pretrained(str(tmp_path / "nope"))
    with pytest.raises(ModelNotFoundError, match="Did you mean 'tiny'"):
        RoleModels.from_config(PolicyConfig(model="tinyy"))
    with pytest.raises(UnknownDatasetError, match="Did you mean 'gsm8k'"):
        ThinkSolveEnv("gsm8", split="test")
    with pytest.raises(DatasetArgumentError, match=r"its options: \['cache_dir', 'hub_path'\]"):
        ThinkSolveEnv("gsm8k", dataset_options={"level": 1})
    with pytest.raises(DatasetArgumentError, match="has no split 'dev'"):
        ThinkSolveEnv("arith", split="dev")
