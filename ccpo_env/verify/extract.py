"""Final-answer extraction from a model response, with a configurable strictness (``mode``).

Rules, first hit wins (all scans are linear-time and bounded, whatever the input):

1. **Boxed**: the content of the *last* ``\\boxed{...}`` or ``\\fbox{...}`` whose braces balance (escaped
   ``\\{``/``\\}`` do not count), also the brace-less form ``\\boxed 5``. Empty or unclosed boxes (a response
   cut off mid-answer) are skipped in favour of the previous box; at most ``MAX_BOXES_TRIED`` boxes are tried.
2. **Anchor phrase**: the text after the last ``final answer``/``answer`` followed by ``is``, ``:`` or ``=``
   (case-insensitive, markdown ``**`` allowed, e.g. "The final answer is $\\frac12$.", "**Answer:** 42").
   If the rest of that line is empty the next non-empty line is used. From that text we take the first
   math span (``$..$``, ``\\(..\\)``, ``\\[..\\]``) if there is one, else the text up to the end of the sentence.
3. **Last line**: the last non-empty line if it is *only* a math span (``$$42$$``, ``\\[x=1\\]``) or a lone
   number (``42``, ``-3.5``).
4. **Prose** (:mod:`~ccpo_env.verify.prose`): a last line that is a bare expression (``3/4``,
   ``(t+1)(t+1)``), else the last math span, relation or number of the concluding sentence ("Hence
   $x \\le 4$ is the solution.", "So she pays 12 dollars."); a hedged conclusion gives no answer.

Modes (:data:`EXTRACTION_MODES`):

- ``"boxed"``: rule 1 only, a format requirement for prompts that ask for a box;
- ``"anchored"``: rules 1-3, no guessing from prose: the rules this verifier had before the prose
  fallbacks, and what the training environments use (a reward for the last number of unfinished working
  would reward rambling and lucky guesses instead of committing to an answer);
- ``"lenient"`` (default of :func:`extract_answer` and :func:`~ccpo_env.verify.verify`): rules 1-4, the way
  ecosystem answer checkers read responses; for evaluation and for scoring other models' outputs.

With ``choices=True`` (the gold is an option letter) lenient mode looks for the picked letter in prose
before rule 4 (:func:`~ccpo_env.verify.prose.choice_in_prose`).

Responses longer than ``MAX_RESPONSE_CHARS`` are scanned on their last ``MAX_RESPONSE_CHARS`` characters
only (final answers come last), which keeps a 200 kB degenerate output cheap. For ``answer_type="label"``
(FOLIO) :func:`extract_label` additionally accepts the last True/False/Uncertain word of the last line
(except in ``"boxed"`` mode).
"""

from __future__ import annotations

import re

from .normalize import normalize_label, read_group
from .prose import MATH_SPAN_RE, bare_expression, choice_in_prose, concluding_answer, refine_anchored

EXTRACTION_MODES = ("boxed", "anchored", "lenient")
DEFAULT_EXTRACTION = "lenient"
TRAINING_EXTRACTION = "anchored"  # what RL rewards should use: see the module docstring

MAX_RESPONSE_CHARS = 50_000
MAX_BOXED_CHARS = 5_000  # a box whose braces do not close within this many characters is treated as unclosed
MAX_BOXES_TRIED = 20
MAX_ANCHOR_CHARS = 2_000  # how far after "answer is" we look; also bounds the regex work

_ANCHOR_RE = re.compile(r"(?i)\b(?:final\s+answer|answer)\b[\s*]*(?:is\b|:|=)[\s*:]*")
_MATH_SPAN_RE = MATH_SPAN_RE
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)|\s(?:because|since|which|so|as)\s")
_LONE_NUMBER_RE = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_LABEL_WORD_RE = re.compile(r"(?i)\b(true|false|uncertain|unknown)\b")


def _box_content(text: str, start: int, cmd: str) -> str | None:
    """Content of the box command at ``text[start]``, or ``None`` when it is empty, unclosed or not a box."""
    j = start + len(cmd)
    if j < len(text) and text[j].isalpha():  # e.g. \boxedx is another macro
        return None
    k = j
    while k < len(text) and text[k] == " ":
        k += 1
    if k < len(text) and text[k] == "{":
        window = text[k : k + MAX_BOXED_CHARS + 2]
        got = read_group(window, 0)
        content = got[0] if got is not None else None
    elif k > j:  # "\boxed 5": one token up to whitespace or "$"
        m = re.match(r"[^\s$]+", text[k : k + MAX_BOXED_CHARS])
        content = m.group(0) if m else None
    else:
        content = None
    if content is None or not content.strip():
        return None
    return content.strip()


