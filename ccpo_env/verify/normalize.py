"""String normalisation of extracted answers (LaTeX cleanup, units, guards).

:func:`normalize_math` maps an extracted answer (or a gold) to a canonical LaTeX string, used for the exact
fast path, the cache key, our exact-rational comparison and as math-verify's input. It is deliberately
conservative: it removes formatting, not meaning.

- delimiters ``$``, ``\\(..\\)``, ``\\[..\\]``, a wrapping ``\\boxed{}``; ``\\left``/``\\right``/``\\big``;
  spacing macros (``\\,`` ``\\!`` ``~`` ``\\quad``); ``\\dfrac``/``\\tfrac``/``\\cfrac`` -> ``\\frac``;
- ``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``, ``_8`` -> ``_{8}`` (one spelling each);
- degrees (``^\\circ``, ``°``, ``\\degree``) and ``\\%`` are dropped: ``30^\\circ`` = ``30`` and
  ``50\\%`` = ``50``. **Percent rule**: the number in front of ``%`` is compared as written, so gold
  ``50\\%`` accepts ``50`` and ``50\\%`` but *not* ``0.5`` (in a "what percent" answer a bare ``0.5``
  reads as 0.5%, so accepting it would be ambiguous);
- ``\\$``, ``\\text{..}``/``\\mbox{..}``/``\\mathrm{..}`` units after a value (``10\\text{ cm}^2`` -> ``10``),
  trailing plain unit words (``5 apples`` -> ``5``); a ``\\text{..}`` that *is* the answer is unwrapped
  (``\\text{(B)}`` -> ``(B)``, ``\\text{Evelyn}`` -> ``Evelyn``);
- thousands separators only when the whole answer is one grouped number (``1,000`` and ``10,\\!080`` ->
  digits; ``(1,2)``, ``1,2`` and ``1, 234`` stay lists);
- set-builder ``\\{x \\mid -2 \\le x < 1\\}`` -> ``-2 \\le x < 1`` and ``x \\in [-2,7]`` -> ``[-2,7]`` (math-verify
  compares relations with intervals but cannot parse set-builder notation);
- a column vector ``\\begin{pmatrix} a \\\\ b \\end{pmatrix}`` -> ``(a,b)`` (so a tuple answer matches it).
- one spelling per symbol: unicode ``−`` ``×`` ``≤`` ``≥`` ``≠`` ``π`` ``∞`` ``√``, ASCII ``>=`` ``<=`` ``!=``,
  ``\\le``/``\\ge``/``\\ne``/``\\leqslant`` -> ``\\leq``/``\\geq``/``\\neq``; ``\\approx``/``\\simeq``/``≈`` ->
  ``\\approx`` (what it states is decided in :mod:`~ccpo_env.verify.compare`); function names typed without
  a backslash (``2*pi``, ``sqrt(2)``); ``+\\infty`` -> ``\\infty``;
- ``\\textnormal``/``\\textsf``/``\\texttt`` units like ``\\text``; ``19, 46, \\text{ and } 82`` -> ``19, 46, 82``;
  a plain-text mixed number ``7 1/4`` -> ``7\\frac{1}{4}``.

:func:`normalize_label` maps FOLIO-style answers to ``"True"``, ``"False"`` or ``"Uncertain"``.
"""

from __future__ import annotations

import re

# Commands whose braced argument is text: unwrapped when they are the whole answer, dropped as units after a value.
_TEXT_CMDS = (
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textup",
    "\\textnormal",
    "\\textsf",
    "\\texttt",
    "\\text",
    "\\mbox",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
)
# Function and constant names that are not prose (shared with the prose extractor in prose.py).
FUNCTION_WORDS = frozenset(
    ["pi", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "lim", "max", "min"]
)
_TEXT_CMD_RE = re.compile("|".join(re.escape(c) for c in _TEXT_CMDS) + r"(?![a-zA-Z])")
_MATH_WORDS = FUNCTION_WORDS | {"inf", "infty", "and", "or"}
_LABELS = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}

