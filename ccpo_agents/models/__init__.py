"""Models: the name registry (tiny random shapes, warm starts, local folders, Hub ids).

The builders live in submodules, imported when used (they need torch and transformers; the registry does not):
:mod:`~ccpo_agents.models.tiny` (tiny Qwen2-style models with a locally trained tokenizer),
:mod:`~ccpo_agents.models.sft` (a reusable SFT step) and :mod:`~ccpo_agents.models.warmstart` (the warm starts).
"""

from . import registry as _registry
from .registry import *

__all__ = list(_registry.__all__)
