"""Numeric observations for the discrete-choice view: hashed text features plus an action mask.

A standard network (an MLP, a per-slot scorer) cannot read text, so :class:`HashingFeaturizer` turns
what an agent sees on its turn into one fixed-length ``float32`` vector:

``[ context | slot_0 | slot_1 | ... | slot_{K-1} ]``

- *context*: a one-hot of the acting agent, a flag for "some agent was removed" (the counterfactual
  branch), the hashed tokens of the problem and the hashed tokens of the earlier moves of the episode
  (for the Solver: the Thinker's message).
- *slot k*: five scalars (slot holds a candidate, candidate is empty, candidate has a ``\\boxed{}``
  answer, its length, the share of its numbers that also occur in the problem or the earlier moves)
  and the hashed tokens of candidate ``k``. An empty slot (the proposer offered fewer than K
  candidates) is all zeros and masked.

Hashing is the classic feature-hashing trick (signed buckets, then L2 normalisation, so every value
lies in ``[-1, 1]``). Tokens are lower-cased words, ``\\boxed{...}`` answers, and arithmetic facts
kept whole (``23*4=92`` is one token), so a model can learn which facts hold from the team reward
alone. The hash is BLAKE2b, identical across processes and platforms (Python's ``hash`` is salted).
Torch-free.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["FeatureLayout", "HashingFeaturizer", "hash_text", "tokenize"]

_TOKEN_RE = re.compile(r"\\boxed\{[^{}]*\}|\d+(?:\s*[+\-*/]\s*\d+)+(?:\s*=\s*\d+)?|\d+|[A-Za-z]+|[^\sA-Za-z\d]")
_NUMBER_RE = re.compile(r"\d+")
#: Per-slot scalars, in order (see the module docstring).
SLOT_SCALARS = ("present", "empty", "boxed", "length", "number_overlap")
_LENGTH_SCALE = math.log1p(256)


def tokenize(text: str) -> list[str]:
    """The tokens hashed for ``text``: words (lower-cased), whole arithmetic facts, numbers, ``\\boxed{}``."""
    return [re.sub(r"\s+", "", t).lower() for t in _TOKEN_RE.findall(text)]


@lru_cache(maxsize=65536)
def _bucket(token: str, dim: int, salt: str) -> tuple[int, float]:
    digest = hashlib.blake2b(f"{salt}|{token}".encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def hash_text(text: str, dim: int, *, salt: str = "") -> np.ndarray:
    """Signed feature hashing of ``tokenize(text)`` into ``dim`` buckets, L2-normalised (zeros if no token)."""
    out = np.zeros(dim, dtype=np.float64)
    for token in tokenize(text):
        index, sign = _bucket(token, dim, salt)
        out[index] += sign
    norm = np.linalg.norm(out)
    return out / norm if norm > 0 else out


@dataclass(frozen=True)
class FeatureLayout:
    """Where things are in the observation vector (for networks that treat slots alike).

    Attributes:
        context_dim: length of the context block at the start of the vector.
        num_choices: ``K``, the number of candidate slots.
        slot_dim: length of each slot block; slot ``k`` starts at ``context_dim + k * slot_dim``.
    """

    context_dim: int
    num_choices: int
    slot_dim: int

    @property
    def dim(self) -> int:
        """Total length of the observation vector."""
        return self.context_dim + self.num_choices * self.slot_dim

    def split(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(context [..., context_dim], slots [..., K, slot_dim])`` views of a batch of vectors."""
        features = np.asarray(features)
        context = features[..., : self.context_dim]
        slots = features[..., self.context_dim :].reshape(*features.shape[:-1], self.num_choices, self.slot_dim)
        return context, slots


@dataclass(frozen=True)
class HashingFeaturizer:
    """Hashed bag-of-tokens features of the problem, the earlier moves and each candidate.

    Attributes:
        problem_dim: hash buckets for the problem text (default 64).
        moves_dim: hash buckets for the earlier moves of the episode (default 128).
        candidate_dim: hash buckets per candidate (default 128).
    """

    problem_dim: int = 64
    moves_dim: int = 128
    candidate_dim: int = 128

    def __post_init__(self) -> None:
        for name in ("problem_dim", "moves_dim", "candidate_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"HashingFeaturizer.{name} must be a positive int, got {value!r}")

    def layout(self, num_agents: int, num_choices: int) -> FeatureLayout:
        """The layout for a team of ``num_agents`` and ``num_choices`` slots."""
        return FeatureLayout(
            context_dim=num_agents + 1 + self.problem_dim + self.moves_dim,
            num_choices=num_choices,
            slot_dim=len(SLOT_SCALARS) + self.candidate_dim,
        )

    def __call__(
        self,
        *,
        agent_index: int,
        num_agents: int,
        removed: bool,
        problem: str,
        moves: Sequence[str],
        candidates: Sequence[str],
        num_choices: int,
    ) -> np.ndarray:
        """The ``float32`` observation vector (see :class:`FeatureLayout`); slots past ``candidates`` are zeros."""
        if len(candidates) > num_choices:
            raise ValueError(f"{len(candidates)} candidates do not fit in {num_choices} slots")
        if not 0 <= agent_index < num_agents:
            raise ValueError(f"agent_index {agent_index} is out of range for {num_agents} agents")
        layout = self.layout(num_agents, num_choices)
        out = np.zeros(layout.dim, dtype=np.float64)
        out[agent_index] = 1.0
        out[num_agents] = 1.0 if removed else 0.0
        start = num_agents + 1
        out[start : start + self.problem_dim] = hash_text(problem, self.problem_dim, salt="problem")
        start += self.problem_dim
        moves_text = "\n".join(moves)
        out[start : start + self.moves_dim] = hash_text(moves_text, self.moves_dim, salt="moves")
        known_numbers = set(_NUMBER_RE.findall(problem)) | set(_NUMBER_RE.findall(moves_text))
        for k, text in enumerate(candidates):
            base = layout.context_dim + k * layout.slot_dim
            numbers = _NUMBER_RE.findall(text)
            out[base : base + len(SLOT_SCALARS)] = (
                1.0,
                1.0 if not text.strip() else 0.0,
                1.0 if "\\boxed{" in text else 0.0,
                min(1.0, math.log1p(len(text)) / _LENGTH_SCALE),
                (sum(n in known_numbers for n in numbers) / len(numbers)) if numbers else 0.0,
            )
            out[base + len(SLOT_SCALARS) : base + layout.slot_dim] = hash_text(text, self.candidate_dim, salt="candidate")
        return out.astype(np.float32)
