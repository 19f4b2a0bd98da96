"""Exact rational evaluation of small LaTeX arithmetic, with hard size caps.

math-verify compares numbers through floats rounded to a few digits, so it calls ``1/2^{99}`` equal to
``1/2^{98}``. When both sides of a comparison are plain rational arithmetic we decide exactly here instead,
in-process and in microseconds.

Grammar (after :func:`ccpo_env.verify.normalize.normalize_math`)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/" | "\\cdot" | "\\times" | "\\div") unary)*
    unary  := ("+" | "-") unary | power
    power  := atom "!"* ("^" (atom | unary))?        # right-associative: 2^3^2 = 2^9; n! for n <= 5000
    atom   := number | "(" expr ")" | "{" expr "}" | "\\frac" arg arg | int "\\frac{int}{int}" (mixed number)
    number := digits ["." digits] [("e"|"E") [sign] digits] | "." digits

Anything else (symbols, ``\\sqrt``, ``\\pi``, intervals, ...) makes :func:`eval_rational` return ``None``
so the caller falls back to math-verify. Sizes are capped so that ``10^{10^{10^{10}}}`` raises
:class:`TooLarge` instead of allocating gigabytes: integer exponents are limited to ``MAX_EXPONENT`` and
every intermediate result to ``MAX_BITS`` bits.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_BITS = 1_000_000  # ~300k decimal digits; bigint ops at this size take milliseconds
MAX_EXPONENT = 100_000
MAX_LITERAL_DIGITS = 10_000
MAX_FACTORIAL = 5_000  # 5000! has ~16k digits: exact in well under a millisecond

_TOKEN_RE = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<cmd>\\[a-zA-Z]+)"
    r"|(?P<op>[-+*/^(){}!])"
    r")"
)
_BINARY_CMDS = {"\\cdot": "*", "\\times": "*", "\\div": "/"}


class TooLarge(ArithmeticError):
    """The expression is rational but too large to evaluate within the caps."""


class Undefined(ArithmeticError):
    """The expression is rational arithmetic that divides by zero (e.g. ``\\frac{1}{0}``)."""


class _NotRational(Exception):
    """Internal: the string is outside the grammar."""


def _tokenize(s: str) -> list[str]:
    tokens: list[str] = []
    pos, n = 0, len(s)
    while pos < n:
        m = _TOKEN_RE.match(s, pos)
        if m is None or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise _NotRational
        pos = m.end()
        tok = m.group("num") or m.group("cmd") or m.group("op")
        if tok is None:  # only whitespace matched
            continue
        tokens.append(_BINARY_CMDS.get(tok, tok))
    return tokens


def _check_size(x: Fraction) -> Fraction:
    if x.numerator.bit_length() + x.denominator.bit_length() > MAX_BITS:
        raise TooLarge
    return x


def _literal(tok: str) -> Fraction:
    mant, _, exp = tok.lower().partition("e")
    if len(mant) > MAX_LITERAL_DIGITS:
        raise TooLarge
    value = Fraction(mant if mant != "." else "0")
    if exp:
        e = int(exp)
        if abs(e) > MAX_EXPONENT:
            raise TooLarge
        value *= Fraction(10) ** e
    return _check_size(value)


class _Parser:
    def __init__(self, tokens: list[str]):
        self.toks = tokens
        self.i = 0
        self.undefined = False  # set on division by zero; reported only if the whole string parses

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _NotRational
        self.i += 1
        return tok

    def div(self, a: Fraction, b: Fraction) -> Fraction:
        if b == 0:
            self.undefined = True
            return Fraction(0)
        return _check_size(a / b)

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = _check_size(value + rhs if op == "+" else value - rhs)
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            value = _check_size(value * rhs) if op == "*" else self.div(value, rhs)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            sign = self.take()
            value = self.unary()
            return -value if sign == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        while self.peek() == "!":  # 1/2006! vs 1/2004!: math-verify's floats call these equal
            self.take("!")
            if base.denominator != 1 or not 0 <= base <= MAX_FACTORIAL:
                raise _NotRational  # larger factorials stay math-verify's (guarded) job
            base = Fraction(math.factorial(int(base)))
        if self.peek() != "^":
            return base
        self.take("^")
        exponent = self.unary() if self.peek() in ("+", "-") else self.power()
        return self.pow(base, exponent)

    def pow(self, base: Fraction, exponent: Fraction) -> Fraction:
        if exponent.denominator != 1:
            raise _NotRational  # 4^{1/2} is rational but roots are math-verify's job
        e = exponent.numerator
        if base in (0, 1) and e >= 0:
            return base if e > 0 else Fraction(1)
        if base == -1:
            return Fraction(1 if e % 2 == 0 else -1)
        if base == 0:
            self.undefined = True
            return Fraction(0)
        size = base.numerator.bit_length() + base.denominator.bit_length()
        if abs(e) > MAX_EXPONENT or abs(e) * max(size - 1, 1) > MAX_BITS:
            raise TooLarge
        return _check_size(base**e)

    def group(self) -> Fraction:
        """A ``{...}`` group or a single-token argument (``\\frac12``)."""
        if self.peek() == "{":
            self.take("{")
            value = self.expr()
            self.take("}")
            return value
        tok = self.take()
        if tok[0].isdigit():
            return _literal(tok)
        raise _NotRational

    def atom(self) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            value = self.expr()
            self.take("}")
            return value
        if tok == "\\frac":
            num = self.group()
            den = self.group()
            return self.div(num, den)
        if tok[0].isdigit() or tok[0] == ".":
            value = _literal(tok)
            # Mixed number "1\frac{4}{5}" = 9/5 (MATH convention); only integer parts qualify.
            if self.peek() == "\\frac" and value.denominator == 1 and "." not in tok:
                self.take()
                num, den = self.group(), self.group()
                if num.denominator != 1 or den.denominator != 1 or den == 0:
                    raise _NotRational
                return value + num / den
            return value
        raise _NotRational


def eval_rational(s: str) -> Fraction | None:
    """Evaluate ``s`` exactly if it is plain rational arithmetic, else return ``None``.

    Raises:
        TooLarge: the expression is in the grammar but exceeds the size caps.
        Undefined: the expression is in the grammar but divides by zero.
    """
    if not s or len(s) > 4 * MAX_LITERAL_DIGITS:
        return None
    try:
        parser = _Parser(_tokenize(s))
        if not parser.toks:
            return None
        value = parser.expr()
        if parser.peek() is not None:
            return None
    except (_NotRational, ValueError, ZeroDivisionError, RecursionError):
        return None
    if parser.undefined:
        raise Undefined
    return value


_EXP_RE = re.compile(r"\^\s*(\{|[-+]?\s*[\d.]+|\\[a-zA-Z]+|.)")
_BIG_FACTORIAL_RE = re.compile(r"\d{6,}\s*!")  # sympy evaluates n! eagerly; 10^6! already takes seconds


def has_huge_power(s: str, limit: int = 10_000_000) -> bool:
    """Whether ``s`` raises something to an exponent that is too large (or cannot be evaluated within caps).

    Used before handing a non-rational expression such as ``x^{10^{10^{10}}}`` to sympy, which would try to
    build the integer exponent and run out of time or memory. Factorials of literals >= 10^5 count too.
    """
    if _BIG_FACTORIAL_RE.search(s):
        return True
    for m in _EXP_RE.finditer(s):
        start = m.start(1)
        if m.group(1) == "{":
            depth, j = 0, start
            while j < len(s):
                if s[j] == "{":
                    depth += 1
                elif s[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            arg = s[start + 1 : j]
        else:
            arg = m.group(1)
        try:
            value = eval_rational(arg)
        except TooLarge:
            return True
        except Undefined:
            continue
        if value is not None and abs(value) > limit:
            return True
    return False
