"""The answer verifier: final-answer extraction, math-verify plus guards, hard timeouts, a cache.

>>> from ccpo_env.verify import verify
>>> verify("... so the answer is \\\\boxed{\\\\frac{1}{2}}", "0.5")
Verdict(correct=True, pred='\\\\frac{1}{2}', reason='rational')

Public API: :func:`verify`, :func:`verify_batch`, :func:`extract_answer`, :func:`equivalent`,
:func:`make_trl_reward`, :class:`Verdict`; the extraction modes :data:`EXTRACTION_MODES` (``"boxed"``,
``"anchored"`` = :data:`TRAINING_EXTRACTION`, ``"lenient"`` = :data:`DEFAULT_EXTRACTION`); plus :func:`clear_cache`, :func:`cache_info`, :func:`shutdown`.
See :mod:`ccpo_env.verify.api` for the pipeline, :mod:`~ccpo_env.verify.extract` for the extraction rules,
:mod:`~ccpo_env.verify.normalize` and :mod:`~ccpo_env.verify.compare` for the guards and
:mod:`~ccpo_env.verify.pool` for the worker-process lifecycle.
"""

from .api import (
    ANSWER_TYPES,
    DEFAULT_TIMEOUT,
    answer_classes,
    cache_info,
    clear_cache,
    equivalent,
    shutdown,
    verify,
    verify_batch,
)
from .extract import DEFAULT_EXTRACTION, EXTRACTION_MODES, TRAINING_EXTRACTION, extract_answer
from .trl import completion_text, make_trl_reward
from .verdict import Verdict

__all__ = [
    "ANSWER_TYPES",
    "DEFAULT_EXTRACTION",
    "DEFAULT_TIMEOUT",
    "EXTRACTION_MODES",
    "TRAINING_EXTRACTION",
    "Verdict",
    "answer_classes",
    "cache_info",
    "clear_cache",
    "completion_text",
    "equivalent",
    "extract_answer",
    "make_trl_reward",
    "shutdown",
    "verify",
    "verify_batch",
]
