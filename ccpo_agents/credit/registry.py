"""Registry of credit assigners, selectable by name (like verl's ``register_adv_est``).

Each entry declares what the trainer must know to plan a step:

* which roles it returns **baselined** (already an advantage: estimators scale, never re-centre);
* what extra inputs it **needs**: ``"solo"`` (Thinker-removed rollouts), ``"thoughts"`` (thought ids
  with m ≥ 2 answers per thought), ``"ratings"`` (SEPO ratings), ``"loo"`` (leave-one-out rewards),
  ``"coalitions"`` (every subset's reward);
* how many solo rollouts per prompt (``num_solo``): ``"none"``, ``"paired"`` (one per joint
  episode, paired by index) or ``"per_prompt"`` (any k ≥ 1, the trainer's choice);
* whether it keeps state in a :class:`GlobalHistoryNormalizer` (``needs_normalizer``);
* its typed config dataclass;
* the team it is written for (``team``, e.g. the Think–Solve roles; empty: any team).

Add your own in a few lines::

    @register_credit("half_shared", baselined_roles=())
    def half_shared(batch):
        return {role: 0.5 * batch.joint_reward for role in batch.roles}

A function may take ``(batch)``, ``(batch, config)`` or ``(batch, config, normalizer)`` and return
a :class:`CreditResult` or a plain ``dict[role, array]`` (grouped by prompt, baselined as declared).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ccpo_env.registry import Registry
from ccpo_env.topology import PROVIDES

from .batch import CreditBatch, CreditResult
from .normalizer import GlobalHistoryNormalizer

__all__ = [
    "CreditSpec",
    "register_credit",
    "get_credit",
    "list_credits",
    "assign_credit",
    "CreditAssigner",
    "NEEDS",
]

#: What a method may need besides the joint rewards, and how the batch provides it.
_BATCH_FIELD = {
    "solo": "CreditBatch.solo_reward and solo_group",
    "thoughts": "CreditBatch.thought",
    "ratings": "CreditBatch.ratings (see sepo.ratings_from_texts)",
    "loo": "CreditBatch.loo_reward [E, N] (VotingEnv.counterfactual_rewards())",
    "coalitions": "CreditBatch.coalition_reward [E, 2^N] (rollout(coalitions=True): VotingEnv.coalition_rewards())",
}
NEEDS: dict[str, str] = {name: f"{PROVIDES[name]}: {where}" for name, where in _BATCH_FIELD.items()}
_NUM_SOLO = ("none", "paired", "per_prompt")


@dataclass(frozen=True)
class NoConfig:
    """Config of a method without options."""


@dataclass(frozen=True)
class CreditSpec:
    """A registered credit assigner.

    Attributes:
        name: registry name.
        fn: the function (see module docstring for accepted signatures).
        baselined_roles: roles returned as baselined advantages; ``("*",)`` means every role.
        needs: subset of :data:`NEEDS` keys.
        num_solo: ``"none"``, ``"paired"`` or ``"per_prompt"``.
        needs_normalizer: True if the method keeps cross-batch state in a normalizer.
        config_cls: the method's config dataclass.
        description: first line of the function's docstring.
        team: the training roles the method is written for (e.g. ``("thinker", "solver")``); empty: any team.
    """

    name: str
    fn: Callable[..., Any]
    baselined_roles: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()
    num_solo: str = "none"
    needs_normalizer: bool = False
    config_cls: type = NoConfig
    description: str = ""
    team: tuple[str, ...] = ()
    _params: frozenset[str] = field(default=frozenset(), repr=False)

    needs_solo = property(lambda self: "solo" in self.needs, doc="Needs Thinker-removed (solo) rollouts.")
    needs_ratings = property(lambda self: "ratings" in self.needs, doc="Needs SEPO ratings.")
    needs_loo = property(lambda self: "loo" in self.needs, doc="Needs leave-one-out rewards.")
    needs_thoughts = property(lambda self: "thoughts" in self.needs, doc="Needs m >= 2 answers per thought.")

    def fits(self, roles: Iterable[str], provides: Iterable[str]) -> bool:
        """Whether a team with these training ``roles`` that can ``provide`` these inputs can run the method."""
        return self.needs <= set(provides) and (not self.team or set(self.team) == set(roles))

    def is_baselined(self, role: str) -> bool:
        """Whether ``role``'s credit is declared as an already-baselined advantage."""
        return "*" in self.baselined_roles or role in self.baselined_roles

    def solo_rollouts_per_prompt(self, joint_per_prompt: int, k: int | None = None) -> int:
        """How many solo rollouts the trainer must sample per prompt.

        ``paired``: one per joint episode (``joint_per_prompt = n·m``); ``per_prompt``: ``k``
        (required, ≥ 1); ``none``: 0.
        """
        if self.num_solo == "paired":
            return int(joint_per_prompt)
        if self.num_solo == "per_prompt":
            if k is None or k < 1:
                raise ValueError(f"credit method {self.name!r} needs k >= 1 solo rollouts per prompt, got k={k}")
            return int(k)
        return 0

    def make_config(self, config: Any = None) -> Any:
        """``config`` as this method's config dataclass: None -> defaults, a dict -> fields
        (unknown keys are an error naming the valid ones), an instance -> itself."""
        if config is None:
            return self.config_cls()
        if isinstance(config, self.config_cls):
            return config
        if isinstance(config, Mapping):
            valid = [f.name for f in dataclasses.fields(self.config_cls)]
            unknown = [k for k in config if k not in valid]
            if unknown:
                raise ValueError(f"unknown config key(s) {unknown} for credit method {self.name!r}; "
                                 f"valid keys: {valid}")
            return self.config_cls(**config)
        raise TypeError(f"config for {self.name!r} must be None, a dict or {self.config_cls.__name__}, "
                        f"got {type(config).__name__}")

    def check_inputs(self, batch: CreditBatch) -> None:
        """Raise ValueError naming every input this method needs that ``batch`` lacks."""
        present = {
            "solo": batch.has_solo,
            "thoughts": batch.thought is not None,
            "ratings": batch.ratings is not None,
            "loo": batch.loo_reward is not None,
            "coalitions": batch.coalition_reward is not None,
        }
        missing = [n for n in sorted(self.needs) if not present.get(n, True)]
        if missing:
            lines = "; ".join(f"{n}: {NEEDS[n]}" for n in missing)
            raise ValueError(f"credit method {self.name!r} is missing required input(s) {missing} -> {lines}")

    def __call__(self, batch: CreditBatch, config: Any = None,
                 normalizer: GlobalHistoryNormalizer | None = None) -> CreditResult:
        """Validate inputs, run the method, validate and complete the result."""
        if not isinstance(batch, CreditBatch):
            raise TypeError(f"credit methods take a CreditBatch, got {type(batch).__name__}")
        self.check_inputs(batch)
        cfg = self.make_config(config)
        if self.needs_normalizer and normalizer is None:
            raise ValueError(
                f"credit method {self.name!r} keeps global-history statistics: pass the same "
                "GlobalHistoryNormalizer every step (and checkpoint its state_dict()), or use CreditAssigner"
            )
        kwargs: dict[str, Any] = {}
        if "config" in self._params:
            kwargs["config"] = cfg
        if "normalizer" in self._params:
            kwargs["normalizer"] = normalizer
        out = self.fn(batch, **kwargs)
        if not isinstance(out, CreditResult):
            if not isinstance(out, Mapping):
                raise TypeError(f"credit method {self.name!r} returned {type(out).__name__}; "
                                "expected CreditResult or dict[role, array]")
            out = CreditResult(
                rewards={r: np.asarray(v, dtype=np.float64) for r, v in out.items()},
                group_keys={r: batch.group for r in out},
                baselined={r: self.is_baselined(r) for r in out},
            )
        out.validate(batch.roles, batch.num_episodes)
        for role in batch.roles:
            if out.baselined[role] != self.is_baselined(role):
                raise ValueError(f"credit method {self.name!r} returned baselined[{role!r}]={out.baselined[role]} "
                                 f"but is registered with baselined_roles={self.baselined_roles}")
            r = out.rewards[role]
            out.metrics.setdefault(f"credit/{role}/mean", float(r.mean()))
            out.metrics.setdefault(f"credit/{role}/std", float(r.std()))
        out.metrics.setdefault("credit/joint_success", float(batch.success().mean()))
        if batch.has_solo:
            out.metrics.setdefault("credit/solo_success", float(batch.success(batch.solo_reward).mean()))
        return out


