"""Candidate proposers: where the K texts an agent chooses from on its turn come from.

A proposer has ``num_choices`` (``K``) and ``propose(requests) -> list[list[str]]``: for each
:class:`ProposalRequest` (one agent's turn in one episode) at most ``K`` candidate texts. Fewer than
``K`` is allowed; the wrapper masks the empty slots. Three are provided:

- :class:`FixedMenuProposer`: a fixed menu per role (or a function of the request), shuffled per turn.
- :class:`ArithMenuProposer`: the scripted ``arith`` menu, with right and wrong options for every role,
  so that the credit question is real (see its docstring).
- :class:`TextPolicyProposer`: a *frozen* ccpo text policy (any ``list[str] -> list[str]``, or one
  that takes ``seeds=``) sampled K times per turn, in ONE call for the whole batch of requests.

Torch-free.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ccpo_env.data import Problem
from ccpo_env.data.arith import arith_one_op_solve, arith_oracle_thought
from ccpo_env.records import action_text

__all__ = [
    "ArithMenuProposer",
    "FixedMenuProposer",
    "ProposalRequest",
    "Proposer",
    "TextPolicyProposer",
    "role_of",
    "turn_seed",
]

_VOTER_RE = re.compile(r"^(voter)_\d+$")


def role_of(agent: str) -> str:
    """The role an agent plays: ``voter_3`` -> ``voter``; every other agent is its own role."""
    m = _VOTER_RE.match(agent)
    return m.group(1) if m else agent


def turn_seed(*parts: Any) -> int:
    """A seed in ``[0, 2**31 - 1)`` from ``parts``, identical across processes (BLAKE2b of their repr)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 1)


@dataclass(frozen=True)
class ProposalRequest:
    """One agent's turn, as a proposer sees it.

    Attributes:
        agent: the acting agent (``"thinker"``, ``"solver"``, ``"voter_0"``, ...).
        observation: the text the agent sees in the wrapped env (its role prompt), i.e. what an LLM
            proposer is prompted with.
        problem: the episode's problem.
        moves: the earlier moves of the episode, as ``(agent, chosen text)``.
        removed: the agents left out of this episode (e.g. ``("thinker",)`` in the solo branch).
        episode_seed: drawn once per episode; the same for every turn of the episode.
        seed: this turn's seed (a function of ``episode_seed`` and ``agent``).
    """

    agent: str
    observation: str
    problem: Problem
    moves: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]
    episode_seed: int
    seed: int


@runtime_checkable
class Proposer(Protocol):
    """What :class:`~ccpo_env.wrappers.DiscreteChoiceEnv` needs from a candidate source."""

    num_choices: int

    def propose(self, requests: Sequence[ProposalRequest]) -> list[list[str]]:
        """At most ``num_choices`` candidate texts per request (at least one)."""
        ...


def _check_k(num_choices: Any) -> int:
    if isinstance(num_choices, bool) or not isinstance(num_choices, int) or num_choices < 1:
        raise ValueError(f"num_choices must be a positive int, got {num_choices!r}")
    return num_choices


def _unique(texts: Sequence[str]) -> list[str]:
    # A menu never offers the same text twice: two slots with one text would split its probability.
    return list(dict.fromkeys(texts))


