"""A cheap, one-sided numeric test: "these two closed forms are certainly different".

Wrong answers are the expensive case for math-verify (sympy tries to simplify a difference that is not
zero), and they are half of what an RL verifier sees. Evaluating both sides with Python complex floats at
fixed sample points settles most of them in microseconds: ``4\\sqrt{13}`` vs ``3\\sqrt{13}``, ``7-5i`` vs
``6-5i``, ``x^2+2x`` vs ``x^2+2x+1``.

Only *mismatches* are decided here. Numerically equal values still go to math-verify, because floats cannot
prove equality. A mismatch needs a relative difference above ``1e-6`` at some sample point (float error
is ~1e-16, so only a contrived 10-digit cancellation could fool it). Anything outside the small grammar
below makes :func:`certainly_different` return ``False`` (undecided):

- numbers, ``+ - * /``, ``\\cdot``, ``\\times``, ``\\div``, ``^`` with a braced or one-character exponent,
  implicit products (``2\\sqrt{5}``, ``3x``) except right after a ``/`` (``1/2x`` is ambiguous);
- ``\\frac``, ``\\sqrt{..}``, ``\\sqrt[n]{..}``, ``\\pi``, ``e`` (Euler's number, as math-verify reads it),
  ``i`` (imaginary unit: values that differ as complex numbers also differ as polynomials in a symbol ``i``),
  single-letter variables (sampled at positive points), brackets.
- No words (``ab`` could be a product or a name), subscripts, functions, ``\\pm``, factorials, decimals
  with a ``%`` or anything else.
"""

from __future__ import annotations

import cmath
import math
import re

REL_TOL = 1e-6
_TOKEN_RE = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(\\[a-zA-Z]+)|([a-zA-Z])|([-+*/^(){}\[\]]))")
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_OPS = {"\\cdot": "*", "\\times": "*", "\\div": "/"}
_ATOM_START = {"(", "{", "\\frac", "\\sqrt", "\\pi"}
MAX_EXPONENT = 1_000.0


class _Bail(Exception):
    """Outside the grammar or numerically unsafe: undecided."""


