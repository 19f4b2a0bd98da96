"""Collaborative-reasoning environments (PettingZoo AEC), one per module."""

from ccpo_env.envs.base import TeamEnv
from ccpo_env.envs.think_solve import ThinkSolveEnv
from ccpo_env.envs.voting import VoteTally, VotingEnv

__all__ = ["TeamEnv", "ThinkSolveEnv", "VotingEnv", "VoteTally"]