class FixedMenuProposer:
    """Offer a fixed menu per role, shuffled per turn (so a slot index carries no meaning by itself).

    Args:
        menus: role (or agent) -> candidate texts, or a function ``request -> texts``.
        num_choices: ``K``; default the longest menu (required with a function).
        shuffle: shuffle each turn's menu with the turn's seed (default True).
    """

    def __init__(
        self,
        menus: Mapping[str, Sequence[str]] | Callable[[ProposalRequest], Sequence[str]],
        *,
        num_choices: int | None = None,
        shuffle: bool = True,
    ) -> None:
        if callable(menus):
            if num_choices is None:
                raise ValueError("a menu function needs num_choices (K)")
            self._menu_fn: Callable[[ProposalRequest], Sequence[str]] = menus
        elif isinstance(menus, Mapping):
            if not menus:
                raise ValueError("menus is empty; give at least one role's candidates")
            fixed = {str(k): [action_text(t) for t in v] for k, v in menus.items()}
            empty = [k for k, v in fixed.items() if not v]
            if empty:
                raise ValueError(f"menus for {empty} are empty; every role needs at least one candidate")
            if num_choices is None:
                num_choices = max(len(_unique(v)) for v in fixed.values())

            def lookup(request: ProposalRequest) -> Sequence[str]:
                for key in (request.agent, role_of(request.agent)):
                    if key in fixed:
                        return fixed[key]
                raise KeyError(f"no menu for agent {request.agent!r}; menus are given for {sorted(fixed)}")

            self._menu_fn = lookup
        else:
            raise TypeError(f"menus must be a mapping role -> texts or a function, got {type(menus).__name__}")
        self.num_choices = _check_k(num_choices)
        self.shuffle = bool(shuffle)

    def propose(self, requests: Sequence[ProposalRequest]) -> list[list[str]]:
        """The (shuffled) menu of each request."""
        out = []
        for request in requests:
            menu = _unique([action_text(t) for t in self._menu_fn(request)])
            if not menu:
                raise ValueError(f"the menu for {request.agent!r} on {request.problem.id!r} is empty")
            if len(menu) > self.num_choices:
                raise ValueError(
                    f"the menu for {request.agent!r} has {len(menu)} candidates but num_choices={self.num_choices}"
                )
            if self.shuffle:
                order = np.random.default_rng(request.seed).permutation(len(menu))
                menu = [menu[i] for i in order]
            out.append(menu)
        return out


# ------------------------------------------------------------------------------------------- arith
THINKER_FILLER = "Let me think about it step by step."
SOLO_FILLER = "No precomputation is needed here."
ABSTAIN = "I cannot tell."


def _perturbed_steps(problem: Problem, rng: np.random.Generator) -> list[str] | None:
    """The oracle steps with one intermediate result off by 1..3 (``None`` when there are no steps)."""
    steps = list(problem.extras.get("steps") or [])
    if not steps:
        return None
    i = int(rng.integers(len(steps)))
    lhs, value = steps[i].split("=")
    delta = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    wrong = int(value) + delta if int(value) + delta >= 0 else int(value) + abs(delta)
    steps[i] = f"{lhs}={wrong}"
    return steps


def _guesses(gold: int, avoid: set[int], rng: np.random.Generator, n: int) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        g = gold + int(rng.choice([-1, 1])) * int(rng.integers(1, 11))
        if g >= 0 and g != gold and g not in avoid and g not in out:
            out.append(g)
    return out


class ArithMenuProposer(FixedMenuProposer):
    """The scripted ``arith`` menu (K = 4): every role can choose right or wrong, so credit matters.

    Built per episode from the problem (the wrong options depend on the episode seed, the same for
    every turn of the episode) and shuffled per turn:

    - **thinker**: the oracle thought (every intermediate result, :func:`arith_oracle_thought`), a wrong
      thought (one intermediate off by 1..3), an empty message and an irrelevant one. On a ``freeride``
      solo item (nothing to precompute) the thought is worthless: the menu is the empty message and two
      irrelevant ones.
    - **solver**: ``Combining the steps: \\boxed{v}`` where ``v`` is what a one-operation Solver derives
      from the problem and the chosen thought (:func:`arith_one_op_solve`), if it can; two wrong guesses
      and an abstention. The derived answer is right exactly when the thought was right (or the item
      needs no thought); without a usable thought that slot is absent (masked), so the Solver alone
      fails on joint items: the Thinker-removed branch is the Solver choosing without a thought.
    - **voter**: the correct worked answer, the worked answer of the wrong thought, a guess and an
      abstention.
    """

    def __init__(self) -> None:
        super().__init__(self._menu, num_choices=4, shuffle=True)

    @staticmethod
    def _menu(request: ProposalRequest) -> list[str]:
        problem = request.problem
        if problem.source != "arith":
            raise ValueError(f"ArithMenuProposer needs arith problems, got one from {problem.source!r}")
        rng = np.random.default_rng(request.episode_seed)  # same wrong options for every turn
        wrong_steps = _perturbed_steps(problem, rng)
        gold = int(problem.answer)
        role = role_of(request.agent)
        if role == "thinker":
            if wrong_steps is None:
                return ["", THINKER_FILLER, SOLO_FILLER]
            return [arith_oracle_thought(problem), ", ".join(wrong_steps), "", THINKER_FILLER]
        if role == "solver":
            thought = "\n".join(text for agent, text in request.moves if agent == "thinker")
            derived = arith_one_op_solve(problem.problem, thought)
            avoid = {int(derived)} if derived is not None else set()
            guesses = _guesses(gold, avoid, rng, 2)
            menu = [f"My guess is \\boxed{{{g}}}." for g in guesses] + [ABSTAIN]
            if derived is not None:
                menu.insert(0, f"Combining the steps: \\boxed{{{derived}}}.")
            return menu
        if role == "voter":
            right = arith_oracle_thought(problem)
            menu = [f"{right + ', so ' if right else ''}the answer is \\boxed{{{gold}}}."]
            avoid: set[int] = set()
            if wrong_steps is not None:
                wrong_value = arith_one_op_solve(problem.problem, ", ".join(wrong_steps))
                if wrong_value is not None and int(wrong_value) != gold:
                    avoid.add(int(wrong_value))
                    menu.append(f"{', '.join(wrong_steps)}, so the answer is \\boxed{{{wrong_value}}}.")
            menu += [f"My guess is \\boxed{{{g}}}." for g in _guesses(gold, avoid, rng, 4 - len(menu) - 1)]
            return [*menu, ABSTAIN]
        raise KeyError(f"ArithMenuProposer has menus for thinker, solver and voters, not {request.agent!r}")


