"""Role prompt templates: the one place where the text each role sees is defined.

The env produces plain text (the *user* turn); chat templating and system prompts are the
policy's job. Templates are ``str.format`` strings; override any of them with
``PromptTemplates(thinker=...)`` or ``templates.replace(solver_joint=...)``.

Placeholders:
    ``{problem}``  the problem statement (every template),
    ``{thought}``  the Thinker's message (``solver_joint``),
    ``{votes}``    earlier voters' answers, one per line (``voter_visible``).
"""

from __future__ import annotations

import dataclasses
import re
import string
from dataclasses import dataclass

__all__ = ["PromptTemplates", "DEFAULT_TEMPLATES", "COMPACT_TEMPLATES", "TEMPLATE_PRESETS", "strip_boxed"]

_THINKER = (
    "You are the Thinker in a two-agent team. Read the problem and write the solving thought: "
    "the plan and the key steps, with any intermediate results. Do NOT state the final answer "
    "and do NOT use \\boxed{{}}; a Solver will use your thought to finish the problem.\n\n"
    "Problem: {problem}"
)
_SOLVER_JOINT = (
    "You are the Solver in a two-agent team. Use the Thinker's thought as guidance, check it, "
    "and solve the problem. Put the final answer in \\boxed{{}} on the last line.\n\n"
    "Problem: {problem}\n\nThinker's thought: {thought}"
)
_SOLVER_SOLO = (
    "Solve the problem. Put the final answer in \\boxed{{}} on the last line.\n\nProblem: {problem}"
)
_VOTER = "Solve the problem. Put the final answer in \\boxed{{}} on the last line.\n\nProblem: {problem}"
_VOTER_VISIBLE = (
    "Solve the problem. Earlier team members answered as listed below; weigh their answers, "
    "then give yours. Put the final answer in \\boxed{{}} on the last line.\n\n"
    "Problem: {problem}\n\nEarlier answers:\n{votes}"
)

_FIELDS = {
    "thinker": {"problem"},
    "solver_joint": {"problem", "thought"},
    "solver_solo": {"problem"},
    "voter": {"problem"},
    "voter_visible": {"problem", "votes"},
}


@dataclass(frozen=True)
class PromptTemplates:
    """Prompt templates per role.

    Attributes:
        thinker: what the Thinker sees (default: write the plan and key steps, no final answer, no ``\\boxed{}``).
        solver_joint: what the Solver sees with a Thinker (default: use the thought, answer in ``\\boxed{}``).
        solver_solo: what the Solver sees when the Thinker is removed (default: solve directly, ``\\boxed{}``).
        voter: what a voter sees when earlier votes are hidden.
        voter_visible: what a voter sees in a deliberation chain (``visible_votes=True``).
    """

    thinker: str = _THINKER
    solver_joint: str = _SOLVER_JOINT
    solver_solo: str = _SOLVER_SOLO
    voter: str = _VOTER
    voter_visible: str = _VOTER_VISIBLE

    def __post_init__(self) -> None:
        # Fail at construction, not mid-rollout: every placeholder must be known and the
        # required ones present.
        for name, allowed in _FIELDS.items():
            template = getattr(self, name)
            if not isinstance(template, str):
                raise TypeError(f"PromptTemplates.{name} must be a str, got {type(template).__name__}")
            try:
                used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as e:
                raise ValueError(f"PromptTemplates.{name} is not a valid format string: {e}") from None
            unknown = used - allowed
            if unknown:
                raise ValueError(
                    f"PromptTemplates.{name} uses unknown placeholder(s) {sorted(unknown)}; "
                    f"valid ones are {sorted(allowed)} (write literal braces as '{{{{' and '}}}}')"
                )
            if "problem" not in used:
                raise ValueError(f"PromptTemplates.{name} must contain the {{problem}} placeholder")

    def replace(self, **changes: str) -> PromptTemplates:
        """A copy with some templates replaced."""
        return dataclasses.replace(self, **changes)

    def render(self, name: str, **fields: str) -> str:
        """Fill template ``name`` with ``fields``."""
        if name not in _FIELDS:
            raise KeyError(f"unknown template {name!r}; valid names are {sorted(_FIELDS)}")
        return getattr(self, name).format(**fields)


DEFAULT_TEMPLATES = PromptTemplates()

#: Short templates for tiny models trained from scratch (e.g. the CPU ``arith`` default): the
#: instructions of the default templates would be most of every prompt for a few-M-parameter model.
COMPACT_TEMPLATES = PromptTemplates(
    thinker="Plan: {problem}",
    solver_joint="Solve: {problem} Plan: {thought}",
    solver_solo="Solve: {problem}",
    voter="Solve: {problem}",
    voter_visible="Solve: {problem} Votes: {votes}",
)

#: Named template sets, e.g. for configs: ``env.templates: compact``.
TEMPLATE_PRESETS: dict[str, PromptTemplates] = {"default": DEFAULT_TEMPLATES, "compact": COMPACT_TEMPLATES}

_BOXED_START = re.compile(r"\\(?:boxed|fbox)\s*\{")


def strip_boxed(text: str) -> tuple[str, bool]:
    """Remove every ``\\boxed{...}``/``\\fbox{...}`` from a Thinker's message.

    A Thinker must not hand over the final answer, so boxed expressions are cut, together with
    an unbalanced trailing ``\\boxed{`` (a generation that ran out of tokens). Returns the cleaned
    text and whether anything was removed.
    """
    out: list[str] = []
    pos = 0
    removed = False
    while True:
        m = _BOXED_START.search(text, pos)
        if m is None:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        removed = True
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        pos = i  # an unbalanced box swallows the rest of the text
    return "".join(out).rstrip(), removed
