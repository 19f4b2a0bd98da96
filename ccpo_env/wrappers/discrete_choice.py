"""A discrete-choice view of the team envs, for classical MARL algorithms (PPO, centralised critics, ...).

:class:`DiscreteChoiceEnv` wraps a :class:`~ccpo_env.ThinkSolveEnv` or :class:`~ccpo_env.VotingEnv` in
PettingZoo's wrapper style. On each turn a :mod:`proposer <ccpo_env.wrappers.proposers>` offers the
acting agent up to ``K`` candidate texts; the agent's action is ``Discrete(K)``, the index of the text
it sends to the wrapped env. Observations are PettingZoo's masked-action dicts::

    {"observation": float32[D], "action_mask": int8[K]}

with ``observation`` from a :class:`~ccpo_env.wrappers.features.HashingFeaturizer` (problem, earlier
moves, each candidate) and ``action_mask[k] == 1`` exactly when slot ``k`` holds a candidate for the
acting agent (all zeros for an agent that is not acting). Rewards, terminations, agents and infos are
the wrapped env's; infos add ``choice`` (the slot the agent chose) and, at the end of a voting
episode, ``loo_rewards`` (``counterfactual_rewards()`` in ``possible_agents`` order).

The counterfactual hooks are kept: ``reset(options={"problem": ..., "remove": [...]})`` and
:meth:`DiscreteChoiceEnv.counterfactual` give the same view of the branch, so the Thinker-removed
branch is one more choice the Solver makes, from candidates proposed without a thought; VotingEnv's
:meth:`counterfactual_rewards` passes through.

What this view is for: research on team credit assignment with cheap actions. What it is not: it
does not train an LLM's text generation (a frozen text policy only proposes the candidates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.utils.wrappers import BaseWrapper

from ccpo_env.wrappers.features import FeatureLayout, HashingFeaturizer
from ccpo_env.wrappers.proposers import ProposalRequest, Proposer, turn_seed

__all__ = ["DiscreteChoiceEnv", "discrete_choice"]


class DiscreteChoiceEnv(BaseWrapper):
    """Each agent picks one of K proposed texts; observations are numeric. See the module docstring.

    Args:
        env: a team env (``ThinkSolveEnv``, ``VotingEnv`` or another ``TeamEnv``), not yet wrapped.
        proposer: where the candidates come from (see :mod:`ccpo_env.wrappers.proposers`).
        featurizer: turns a turn into the observation vector (default :class:`HashingFeaturizer`).
        seed: seeds the per-episode proposal seeds until ``reset(seed=...)`` is given one.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "name": "discrete_choice_v0",
                                "is_parallelizable": False}

    def __init__(self, env: AECEnv, proposer: Proposer, *, featurizer: HashingFeaturizer | None = None,
                 seed: int | None = None) -> None:
        if not isinstance(env, AECEnv):
            raise TypeError(f"DiscreteChoiceEnv wraps a PettingZoo AECEnv (e.g. ThinkSolveEnv), got {type(env).__name__}")
        if not callable(getattr(proposer, "propose", None)) or not hasattr(proposer, "num_choices"):
            raise TypeError(f"proposer must have num_choices and propose(requests), got {type(proposer).__name__}")
        super().__init__(env)
        self.proposer = proposer
        self.featurizer = featurizer if featurizer is not None else HashingFeaturizer()
        self.num_choices = int(proposer.num_choices)
        self.possible_agents = list(env.possible_agents)
        self.layout: FeatureLayout = self.featurizer.layout(len(self.possible_agents), self.num_choices)
        # One space object for all agents: PettingZoo wants observation_space(a) to be stable and
        # tianshou requires equal spaces for every agent.
        self._observation_space = spaces.Dict({
            "observation": spaces.Box(-1.0, 1.0, shape=(self.layout.dim,), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, shape=(self.num_choices,), dtype=np.int8),
        })
        self._action_space = spaces.Discrete(self.num_choices)
        self._rng = np.random.default_rng(seed)
        self._episode_seed: int | None = None
        self._branches = 0
        self._candidates: list[str] = []
        self._moves: list[tuple[str, str]] = []
        self._extra: dict[str, dict[str, Any]] = {}
        self._turn_for: str | None = None

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Dict:  # noqa: D102 - PettingZoo API
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:  # noqa: D102 - PettingZoo API
        return self._action_space

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Reset the wrapped env (``options``: ``problem``, ``remove``) and propose for the first agent."""
        self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._begin(int(self._rng.integers(2**31 - 1)))

    def _begin(self, episode_seed: int) -> None:
        self._episode_seed = episode_seed
        self._branches = 0
        self._moves = []
        self._extra = {a: {} for a in self.env.agents}
        self._propose()

    def _propose(self) -> None:
        """Ask the proposer for the acting agent's candidates (nothing when the episode is over)."""
        self._candidates, self._turn_for = [], None
        agent = self.env.agent_selection
        if not self.env.agents or self.env.terminations[agent] or self.env.truncations[agent]:
            return
        problem = self.env.unwrapped.problem
        request = ProposalRequest(
            agent=agent, observation=str(self.env.observe(agent)), problem=problem,
            moves=tuple(self._moves), removed=tuple(self.env.unwrapped.removed),
            episode_seed=int(self._episode_seed), seed=turn_seed(self._episode_seed, agent, len(self._moves)),
        )
        (candidates,) = self.proposer.propose([request])
        candidates = [str(c) for c in candidates]
        if not 1 <= len(candidates) <= self.num_choices:
            raise ValueError(f"the proposer gave {len(candidates)} candidates for {agent!r}; "
                             f"it must give between 1 and num_choices={self.num_choices}")
        self._candidates, self._turn_for = candidates, agent

    # ------------------------------------------------------------------ AEC API
    def observe(self, agent: str) -> dict[str, np.ndarray]:
        """Features of ``agent``'s view, with the mask of its valid slots (zeros unless it is acting)."""
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        unwrapped = self.env.unwrapped
        acting = agent == self._turn_for
        candidates = self._candidates if acting else []
        mask = np.zeros(self.num_choices, dtype=np.int8)
        mask[: len(candidates)] = 1
        features = self.featurizer(
            agent_index=self.possible_agents.index(agent), num_agents=len(self.possible_agents),
            removed=bool(unwrapped.removed), problem=unwrapped.problem.problem,
            moves=[text for _, text in self._moves], candidates=candidates, num_choices=self.num_choices,
        )
        return {"observation": features, "action_mask": mask}

    def action_mask(self, agent: str | None = None) -> np.ndarray:
        """The valid-slot mask of ``agent`` (default: the acting agent)."""
        return self.observe(self.env.agent_selection if agent is None else agent)["action_mask"]

    @property
    def candidates(self) -> list[str]:
        """The texts the acting agent chooses from (empty when the episode is over)."""
        return list(self._candidates)

    def step(self, action: Any) -> None:
        """Send candidate ``action`` (an index) of the acting agent to the wrapped env."""
        agent = self.env.agent_selection
        if self.env.terminations[agent] or self.env.truncations[agent]:
            self.env.step(None)  # the dead step; the wrapped env validates it
            return
        if not _is_index(action):
            raise TypeError(f"the action of {agent!r} must be an int slot index in [0, {self.num_choices}), "
                            f"got {action!r}")
        index = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= index < len(self._candidates):
            raise ValueError(f"slot {index} is not a valid choice for {agent!r}: the valid slots are "
                             f"0..{len(self._candidates) - 1} (action_mask {self.action_mask(agent).tolist()})")
        text = self._candidates[index]
        self._extra.setdefault(agent, {})["choice"] = index
        self.env.step(text)
        self._moves.append((agent, text))
        if not self.env.agents or all(self.env.terminations.get(a, False) for a in self.env.agents):
            self._finish()
        self._propose()

    def _finish(self) -> None:
        counterfactual_rewards = getattr(self.env, "counterfactual_rewards", None)
        if callable(counterfactual_rewards):
            loo = counterfactual_rewards()
            row = [float(loo.get(a, np.nan)) for a in self.possible_agents]
            for a in self.env.agents:
                self._extra.setdefault(a, {})["loo_rewards"] = row

    @property
    def infos(self) -> dict[str, dict[str, Any]]:
        """The wrapped env's infos plus ``choice`` (and ``loo_rewards`` at the end of a voting episode)."""
        return {a: {**info, **self._extra.get(a, {})} for a, info in self.env.infos.items()}

    # ------------------------------------------------------------------ counterfactual hooks
    def counterfactual(self, remove: Sequence[str] = (), *, seed: int | None = None) -> DiscreteChoiceEnv:
        """The same view of the wrapped env's counterfactual branch (``remove`` left out), ready to step.

        The branch's proposals get their own seed, derived from this episode's and a branch counter
        unless ``seed`` is given.
        """
        if self._episode_seed is None:
            raise RuntimeError("call reset() before counterfactual(): there is no problem to branch from")
        self._branches += 1
        branch_seed = turn_seed(self._episode_seed, "branch", tuple(remove), self._branches) if seed is None else seed
        inner = self.env.counterfactual(remove, seed=branch_seed)
        branch = DiscreteChoiceEnv(inner, self.proposer, featurizer=self.featurizer, seed=branch_seed)
        branch._begin(turn_seed("proposals", branch_seed))
        return branch

    def spawn(self) -> DiscreteChoiceEnv:
        """A new, not yet reset view of a fresh copy of the wrapped env (sharing its dataset)."""
        return DiscreteChoiceEnv(self.env.spawn(), self.proposer, featurizer=self.featurizer)

    def __str__(self) -> str:
        return f"DiscreteChoiceEnv<{self.env!s}>"


def _is_index(action: Any) -> bool:
    """An int, a numpy integer or a 0-d integer array (what tianshou and ``Discrete.sample`` give)."""
    if isinstance(action, bool) or action is None:
        return False
    if isinstance(action, (int, np.integer)):
        return True
    return isinstance(action, np.ndarray) and action.shape in ((), (1,)) and np.issubdtype(action.dtype, np.integer)


def discrete_choice(env: AECEnv, proposer: Proposer, **kwargs: Any) -> DiscreteChoiceEnv:
    """PettingZoo-style constructor: ``discrete_choice(ThinkSolveEnv("arith"), ArithMenuProposer())``."""
    return DiscreteChoiceEnv(env, proposer, **kwargs)