_REGISTRY: Registry[CreditSpec] = Registry("credit method")


def register_credit(
    name: str,
    fn: Callable[..., Any] | None = None,
    *,
    baselined_roles: Iterable[str] = (),
    needs: Iterable[str] = (),
    num_solo: str | None = None,
    needs_normalizer: bool = False,
    config_cls: type | None = None,
    team: Iterable[str] = (),
    overwrite: bool = False,
) -> Any:
    """Register a credit assigner under ``name``; usable as a decorator or a plain call.

    Args:
        name: registry name.
        fn: the function; omit to use as ``@register_credit(name, ...)``.
        baselined_roles: roles whose credit is already an advantage (``("*",)`` = all roles).
        needs: extra inputs, a subset of ``{"solo", "thoughts", "ratings", "loo", "coalitions"}``.
        num_solo: ``"none"``, ``"paired"`` or ``"per_prompt"``; default ``"per_prompt"`` when
            ``"solo"`` is needed, else ``"none"``.
        needs_normalizer: the method requires a :class:`GlobalHistoryNormalizer` argument.
        config_cls: a dataclass of the method's options (default: no options).
        team: the training roles the method is written for (default: any team); a topology with other roles
            is refused at config time.
        overwrite: replace an existing entry instead of raising.
    """
    needs_set = frozenset(needs)
    unknown = needs_set - NEEDS.keys()
    if unknown:
        raise ValueError(f"unknown needs {sorted(unknown)}; valid: {sorted(NEEDS)}")
    if num_solo is None:
        num_solo = "per_prompt" if "solo" in needs_set else "none"
    if num_solo not in _NUM_SOLO:
        raise ValueError(f"num_solo must be one of {_NUM_SOLO}, got {num_solo!r}")
    if (num_solo != "none") != ("solo" in needs_set):
        raise ValueError("num_solo must be 'none' exactly when 'solo' is not in needs")
    if config_cls is not None and not dataclasses.is_dataclass(config_cls):
        raise TypeError("config_cls must be a dataclass")

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise TypeError(f"credit function for {name!r} is not callable")
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"credit method {name!r} is already registered (pass overwrite=True to replace it)")
        params = inspect.signature(f).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            params = {"config": None, "normalizer": None}  # **kwargs: pass both
        _REGISTRY.register(name, CreditSpec(
            name=name,
            fn=f,
            baselined_roles=tuple(baselined_roles),
            needs=needs_set,
            num_solo=num_solo,
            needs_normalizer=needs_normalizer,
            config_cls=config_cls or NoConfig,
            description=(inspect.getdoc(f) or "").split("\n", 1)[0],
            team=tuple(team),
            _params=frozenset(p for p in ("config", "normalizer") if p in params),
        ), overwrite=True)
        return f

    return decorator if fn is None else decorator(fn)


