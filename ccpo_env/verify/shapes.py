"""Answer shapes rewritten so :func:`~ccpo_env.verify.compare.decide` can compare them without sympy.

- ``a \\pm b`` (one top-level ``\\pm``, ``b`` a single term) is the pair ``a+b, a-b``; ``\\pm b`` is
  ``b, -b``. So ``1 \\pm \\sqrt{19}`` matches ``1+\\sqrt{19}, 1-\\sqrt{19}`` (order-free, as a list) and
  ``2 \\pm \\sqrt{19}`` is settled as different by the numeric test, item by item;
- ``\\begin{pmatrix}..\\end{pmatrix}`` (also ``bmatrix``) is its grid of entries, compared entry by entry.
"""

from __future__ import annotations

import re

_PM = "\\pm"
_MATRIX_RE = re.compile(r"\\begin\{([pb])matrix\}(.*)\\end\{\1matrix\}", re.S)
MAX_CELLS = 64


def _top_level_sign(s: str) -> bool:
    """Whether ``s`` has a ``+`` or ``-`` outside brackets after its first character."""
    depth = 0
    for i, c in enumerate(s):
        depth += c in "({["
        depth -= c in ")}]"
        if depth == 0 and i > 0 and c in "+-" and s[i - 1] not in "^_":
            return True
    return False


def expand_pm(s: str) -> str:
    """``a \\pm b`` -> ``a+b, a-b`` when unambiguous; anything else is returned unchanged."""
    if s.count(_PM) != 1 or "," in s or "\\mp" in s:
        return s
    head, _, tail = s.partition(_PM)
    head, tail = head.strip(), tail.strip()
    if not tail or _top_level_sign(tail) or head.endswith(("(", "{", "[", "=")):
        return s
    if not head:
        return f"{tail}, -{tail}" if not tail.startswith("-") else s
    return f"{head}+{tail}, {head}-{tail}"


def matrix_cells(s: str) -> list[list[str]] | None:
    """The rows of entries of a matrix written as one ``pmatrix``/``bmatrix``, else ``None``."""
    m = _MATRIX_RE.fullmatch(s.strip())
    if m is None:
        return None
    rows = [r.strip() for r in m.group(2).split("\\\\")]
    rows = [r for r in rows if r]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if not cells or sum(len(r) for r in cells) > MAX_CELLS or any(not c for r in cells for c in r):
        return None
    return cells