_SPACING_RE = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad(?![a-zA-Z])|~|\\displaystyle(?![a-zA-Z])")
_SIZING_RE = re.compile(r"\\(?:left|right|[bB]ig{1,2}[lr]?)(?![a-zA-Z])\s*")
_FRAC_ALIAS_RE = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM_ALIAS_RE = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_DEGREE_RE = re.compile(
    r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|°|\\degree(?![a-zA-Z])"
)
_PERCENT_RE = re.compile(r"\\?%|\s*\bpercent\b")
_DOLLAR_RE = re.compile(r"\\\$|(?<!\\)\$")
_SUBSCRIPT_RE = re.compile(r"_([0-9A-Za-z])")
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_SETBUILDER_RE = re.compile(r"^\\\{\s*[a-zA-Z]\s*(?:\||\\mid(?![a-zA-Z])|:)\s*(.+)\\\}$", re.S)
_IN_PREFIX_RE = re.compile(r"^[a-zA-Z]\s*\\in(?![a-zA-Z])\s*")
_COLVEC_RE = re.compile(r"^\\begin\{([pb])matrix\}(.*)\\end\{\1matrix\}$", re.S)
_UNIT_WORDS_RE = re.compile(r"^(.*?[\d})\]])\s+((?:[a-zA-Z]{2,}\.?\s*)+)(?:\^\s*\{?\d\}?)?$", re.S)
# Unit abbreviations recognised even when glued to the number ("20cm^2"); other words need a space.
_GLUED_UNIT_RE = re.compile(
    r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:mm|cm|km|kg|mg|ml|mL|ft|yd|mi|hrs?|mins?|sec|cents?|dollars?|degrees?)"
    r"(?:\s*\^\s*\{?\d\}?)?$"
)
_UNIT_POWER_RE = re.compile(r"^\s*\^\s*(?:\{\s*\d\s*\}|\d)")
# One spelling per symbol: unicode and ASCII forms models write outside LaTeX.
_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u00d7": "\\times ",
    "\u00f7": "\\div ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u2264": "\\leq ",
    "\u2265": "\\geq ",
    "\u2260": "\\neq ",
    "\u2248": "\\approx ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u221a": "\\sqrt",
    "\u2245": "\\approx ",
}
_UNICODE_RE = re.compile("|".join(_UNICODE))
_RELATION_RE = re.compile(r">=|<=|!=|\\(?:ge|le|ne|geqslant|leqslant)(?![a-zA-Z])")


def _relation(m: re.Match) -> str:
    """``>=``, ``\\ge``, ``\\geqslant`` -> ``\\geq`` (and the same for ``<=``/``\\le``, ``!=``/``\\ne``)."""
    tok = m.group(0)
    return "\\geq " if ">" in tok or "g" in tok else "\\leq " if "<" in tok or "l" in tok else "\\neq "


_APPROX_RE = re.compile(r"\\(?:approx|simeq|thickapprox)(?![a-zA-Z])|\\sim(?![a-zA-Z])(?=\s*[-+\d.])")
# Function names typed without a backslash ("2*pi", "sqrt(2)/2"); not inside a longer word.
_PLAIN_FUNC_RE = re.compile(r"(?<![\\A-Za-z])(pi|infty|sqrt|sin|cos|tan|ln|log)(?![A-Za-z])")
_PLAIN_SQRT_RE = re.compile(r"\\sqrt\s*\(([^()]*)\)")
_PLUS_INFTY_RE = re.compile(r"(^|[(\[,]\s*)\+\s*\\infty(?![a-zA-Z])")
_MIXED_RE = re.compile(r"^([-+]?\d+)\s+(\d+)\s*/\s*(\d+)$")  # "7 1/4" written in plain text


def read_group(s: str, i: int) -> tuple[str, int] | None:
    """Read one LaTeX argument at ``s[i:]`` (after spaces): ``{...}`` (balanced), ``\\cmd`` or one character.

    Returns ``(argument_without_braces, end_index)``, or ``None`` when there is none or braces do not close.
    Escaped braces ``\\{`` ``\\}`` do not count.
    """
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    if i >= n:
        return None
    if s[i] == "{":
        depth, j = 0, i
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return s[i + 1 : j], j + 1
            j += 1
        return None
    if s[i] == "\\":
        m = re.match(r"\\[a-zA-Z]+|\\.", s[i:])
        if m is None:
            return None
        return m.group(0), i + m.end()
    if s[i] in "}^_":
        return None
    return s[i], i + 1


def _canonical_args(s: str, cmd: str, nargs: int) -> str:
    """Rewrite every ``cmd`` so each of its ``nargs`` arguments is braced (``\\frac12`` -> ``\\frac{1}{2}``)."""
    out: list[str] = []
    pos = 0
    pattern = re.compile(re.escape(cmd) + r"(?![a-zA-Z])")
    while True:
        m = pattern.search(s, pos)
        if m is None:
            out.append(s[pos:])
            return "".join(out)
        out.append(s[pos : m.end()])
        j = m.end()
        if cmd == "\\sqrt":  # keep an optional index: \sqrt[3]{x}
            k = j
            while k < len(s) and s[k] == " ":
                k += 1
            if k < len(s) and s[k] == "[":
                close = s.find("]", k)
                if close < 0:
                    pos = j
                    continue
                out.append(s[k : close + 1])
                j = close + 1
        args = []
        for _ in range(nargs):
            got = read_group(s, j)
            if got is None:
                break
            args.append(got[0])
            j = got[1]
        if len(args) < nargs:  # malformed: leave the rest as it is
            pos = m.end()
            continue
        out.append("".join("{" + _canonical_args(a, cmd, nargs) + "}" for a in args))
        pos = j


