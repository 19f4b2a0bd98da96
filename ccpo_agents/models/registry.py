"""Model names: what ``policy.model=...`` may say, and where each name's weights come from.

A model reference is resolved in this order (:func:`resolve_model`):

1. an existing local folder: loaded with ``from_pretrained`` (it must hold a ``config.json``);
2. a registered name (:func:`register_model`): the tiny random shapes (``tiny``, ``tiny-small``, ...) build
   in memory; the warm starts (``arith-warmstart``, ...) resolve to a folder (shipped or built on first use);
   the paper's families (``tiny-qwen2.5``, ``tiny-llama3.1``, ``tiny-qwen3-base``, ``tiny-olmo3``) likewise;
3. anything else that could be a Hugging Face Hub id (``Qwen/Qwen2.5-1.5B-Instruct``): loaded by
   ``from_pretrained``, which needs network access or a copy in the HF cache.

A reference that looks like a path (``/``, ``./``, ``~``) but does not exist is an error at once, and so is a
bare name that is neither registered nor a Hub-shaped id: :class:`ModelNotFoundError` says what was tried
and what is valid. This module is torch-free: builders may be given as ``"module:function"`` entry points
(as gymnasium's ``register(entry_point=...)`` does), imported only when a model is actually built.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccpo_env.registry import Registry

__all__ = [
    "MODELS",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelSource",
    "list_models",
    "register_model",
    "hub_error",
    "resolve_model",
]


class ModelNotFoundError(FileNotFoundError):
    """A model reference that is neither a local folder, a registered name nor a loadable Hub id."""

    def __str__(self) -> str:  # FileNotFoundError would format (errno, strerror) otherwise
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelEntry:
    """A registered model name.

    Attributes:
        name: the name users write in ``policy.model``.
        description: one line for :func:`list_models`.
        build: ``(name, seed) -> (model, tokenizer)`` building the model in memory (random tiny shapes), or a
            ``"module:function"`` entry point of one; or None.
        folder: ``(name) -> Path`` of a ``save_pretrained`` folder (shipped, cached or built on first use), or
            an entry point of one; or None.
    """

    name: str
    description: str = ""
    build: Callable[[str, int], tuple[Any, Any]] | str | None = None
    folder: Callable[[str], Path] | str | None = None

    def build_model(self, seed: int = 0) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of a ``build`` entry."""
        return _callable(self.build)(self.name, seed=seed)

    def resolve_folder(self) -> Path:
        """The folder of a ``folder`` entry (building it first if the entry does that)."""
        return Path(_callable(self.folder)(self.name))


def _callable(target: Callable[..., Any] | str | None) -> Callable[..., Any]:
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
    if target is None:
        raise ValueError("this model entry has no such builder")
    return target


@dataclass(frozen=True)
class ModelSource:
    """Where a reference resolved to: ``kind`` is ``"folder"``, ``"registered"`` or ``"hub"``."""

    kind: str
    reference: str
    entry: ModelEntry | None = None
    path: Path | None = None


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str,
    *,
    build: Callable[[str, int], tuple[Any, Any]] | str | None = None,
    folder: Callable[[str], Path] | str | None = None,
    description: str = "",
    overwrite: bool = False,
) -> ModelEntry:
    """Register a model name that builds in memory (``build``) or resolves to a folder (``folder``)."""
    if (build is None) == (folder is None):
        raise ValueError(f"register_model({name!r}): give exactly one of build= or folder=")
    entry = ModelEntry(name=name, description=description, build=build, folder=folder)
    if name in MODELS and not overwrite:
        raise ValueError(f"model {name!r} is already registered (pass overwrite=True to replace it)")
    return MODELS.register(name, entry, overwrite=True)


def list_models() -> dict[str, str]:
    """``{name: description}`` of the registered model names."""
    return {name: entry.description for name, entry in MODELS.items()}


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _looks_like_path(ref: str) -> bool:
    """``/x``, ``./x``, ``~/x``, ``a/b/c`` are paths; ``org/name`` is a Hub id."""
    return ref.startswith(("/", ".", "~")) or ref.count("/") > 1 or "\\" in ref or ref.endswith("/")


