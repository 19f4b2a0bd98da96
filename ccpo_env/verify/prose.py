"""Lenient extraction: final answers stated without ``\\boxed{}`` and without an "answer is" phrase.

Used by :func:`~ccpo_env.verify.extract.extract_answer` in ``mode="lenient"`` after the box, anchor and
last-line rules found nothing, in this order:

1. **bare expression**: the last line is only an expression (``3/4``, ``(t+1)(t+1)``, ``x >= 2``, the
   GSM8K answer line ``#### 18``): no prose words besides function names such as ``sin``/``log``;
2. **concluding sentence**: in the last sentence that states something (sign-offs such as "Hope this
   helps!" are skipped, at most ``MAX_SENTENCES_BACK`` sentences back), the *last* of: a math span
   (``$x \\le 4$``, ``\\[ 7 \\]``, a ``pmatrix``), a plain relation (``x >= 2``) or a number (``12``,
   ``-3.5``, ``1,000``, ``3/4``). This is the "last math expression, then the last number" rule of the
   ecosystem's answer checkers, restricted to the conclusion: a number in the middle of the working never
   counts. A hedged conclusion ("about 7 or maybe 8") yields no answer.

For a multiple-choice gold, :func:`choice_in_prose` looks for the option letter first ("B. because ...",
"I pick option C", "The answer is clearly B, not A or C"). All scans are linear and bounded to the last
``MAX_TAIL_CHARS`` characters.
"""

from __future__ import annotations

import re

from .compare import NEGATED_RE, REJECTED_RE, choice_letter
from .normalize import FUNCTION_WORDS

MAX_TAIL_CHARS = 3_000
MAX_SENTENCES_BACK = 3

MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_BOUNDARY_RE = re.compile(r"[.!?](?=\s|$)|\n")
_HEDGE_RE = re.compile(
    r"(?i)\b(?:maybe|perhaps|possibly|not\s+sure|unsure|i\s+guess|or\s+so|could\s+be|might\s+be)\b"
)
# A clause that justifies the answer after stating it: "x = 4, which we verify: 2(4) + 3 = 11" (but
# "8 boxes, which is 48 cookies" restates the answer in the asked-for unit).
_JUSTIFY_RE = re.compile(
    r"(?i)(?<=\S)[,;]?\s+(?:which(?!\s+(?:is|equals|gives|makes|means)\b)|because|since|as\s+we|where)\b"
)
_NUMBER_RE = re.compile(
    r"(?<![\w.^_{}\\])[-+]?(?:\d+\s+(?=\d+\s*/\s*\d))?(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?"
    r"(?:\s*/\s*\d+(?![\d.]))?(?![\w])"
)  # 12, -3.5, 1,000, 3/4 and the mixed number 7 1/4
_RELATION_RE = re.compile(
    r"(?<![A-Za-z\\])[a-zA-Z]\s*(?:>=|<=|=|<|>|\\[lg]eq?(?![a-zA-Z]))\s*[-+]?(?:\d+(?:\.\d+)?(?:/\d+)?|\\?[a-zA-Z]+)"
)
MAX_BARE_CHARS = 300  # a longer last line is prose, not a bare expression
_GSM8K_MARK_RE = re.compile(r"^#{2,}\s*")
_PROSE_WORD_RE = re.compile(r"[A-Za-z]{2,}")

# Option letters: leading ("B. because ..."), named ("option C"), parenthesised in the last sentences.
CHOICE_SENTENCES = 2
_LEAD_CHOICE_RE = re.compile(
    r"\s*(?:\*\*)?\(?([A-E])\)?(?:\*\*)?(?:\s*[.:)]|\s*$|\s*,|\s+(?:is|because|since|as)\b)"
)
_PAREN_CHOICE_RE = re.compile(r"\(([A-E])\)")
_PROSE_PHRASE_RE = re.compile(r"(?i)\b(?:is|are|was|equals|gives|get|we\s+have)\b")
_NAMED_CHOICE_RE = re.compile(r"(?i:option|choice|answer)\s*(?:is\s*)?:?\s*\(?([A-E])\)?(?![A-Za-z])")


def _tail(text: str) -> str:
    # Escaped dollars are currency, not math delimiters: blank them (same length keeps positions).
    return text[-MAX_TAIL_CHARS:].replace("\\$", "  ")