# ------------------------------------------------------------------------------------- text policy
def _accepts_seeds(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seeds" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class TextPolicyProposer:
    """Sample K candidates per turn from a frozen ccpo text policy, one policy call per batch.

    For a batch of B requests of one role the policy is called ONCE with the B x K prompts (each
    request's observation repeated K times) and, if it takes ``seeds=``, one seed per prompt derived
    from the turn's seed, so proposals are reproducible whatever the batch. A text sampled twice for
    the same turn is offered once; its second slot stays empty (masked).

    Args:
        policy: a text policy ``list[str] -> list[str | Generation]`` for every agent, or a mapping from
            agent name or role (``"thinker"``, ``"solver"``, ``"voter"``) to one.
        num_choices: ``K``, samples per turn (default 4).
    """

    def __init__(self, policy: Callable[..., Sequence[Any]] | Mapping[str, Callable[..., Sequence[Any]]], *,
                 num_choices: int = 4) -> None:
        if isinstance(policy, Mapping):
            if not policy:
                raise ValueError("policy mapping is empty; map each role to a text policy")
            bad = [k for k, v in policy.items() if not callable(v)]
            if bad:
                raise TypeError(f"policies for {bad} are not callable")
            self._policies: dict[str, Callable[..., Sequence[Any]]] = dict(policy)
            self._shared = None
        elif callable(policy):
            self._policies = {}
            self._shared = policy
        else:
            raise TypeError(f"policy must be a callable or a mapping of callables, got {type(policy).__name__}")
        self.num_choices = _check_k(num_choices)
        #: number of policy calls made (one per role per :meth:`propose`).
        self.calls = 0

    def policy_for(self, agent: str) -> Callable[..., Sequence[Any]]:
        """The text policy that proposes for ``agent``."""
        if self._shared is not None:
            return self._shared
        for key in (agent, role_of(agent)):
            if key in self._policies:
                return self._policies[key]
        raise KeyError(f"no text policy for agent {agent!r}; policies are given for {sorted(self._policies)}")

    def propose(self, requests: Sequence[ProposalRequest]) -> list[list[str]]:
        """K samples per request (duplicates dropped), one policy call per role in the batch."""
        k = self.num_choices
        out: list[list[str]] = [[] for _ in requests]
        by_policy: dict[int, list[int]] = {}
        policies: dict[int, Callable[..., Sequence[Any]]] = {}
        for i, request in enumerate(requests):
            fn = self.policy_for(request.agent)
            by_policy.setdefault(id(fn), []).append(i)
            policies[id(fn)] = fn
        for key, members in by_policy.items():
            fn = policies[key]
            prompts = [requests[i].observation for i in members for _ in range(k)]
            if _accepts_seeds(fn):
                seeds = [turn_seed(requests[i].seed, j) for i in members for j in range(k)]
                texts = fn(prompts, seeds=seeds)
            else:
                texts = fn(prompts)
            self.calls += 1
            texts = list(texts)
            if len(texts) != len(prompts):
                raise ValueError(f"the text policy returned {len(texts)} outputs for {len(prompts)} prompts")
            for n, i in enumerate(members):
                out[i] = _unique([action_text(t) for t in texts[n * k : (n + 1) * k]])
        return out
