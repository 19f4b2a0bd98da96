"""Exact polynomial identity: a cheap in-process *proof* that two answers are equal.

``(x+1)^2`` vs ``x^2+2x+1``, ``7i-2`` vs ``-2+7i``, ``\\pi \\cdot 12`` vs ``12\\pi``, ``\\frac{x}{7}+\\frac{2}{7}``
vs ``\\frac{x+2}{7}``: both sides are expanded into polynomials with exact rational coefficients, every
letter (and ``\\pi``) a free symbol. Equal polynomials are equal for *every* value of the symbols, so also
for ``i = \\sqrt{-1}``, ``e`` and ``\\pi``: :func:`same_polynomial` returning ``True`` is a proof. ``False``
proves nothing (``i^2`` vs ``-1`` are different polynomials but equal numbers), so callers only use it to
accept; mismatches stay with the numeric test and math-verify.

Grammar: numbers (decimals exactly), single letters, ``\\pi``, ``+ - * /``, ``\\cdot``/``\\times``/``\\div``,
``^`` with a literal exponent ``0..MAX_POWER``, implicit products, brackets, ``\\frac`` whose denominator
is a non-zero constant. Anything else (roots, functions, words, subscripts) -> not a polynomial.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_POWER = 12
MAX_TERMS = 200
MAX_CHARS = 300

Monomial = tuple[tuple[str, int], ...]
Poly = dict[Monomial, Fraction]

_TOKEN_RE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+|\\[a-zA-Z]+|[a-zA-Z]|[-+*/^(){}\[\]])")
_COMMANDS = {"\\cdot": "*", "\\times": "*", "\\div": "/", "\\pi": "\\pi", "\\frac": "\\frac"}
_OPEN = {"(": ")", "{": "}", "[": "]"}
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")


class _NotPoly(Exception):
    pass


def _lex(s: str) -> list[str]:
    toks = _TOKEN_RE.findall(s)
    if "".join(toks) != re.sub(r"\s+", "", s) or any(t.startswith("\\") and t not in _COMMANDS for t in toks):
        raise _NotPoly  # a character outside the grammar, or an unknown command
    return [_COMMANDS.get(t, t) for t in toks]


def _plus(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for mono, c in b.items():
        out[mono] = out.get(mono, Fraction(0)) + sign * c
    out = {m: c for m, c in out.items() if c != 0}
    if len(out) > MAX_TERMS:
        raise _NotPoly
    return out


def _times(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            powers = dict(ma)
            for var, k in mb:
                powers[var] = powers.get(var, 0) + k
            out = _plus(out, {tuple(sorted(powers.items())): ca * cb})
    return out


class _Reader:
    def __init__(self, toks: list[str]):
        self.toks, self.i = toks, 0

    def next_is(self, *options: str) -> bool:
        return self.i < len(self.toks) and self.toks[self.i] in options

    def eat(self, expected: str | None = None) -> str:
        if self.i >= len(self.toks) or (expected is not None and self.toks[self.i] != expected):
            raise _NotPoly
        self.i += 1
        return self.toks[self.i - 1]

    def sum(self) -> Poly:
        sign = -1 if self.next_is("-") else 1
        if self.next_is("+", "-"):
            self.eat()
        total = _times({(): Fraction(sign)}, self.product())
        while self.next_is("+", "-"):
            sign = 1 if self.eat() == "+" else -1
            total = _plus(total, self.product(), sign)
        return total

    def product(self) -> Poly:
        value = self.factor()
        divided = False
        while self.i < len(self.toks) and self.toks[self.i] not in ("+", "-", ")", "}", "]", "^"):
            if self.next_is("/"):
                self.eat()
                value, divided = _times(value, _inverse(self.factor())), True
                continue
            if self.next_is("*"):
                self.eat()
            elif divided or not (self.toks[self.i].isalpha() or self.toks[self.i] in ("\\pi", "(", "[")):
                raise _NotPoly  # "1/2x", "2 3", "1\\frac{4}{5}" (a mixed number) are not plain products
            value = _times(value, self.factor())
        return value

    def factor(self) -> Poly:
        base = self.atom()
        if not self.next_is("^"):
            return base
        self.eat("^")
        braced = self.next_is("{")
        if braced:
            self.eat("{")
        exp_tok = self.eat()
        if braced:
            self.eat("}")
        if not exp_tok.isdigit() or int(exp_tok) > MAX_POWER or (len(exp_tok) > 1 and not braced):
            raise _NotPoly  # x^23 is x^2 3 in LaTeX: do not guess
        out: Poly = {(): Fraction(1)}
        for _ in range(int(exp_tok)):
            out = _times(out, base)
        return out

    def atom(self) -> Poly:
        tok = self.eat()
        if tok in _OPEN:
            inner = self.sum()
            self.eat(_OPEN[tok])
            return inner
        if tok == "\\frac":
            num = self.atom()
            return _times(num, _inverse(self.atom()))
        if tok[0].isdigit() or tok[0] == ".":
            return {(): Fraction(tok)}
        if tok.isalpha() or tok == "\\pi":
            if tok.isalpha() and self.next_is("("):
                raise _NotPoly  # f(x), I(0): a function applied, not a product of letters
            return {((tok, 1),): Fraction(1)}
        raise _NotPoly


def _inverse(p: Poly) -> Poly:
    if set(p) != {()}:
        raise _NotPoly  # only division by a non-zero constant keeps a polynomial
    return {(): 1 / p[()]}


def polynomial(s: str) -> Poly | None:
    """The expanded polynomial of ``s``, or ``None`` outside the grammar."""
    if not s or len(s) > MAX_CHARS or _WORD_RE.search(s):
        return None  # "east" vs "seat" are names, not products of letters
    try:
        toks = _lex(s)
        reader = _Reader(toks)
        value = reader.sum()
        return value if reader.i == len(toks) else None
    except (_NotPoly, ZeroDivisionError, ValueError, RecursionError):
        return None


def same_polynomial(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` expand to the same polynomial (a proof of equality); False = unproven."""
    pa = polynomial(a)
    return pa is not None and pa == polynomial(b)


def proportional(a: str, b: str) -> bool:
    """True when polynomial ``a`` is a non-zero constant multiple of polynomial ``b`` (so ``a = 0`` and
    ``b = 0`` are the same equation); False = unproven."""
    pa, pb = polynomial(a), polynomial(b)
    if not pa or not pb or set(pa) != set(pb):
        return False
    mono = next(iter(pa))
    k = pa[mono] / pb[mono]
    return all(pa[m] == k * pb[m] for m in pa)