def _span_text(m: re.Match) -> str:
    return next(g for g in m.groups() if g is not None).strip()


def bare_expression(text: str) -> str | None:
    """The last line when it is only an expression (no prose words), else ``None``."""
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :].strip().strip("*").strip().rstrip(".").strip()
    line = _GSM8K_MARK_RE.sub("", line)  # "#### 18", the GSM8K answer line
    if not line or len(line) > MAX_BARE_CHARS or not re.search(r"[\w]", line):
        return None
    plain = re.sub(r"\\[a-zA-Z]+", " ", line)
    if any(w.lower() not in FUNCTION_WORDS for w in _PROSE_WORD_RE.findall(plain)):
        return None
    if ":" in line or "?" in line:
        return None
    return line


def _sentences(tail: str) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` ranges of ``tail``; boundaries inside math spans do not count."""
    spans = [(m.start(), m.end()) for m in MATH_SPAN_RE.finditer(tail)]
    cuts, k = [], 0
    for b in _BOUNDARY_RE.finditer(tail):
        while k < len(spans) and spans[k][1] <= b.start():
            k += 1
        if k < len(spans) and spans[k][0] <= b.start() < spans[k][1]:
            continue
        cuts.append(b.end())
    out, start = [], 0
    for c in [*cuts, len(tail)]:
        if tail[start:c].strip():
            out.append((start, c))
        start = c
    return out


def _last_item(sentence: str) -> str | None:
    """The last math span, plain relation or number of one sentence (by position), or ``None``."""
    found: list[tuple[int, str]] = []
    masked = sentence
    for m in MATH_SPAN_RE.finditer(sentence):
        found.append((m.end(), _span_text(m)))
        masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
    for regex in (_RELATION_RE, _NUMBER_RE):
        for m in regex.finditer(masked):
            found.append((m.end(), m.group(0).strip()))
    found = [f for f in found if f[1]]
    return max(found, key=lambda f: f[0])[1] if found else None


def concluding_answer(text: str) -> str | None:
    """The last math span / relation / number of the concluding sentence (see the module docstring)."""
    tail = _tail(text)
    for start, end in _sentences(tail)[::-1][:MAX_SENTENCES_BACK]:
        sentence = tail[start:end].strip()
        cut = _JUSTIFY_RE.search(MATH_SPAN_RE.sub(lambda m: "_" * len(m.group(0)), sentence))
        item = (_last_item(sentence[: cut.start()]) if cut else None) or _last_item(sentence)
        if item is None:
            continue
        if _HEDGE_RE.search(MATH_SPAN_RE.sub(" ", sentence)):
            return None  # a guess is not an answer
        return item
    return None


def choice_in_prose(text: str) -> str | None:
    """The option letter a response picks in prose (``A``-``E``), or ``None``."""

    tail = _tail(text)
    if len(text) <= MAX_TAIL_CHARS:
        m = _LEAD_CHOICE_RE.match(text)
        after = m.end(1) + text.startswith(")", m.end(1)) if m else 0
        if m and not REJECTED_RE.match(text, after):  # "(A) is wrong, ..." rules A out
            return m.group(1)
    named = None
    for named in _NAMED_CHOICE_RE.finditer(tail):  # noqa: B007 - we want the last match
        pass
    if named is not None:
        return named.group(1)
    for start, end in _sentences(tail)[::-1][:CHOICE_SENTENCES]:
        sentence = tail[start:end].strip().strip("*").rstrip(".!").strip()
        letter = choice_letter(sentence)
        if letter is not None:
            return letter
        for m in list(_PAREN_CHOICE_RE.finditer(sentence))[::-1]:  # "(A) is wrong ..., so it must be (E)"
            if not REJECTED_RE.match(sentence, m.end()) and not NEGATED_RE.search(sentence[: m.start()]):
                return m.group(1)
    return None


def refine_anchored(found: str) -> str:
    """An anchored answer that is a phrase ("the perimeter is 36 cm") -> its concluding item ("36")."""
    if len(found) > MAX_BARE_CHARS or not _PROSE_PHRASE_RE.search(MATH_SPAN_RE.sub(" ", found)):
        return found
    return concluding_answer(found) or found
