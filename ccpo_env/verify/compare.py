"""Answer comparison: cheap in-process decisions first, math-verify (run in a worker) for the rest.

:func:`decide` takes two *normalised* strings (prediction, gold) and returns ``(correct, reason)`` when it can
decide without sympy, or ``None`` when math-verify is needed. Its guards, each fixing a math-verify behaviour:

- exact string match (after :func:`~ccpo_env.verify.normalize.normalize_math`);
- exact rational arithmetic when both sides are rational (math-verify rounds floats: ``1/2^{99}`` vs
  ``1/2^{98}``), with size caps (``10^{10^{10^{10}}}`` -> ``"too_large"``, never evaluated);
- multiple choice: a gold ``A``..``E`` (``(B)``, ``\\text{(B)}``) is matched by letter only;
- equations: ``x=5`` vs gold ``5`` compares ``5``; two assignments need the same variable *and* value
  (``x=1`` != ``x=2``, ``x=5`` != ``y=5``); chains ``x=2+3=5`` use the last value;
- tuples/intervals are compared element-wise with matching brackets (``[1,2)`` != ``[1,2]``); bare lists and
  ``\\{..\\}`` sets order-insensitively; base subscripts must agree (``52_8`` != ``52_9``);
- plain words (``\\text{Evelyn}``) compare case-insensitively, as math-verify does, but fast;
- a numeric "certainly different" test (:mod:`~ccpo_env.verify.numeric`) settles most wrong answers.

:func:`mv_compare` runs math-verify (``parse``/``verify`` with their signal timeouts disabled; the worker
pool enforces a hard timeout instead) plus two vetoes on what math-verify calls equal: exact rationals that
differ, and "parses" that kept only a number out of a formula with letters.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from .normalize import compact
from .numeric import certainly_different
from .rational import TooLarge, Undefined, eval_rational, has_huge_power

Decision = tuple[bool, str]

MAX_ANSWER_CHARS = 1_000  # longer "answers" are prose or degenerate output, not a final answer
MAX_SEQUENCE_ITEMS = 16

_OPEN = "([{"
_CLOSE = ")]}"
_NOT_EQ_BEFORE = "<>!:="
_CHOICE_GOLD_RE = re.compile(r"\(?([A-E])\)?")
_CHOICE_PRED_RE = re.compile(r"\s*(?:\(([A-Ea-e])\)|([A-Ea-e])\))(?:\s.*)?|\s*([A-Ea-e])\s*", re.S)
_BASE_RE = re.compile(r"(\d[0-9A-Z]*)_\{(\d+)\}")  # numbers in base b: 52_{8}
_WORDS_RE = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]+)*")
_VAR_LHS_RE = re.compile(
    r"(?:[A-Za-z]{1,3}|\\[a-zA-Z]+)(?:_\{[^{}]*\}|_[A-Za-z0-9])?'*(?:\^\{?[-+]?1\}?)?(?:\([^()=]*\))?"
    r"|(?:m\s*)?\\angle\s*[A-Z]{1,3}"
)


def split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` outside brackets and braces (escaped ``\\{``/``\\}`` count as brackets)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif (
            c == sep
            and depth == 0
            and (sep != "=" or (s[i - 1 : i] not in _NOT_EQ_BEFORE and s[i + 1 : i + 2] != "="))
        ):
            parts.append(s[start:i])  # ("<=", ">=", "!=", ":=", "==" are not equations)
            start = i + 1
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _sequence(s: str) -> tuple[str, list[str]] | None:
    """``(kind, items)`` for tuples/intervals ``(..)``/``[..)``, sets ``\\{..\\}`` and bare comma lists."""
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        if len(split_top("\\{" + inner + "\\}", ",")) == 1:  # the braces enclose the whole string
            return "set", split_top(inner, ",")
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        depth = 0
        for i, c in enumerate(s):
            depth += c in _OPEN
            depth -= c in _CLOSE
            if depth == 0 and i < len(s) - 1:
                break  # "(0,9)\cup(9,36)": the first bracket closes early
        else:
            items = split_top(s[1:-1], ",")
            if len(items) >= 2:
                return s[0] + s[-1], items
            return None
    items = split_top(s, ",")
    if len(items) >= 2:
        return "list", items
    return None


def _compare_sequences(p: tuple[str, list[str]], g: tuple[str, list[str]], depth: int) -> Decision | None:
    (pk, pitems), (gk, gitems) = p, g
    if len(pitems) > MAX_SEQUENCE_ITEMS or len(gitems) > MAX_SEQUENCE_ITEMS:
        return None
    ordered = {"()", "[]", "(]", "[)"}
    if pk in ordered and gk in ordered:
        if pk != gk or len(pitems) != len(gitems):
            return False, "mismatch"
    elif "set" in (pk, gk) or (pk == "list" and gk == "list"):
        # Order-insensitive: greedily match each gold item to an unused equal prediction item.
        if len(pitems) != len(gitems):
            if _all_rational(pitems) and _all_rational(gitems):  # compare the sets of values exactly
                pv, gv = {eval_rational(x) for x in pitems}, {eval_rational(x) for x in gitems}
                return (True, "rational") if pv == gv else (False, "mismatch")
            return None  # duplicates could collapse; let math-verify decide
        unused = list(pitems)
        reasons = []
        for gi in gitems:
            for j, pj in enumerate(unused):
                d = decide(pj, gi, _depth=depth + 1)
                if d is None:
                    return None
                if d[0]:
                    reasons.append(d[1])
                    del unused[j]
                    break
            else:
                return False, "mismatch"
        return True, "exact" if all(r == "exact" for r in reasons) else "rational"
    elif len(pitems) != len(gitems):
        return None
    decisions = [decide(a, b, _depth=depth + 1) for a, b in zip(pitems, gitems)]
    if any(d is not None and not d[0] for d in decisions):
        return False, "mismatch"
    if all(d is not None for d in decisions):
        return True, "exact" if all(d[1] == "exact" for d in decisions) else "rational"  # type: ignore[index]
    return None


def _scalar(p: str, g: str) -> Decision | None:
    if compact(p) == compact(g):
        return True, "exact"
    try:
        pv = eval_rational(p)
        gv = eval_rational(g)
    except TooLarge:
        return False, "too_large"
    except Undefined:
        return False, "mismatch"
    if pv is not None and gv is not None:
        return (True, "rational") if pv == gv else (False, "mismatch")
    return None


def _choice(p: str) -> str | None:
    m = _CHOICE_PRED_RE.fullmatch(p)
    if m is None:
        return None
    return next(x for x in m.groups() if x).upper()


def _equation_parts(s: str) -> list[str] | None:
    if "=" not in s or len(split_top(s, ",")) > 1:
        return None
    parts = split_top(s, "=")
    return parts if len(parts) >= 2 and all(parts) else None


def _is_var(lhs: str) -> bool:
    return _VAR_LHS_RE.fullmatch(compact(lhs)) is not None or _VAR_LHS_RE.fullmatch(lhs.strip()) is not None


def decide(p: str, g: str, *, _depth: int = 0) -> Decision | None:
    """Decide ``p`` (prediction) vs ``g`` (gold), both normalised, without sympy; ``None`` = ask math-verify."""
    if _depth > 8:
        return None
    if len(p) > MAX_ANSWER_CHARS:
        return False, "answer_too_long"
    d = _scalar(p, g)
    if d is not None:
        return d
    gold_letter = _CHOICE_GOLD_RE.fullmatch(compact(g))
    if gold_letter is not None:
        return (True, "choice") if _choice(p) == gold_letter.group(1) else (False, "mismatch")
    d = _base_numbers(p, g)
    if d is not None:
        return d
    p_eq, g_eq = _equation_parts(p), _equation_parts(g)
    if p_eq and g_eq:
        if _is_var(p_eq[0]) and _is_var(g_eq[0]):
            if compact(p_eq[0]) != compact(g_eq[0]):
                return False, "mismatch"  # x=5 vs y=5: a different unknown
            return decide(p_eq[-1], g_eq[-1], _depth=_depth + 1)
    elif p_eq:
        # The gold is a value: the prediction's last right-hand side is its value (x = 2+3 = 5 -> 5).
        return decide(p_eq[-1], g, _depth=_depth + 1)
    elif g_eq and _is_var(g_eq[0]):
        return decide(p, g_eq[-1], _depth=_depth + 1)
    ps, gs = _sequence(p), _sequence(g)
    if ps is not None and gs is not None:
        d = _compare_sequences(ps, gs, _depth)
        if d is not None:
            return d
    elif (ps is None) != (gs is None):
        # A list of plain numbers vs one plain number (e.g. "12" vs "1,2") can never match.
        seq, scalar = (ps, g) if ps is not None else (gs, p)
        if _all_rational(seq[1]) and _all_rational([scalar]):
            return False, "mismatch"
    p_words, g_words = _WORDS_RE.fullmatch(p), _WORDS_RE.fullmatch(g)
    if p_words and g_words:  # names such as \text{Evelyn}: math-verify compares them case-insensitively
        if p.lower() == g.lower():
            return True, "exact"
        if sorted(compact(p)) != sorted(compact(g)):  # "ab" vs "ba" may be products: math-verify decides
            return False, "mismatch"
    if (p_words and _all_rational([g])) or (g_words and _all_rational([p])):
        return False, "mismatch"
    if _depth == 0 and (has_huge_power(p) or has_huge_power(g)):
        return False, "too_large"
    if certainly_different(p, g):
        return False, "mismatch"
    return None


def _all_rational(items: list[str]) -> bool:
    try:
        return all(eval_rational(x) is not None for x in items)
    except (TooLarge, Undefined):
        return False


def _base_numbers(p: str, g: str) -> Decision | None:
    """``52_{8}`` style answers: same base -> compare values; different bases -> mismatch;
    a bare numeral against a based gold is read in the gold's base (math-verify drops the subscript)."""
    pm, gm = _BASE_RE.fullmatch(compact(p)), _BASE_RE.fullmatch(compact(g))
    if gm is None and pm is None:
        p_bases, g_bases = set(_BASE_RE.findall(compact(p))), set(_BASE_RE.findall(compact(g)))
        if p_bases and g_bases and {b for _, b in p_bases} != {b for _, b in g_bases}:
            return False, "mismatch"
        return None
    if gm is None or (pm is None and not compact(p).isalnum()):
        return None
    g_digits, base = gm.group(1), int(gm.group(2))
    p_digits, p_base = (pm.group(1), int(pm.group(2))) if pm else (compact(p), base)
    if p_base != base:
        return False, "mismatch"
    try:
        same = int(p_digits, base) == int(g_digits, base) if 2 <= base <= 36 else p_digits == g_digits
    except ValueError:  # digits not valid in that base
        return False, "mismatch"
    return (True, "rational") if same else (False, "mismatch")


