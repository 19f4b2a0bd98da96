"""Wrappers that give the team envs other interfaces (torch-free).

- :class:`DiscreteChoiceEnv`: each agent picks one of K proposed texts (``Discrete(K)``), observations
  are numeric (hashed features plus an action mask), so classical MARL algorithms apply.
- Proposers (:class:`FixedMenuProposer`, :class:`ArithMenuProposer`, :class:`TextPolicyProposer`)
  supply the candidates; :class:`HashingFeaturizer` builds the observation vector.
"""

from ccpo_env.wrappers.discrete_choice import DiscreteChoiceEnv, discrete_choice
from ccpo_env.wrappers.features import FeatureLayout, HashingFeaturizer, hash_text, tokenize
from ccpo_env.wrappers.proposers import (
    ArithMenuProposer,
    FixedMenuProposer,
    ProposalRequest,
    Proposer,
    TextPolicyProposer,
    role_of,
    turn_seed,
)

__all__ = [
    "ArithMenuProposer",
    "DiscreteChoiceEnv",
    "FeatureLayout",
    "FixedMenuProposer",
    "HashingFeaturizer",
    "ProposalRequest",
    "Proposer",
    "TextPolicyProposer",
    "discrete_choice",
    "hash_text",
    "role_of",
    "tokenize",
    "turn_seed",
]
