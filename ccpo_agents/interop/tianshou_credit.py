"""Turn ccpo credit into per-agent rewards for a classical MARL loop (tianshou or any other).

A MARL learner needs one number per agent per decision; ccpo's credit methods return a
:class:`~ccpo_agents.credit.CreditResult` (per-role credit per joint episode). :class:`CreditRewards`
bridges the two: it builds the :class:`~ccpo_agents.credit.CreditBatch` of a set of finished team
episodes (:class:`TeamEpisodes`), runs a registered credit method on it and returns an ``[E, N]``
reward matrix, column ``i`` for agent ``agents[i]``. So ``shared``, ``ccpo_tree`` and leave-one-out
``voting`` are interchangeable reward transforms on identical episodes.

How the credit maps onto an actor-critic learner: a role whose credit is *baselined* (an advantage
already, e.g. ``ccpo_tree``'s Thinker ``Δ = V(t) − V_solo`` or a voter's ``R − R_¬i``) is given that
value as its reward; a role whose credit is not baselined (``shared``, ``ccpo_tree``'s Solver) gets
the raw credit and the learner's own baseline (the critic) plays the part of the group mean.
In a tianshou loop every episode is its own thought (one Solver answer per thought), so
``ccpo_tree`` runs with ``allow_single_answer=True``; its Thinker credit is then
``R_joint − mean(R_solo)`` of the episode's problem. Pure numpy; no tianshou import.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccpo_agents.credit import CreditAssigner, CreditBatch, CreditResult, get_credit

__all__ = ["CreditRewards", "TeamEpisodes", "agent_rewards"]


@dataclass
class TeamEpisodes:
    """``E`` finished team episodes plus their counterfactuals, as flat arrays.

    Attributes:
        agents: the agents, in reward-column order (``("thinker", "solver")`` or the voters).
        joint_reward: ``[E]`` the shared team reward of each episode.
        group: ``[E]`` problem id of each episode (episodes of one problem form a group).
        loo_reward: ``[E, N]`` the team reward with agent ``i`` left out (voting; ``None`` otherwise).
        solo_reward: ``[S]`` rewards of Thinker-removed branches (``None`` if none were run).
        solo_group: ``[S]`` problem id of each branch.
    """

    agents: tuple[str, ...]
    joint_reward: np.ndarray
    group: np.ndarray
    loo_reward: np.ndarray | None = None
    solo_reward: np.ndarray | None = None
    solo_group: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.agents = tuple(self.agents)
        self.joint_reward = np.asarray(self.joint_reward, dtype=np.float64).reshape(-1)
        self.group = np.asarray(self.group).reshape(-1)
        if len(self.group) != len(self.joint_reward):
            raise ValueError(f"group has {len(self.group)} entries for {len(self.joint_reward)} episodes")

    def credit_batch(self, *, reward_low: float = -1.0, reward_high: float = 1.0) -> CreditBatch:
        """The :class:`CreditBatch` of these episodes: one thought per episode, the agents as roles."""
        e = len(self.joint_reward)
        kwargs: dict[str, Any] = {}
        if self.solo_reward is not None:
            kwargs.update(solo_reward=self.solo_reward, solo_group=self.solo_group)
        return CreditBatch(
            joint_reward=self.joint_reward, group=self.group, thought=np.arange(e),
            loo_reward=self.loo_reward, roles=self.agents, reward_low=reward_low, reward_high=reward_high,
            **kwargs,
        )


def agent_rewards(result: CreditResult, agents: Sequence[str]) -> np.ndarray:
    """The ``[E, N]`` reward matrix of a credit result, column ``i`` = ``result.rewards[agents[i]]``."""
    missing = [a for a in agents if a not in result.rewards]
    if missing:
        raise ValueError(f"the credit result has no rewards for {missing}; it covers {sorted(result.rewards)}")
    return np.stack([np.asarray(result.rewards[a], dtype=np.float64) for a in agents], axis=1)


class CreditRewards:
    """A registered credit method as a reward transform ``TeamEpisodes -> [E, N]`` rewards.

    Args:
        method: a credit method name (``"shared"``, ``"ccpo_tree"``, ``"voting"``, ...; see
            :func:`ccpo_agents.credit.list_credits`).
        config: the method's options (a dict or its config dataclass); for ``ccpo_tree``
            ``allow_single_answer`` defaults to True here (see the module docstring).
        reward_low: the team's failure reward (default -1).
        reward_high: the team's success reward (default +1).
    """

    def __init__(self, method: str, config: Mapping[str, Any] | Any = None, *,
                 reward_low: float = -1.0, reward_high: float = 1.0) -> None:
        spec = get_credit(method)
        if spec.needs - {"solo", "thoughts", "loo"}:
            raise ValueError(f"credit method {method!r} needs {sorted(spec.needs)}; this loop provides solo "
                             "branches, one thought per episode and leave-one-out rewards only")
        if spec.name == "ccpo_tree" and (config is None or isinstance(config, Mapping)):
            config = {"allow_single_answer": True, **(config or {})}
        self.assigner = CreditAssigner(spec.name, config)
        self.reward_low, self.reward_high = float(reward_low), float(reward_high)

    @property
    def method(self) -> str:
        """The registry name of the credit method."""
        return self.assigner.spec.name

    @property
    def needs_solo(self) -> bool:
        """Whether the loop must run Thinker-removed branches for this method."""
        return self.assigner.spec.needs_solo

    @property
    def needs_loo(self) -> bool:
        """Whether the loop must record leave-one-out rewards for this method."""
        return self.assigner.spec.needs_loo

    def result(self, episodes: TeamEpisodes) -> CreditResult:
        """The method's :class:`CreditResult` on ``episodes`` (its normalizer history advances)."""
        batch = episodes.credit_batch(reward_low=self.reward_low, reward_high=self.reward_high)
        with warnings.catch_warnings():
            # One answer per thought is how this loop works (the critic is the Solver's baseline).
            warnings.filterwarnings("ignore", message=r"ccpo_tree: .* single Solver answer")
            return self.assigner(batch)

    def __call__(self, episodes: TeamEpisodes) -> np.ndarray:
        """``[E, N]`` per-agent rewards, columns in ``episodes.agents`` order."""
        return agent_rewards(self.result(episodes), episodes.agents)

    def __repr__(self) -> str:
        return f"CreditRewards({self.method!r})"
