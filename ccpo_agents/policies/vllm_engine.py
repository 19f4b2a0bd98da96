"""Rollouts on vLLM while the trainer keeps training the ``transformers`` models (``policy.backend=vllm``).

:class:`VLLMRollout` gives every role of a :class:`~ccpo_agents.policies.roles.RoleModels` a
:class:`~ccpo_agents.policies.vllm.VLLMPolicy` (same system prompt, sampling settings and chat template as
its ``HFPolicy``) and keeps the engines in step with the trained weights:

- ``"shared"``: one engine; after each step the trained model's weights are reloaded into it in place.
- ``"separate"``: one engine per role, each synced from its role's model.
- ``"lora"``: one engine on the frozen base with ``enable_lora``; after each step every trained role's
  adapter is saved and the role's policy switches to it through a fresh ``LoRARequest``. The base weights
  never change, so nothing else moves.

Who owns the engine: every process owns its own engine and generates its own share of the step's prompts
(data parallel), so generation never waits on another rank. Under DDP every rank's model is the same after
the all-reduced step, so each rank syncs from its local replica. Under FSDP no rank holds the full weights:
``weights_fn`` (the trainer passes ``ccpo_agents.trainer.fsdp.gather_full_state_dict``) gathers them on
every rank - a collective, which is why :meth:`VLLMRollout.sync` must be called by all ranks together - and
each rank reloads them into its engine.

The engine loads from a folder: the model's own folder when ``policy.model`` is one (or a Hub id, which
vLLM fetches itself); for a model built in memory (the registered tiny shapes) the initial weights are
saved once with ``save_pretrained`` into ``model_dir`` (the trainer's ``<output_dir>/vllm-model``). With
several processes rank 0 writes it and the others wait (transformers' ``save_pretrained`` writes on rank 0
only once ``torch.distributed`` is up), so ``model_dir`` must be on a filesystem all ranks see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ccpo_agents.config.policy import PolicyConfig
from ccpo_agents.policies.roles import RoleModels
from ccpo_agents.policies.vllm import VLLMPolicy, build_llm

__all__ = ["VLLMRollout"]


class VLLMRollout:
    """vLLM engines serving a team's roles, synced from the trainer's models.

    Args:
        roles: the trainer's role models (their policies are replaced by :class:`VLLMPolicy` objects).
        config: the policy config (``model``, ``parameterisation``, ``lora_r``, ``vllm`` engine arguments).
        work_dir: this process's folder for LoRA adapters the engine loads.
        model_dir: where in-memory models are saved for the engine to load (default ``work_dir/"vllm-model"``;
            shared by all ranks when several processes train).
        weights_fn: ``model -> {name: tensor}``, how :meth:`sync` reads a model's full weights (default:
            the model itself, i.e. its ``state_dict``). Under FSDP the trainer passes the full-state gather.

    Raises:
        ImportError: vLLM is not installed.
    """

    def __init__(self, roles: RoleModels, config: PolicyConfig, work_dir: str | Path, *,
                 model_dir: str | Path | None = None,
                 weights_fn: Callable[[torch.nn.Module], Mapping[str, torch.Tensor]] | None = None) -> None:  # fmt: skip
        self.roles = roles
        self.work_dir = Path(work_dir)
        self.model_dir = Path(model_dir) if model_dir is not None else self.work_dir / "vllm-model"
        self.weights_fn = weights_fn
        self.parameterisation = roles.parameterisation
        engine_kwargs = dict(config.vllm)
        if self.parameterisation == "lora":
            engine_kwargs.setdefault("enable_lora", True)
            engine_kwargs.setdefault("max_lora_rank", max(8, config.lora_r))
            engine_kwargs.setdefault("max_loras", len(roles.roles))
        #: completed :meth:`sync` calls
        self.syncs = 0
        self._engines: dict[str, Any] = {}  # owner -> vllm.LLM
        self.policies: dict[str, VLLMPolicy] = {}
        for role in roles.roles:
            owner = "base" if self.parameterisation == "lora" else roles.owner(role)
            if owner not in self._engines:
                folder = self._model_folder(config.model_name_for(role), role, owner)
                self._engines[owner] = build_llm(folder, **engine_kwargs)
            old = roles.policy_for(role)
            policy = VLLMPolicy(
                self._engines[owner], tokenizer=roles.tokenizer_for(role), role=role,
                system_prompt=old.system_prompt, generation=old.generation,
                chat_template_kwargs=getattr(old, "chat_template_kwargs", None), lora_name=role,
                stop_token_ids=getattr(old, "stop_token_ids", ()),
            )  # fmt: skip
            roles.set_policy(role, policy)
            self.policies[role] = policy
        if self.parameterisation == "lora":
            self.sync(roles.roles)

    def _model_folder(self, reference: str, role: str, owner: str) -> str:
        path = Path(reference).expanduser()
        if (path / "config.json").is_file():
            return str(path)
        from ccpo_agents.models.registry import MODELS

        if reference not in MODELS and "/" in reference:
            return reference  # a Hub id: vLLM resolves it the way from_pretrained does
        folder = self.model_dir / owner
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            model = self.roles.model_for(role)
            if self.parameterisation == "lora":
                # The frozen base only (LoRA layers unwrapped, adapters dropped): adapters reach the engine as
                # LoRARequests.
                base = model.get_base_model()
                state = {k.replace(".base_layer", ""): v for k, v in base.state_dict().items() if "lora_" not in k}
                base.save_pretrained(folder, state_dict=state)
            else:
                model.save_pretrained(folder)
            self.roles.tokenizer_for(role).save_pretrained(folder)
        if distributed:  # every rank built the same initial weights; the others load rank 0's copy
            torch.distributed.barrier()
        return str(folder)

    def sync(self, roles: tuple[str, ...] | list[str] | None = None) -> None:
        """Bring the engines up to date with the trained parameters of ``roles`` (default: all roles).

        With a collective ``weights_fn`` (FSDP) every rank must call it, with the same ``roles``.
        """
        roles = tuple(roles if roles is not None else self.roles.roles)
        if self.parameterisation == "lora":
            for role in roles:
                self.policies[role].sync_lora(self.roles.model_for(role), role, self.work_dir / "vllm-lora" / role)
        else:
            done: set[str] = set()
            for role in roles:
                owner = self.roles.owner(role)
                if owner not in done:
                    model = self.roles.model_for(role)
                    self.policies[role].sync_weights(model if self.weights_fn is None else self.weights_fn(model))
                    done.add(owner)
        self.syncs += 1
