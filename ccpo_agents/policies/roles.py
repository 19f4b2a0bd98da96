"""Role parameterisation: which weights each role (Thinker, Solver, voters) samples from and trains.

Three ways, chosen by :attr:`PolicyConfig.parameterisation`:

``"shared"``
    One model for every role; roles differ only by their system prompt (and the env's observation text).
    Every role's loss updates the same weights: :meth:`RoleModels.owner` is ``"shared"`` for all roles.
``"separate"``
    One full model per role, possibly different base models and tokenizers (``model={"thinker": A,
    "solver": B}``); the same name for every role loads independent copies.
``"lora"``
    One frozen base model wrapped by peft with one LoRA adapter per role (adapter name = role name).
    Generation and scoring for role ``r`` run with adapter ``r`` active (:meth:`RoleModels.activate`); only
    adapter weights are trainable and the base is the natural reference model (:meth:`RoleModels.reference`).

All adapters stay trainable (``requires_grad=True``) whichever is active, because switching adapters with
:func:`~ccpo_agents.policies.hf.use_adapter` never touches ``requires_grad`` (bare peft ``set_adapter``
would freeze the others, which silently drops them from a DDP wrapper built while another role is active).
Gradients are still isolated: a loss computed under ``activate("thinker")`` reaches only the Thinker's
adapter. To train one role at a time (alternating schedule) use :meth:`RoleModels.set_trainable`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ccpo_agents.config.policy import (
    DEFAULT_ROLES,
    DEFAULT_SYSTEM_PROMPTS,
    PARAMETERISATIONS,
    GenerationConfig,
    LoraSettings,
    PolicyConfig,
)
from ccpo_agents.policies.hf import HFPolicy
from ccpo_agents.policies.loading import (
    add_lora,
    is_adapter_param,
    load_model_and_tokenizer,
    preserve_requires_grad,
    resolve_device,
    use_adapter,
)

__all__ = ["DEFAULT_ROLES", "DEFAULT_SYSTEM_PROMPTS", "PARAMETERISATIONS", "PolicyConfig", "RoleModels"]

class RoleModels:
    """The models, tokenizers, adapters and :class:`HFPolicy` objects of a team, one entry per role.

    Build with :meth:`from_config`, or from already-loaded models with :meth:`shared`, :meth:`separate` or
    :meth:`lora`. ``policy_for(role)`` is what the rollout driver calls; the trainer uses ``model_for``,
    ``activate``, ``trainable_parameters``, ``owner`` and ``reference``.
    """

    def __init__(
        self,
        *,
        parameterisation: str,
        models: Mapping[str, torch.nn.Module],
        tokenizers: Mapping[str, Any],
        adapters: Mapping[str, str | None] | None = None,
        system_prompts: Mapping[str, str] | None = None,
        generation: GenerationConfig | Mapping[str, GenerationConfig] | None = None,
    ) -> None:
        if parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"unknown parameterisation {parameterisation!r}; valid: {list(PARAMETERISATIONS)}")
        self.roles: tuple[str, ...] = tuple(models)
        if not self.roles or set(tokenizers) != set(self.roles):
            raise ValueError("models and tokenizers must be given for the same, non-empty set of roles")
        self.parameterisation = parameterisation
        self._models = dict(models)
        self._tokenizers = dict(tokenizers)
        self._adapters = {r: (adapters or {}).get(r) for r in self.roles}
        self._references: dict[int, torch.nn.Module] = {}
        prompts = dict(system_prompts or {})
        self._policies = {
            r: HFPolicy(
                self._models[r], self._tokenizers[r], role=r, system_prompt=prompts.get(r),
                generation=_generation_for(generation, r), adapter=self._adapters[r],
            )  # fmt: skip
            for r in self.roles
        }

    # ------------------------------------------------------------------ constructors

    @classmethod
    def shared(cls, model: torch.nn.Module, tokenizer: Any, roles: Sequence[str] = DEFAULT_ROLES, **kw: Any) -> RoleModels:
        """One model for all roles. ``kw``: ``system_prompts``, ``generation``."""
        roles = _check_roles(roles)
        return cls(parameterisation="shared", models=dict.fromkeys(roles, model),
                   tokenizers=dict.fromkeys(roles, tokenizer), **kw)  # fmt: skip

    @classmethod
    def separate(cls, models: Mapping[str, tuple[torch.nn.Module, Any]], **kw: Any) -> RoleModels:
        """``{role: (model, tokenizer)}``, one independent model per role."""
        _check_roles(list(models))
        if len({id(m) for m, _ in models.values()}) != len(models):
            raise ValueError("'separate' needs a distinct model object per role (use shared() to share one)")
        return cls(parameterisation="separate", models={r: m for r, (m, _) in models.items()},
                   tokenizers={r: t for r, (_, t) in models.items()}, **kw)  # fmt: skip

    @classmethod
    def lora(
        cls,
        model: torch.nn.Module,
        tokenizer: Any,
        roles: Sequence[str] = DEFAULT_ROLES,
        lora: LoraSettings | None = None,
        *,
        seed: int = 0,
        **kw: Any,
    ) -> RoleModels:
        """Wrap ``model`` with peft and add one LoRA adapter per role (named after it); the base is frozen."""
        roles = _check_roles(roles)
        peft_model = add_lora(model, lora or LoraSettings(), roles, seed=seed)
        out = cls(parameterisation="lora", models=dict.fromkeys(roles, peft_model),
                  tokenizers=dict.fromkeys(roles, tokenizer), adapters={r: r for r in roles}, **kw)  # fmt: skip
        return out

    @classmethod
    def from_config(cls, config: PolicyConfig, roles: Sequence[str] = DEFAULT_ROLES) -> RoleModels:
        """Load/build every role's model as ``config`` says."""
        roles = _check_roles(roles)
        device = resolve_device(config.device)

        def load(name: str) -> tuple[torch.nn.Module, Any]:
            return load_model_and_tokenizer(
                name, dtype=config.dtype, device=device, attn_implementation=config.attn_implementation,
                trust_remote_code=config.trust_remote_code, seed=config.seed,
            )  # fmt: skip

        kw: dict[str, Any] = dict(system_prompts=config.system_prompts,
                                  generation={r: config.generation_for(r) for r in roles})  # fmt: skip
        if config.parameterisation == "separate":
            out = cls.separate({r: load(config.model_name_for(r)) for r in roles}, **kw)
        else:
            model, tokenizer = load(config.model_name_for(roles[0]))
            if config.parameterisation == "shared":
                out = cls.shared(model, tokenizer, roles, **kw)
            else:
                out = cls.lora(model, tokenizer, roles, config.lora_settings(), seed=config.seed, **kw)
        if config.reference and config.parameterisation != "lora":
            out.snapshot_reference()
        return out

    # ------------------------------------------------------------------ accessors

    def policy_for(self, role: str) -> HFPolicy:
        """The batched policy the rollout driver calls for ``role``."""
        return self._policies[self._role(role)]

    def policies(self) -> dict[str, HFPolicy]:
        """``{role: policy}`` for every role."""
        return dict(self._policies)

    def set_policy(self, role: str, policy: Any) -> None:
        """Generate ``role``'s rollouts with ``policy`` (e.g. a ``VLLMPolicy``); training is unaffected."""
        self._policies[self._role(role)] = policy

    def model_for(self, role: str) -> torch.nn.Module:
        """The module that scores/trains ``role`` (for ``"lora"`` the shared peft model: use :meth:`activate`)."""
        return self._models[self._role(role)]

    def tokenizer_for(self, role: str) -> Any:
        return self._tokenizers[self._role(role)]

    def adapter_for(self, role: str) -> str | None:
        """The role's adapter name (``"lora"`` only), else ``None``."""
        return self._adapters[self._role(role)]

    def owner(self, role: str) -> str:
        """Key of the parameter set ``role`` trains: ``"shared"`` for every role when shared, else the role.

        Roles with the same owner update the same parameters: build one optimizer per distinct owner.
        """
        self._role(role)
        return "shared" if self.parameterisation == "shared" else role

    def unique_models(self) -> list[torch.nn.Module]:
        """The distinct model objects (one for ``"shared"``/``"lora"``), e.g. for ``.train()`` or saving."""
        seen: dict[int, torch.nn.Module] = {}
        for m in self._models.values():
            seen.setdefault(id(m), m)
        return list(seen.values())

    @contextmanager
    def activate(self, role: str) -> Iterator[torch.nn.Module]:
        """Run the block with ``role``'s adapter active (no-op unless ``"lora"``); yields ``model_for(role)``."""
        with use_adapter(self.model_for(role), self.adapter_for(role)) as model:
            yield model

    def named_trainable_parameters(self, role: str) -> list[tuple[str, torch.nn.Parameter]]:
        """``(name, parameter)`` pairs that ``role``'s updates change: the role's adapter for ``"lora"``, the
        role's (or the shared) model's parameters otherwise. Independent of the current ``requires_grad``."""
        model = self.model_for(role)
        if self.parameterisation != "lora":
            return list(model.named_parameters())
        return [(n, p) for n, p in model.named_parameters() if is_adapter_param(n, role)]

    def trainable_parameters(self, role: str) -> list[torch.nn.Parameter]:
        """The parameters of :meth:`named_trainable_parameters` (give these to the role's optimizer)."""
        return [p for _, p in self.named_trainable_parameters(role)]

    def set_trainable(self, role: str, trainable: bool = True) -> None:
        """Set ``requires_grad`` on the role's trainable parameters (shared: the whole shared model)."""
        for p in self.trainable_parameters(role):
            p.requires_grad_(trainable)

    # ------------------------------------------------------------------ reference model (KL)

    def snapshot_reference(self) -> None:
        """Freeze a copy of the current weights of every distinct model as the KL reference.

        Call before the first update (``PolicyConfig.reference=True`` does it at build time). Not needed for
        ``"lora"``, whose reference is the base model with adapters disabled.
        """
        if self.parameterisation == "lora":
            return
        for m in self.unique_models():
            ref = copy.deepcopy(m).eval()
            ref.requires_grad_(False)
            self._references[id(m)] = ref

    @contextmanager
    def reference(self, role: str) -> Iterator[torch.nn.Module]:
        """Yield the reference model for ``role`` (score under it with ``torch.no_grad()``).

        ``"lora"``: the base model, via peft's ``disable_adapter()`` (no extra memory). Otherwise the frozen
        copy made by :meth:`snapshot_reference` (error if none was made).
        """
        model = self.model_for(role)
        if self.parameterisation == "lora":
            # peft's disable_adapter() re-marks only the active adapter trainable on exit: undo that.
            with preserve_requires_grad(model), model.disable_adapter():
                yield model
            return
        if id(model) not in self._references:
            raise RuntimeError("no reference snapshot: set PolicyConfig.reference=True or call snapshot_reference()")
        yield self._references[id(model)]

    def _role(self, role: str) -> str:
        if role not in self._models:
            raise KeyError(f"unknown role {role!r}; roles: {list(self.roles)}")
        return role


def _check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    roles = tuple(roles)
    if not roles or len(set(roles)) != len(roles):
        raise ValueError(f"roles must be non-empty and distinct, got {roles}")
    for r in roles:
        # Role names double as peft adapter names, which appear as a component of parameter names.
        if not r or "." in r or not r.isprintable():
            raise ValueError(f"invalid role name {r!r} (non-empty, no '.')")
    return roles


def _generation_for(generation: GenerationConfig | Mapping[str, GenerationConfig] | None, role: str) -> GenerationConfig:
    if generation is None:
        return GenerationConfig()
    if isinstance(generation, GenerationConfig):
        return generation
    return generation.get(role) or GenerationConfig()