def _last_boxed(text: str) -> str | None:
    pos = len(text)
    for _ in range(MAX_BOXES_TRIED):
        i_boxed = text.rfind("\\boxed", 0, pos)
        i_fbox = text.rfind("\\fbox", 0, pos)
        i, cmd = (i_boxed, "\\boxed") if i_boxed >= i_fbox else (i_fbox, "\\fbox")
        if i < 0:
            return None
        content = _box_content(text, i, cmd)
        if content is not None:
            return content
        pos = i
    return None


def _first_math_or_sentence(rest: str) -> str | None:
    m = _MATH_SPAN_RE.search(rest)
    if m:
        span = next(g for g in m.groups() if g is not None).strip()
        return span or None
    end = _SENTENCE_END_RE.search(rest)
    candidate = (rest[: end.start()] if end else rest).strip().strip("*").strip()
    candidate = candidate.rstrip(".;,:!").strip()
    return candidate or None


def _after_anchor(text: str) -> str | None:
    last = None
    for last in _ANCHOR_RE.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    rest = text[last.end() : last.end() + MAX_ANCHOR_CHARS]
    lines = rest.split("\n")
    line = lines[0]
    if not line.strip().strip("*").strip():
        line = next((ln for ln in lines[1:] if ln.strip()), "")
    if "$" in line and line.count("$") % 2 == 1:  # a math span that continues on the next lines
        line = rest
    return _first_math_or_sentence(line)


def _last_line(text: str) -> str | None:
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :].strip().strip("*").strip()
    if len(line) > MAX_ANCHOR_CHARS:
        return None
    if line.endswith("."):
        line = line[:-1].rstrip()
    m = _MATH_SPAN_RE.fullmatch(line)
    if m:
        span = next(g for g in m.groups() if g is not None).strip()
        return span or None
    if _LONE_NUMBER_RE.fullmatch(line):
        return line
    return None


def check_extraction(mode: str) -> None:
    """Raise a clear ``ValueError`` for an unknown extraction mode."""
    if mode not in EXTRACTION_MODES:
        raise ValueError(f"unknown extraction mode {mode!r}; valid: {', '.join(EXTRACTION_MODES)}")


def _bounded(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    if len(text) > MAX_RESPONSE_CHARS:
        text = text[-MAX_RESPONSE_CHARS:]
    return text if text.strip() else None


def extract_answer(text: str, mode: str = DEFAULT_EXTRACTION, *, choices: bool = False) -> str | None:
    """The final answer string the verifier would use, or ``None`` when the response has none.

    See the module docstring for the rules and ``mode`` (``"boxed"``, ``"anchored"``, ``"lenient"``).
    ``choices=True`` says the gold is an option letter (lenient mode then looks for a letter in prose).
    Never raises on the text; an unknown ``mode`` is a ``ValueError``.

    >>> extract_answer("so $x=2$, hence \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> extract_answer("The answer is 42.")
    '42'
    >>> extract_answer("Adding them up, she pays 12 dollars in total.")
    '12'
    >>> extract_answer("Adding them up, she pays 12 dollars in total.", mode="anchored") is None
    True
    """
    check_extraction(mode)
    bounded = _bounded(text)
    if bounded is None:
        return None
    found = _last_boxed(bounded)
    if found or mode == "boxed":
        return found or None
    if choices and mode == "lenient":
        letter = choice_in_prose(bounded)
        if letter is not None:
            return letter
    for rule in (_after_anchor, _last_line):
        found = rule(bounded)
        if found:
            return found if mode == "anchored" else refine_anchored(found)
    if mode == "anchored":
        return None
    return bare_expression(bounded) or concluding_answer(bounded)


def extract_label(text: str, mode: str = DEFAULT_EXTRACTION) -> str | None:
    """The answer of a True/False/Uncertain response (FOLIO), or ``None``.

    Uses :func:`extract_answer`; if that finds nothing that reads as a label, the last label word on the
    last non-empty line counts ("... so the conclusion is false.") unless ``mode="boxed"``. Returns the
    raw extracted string when it is not a label (so a verdict can show what the model answered).
    """
    check_extraction(mode)
    bounded = _bounded(text)
    if bounded is None:
        return None
    found = extract_answer(bounded, "anchored" if mode == "lenient" else mode)
    if (found is not None and normalize_label(found) is not None) or mode == "boxed":
        return found
    stripped = bounded.rstrip()
    last_line = stripped[stripped.rfind("\n") + 1 :]
    words = _LABEL_WORD_RE.findall(last_line)
    if words:
        return words[-1]
    return found
