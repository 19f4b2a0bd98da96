"""Interop with classical MARL libraries.

- :mod:`ccpo_agents.interop.tianshou_credit` (numpy only, imported here): :class:`CreditRewards` turns a
  ccpo credit method's :class:`~ccpo_agents.credit.CreditResult` into per-agent rewards for a MARL loop.
- :mod:`ccpo_agents.interop.tianshou_marl` (needs ``tianshou``; import it explicitly): independent PPO
  per agent with tianshou's multi-agent on-policy classes on the discrete-choice view of the envs
  (:class:`ccpo_env.wrappers.DiscreteChoiceEnv`), with any credit method as reward transform.
"""

from ccpo_agents.interop.tianshou_credit import CreditRewards, TeamEpisodes, agent_rewards

__all__ = ["CreditRewards", "TeamEpisodes", "agent_rewards"]