def get_credit(name: str) -> CreditSpec:
    """The registry entry for ``name`` (aliases: ``voting_loo``/``loo`` -> ``voting``)."""
    return _REGISTRY.get(name)


def list_credits() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY.names())


def assign_credit(name: str, batch: CreditBatch, config: Any = None,
                  normalizer: GlobalHistoryNormalizer | None = None) -> CreditResult:
    """Run the credit method ``name`` on ``batch`` (functional form of :class:`CreditAssigner`)."""
    return get_credit(name)(batch, config, normalizer)


class CreditAssigner:
    """A credit method bound to its config and its (stateful) normalizer.

    Args:
        method: registry name.
        config: None (defaults), a dict, or the method's config dataclass.
        normalizer: the normalizer to keep history in (default: a new ``GlobalHistoryNormalizer()``).
    """

    def __init__(self, method: str, config: Any = None,
                 normalizer: GlobalHistoryNormalizer | None = None) -> None:
        self.spec = get_credit(method)
        self.config = self.spec.make_config(config)
        self.normalizer = normalizer if normalizer is not None else GlobalHistoryNormalizer()

    def __call__(self, batch: CreditBatch) -> CreditResult:
        return self.spec(batch, self.config, self.normalizer)

    def __repr__(self) -> str:
        return f"CreditAssigner({self.spec.name!r}, config={self.config!r})"

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (the normalizer's statistics) for checkpoints."""
        return {"method": self.spec.name, "normalizer": self.normalizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("method") not in (None, self.spec.name):
            raise ValueError(f"state is for credit method {state.get('method')!r}, not {self.spec.name!r}")
        self.normalizer.load_state_dict(state["normalizer"])