# --------------------------------------------------------------------------- math-verify (worker side)
@functools.lru_cache(maxsize=1)
def _math_verify() -> Any:
    """Import math-verify lazily: only worker processes pay for sympy/antlr."""
    import math_verify

    # We disable math-verify's own timeouts on purpose; silence its "timeout disabled" warning.
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return math_verify


@functools.lru_cache(maxsize=4096)
def _parse(s: str) -> tuple:
    # Golds repeat across a group of rollouts, so parsed expressions are cached per worker.
    return tuple(_math_verify().parse("$" + s + "$", parsing_timeout=None))


def _exact_conflict(g: Any, p: Any) -> bool:
    """True when math-verify's 'equal' is contradicted by exact rational values (its floats round)."""
    import sympy

    if isinstance(g, sympy.Rational) and isinstance(p, sympy.Rational):
        return bool(g != p)
    if isinstance(g, sympy.Tuple) and isinstance(p, sympy.Tuple) and len(g) == len(p):
        return any(_exact_conflict(a, b) for a, b in zip(g.args, p.args))
    both_sets = isinstance(g, sympy.FiniteSet) and isinstance(p, sympy.FiniteSet) and len(g) == len(p)
    if both_sets and all(isinstance(x, sympy.Rational) for x in (*g.args, *p.args)):
        return sorted(g.args) != sorted(p.args)
    return False


