"""Loading models (dtype/device resolution; names through the model registry) and managing peft LoRA adapters.

Adapter switching here never changes ``requires_grad``: peft's own ``set_adapter``/``disable_adapter`` mark
only the active adapter trainable, which would silently change what an optimizer or a DDP wrapper sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ccpo_agents.policies.base import LoraSettings

__all__ = [
    "add_lora",
    "is_adapter_param",
    "is_peft_model",
    "load_model_and_tokenizer",
    "preserve_requires_grad",
    "resolve_device",
    "resolve_dtype",
    "use_adapter",
]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype = "auto", device: str | torch.device | None = None) -> torch.dtype:
    """``"auto"`` -> float32 on CPU, bfloat16 on CUDA (float16 where bf16 is unsupported); names like
    ``"bf16"``, ``"bfloat16"``, ``"fp32"``, ``"float16"`` or a ``torch.dtype`` pass through."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if resolve_device(device).type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    names = {
        "fp32": torch.float32, "float32": torch.float32,
        "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
        "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    }  # fmt: skip
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; valid: 'auto', {sorted(names)}")
    return names[dtype]


def load_model_and_tokenizer(
    name_or_path: str,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, in eval mode on ``device``.

    ``name_or_path`` resolves through :func:`ccpo_agents.models.registry.resolve_model`: an existing local
    folder (``from_pretrained``), a registered name (tiny random shapes built in memory and seeded by ``seed``;
    warm starts loaded from their folder), or a Hugging Face Hub id.

    Raises:
        ModelNotFoundError: the reference is none of these, or the Hub could not provide it (offline).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ccpo_agents.models.registry import hub_error, resolve_model

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    source = resolve_model(name_or_path)
    if source.entry is not None and source.entry.build is not None:
        model, tokenizer = source.entry.build_model(seed)
        return model.to(device=dev, dtype=torch_dtype).eval(), tokenizer
    where = str(source.entry.resolve_folder()) if source.entry is not None else str(source.path or name_or_path)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except OSError as e:  # transformers raises OSError for "not found" / offline / no access
        if source.kind == "hub":
            raise hub_error(name_or_path, e) from None
        raise
    return model.to(dev).eval(), tokenizer


def add_lora(model: Any, lora: LoraSettings, adapters: Sequence[str], *, seed: int = 0) -> Any:
    """Wrap ``model`` with peft, one LoRA adapter per name in ``adapters`` (the first one active).

    Initialisation is seeded (``fork_rng``: the global RNG is untouched); base weights are frozen and
    every adapter is trainable.
    """
    import warnings

    from peft import get_peft_model

    if not adapters:
        raise ValueError("at least one adapter name is required")
    config = lora.to_peft()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # peft 0.21 touches a transformers attribute deprecated in 5.x; not actionable for our users.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config, adapter_name=adapters[0])
        for name in adapters[1:]:
            peft_model.add_adapter(name, lora.to_peft())
    for name, p in peft_model.named_parameters():
        if any(is_adapter_param(name, a) for a in adapters):
            p.requires_grad_(True)  # peft leaves only the active adapter trainable
    return peft_model


def is_adapter_param(name: str, adapter: str) -> bool:
    """Whether parameter ``name`` belongs to LoRA adapter ``adapter`` (``...q_proj.lora_A.<adapter>.weight``)."""
    parts = name.split(".")
    return any(parts[i].startswith("lora_") and parts[i + 1] == adapter for i in range(len(parts) - 1))


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a peft wrapper with named adapters."""
    return hasattr(model, "peft_config") and hasattr(model, "set_adapter")


@contextmanager
def preserve_requires_grad(model: torch.nn.Module) -> Iterator[None]:
    """Restore every parameter's ``requires_grad`` on exit (peft's adapter switches change them)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextmanager
def use_adapter(model: Any, adapter: str | None) -> Iterator[Any]:
    """Make ``adapter`` the active LoRA adapter of a peft model for the duration of the block.

    Unlike a bare ``peft`` ``set_adapter`` call, this leaves every parameter's ``requires_grad`` as it was
    (peft would freeze the other adapters), so switching roles never changes what is trainable. The
    previously active adapter is restored on exit. ``adapter=None`` is a no-op.
    """
    if adapter is None:
        yield model
        return
    if not is_peft_model(model):
        raise ValueError(f"adapter {adapter!r} requested but the model is not a peft model")
    if adapter not in model.peft_config:
        raise ValueError(f"unknown adapter {adapter!r}; the model has {sorted(model.peft_config)}")
    previous = model.active_adapter
    if previous == adapter:
        yield model
        return
    with preserve_requires_grad(model):
        model.set_adapter(adapter)
    try:
        yield model
    finally:
        with preserve_requires_grad(model):
            model.set_adapter(previous)
