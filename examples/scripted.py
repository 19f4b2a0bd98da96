"""Scripted (non-LLM) policies for the ``arith`` task, shared by the examples.

A ccpo policy is any callable ``list[str] -> list[str]``: it gets the observations of a whole batch
of episodes (the text each agent sees) and returns one action per observation. These three read the
problem out of the observation text, exactly like an LLM would have to:

- :class:`ScriptedThinker`: an "oracle-ish" Thinker. It computes every intermediate result of the
  expression but not the final operation (``"23*4=92, 17*3=51"``), and with probability ``slip`` it
  gets one of them wrong, so that the team is not perfect.
- :class:`ScriptedSolver`: a Solver that can do exactly *one* operation. It substitutes the results it
  finds in its observation (i.e. in the Thinker's message) into the expression and answers only if a
  single operation is left (:func:`ccpo_env.data.arith.arith_one_op_solve`). Alone it only solves
  one-operation problems, which is what makes the Thinker's contribution measurable. Optionally it
  slips on that last operation with probability ``slip``.
- :class:`NoisyVoter`: a voter that computes the whole expression and is right with probability ``p``;
  otherwise it answers a nearby wrong number (wrong answers mostly disagree, so a plurality vote helps).

All three accept the rollout driver's ``seeds=`` keyword (one seed per observation), so a rollout
is reproducible whatever the batch composition; called without seeds (e.g. from tianshou) they draw
from their own seeded generator.

Not a test fixture: this file is part of the examples (``python examples/quickstart.py``).
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Sequence

from ccpo_env.data.arith import arith_one_op_solve

__all__ = ["NoisyVoter", "ScriptedSolver", "ScriptedThinker", "arith_steps", "evaluate", "parse_expression"]

# The arith problem statement is "Compute <expr>." wherever the prompt template puts it.
_PROBLEM_RE = re.compile(r"Compute\s+([0-9+\-*() ]+?)\s*\.")
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


def parse_expression(observation: str) -> str | None:
    """The arithmetic expression of the (first) ``Compute <expr>.`` in ``observation``."""
    m = _PROBLEM_RE.search(observation)
    return m.group(1).replace(" ", "") if m else None


def _tree(expr: str) -> ast.expr:
    node = ast.parse(expr, mode="eval").body
    for sub in ast.walk(node):  # whitelist: this is arithmetic on integers, nothing else is evaluated
        if not isinstance(sub, (ast.BinOp, ast.Constant, ast.operator)) or (
            isinstance(sub, ast.BinOp) and type(sub.op) not in _OPS
        ):
            raise ValueError(f"not a +,-,* integer expression: {expr!r}")
    return node


def _value(node: ast.expr) -> int:
    if isinstance(node, ast.Constant):
        return int(node.value)
    assert isinstance(node, ast.BinOp)
    a, b = _value(node.left), _value(node.right)
    op = _OPS[type(node.op)]
    return a + b if op == "+" else a - b if op == "-" else a * b


def evaluate(expr: str) -> int:
    """The integer value of a ``+ - *`` expression (parsed with ``ast``, never ``eval``)."""
    return _value(_tree(expr))


def arith_steps(expr: str) -> list[tuple[str, int]]:
    """Every operation in evaluation order as ``("23*4", 92)``; the final operation is last."""
    out: list[tuple[str, int]] = []

    def walk(node: ast.expr) -> None:
        if isinstance(node, ast.BinOp):
            walk(node.left)
            walk(node.right)
            out.append((f"{_value(node.left)}{_OPS[type(node.op)]}{_value(node.right)}", _value(node)))

    walk(_tree(expr))
    return out


def _rngs(n: int, seeds: Sequence[int] | None, fallback: random.Random) -> list[random.Random]:
    # One generator per observation: with seeds, an episode's randomness does not depend on its batch.
    if seeds is None:
        return [random.Random(fallback.getrandbits(64)) for _ in range(n)]
    return [random.Random(s) for s in seeds]


class ScriptedThinker:
    """Writes the intermediate results (not the final operation); a wrong one with probability ``slip``."""

    def __init__(self, slip: float = 0.1, seed: int = 0) -> None:
        self.slip = slip
        self._rng = random.Random(seed)

    def think(self, observation: str, rng: random.Random) -> str:
        expr = parse_expression(observation)
        if expr is None:
            return "I could not find the problem."
        steps = arith_steps(expr)[:-1]  # never the final operation: that is the Solver's job
        if not steps:
            return "Plan: it is a single operation; just do it."
        if rng.random() < self.slip:  # an arithmetic slip in one step
            i = rng.randrange(len(steps))
            steps[i] = (steps[i][0], steps[i][1] + rng.choice([-10, -2, -1, 1, 2, 10]))
        return "Plan: work out the inner operations first. " + ", ".join(f"{e}={v}" for e, v in steps)

    def __call__(self, observations: list[str], *, seeds: Sequence[int] | None = None) -> list[str]:
        return [self.think(o, r) for o, r in zip(observations, _rngs(len(observations), seeds, self._rng))]


class ScriptedSolver:
    """Can do exactly one operation; uses every ``a op b=v`` it finds in the observation (the thought).

    With probability ``slip`` (default 0) it gets that last operation wrong by one.
    """

    def __init__(self, slip: float = 0.0, seed: int = 0) -> None:
        self.slip = slip
        self._rng = random.Random(seed)

    def solve(self, observation: str, rng: random.Random) -> str:
        expr = parse_expression(observation)
        answer = arith_one_op_solve(f"Compute {expr}.", observation) if expr else None
        if answer is None:
            return "That is more than one operation; I cannot finish it."
        if rng.random() < self.slip:
            answer = str(int(answer) + rng.choice([-1, 1]))
        return f"The result is \\boxed{{{answer}}}"

    def __call__(self, observations: list[str], *, seeds: Sequence[int] | None = None) -> list[str]:
        return [self.solve(o, r) for o, r in zip(observations, _rngs(len(observations), seeds, self._rng))]


class NoisyVoter:
    """Right with probability ``p``; otherwise a nearby wrong number."""

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        self.p = p
        self._rng = random.Random(seed)

    def vote(self, observation: str, rng: random.Random) -> str:
        expr = parse_expression(observation)
        if expr is None:
            return "No idea."
        value = evaluate(expr)
        if rng.random() >= self.p:
            value += rng.choice([-1, 1]) * rng.randint(1, 20)
        return f"\\boxed{{{value}}}"

    def __call__(self, observations: list[str], *, seeds: Sequence[int] | None = None) -> list[str]:
        return [self.vote(o, r) for o, r in zip(observations, _rngs(len(observations), seeds, self._rng))]