_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")


def _lost_parse(s: str, expr: Any) -> bool:
    """math-verify sometimes parses only a fragment of a long formula (e.g. ``2`` out of
    ``\\hbar\\omega(v+1/2)-\\frac{E_0^2e^2}{2m\\omega^2}``), and two such formulas then compare equal.
    A plain number parsed from a string with free letters is such a fragment."""
    import sympy

    return isinstance(expr, sympy.Number) and re.search(r"[a-zA-Z]", _COMMAND_RE.sub(" ", s)) is not None


def _mv_one(gold: str, pred: str) -> bool:
    mv = _math_verify()
    g, p = _parse(gold), _parse(pred)
    if not g or not p or _lost_parse(gold, g[0]) or _lost_parse(pred, p[0]):
        return False
    ok = mv.verify(list(g), list(p), timeout_seconds=None, allow_set_relation_comp=True)
    return bool(ok) and not _exact_conflict(g[0], p[0])


# One of each kind of comparison: sympy builds caches and imports submodules lazily, which makes the first
# comparison of each kind 2-5x slower. Workers run these once before reporting ready.
WARMUP_PAIRS = (
    ("1", "1"),
    ("w = 5 + 3t", "w = 3t + 5"),
    ("[-3,4)", "-3 \\leq t < 4"),
    ("t > 2", "(2,\\infty)"),
    ("(4, \\pi/3)", "( 4, \\frac{\\pi}{3} )"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
    ("(t+2)^2", "t^2+4t+4"),
    ("5i-3", "-3 + 5i"),
    ("\\{3,4\\}", "\\{4,3\\}"),
    ("\\begin{pmatrix} 5 & 6 \\\\ 7 & 8 \\end{pmatrix}", "\\begin{pmatrix} 5 & 6 \\\\ 7 & 8 \\end{pmatrix}"),
)


def warm_up() -> None:
    """Run :data:`WARMUP_PAIRS` once (then forget them, so the parse cache starts clean)."""
    for pred, gold in WARMUP_PAIRS:
        mv_compare(pred, gold)
    _parse.cache_clear()


def mv_compare(pred: str, gold: str, symmetric: bool = False) -> Decision:
    """math-verify's judgement of normalised ``pred`` vs ``gold``; both directions when ``symmetric``."""
    ok = _mv_one(gold, pred) and (not symmetric or _mv_one(pred, gold))
    return (True, "math_verify") if ok else (False, "mismatch")