def _strip_text_groups(s: str) -> str:
    """Unwrap ``\\text{..}``-like groups, dropping those that are units/words following a value."""
    whole = s.strip()
    for cmd in _TEXT_CMDS:
        if whole.startswith(cmd):
            got = read_group(whole, len(cmd))
            if got is not None and got[1] == len(whole):
                return _strip_text_groups(got[0])
    pattern = _TEXT_CMD_RE
    out: list[str] = []
    pos = 0
    while True:
        m = pattern.search(s, pos)
        if m is None:
            out.append(s[pos:])
            return "".join(out)
        got = read_group(s, m.end())
        if got is None:
            out.append(s[pos : m.end()])
            pos = m.end()
            continue
        content, end = got
        before = "".join(out) + s[pos : m.start()]
        words = content.strip().strip(".")
        is_words = bool(re.fullmatch(r"[A-Za-z][A-Za-z .'/-]*", words)) and (
            len(words) >= 2 or content[:1] == " "
        )
        if is_words and words.lower() in ("and", "or"):
            out.append(s[pos : m.start()] + ",")
        elif is_words and before.strip():
            out.append(s[pos : m.start()])
            power = _UNIT_POWER_RE.match(s[end:])  # cm^2
            if power:
                end += power.end()
        else:
            out.append(s[pos : m.start()] + content)
        pos = end


def _column_vector(s: str) -> str:
    m = _COLVEC_RE.match(s)
    if m is None or "&" in m.group(2):
        return s
    rows = [r.strip() for r in m.group(2).split("\\\\") if r.strip()]
    return "(" + ",".join(rows) + ")" if rows else s


def unwrap_boxed(s: str) -> str:
    """Remove ``\\boxed{..}``/``\\fbox{..}`` wrappers that span the whole string."""
    while True:
        t = s.strip()
        for cmd in ("\\boxed", "\\fbox"):
            if t.startswith(cmd):
                got = read_group(t, len(cmd))
                if got is not None and got[1] == len(t) and not t[len(cmd) : len(cmd) + 1].isalpha():
                    s = got[0]
                    break
        else:
            return t


def _strip_delimiters(s: str) -> str:
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
    return s


def normalize_math(s: str) -> str:
    """Canonical form of an extracted math answer (see the module docstring). Never raises on a string."""
    s = _strip_delimiters(str(s))
    s = unwrap_boxed(s)
    s = _column_vector(s)  # before spacing macros: its row separator "\\\\ " must stay intact
    s = s.replace("\n", " ").replace("\\{,\\}", ",").replace("{,}", ",")
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _RELATION_RE.sub(_relation, s)
    s = _APPROX_RE.sub(lambda m: " \\approx ", s)  # one spelling; compare.py reads what it states
    s = _FRAC_ALIAS_RE.sub(r"\\frac", s)
    s = _BINOM_ALIAS_RE.sub(r"\\binom", s)
    s = re.sub(r"(?<!\\)\\!\s*", "", s)  # negative thin space: "10,\!080" and "11,\! 111" are one number
    s = _SPACING_RE.sub(" ", s)
    s = _SIZING_RE.sub("", s)
    s = _DEGREE_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
    s = _DOLLAR_RE.sub("", s)
    s = _strip_text_groups(s)
    s = re.sub(
        r",\s*,", ",", s
    )  # "19, 46, \text{ and } 82": the Oxford comma and the "and" are one separator
    s = _PLAIN_FUNC_RE.sub(lambda m: "\\" + m.group(1), s)
    s = _PLAIN_SQRT_RE.sub(r"\\sqrt{\1}", s)
    s = _PLUS_INFTY_RE.sub(r"\1\\infty", s)  # "+\infty" is "\infty"
    s = re.sub(r"\s+", " ", s).strip()
    s = s.strip("*").strip()  # markdown bold around an answer
    s = re.sub(r"(?<!\\)[.;,:]+$", "", s).strip()  # end-of-sentence punctuation
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "").replace(" ", "")
    s = _GLUED_UNIT_RE.sub(r"\1", s)
    s = _MIXED_RE.sub(r"\1\\frac{\2}{\3}", s)
    m = _UNIT_WORDS_RE.match(s)
    if m and not any(w.lower().strip(".") in _MATH_WORDS for w in m.group(2).split()):
        s = m.group(1).strip()
    m = _SETBUILDER_RE.match(s)
    if m:
        s = m.group(1).strip()
    s = _IN_PREFIX_RE.sub("", s)
    s = _canonical_args(s, "\\frac", 2)
    s = _canonical_args(s, "\\sqrt", 1)
    s = _SUBSCRIPT_RE.sub(r"_{\1}", s)
    return re.sub(r"\s+", " ", s).strip()


def compact(s: str) -> str:
    """Whitespace-free form of a normalised string, for exact comparison."""
    return re.sub(r"\s+", "", s)


def normalize_label(s: str | None) -> str | None:
    """``"True"``, ``"False"`` or ``"Uncertain"`` for a FOLIO-style answer, else ``None``.

    Case and punctuation are ignored and LaTeX/markdown wrappers removed (``\\boxed{\\text{True}}``,
    ``**False**.``, ``(C) Uncertain``); ``Unknown`` counts as ``Uncertain``. The first word decides, so
    ``"False, because ..."`` is ``False``.
    """
    if not s:
        return None
    t = _strip_text_groups(unwrap_boxed(_strip_delimiters(str(s))))
    t = re.sub(r"^\s*\(?[A-Ca-c]\)\s*", "", t)  # "(A) True"
    words = re.findall(r"[A-Za-z]+", t)
    if not words:
        return None
    return _LABELS.get(words[0].lower())
