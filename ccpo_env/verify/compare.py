"""Answer comparison: cheap in-process decisions first, math-verify (run in a worker) for the rest.

:func:`decide` takes two *normalised* strings (prediction, gold) and returns ``(correct, reason)`` when it can
decide without sympy, or ``None`` when math-verify is needed. Its guards, each fixing a math-verify behaviour:

- exact string match (after :func:`~ccpo_env.verify.normalize.normalize_math`);
- exact rational arithmetic when both sides are rational (math-verify rounds floats: ``1/2^{99}`` vs
  ``1/2^{98}``, ``1/2006!`` vs ``1/2004!``), with size caps (``10^{10^{10^{10}}}`` -> ``"too_large"``, never evaluated);
- multiple choice: a gold ``A``..``E`` (``(B)``, ``\\text{(B)}``) is matched by letter only;
- equations: ``x=5`` vs gold ``5`` compares ``5``; two assignments need the same variable *and* value
  (``x=1`` != ``x=2``, ``x=5`` != ``y=5``); chains ``x=2+3=5`` use the last value;
- tuples/intervals are compared element-wise with matching brackets (``[1,2)`` != ``[1,2]``); bare lists and
  ``\\{..\\}`` sets order-insensitively; base subscripts must agree (``52_8`` != ``52_9``);
- plain words (``\\text{Evelyn}``) compare case-insensitively, as math-verify does, but fast;
- decimal approximations of exact values, under the stated relative tolerance of
  :mod:`~ccpo_env.verify.approx` (``0.142857`` for ``\\frac{1}{7}``; an integer gold takes no other decimal);
  a decimal comma when unambiguous (``3,5`` for gold ``3.5``, not ``3,500``);
- what ``\\approx`` states: ``x \\approx 9`` is ``x = 9``, ``x = 2\\sqrt{2} \\approx 2.83`` is its exact part;
- option letters also in a short phrase (``clearly B, not A or C``, ``E: text``; a negated or rejected letter
  does not count);
- single-variable inequalities vs intervals (:mod:`~ccpo_env.verify.relations`), ``\\pm\\infty`` ends, and
  equations ``a = b`` vs ``c = d`` whose differences are not multiples of each other (numerically);
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

from .approx import approximates, decimal_places
from .normalize import compact
from .numeric import certainly_different, constant_value, equations_differ
from .poly import proportional, same_polynomial
from .rational import TooLarge, Undefined, eval_rational, has_huge_power
from .relations import as_interval
from .shapes import expand_pm, matrix_cells

Decision = tuple[bool, str]

MAX_ANSWER_CHARS = 1_000  # longer "answers" are prose or degenerate output, not a final answer
MAX_SEQUENCE_ITEMS = 16

_OPEN = "([{"
_CLOSE = ")]}"
_NOT_EQ_BEFORE = "<>!:="
CHOICE_GOLD_RE = re.compile(r"\(?([A-E])\)?")
_CHOICE_PRED_RE = re.compile(
    r"\s*(?:\(([A-Ea-e])\)|([A-Ea-e])\))(?:\s.*)?|\s*([A-Ea-e])\s*|\s*([A-E])[.:](?:\s.*)?", re.S
)
_CHOICE_WORD_RE = re.compile(r"\(([A-E])\)(?![A-Za-z0-9])|(?<![A-Za-z0-9\\(])([A-E])(?![A-Za-z0-9)])")
REJECTED_RE = re.compile(r"\s*(?:is|are)\s+(?:wrong|incorrect|false|not|ruled\s+out|impossible)\b")
NEGATED_RE = re.compile(r"(?i)\b(?:not|nor|than|isn't|instead\s+of|or)\s*\(?$")
_ARTICLE_RE = re.compile(r"\s+(?!is\b|as\b|and\b|or\b|because\b|since\b|seems\b|must\b|would\b)[a-z]{2,}")
_DECIMAL_COMMA_RE = re.compile(r"([-+]?\d+),(\d+)")
_INFINITIES = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1, "\\inf": 1, "-\\inf": -1}
MAX_CHOICE_PHRASE = 120
MAX_CHOICE_WORDS = 12
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
    p_inf, g_inf = _INFINITIES.get(compact(p)), _INFINITIES.get(compact(g))
    if p_inf is not None or g_inf is not None:  # interval ends: -\infty vs 1 needs no sympy
        if p_inf is not None and g_inf is not None:
            return (True, "exact") if p_inf == g_inf else (False, "mismatch")
        if _all_rational([p if g_inf is not None else g]):
            return False, "mismatch"
        return None
    try:
        pv = eval_rational(p)
        gv = eval_rational(g)
    except TooLarge:
        return False, "too_large"
    except Undefined:
        return False, "mismatch"
    if pv is not None and gv is not None:
        if pv == gv:
            return True, "rational"
        return (True, "approx") if approximates(p, gv) else (False, "mismatch")
    if gv is None and decimal_places(p) is not None:  # a decimal for a closed form such as 2\sqrt{2}
        value = constant_value(g)
        if value is not None:
            return (True, "approx") if approximates(p, value) else (False, "mismatch")
    return None


def choice_letter(p: str) -> str | None:
    """The option letter an extracted answer picks: ``(B)``, ``B``, ``B) 12``, ``E: text``, or in a short
    phrase the first letter that is not negated (``clearly B, not A or C`` -> ``B``); else ``None``."""
    m = _CHOICE_PRED_RE.fullmatch(p)
    if m is not None:
        end = m.end(m.lastindex or 0)
        if not REJECTED_RE.match(p, end + p.startswith(")", end)):  # "(A) is wrong, ..." picks nothing
            return next(x for x in m.groups() if x).upper()
    if len(p) > MAX_CHOICE_PHRASE or len(p.split()) > MAX_CHOICE_WORDS:
        return None
    for m in _CHOICE_WORD_RE.finditer(p):
        before, after = p[: m.start()], p[m.end() :]
        if NEGATED_RE.search(before) or REJECTED_RE.match(after):
            continue  # "not A", "rather than A", "(A) is wrong"
        letter = m.group(1) or m.group(2)
        if letter == "A" and _ARTICLE_RE.match(after):
            continue  # "a" as an article: "A better bound is ..."
        return letter
    return None


def _stated_value(s: str) -> str:
    """What an answer with ``\\approx`` states: the exact part of ``x = 2\\sqrt{2} \\approx 2.83``, the value
    of ``x \\approx 9`` (as ``x = 9``), the exact form of ``2\\sqrt{2} \\approx 2.83``."""
    if "\\approx" not in s:
        return s
    parts = [x.strip() for x in s.split("\\approx")]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return s
    exact, approx = parts
    if len(split_top(exact, "=")) >= 2 or not _is_var(exact):
        return exact
    return exact + " = " + approx


def _decimal_comma(p: str, g: str) -> str:
    """``3,5`` for a decimal gold ``3.5``: read as a decimal comma when unambiguous (no space after the
    comma, not three digits after it as in ``3,500``, and the gold is one number written with a point)."""
    m = _DECIMAL_COMMA_RE.fullmatch(p)
    if m is None or len(m.group(2)) == 3 or decimal_places(g) is None:
        return p
    return m.group(1) + "." + m.group(2)


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
    if _depth == 0:
        p, g = _stated_value(p), _stated_value(g)
        p = _decimal_comma(p, g)
    d = _scalar(p, g)
    if d is not None:
        return d
    if _depth == 0:
        p2, g2 = expand_pm(p), expand_pm(g)
        if (p2, g2) != (p, g):
            d = decide(p2, g2, _depth=1)
            if d is not None:
                return d
        d = _matrices(p, g)
        if d is not None:
            return d
    gold_letter = CHOICE_GOLD_RE.fullmatch(compact(g))
    if gold_letter is not None:
        return (True, "choice") if choice_letter(p) == gold_letter.group(1) else (False, "mismatch")
    d = _base_numbers(p, g)
    if d is not None:
        return d
    p_eq, g_eq = _equation_parts(p), _equation_parts(g)
    if p_eq and g_eq:
        if _is_var(p_eq[0]) and _is_var(g_eq[0]):
            if compact(p_eq[0]) != compact(g_eq[0]):
                return False, "mismatch"  # x=5 vs y=5: a different unknown
            return decide(p_eq[-1], g_eq[-1], _depth=_depth + 1)
        if len(p_eq) == len(g_eq) == 2:
            if equations_differ(p_eq, g_eq):
                return False, "mismatch"  # 6x-7y+4=0 vs 5x-7y+4=0: not multiples of each other
            if proportional(f"({p_eq[0]})-({p_eq[1]})", f"({g_eq[0]})-({g_eq[1]})"):
                return True, "polynomial"  # 2x+4y-3=0 vs y=-x/2+3/4: one is 4 times the other
    elif p_eq:
        # The gold is a value: the prediction's last right-hand side is its value (x = 2+3 = 5 -> 5).
        return decide(p_eq[-1], g, _depth=_depth + 1)
    elif g_eq and _is_var(g_eq[0]):
        return decide(p, g_eq[-1], _depth=_depth + 1)
    d = _relation_vs_interval(p, g, _depth)
    if d is not None:
        return d
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
    if same_polynomial(p, g):
        return True, "polynomial"  # (x+1)^2 vs x^2+2x+1: exact expansion, a proof
    return None


def _matrices(p: str, g: str) -> Decision | None:
    """Two matrices: different shapes differ; otherwise entry by entry (``None`` if any is undecided)."""
    pm, gm = matrix_cells(p), matrix_cells(g)
    if pm is None or gm is None:
        return None
    if [len(r) for r in pm] != [len(r) for r in gm]:
        return False, "mismatch"
    decisions = [decide(a, b, _depth=1) for pr, gr in zip(pm, gm) for a, b in zip(pr, gr)]
    if any(d is not None and not d[0] for d in decisions):
        return False, "mismatch"
    if all(d is not None for d in decisions):
        return True, "exact" if all(d[1] == "exact" for d in decisions) else "rational"  # type: ignore[index]
    return None


def _relation_vs_interval(p: str, g: str, depth: int) -> Decision | None:
    """``x \\geq 2`` vs ``[2,\\infty)`` (or two such relations): compare as intervals, in-process."""
    pr, gr = as_interval(p), as_interval(g)
    if pr is None and gr is None:
        return None
    if pr is not None and gr is not None and pr[0] != gr[0]:
        return None  # x > 2 vs t > 2: math-verify's call
    ps, gs = _sequence(pr[1] if pr else p), _sequence(gr[1] if gr else g)
    ordered = {"()", "[]", "(]", "[)"}
    if ps is None or gs is None or ps[0] not in ordered or gs[0] not in ordered:
        return None
    return _compare_sequences(ps, gs, depth)


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
