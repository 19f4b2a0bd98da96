"""The one seed helper of the project: seeds derived from labels, identical across processes.

Every place that needs a reproducible seed from structured parts (an episode of a rollout, a policy call,
a counterfactual branch, a data order per training seed) calls :func:`stable_seed`. Python's ``hash`` is
salted per process, so it cannot be used; a keyed BLAKE2b digest of the parts' ``repr`` can, and it is the
same on every machine, process and Python version. Torch-free.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["SEED_MODULUS", "stable_seed"]

#: Seeds are in ``[0, SEED_MODULUS)``: a positive 31-bit int, valid for numpy, torch, random and vLLM.
SEED_MODULUS = 2**31 - 1


def stable_seed(*parts: Any) -> int:
    """A seed in ``[0, 2**31 - 1)`` determined by ``parts`` (ints, strings, tuples, ``None``).

    >>> stable_seed("joint", 0, 3) == stable_seed("joint", 0, 3)
    True
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % SEED_MODULUS
