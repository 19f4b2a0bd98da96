"""Collaborative-reasoning environments (PettingZoo AEC, plus a Parallel version of voting), one per module.

Each env module follows PettingZoo's conventions: ``think_solve.env()`` / ``voting.env()`` give the env
in the standard wrappers, ``raw_env`` is the class, ``voting.parallel_env()`` the Parallel API version.
"""

from ccpo_env.envs.base import TeamEnv, wrap
from ccpo_env.envs.think_solve import ThinkSolveEnv
from ccpo_env.envs.voting import VoteTally, VotingEnv, VotingParallelEnv

__all__ = ["TeamEnv", "ThinkSolveEnv", "VoteTally", "VotingEnv", "VotingParallelEnv", "wrap"]
