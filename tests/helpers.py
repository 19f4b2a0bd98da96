"""Helpers shared by test modules and the scripts they launch (not a test module itself)."""

from __future__ import annotations

import hashlib

from ccpo_env import Verdict


def coin_verifier(response: str, gold: str, *, answer_type: str = "math") -> Verdict:
    """Deterministic pseudo-random verdicts, so a random tiny model gets non-zero advantages."""
    h = hashlib.blake2b(response.encode(), digest_size=2).digest()[0]
    return Verdict(h % 2 == 0, response[-3:], "coin")
