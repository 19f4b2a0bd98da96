"""FSDP2 sharding of a Hugging Face causal LM: wrap per decoder layer, sharded checkpoints, full-state gather.

On GPUs, accelerate's FSDP2 plugin (``examples/accelerate/fsdp2.yaml``) shards the policy when the trainer
calls ``accelerator.prepare``. accelerate 1.16 does not shard on CPU, though (with ``cpu=True`` it falls
back to DDP), so this module applies the same FSDP2 recipe with torch's own API, which works on any backend
(gloo included): it is what the CPU tests run, and a caller that drives torch.distributed itself can use it.

The recipe:

- :func:`shard_model`: ``torch.distributed.fsdp.fully_shard`` on every decoder layer (the classes listed in the
  model's ``_no_split_modules``), then on the root for the embeddings, final norm and head. Each layer's
  parameters are all-gathered just before its forward and freed after it, so a rank holds one layer's full
  weights at a time. Optional bf16 mixed precision (bf16 compute, fp32 gradient reduction and master
  weights) and activation checkpointing (transformers' own, non-reentrant).
- :func:`save_sharded_checkpoint` / :func:`load_sharded_checkpoint`: ``torch.distributed.checkpoint`` with
  each rank writing only its shards of the parameters *and* of the optimizer state (no rank ever holds the
  whole model), loadable into any world size.
- :func:`gather_full_state_dict`: the unsharded weights in Hugging Face names, for a vLLM engine's weight
  sync or ``save_pretrained``. Every rank must call it (it is a collective); with ``rank0_only`` the full
  tensors land on rank 0's CPU only.
- :func:`full_checkpoint_state` / :func:`load_full_checkpoint_state`: what the trainer's checkpoints hold
  under FSDP (``train.fsdp``): the full weights (the same file an unsharded run writes, so ``ccpo eval``
  and ``from_pretrained``-style loading work on it) and the full optimizer state keyed by parameter name,
  gathered onto rank 0; on load every rank keeps its own slice. Resumable under any number of processes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_fsdp_policy", "decoder_layers", "full_checkpoint_state", "gather_full_state_dict",
           "load_full_checkpoint_state", "load_sharded_checkpoint", "save_sharded_checkpoint",
           "shard_model"]  # fmt: skip


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules to shard one by one: instances of the classes in ``model._no_split_modules`` (transformers
    lists its decoder-layer classes there, e.g. ``Qwen2DecoderLayer``), found through a peft wrapper too."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} lists no decoder-layer classes in _no_split_modules; "
                         "cannot choose FSDP units")  # fmt: skip
    return layers


def shard_model(
    model: torch.nn.Module,
    *,
    mixed_precision: str = "no",
    activation_checkpointing: bool = False,
    reshard_after_forward: bool = True,
    mesh: Any = None,
) -> torch.nn.Module:
    """Shard ``model`` in place with FSDP2 (full shard), one unit per decoder layer plus the root.

    Args:
        mixed_precision: ``"no"`` (compute in the parameters' dtype) or ``"bf16"`` (bf16 parameters in
            forward/backward, gradients reduced in fp32, fp32 sharded master weights).
        activation_checkpointing: recompute each decoder layer in the backward pass (enabled before
            sharding, so FSDP's hooks stay outside the checkpointed region).
        reshard_after_forward: free gathered layer weights after forward (ZeRO-3; default) or keep them
            until backward (ZeRO-2-like: faster, more memory).
        mesh: a ``DeviceMesh``; default all ranks of the default process group.

    Returns:
        the same module, now an ``FSDPModule`` (call it as before; ``.parameters()`` are sharded ``DTensor`` s).
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if mixed_precision not in ("no", "bf16"):
        raise ValueError(f"mixed_precision={mixed_precision!r}; valid: 'no', 'bf16'")
    if activation_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    kwargs: dict[str, Any] = {"reshard_after_forward": reshard_after_forward}
    if mesh is not None:
        kwargs["mesh"] = mesh
    if mixed_precision == "bf16":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def gather_full_state_dict(model: torch.nn.Module, *, rank0_only: bool = True) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU, in the model's own parameter names. A collective: all ranks call.

    With ``rank0_only`` (default) other ranks get ``{}`` and only rank 0 pays the CPU memory; that is the rank
    owning the vLLM engine, which receives these tensors (``VLLMPolicy.sync_weights`` sends them).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    # torch's cpu_offload=True is also its "rank 0 only" switch: the other ranks get an empty dict.
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=rank0_only))
    return {k: v.detach().cpu() for k, v in state.items()}


def check_fsdp_policy(policy: Any) -> None:
    """Refuse, with the fix, a ``PolicyConfig`` the trainer cannot run sharded.

    Raises:
        ConfigError: ``policy.backend`` is not ``"vllm"`` or ``policy.parameterisation`` is ``"lora"``.
    """
    from ccpo_agents.config import ConfigError

    if policy.backend != "vllm":
        # Every forward of a sharded model all-gathers each layer across ranks; HF generate stops when a
        # rank's own sequences end, so ranks whose completions differ in length would wait on each other.
        raise ConfigError("FSDP (train.fsdp=true or accelerate's FSDP plugin) needs policy.backend=vllm: "
                          "generating on a sharded model makes every decoding step a collective across "
                          "ranks, which stalls once their completions differ in length. Use "
                          "policy.backend=vllm (each rank's engine holds the full weights) or DDP "
                          "(examples/accelerate/ddp_1node.yaml)")  # fmt: skip
    if policy.parameterisation == "lora":
        raise ConfigError("policy.parameterisation=lora under FSDP is not supported: the adapters are small "
                          "enough to replicate, so use DDP (examples/accelerate/ddp_1node.yaml), or train "
                          "full parameters (shared/separate) with FSDP")  # fmt: skip


def _inner(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def full_checkpoint_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(full weights, full optimizer state)`` on rank 0's CPU (``({}, {})`` elsewhere). A collective.

    The optimizer state is torch's name-keyed form (``get_optimizer_state_dict``), not the integer-keyed
    ``optimizer.state_dict()``: it stays valid when the parameters are sharded differently on resume.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=opts)
    optim = get_optimizer_state_dict(model, _inner(optimizer), options=opts)
    return {k: v.detach().cpu() for k, v in weights.items()}, optim


def load_full_checkpoint_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                               weights: dict[str, torch.Tensor], optim: dict[str, Any] | None) -> None:  # fmt: skip
    """Load what :func:`full_checkpoint_state` returned (read by every rank) into a sharded ``model`` (and
    ``optimizer``): each rank keeps its own slice. A collective: all ranks call it."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, weights, options=opts)
    if optimizer is not None and optim is not None:
        set_optimizer_state_dict(model, _inner(optimizer), optim, options=opts)


def save_sharded_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                            extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write the model's and optimizer's shards (each rank its own) with ``torch.distributed.checkpoint``.

    ``extra`` (e.g. the step, JSON-serialisable) is written by rank 0 beside the shards as ``extra.json``.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    path = Path(path)
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
    if torch.distributed.get_rank() == 0:
        (path / "extra.json").write_text(json.dumps(dict(extra or {})))
    torch.distributed.barrier()
    return path


def load_sharded_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load shards written by :func:`save_sharded_checkpoint` into an already sharded ``model`` and its
    ``optimizer`` (re-sharding if the world size changed); returns the ``extra`` dict."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    path = Path(path)
    if not (path / ".metadata").is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a torch.distributed.checkpoint folder (no .metadata)")
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    extra = path / "extra.json"
    return json.loads(extra.read_text()) if extra.is_file() else {}
