"""The decimal-approximation policy: when a written decimal counts as the exact value it approximates.

Models often answer ``0.1428571428571`` for ``\\frac{1}{7}`` or ``1.414214`` for ``\\sqrt{2}``. A decimal
*prediction* ``d`` written with ``n`` digits after the point (``e``-notation shifts that place) is accepted
for a gold of exact value ``g`` when **both** hold:

1. **relative tolerance**: ``|d - g| <= REL_TOL * |g|`` with ``REL_TOL = 1e-6`` (about six significant
   digits; math-verify rounds to six decimals in a similar spirit). The boundary is inclusive and exact
   for rational golds: ``0.333333`` and ``0.142857`` (relative error exactly ``1e-6``) are accepted,
   ``0.33333`` and ``0.14286`` are not;
2. **last written digit**: ``|d - g| < 10^-n``, i.e. ``d`` is ``g`` rounded or truncated at the last digit
   written. So a gold that is itself a terminating decimal with at most ``n`` places must be matched
   exactly: ``1.0000001`` is not ``1``, ``6.9999999`` is not ``7`` (an integer gold never accepts a
   non-equal decimal), and a long decimal with a wrong digit is rejected however small the error.

Only the prediction side may be approximate: a decimal gold is compared exactly (``\\frac{1}{3}`` does not
match a gold ``0.33``), and :func:`~ccpo_env.verify.equivalent` (vote classes) needs both directions, so
an approximation and its exact value stay in different classes. Rational golds are compared in exact
arithmetic; other closed forms (``\\pi``, roots) through double precision, far below ``REL_TOL``.
"""

from __future__ import annotations

import re
from fractions import Fraction

REL_TOL = Fraction(1, 10**6)
MAX_DIGITS = 60  # longer literals are not approximations anyone writes; compare them exactly

_DECIMAL_RE = re.compile(r"([-+]?)(\d*)\.(\d+)(?:[eE]([-+]?\d{1,4}))?")


def decimal_places(s: str) -> tuple[Fraction, int] | None:
    """``(value, places)`` of a plain decimal literal such as ``-0.125`` or ``1.5e-3`` (places 1 and 4);
    ``None`` for anything else (integers, fractions, expressions)."""
    m = _DECIMAL_RE.fullmatch(s.strip())
    if m is None or len(m.group(2)) + len(m.group(3)) > MAX_DIGITS:
        return None
    sign, whole, frac, exp = m.groups()
    value = Fraction(int(whole or "0") * 10 ** len(frac) + int(frac), 10 ** len(frac))
    shift = int(exp or 0)
    value *= Fraction(10) ** shift
    return (-value if sign == "-" else value), len(frac) - shift


def approximates(pred: str, gold: Fraction | complex) -> bool | None:
    """Whether decimal ``pred`` approximates the exact value ``gold`` under the module's policy.

    ``None`` when ``pred`` is not a decimal literal (the policy does not apply); ``gold`` is a
    :class:`~fractions.Fraction` (exact) or a float value of a closed form (a complex with zero imaginary
    part; a non-real gold is never approximated by a real decimal).
    """
    got = decimal_places(pred)
    if got is None:
        return None
    d, places = got
    if isinstance(gold, Fraction):
        err = abs(d - gold)
        return err <= REL_TOL * abs(gold) and err < Fraction(10) ** -places
    if gold.imag != 0 or gold != gold:  # NaN or complex: no real decimal approximates it
        return False
    g = gold.real
    err = abs(float(d) - g)
    return err <= float(REL_TOL) * abs(g) and err < 10.0**-places
