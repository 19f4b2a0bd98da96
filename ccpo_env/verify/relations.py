"""Single-variable inequalities read as intervals, so ``x \\geq 2`` and ``[2, \\infty)`` compare in-process.

math-verify can compare a relation with an interval (``allow_set_relation_comp``) but pays a sympy solve
for it (0.1-0.3 s each). The common forms are simple enough to rewrite exactly:

- ``x < a``, ``x \\leq a``, ``x > a``, ``x \\geq a`` -> ``(-\\infty,a)``, ``(-\\infty,a]``, ``(a,\\infty)``,
  ``[a,\\infty)``;
- ``a < x < b`` with ``<``/``\\leq`` on either side -> ``(a,b)``, ``[a,b)``, ``(a,b]``, ``[a,b]``.

Anything else (``\\neq``, several variables, bounds that hold a relation) is left to math-verify.
"""

from __future__ import annotations

import re

_BOUND = r"([^<>=]+?)"
_ONE_SIDED_RE = re.compile(r"([a-zA-Z])\s*(<|>|\\leq|\\geq)\s*" + _BOUND)
_TWO_SIDED_RE = re.compile(_BOUND + r"\s*(<|\\leq)\s*([a-zA-Z])\s*(<|\\leq)\s*" + _BOUND)
_RELATION_WORDS_RE = re.compile(r"\\(?:leq|geq|neq)(?![a-zA-Z])|[<>=]")


def as_interval(s: str) -> tuple[str, str] | None:
    """``(variable, interval)`` for a one-variable inequality such as ``x \\geq 2`` or ``-3 \\leq t < 4``."""
    s = s.strip()
    m = _ONE_SIDED_RE.fullmatch(s)
    if m is not None:
        var, op, bound = m.group(1), m.group(2), m.group(3).strip()
        if not bound or _RELATION_WORDS_RE.search(bound):
            return None
        interval = {
            "<": f"(-\\infty,{bound})",
            "\\leq": f"(-\\infty,{bound}]",
            ">": f"({bound},\\infty)",
            "\\geq": f"[{bound},\\infty)",
        }[op]
        return var, interval
    m = _TWO_SIDED_RE.fullmatch(s)
    if m is not None:
        low, op_low, var, op_high, high = (g.strip() for g in m.groups())
        if not low or not high or _RELATION_WORDS_RE.search(low + high):
            return None
        return var, ("(" if op_low == "<" else "[") + f"{low},{high}" + (")" if op_high == "<" else "]")
    return None