def resolve_model(reference: str) -> ModelSource:
    """Say where ``reference`` comes from, without loading anything heavy.

    Raises:
        ModelNotFoundError: a missing folder, a folder without ``config.json``, or a name that is neither
            registered nor shaped like a Hub id (the message lists the registered names, with a suggestion).
    """
    if not isinstance(reference, str) or not reference.strip():
        raise ModelNotFoundError(f"policy.model must be a non-empty string, got {reference!r}")
    path = Path(reference).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model folder {str(path)!r} has no config.json; give a folder written by save_pretrained "
                "(a model and its tokenizer), a registered name or a Hub id"
            )
        return ModelSource("folder", reference, path=path)
    if reference in MODELS:
        return ModelSource("registered", reference, entry=MODELS.get(reference))
    if path.exists():
        raise ModelNotFoundError(f"model {reference!r} is a file, not a folder written by save_pretrained")
    if _looks_like_path(reference):
        raise ModelNotFoundError(
            f"model folder {reference!r} does not exist; give an existing folder written by save_pretrained, "
            f"a registered name ({', '.join(MODELS.names())}) or a Hub id such as 'Qwen/Qwen2.5-1.5B-Instruct'"
        )
    if "/" not in reference:
        close = difflib.get_close_matches(reference, MODELS.names(), n=1, cutoff=0.6)
        if close or not _HUB_ID.match(reference):
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ModelNotFoundError(
                f"unknown model {reference!r}.{hint} Valid: a registered name ({', '.join(MODELS.names())}), "
                "an existing local folder, or a Hub id such as 'Qwen/Qwen2.5-1.5B-Instruct'"
            )
    if not _HUB_ID.match(reference):
        raise ModelNotFoundError(f"model {reference!r} is neither an existing folder nor a valid Hub id (org/name)")
    return ModelSource("hub", reference)


def hub_error(reference: str, error: BaseException) -> ModelNotFoundError:
    """The error for a Hub id ``from_pretrained`` could not load (offline, a typo, no access)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    why = "HF_HUB_OFFLINE is set and it is not in the HF cache" if offline else f"{type(error).__name__}: {error}"
    first = str(why).splitlines()[0][:300]
    return ModelNotFoundError(
        f"could not load {reference!r} from the Hugging Face Hub ({first}). Valid: an existing local folder "
        f"written by save_pretrained (policy.model=/path/to/folder), a registered name "
        f"({', '.join(MODELS.names())}), or a Hub id with network access or already in the HF cache"
    )


def _register_builtins() -> None:
    shapes = {"tiny": "2 layers, hidden 64 (~0.1M parameters): unit tests",
              "tiny-small": "4 layers, hidden 256 (~3.3M parameters): CPU demos",
              "tiny-base": "6 layers, hidden 384: the largest CPU shape"}  # fmt: skip
    for name, text in shapes.items():
        register_model(name, build="ccpo_agents.models.tiny:build_tiny", overwrite=True,
                       description=f"random-init Qwen2-style model with a locally trained tokenizer, {text}")
    register_model("arith-warmstart", folder="ccpo_agents.models.warmstart:resolve_warmstart", overwrite=True,
                   description="the tiny model warm-started on arith by the project's recipe (shipped weights)")
    register_model("arith-warmstart-freeride", folder="ccpo_agents.models.warmstart:resolve_warmstart",
                   overwrite=True, description="arith-warmstart taught the free-riding probe's one-op items "
                   "(built on first use, ~4.5 min on 2 cores)")
    register_model("arith-warmstart-sepo", folder="ccpo_agents.models.warmstart:resolve_warmstart", overwrite=True,
                   description="arith-warmstart taught SEPO's rating format (built on first use)")
    families = {"tiny-qwen2.5": "Qwen2.5-Instruct (Qwen2 architecture, ChatML template)",
                "tiny-llama3.1": "Llama-3.1-Instruct (Llama architecture, Llama 3 header template, BOS)",
                "tiny-qwen3-base": "Qwen3-Base (Qwen3 architecture, q/k norms; no chat template: plain prompts)",
                "tiny-olmo3": "OLMo-3-Instruct (Olmo3 architecture, sliding-window layers, ChatML template)"}  # fmt: skip
    for name, text in families.items():
        register_model(name, build="ccpo_agents.models.families:build_family", overwrite=True,
                       description=f"random-init 2-layer stand-in for {text}, head_dim 32, local tokenizer")


_register_builtins()