def _tokens(s: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            if s[pos:].strip():
                raise _Bail
            break
        pos = m.end()
        num, cmd, letter, op = m.groups()
        if num is not None:
            out.append(("num", num))
        elif cmd is not None:
            out.append(("op", _OPS[cmd]) if cmd in _OPS else ("cmd", cmd))
        elif letter is not None:
            out.append(("var", letter))
        else:
            out.append(("op", op))
    return out


def _checked(value: complex, *operands: complex) -> complex:
    if not cmath.isfinite(value):
        raise _Bail
    if value == 0 and all(o != 0 for o in operands):  # underflow would fake an equality of magnitudes
        raise _Bail
    return value


class _Eval:
    def __init__(self, tokens: list[tuple[str, str]], env: dict[str, complex]):
        self.toks, self.env, self.i = tokens, env, 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise _Bail
        self.i += 1
        return tok

    def expr(self) -> complex:
        value = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.take()
            rhs = self.term()
            value = _checked(value + rhs) if tok[1] == "+" else _checked(value - rhs)
        return value

    def _starts_atom(self, tok: tuple[str, str] | None) -> bool:
        return tok is not None and (tok[0] in ("num", "var") or tok[1] in _ATOM_START)

    def term(self) -> complex:
        value = self.unary()
        divided = False
        while True:
            tok = self.peek()
            if tok is not None and tok[1] in ("*", "/"):
                self.take()
                rhs = self.unary()
                if tok[1] == "/":
                    if rhs == 0:
                        raise _Bail
                    divided = True
                    value = _checked(value / rhs, value)
                else:
                    value = _checked(value * rhs, value, rhs)
            elif self._starts_atom(tok):
                if divided or tok[0] == "num" and self.toks[self.i - 1][0] == "num":
                    raise _Bail  # "1/2x" and "2 3" are ambiguous
                rhs = self.power()
                value = _checked(value * rhs, value, rhs)
            else:
                return value

    def unary(self) -> complex:
        tok = self.peek()
        if tok is not None and tok[1] in ("+", "-"):
            self.take()
            value = self.unary()
            return -value if tok[1] == "-" else value
        return self.power()

    def power(self) -> complex:
        base = self.atom()
        if (tok := self.peek()) is None or tok[1] != "^":
            return base
        self.take()
        nxt = self.peek()
        if nxt is None:
            raise _Bail
        if not (nxt[1] in ("{", "\\pi") or nxt[0] == "var" or nxt[0] == "num" and len(nxt[1]) == 1):
            raise _Bail  # x^23 means x^2 3 in LaTeX; do not guess
        exponent = self.atom()
        if abs(exponent) > MAX_EXPONENT or base == 0:
            raise _Bail
        try:
            return _checked(base**exponent, base)
        except (OverflowError, ZeroDivisionError) as e:
            raise _Bail from e

    def group(self) -> complex:
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom(self) -> complex:
        kind, tok = self.take()
        if kind == "num":
            try:
                return complex(float(tok))
            except OverflowError as e:
                raise _Bail from e
        if kind == "var":
            if tok == "i":
                return 1j
            if tok == "e":
                return complex(math.e)
            return self.env[tok]
        if tok in ("(", "{", "["):
            value = self.expr()
            self.take({"(": ")", "{": "}", "[": "]"}[tok])
            return value
        if tok == "\\pi":
            return complex(math.pi)
        if tok == "\\frac":
            num = self.group()
            den = self.group()
            if den == 0:
                raise _Bail
            return _checked(num / den, num)
        if tok == "\\sqrt":
            index = 2.0
            if (nxt := self.peek()) is not None and nxt[1] == "[":
                self.take("[")
                index = self.expr()
                self.take("]")
                if index == 0:
                    raise _Bail
            value = self.group()
            return _checked(value ** (1 / index), value) if value != 0 else 0j
        raise _Bail


def _variables(tokens: list[tuple[str, str]]) -> list[str]:
    return sorted({t for kind, t in tokens if kind == "var" and t not in ("i", "e")})


def _sample(name: str, k: int) -> complex:
    # Fixed positive points, distinct per variable: deterministic and clear of sign/branch-cut issues.
    return complex(1.1 + ((ord(name) * 7 + k * 13) % 17) / 10)


def certainly_different(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` (normalised LaTeX) are numerically different; False means undecided."""
    if _WORD_RE.search(a) or _WORD_RE.search(b) or len(a) > 500 or len(b) > 500:
        return False
    try:
        ta, tb = _tokens(a), _tokens(b)
        if not ta or not tb:
            return False
        names = sorted(set(_variables(ta)) | set(_variables(tb)))
        for k in range(2 if names else 1):
            env = {n: _sample(n, k) for n in names}
            ea, eb = _Eval(ta, env), _Eval(tb, env)
            va, vb = ea.expr(), eb.expr()
            if ea.peek() is not None or eb.peek() is not None:
                return False
            scale = max(abs(va), abs(vb))
            if scale > 1e-200 and abs(va - vb) > REL_TOL * scale:
                return True
    except (_Bail, KeyError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return False
    return False


def constant_value(s: str) -> complex | None:
    """The double-precision value of a variable-free closed form (``2\\sqrt{2}``, ``\\frac{\\pi}{3}``), or
    ``None`` when ``s`` has variables or is outside the grammar above."""
    if _WORD_RE.search(s) or len(s) > 500:
        return None
    try:
        toks = _tokens(s)
        if not toks or _variables(toks):
            return None
        ev = _Eval(toks, {})
        value = ev.expr()
        return value if ev.peek() is None else None
    except (_Bail, KeyError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def equations_differ(p: list[str], g: list[str]) -> bool:
    """True when equations ``p[0] = p[1]`` and ``g[0] = g[1]`` certainly have different solution sets:
    ``(p0 - p1) / (g0 - g1)`` is not one constant over the sample points (equal equations are multiples
    of each other). ``False`` means undecided."""
    lhs, rhs = f"({p[0]})-({p[1]})", f"({g[0]})-({g[1]})"
    if _WORD_RE.search(lhs) or _WORD_RE.search(rhs) or len(lhs) + len(rhs) > 1000:
        return False
    try:
        ta, tb = _tokens(lhs), _tokens(rhs)
        names = sorted(set(_variables(ta)) | set(_variables(tb)))
        if not names:
            return False
        ratios = []
        for k in range(3):
            env = {n: _sample(n, k) for n in names}
            ea, eb = _Eval(ta, env), _Eval(tb, env)
            va, vb = ea.expr(), eb.expr()
            if ea.peek() is not None or eb.peek() is not None or vb == 0 or va == 0:
                return False
            ratios.append(va / vb)
        scale = max(abs(r) for r in ratios)
        return any(abs(r - ratios[0]) > REL_TOL * scale for r in ratios[1:])
    except (_Bail, KeyError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return False
