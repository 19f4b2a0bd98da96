"""ccpo_env: collaborative-reasoning environments for teams of LLM agents (no torch).

- :class:`ThinkSolveEnv` and :class:`VotingEnv`: PettingZoo AEC environments with counterfactual
  reset hooks (``reset(options={"problem": ..., "remove": [...]})``, ``env.counterfactual(...)``,
  ``VotingEnv.counterfactual_rewards()``); PettingZoo-style constructors in their modules
  (``ccpo_env.envs.think_solve.env()``, ``raw_env``; ``ccpo_env.envs.voting.parallel_env()`` gives
  :class:`VotingParallelEnv`, the Parallel API version). Env cards: ``docs/envs.md``.
- :mod:`ccpo_env.data`: the dataset registry (benchmarks + the synthetic ``arith`` family).
- :mod:`ccpo_env.verify`: the answer verifier (math-verify plus guards, hard timeouts, cache);
  ``from ccpo_env.verify import verify`` (the package name stays the module, not the function).
- :func:`rollout`: the batched driver that calls each policy once per turn for a whole batch.
"""

from ccpo_env.data import DatasetNotFoundError, Problem, list_datasets, load_dataset, register_dataset
from ccpo_env.envs import TeamEnv, ThinkSolveEnv, VoteTally, VotingEnv, VotingParallelEnv
from ccpo_env.prompts import (
    COMPACT_TEMPLATES,
    DEFAULT_TEMPLATES,
    TEMPLATE_PRESETS,
    PromptTemplates,
    strip_boxed,
)
from ccpo_env.records import Episode, Generation, Turn, VerifiedAction, VerifyRequest, action_text
from ccpo_env.rollout import rollout
from ccpo_env.spaces import TextObservation, text_space
from ccpo_env.verify import Verdict, extract_answer, verify_batch

__version__ = "0.1.0"

__all__ = [
    "COMPACT_TEMPLATES",
    "DEFAULT_TEMPLATES",
    "TEMPLATE_PRESETS",
    "DatasetNotFoundError",
    "Episode",
    "Generation",
    "Problem",
    "PromptTemplates",
    "TeamEnv",
    "TextObservation",
    "ThinkSolveEnv",
    "Turn",
    "Verdict",
    "VerifiedAction",
    "VerifyRequest",
    "VoteTally",
    "VotingEnv",
    "VotingParallelEnv",
    "action_text",
    "extract_answer",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "rollout",
    "strip_boxed",
    "text_space",
    "verify_batch",
]
