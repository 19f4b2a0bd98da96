"""``arith``: the embedded, offline, seeded task family for CPU demos, tests and benchmarks.

Every problem is a short integer expression, ``Compute <expr>.``, whose answer is an integer string.
It is built so that a Thinker's message genuinely helps a Solver: the expression needs several
binary operations, and the *oracle thought* (:func:`arith_oracle_thought`) lists every operation
but the last one with its result (``23*4=92, 17*3=51``). A Solver that can do a single operation
(:func:`arith_one_op_solve`) answers correctly with that thought and fails without it.

Levels (``a``..``f`` are the numbers drawn; every value and intermediate is >= 0, a ``-`` whose result
would be negative is turned into ``+`` or its operands swapped):

=====  ==================================  ===================================  =====  ===========================
level  form                                numbers                              ops    example
=====  ==================================  ===================================  =====  ===========================
1      ``(a*b)+c``                         a, b in 2..9; c in 1..9              2      ``Compute (7*8)+5.``
2      ``(a*b)+(c*d)``                     a, c in 10..99; b, d in 2..9         3      ``Compute (23*4)+(17*3).``
3      ``((a*b)+(c*d))*e``                 a, c in 10..99; b, d, e in 2..9      4      ``Compute ((23*4)-(17*3))*5.``
4      ``(a*b)+(c*d)-(e*f)``               a, c, e in 10..99; b, d, f in 2..9   5      ``Compute (23*4)+(17*3)-(31*2).``
5      ``(a*b)+(c*d)-(e*f)``               all six in 10..99                    5      ``Compute (23*41)+(17*36)-(31*22).``
=====  ==================================  ===================================  =====  ===========================

Each ``+``/``-`` is drawn independently (so level 2 is ``(a*b)+(c*d)`` or ``(a*b)-(c*d)``). The thought
carries 1, 2, 3, 4 and 4 intermediate results at levels 1..5.

Determinism: problem ``i`` of ``(variant, split, level, seed)`` is a pure function of those values,
drawn from a BLAKE2b counter stream (no ``random``, no ``hash()``), identical across processes,
platforms and Python versions.

Train/test disjointness: a stable hash of the problem's *canonical form* (terms of a sum sorted with
their signs, factors of a product sorted) puts every expression in exactly one split, with
:data:`TEST_FRACTION` of them in ``test``; generation redraws a candidate until it lands in the asked
split. So no test problem (nor a commutative rewrite of it) is ever a training problem, whatever the
seeds; the split does not depend on the seed. Level 1 is small (a few hundred problems up to
commutativity; about 190 distinct test problems as written), so long level-1 test sets repeat problems;
levels 2-5 hardly repeat.

Size: without ``size`` a dataset is unbounded in principle; ``len()`` is the nominal
:data:`NOMINAL_SIZE` (10**9) and item ``i`` is generated on access, so sampling an index is cheap.
Do not iterate an unbounded dataset: pass ``size`` (or ``limit=`` to ``load_dataset``) for evaluation.

Variant ``"freeride"`` -- the free-riding probe. Each item is, independently with probability
``easy_fraction`` (default 0.5), a *solo* item -- only the final operation of a level problem,
e.g. ``Compute 92+51.``, which a one-operation Solver does alone, so the thought is worthless -- or
otherwise a *joint* item, a full level problem that needs the thought. Intent: under a shared
reward the Thinker is paid on solo items whatever it writes, so much of its reward says nothing about
its thought and it can drift into useless thoughts while the Solver carries the team (free-riding).
A counterfactual credit (joint minus Solver-alone) is zero on solo items and positive only where the
thought helped. The check: on joint items, the team with the Thinker must stay well above the Solver
alone; a collapsed Thinker brings the two together. ``extras["kind"]`` (``"solo"``/``"joint"``) and
``extras["needs_thought"]`` mark the items, so the two accuracies can be reported separately.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from ccpo_env.data.dataset import Dataset, _check_limit
from ccpo_env.data.problem import Problem

#: Nominal ``len()`` of a dataset created without ``size``.
NOMINAL_SIZE = 10**9
#: Share of the canonical expression space that belongs to the test split.
TEST_FRACTION = 0.2
VARIANTS = ("standard", "freeride")
SPLITS = ("train", "test")
#: Upper bounds (checked by the tests) for sizing tokenizers and text spaces.
MAX_PROBLEM_CHARS = 40
MAX_THOUGHT_CHARS = 64
MAX_ANSWER_CHARS = 5
#: Every character that occurs in a problem, an oracle thought or an answer.
ALPHABET = "".join(sorted(set("Compute 0123456789+-*()=,.")))

#: One line per level (for help texts and ``describe``).
LEVELS: dict[int, str] = {
    1: "(a*b)+c, a,b in 2..9, c in 1..9; 2 ops, thought carries 1 result",
    2: "(a*b)+(c*d), a,c in 10..99, b,d in 2..9; 3 ops, 2 results",
    3: "((a*b)+(c*d))*e, a,c in 10..99, b,d,e in 2..9; 4 ops, 3 results",
    4: "(a*b)+(c*d)-(e*f), a,c,e in 10..99, b,d,f in 2..9; 5 ops, 4 results",
    5: "(a*b)+(c*d)-(e*f), all in 10..99; 5 ops, 4 results",
}

# An expression tree: a leaf int, or (op, left, right) with op in "+-*".
Node = int | tuple[str, "Node", "Node"]


# --------------------------------------------------------------------------------------------------
# Deterministic randomness
# --------------------------------------------------------------------------------------------------
class _Stream:
    """A counter-mode BLAKE2b stream: reproducible everywhere, unlike ``random`` across versions."""

    def __init__(self, *key: object) -> None:
        self._key = "|".join(map(str, key)).encode()
        self._n = 0

    def _u64(self) -> int:
        d = hashlib.blake2b(self._key + b"#%d" % self._n, digest_size=8).digest()
        self._n += 1
        return int.from_bytes(d, "big")

    def randint(self, lo: int, hi: int) -> int:
        return lo + self._u64() % (hi - lo + 1)  # 64-bit draw: modulo bias is negligible

    def random(self) -> float:
        return self._u64() / 2.0**64

    def choice(self, seq: str) -> str:
        return seq[self._u64() % len(seq)]


# --------------------------------------------------------------------------------------------------
# Expression trees
# --------------------------------------------------------------------------------------------------
def _value(node: Node) -> int:
    if isinstance(node, int):
        return node
    op, left, right = node
    a, b = _value(left), _value(right)
    return a + b if op == "+" else a - b if op == "-" else a * b


def _is_sum(node: Node) -> bool:
    return not isinstance(node, int) and node[0] in "+-"


def _render(node: Node, root: bool = True) -> str:
    """``(23*4)+(17*3)``: products of two numbers are parenthesised (except at the root)."""
    if isinstance(node, int):
        return str(node)
    op, left, right = node
    ls, rs = _render(left, False), _render(right, False)
    if op == "*":
        ls = f"({ls})" if _is_sum(left) else ls
        rs = f"({rs})" if _is_sum(right) else rs
        s = f"{ls}*{rs}"
        return s if root or not (isinstance(left, int) and isinstance(right, int)) else f"({s})"
    if _is_sum(right):
        rs = f"({rs})"
    return f"{ls}{op}{rs}"


def _steps(node: Node) -> list[tuple[str, int]]:
    """Every operation in evaluation (post-) order, as ``("23*4", 92)``; the root's is last."""
    if isinstance(node, int):
        return []
    op, left, right = node
    return [*_steps(left), *_steps(right), (f"{_value(left)}{op}{_value(right)}", _value(node))]


def _canon(node: Node) -> str:
    """A canonical form, equal for commutative rewrites (sorted signed terms, sorted factors)."""
    if isinstance(node, int):
        return str(node)
    if node[0] == "*":
        factors: list[str] = []

        def flat_mul(n: Node) -> None:
            if not isinstance(n, int) and n[0] == "*":
                flat_mul(n[1])
                flat_mul(n[2])
            else:
                factors.append(_canon(n))

        flat_mul(node)
        return "P(" + ",".join(sorted(factors)) + ")"
    terms: list[str] = []

    def flat_sum(n: Node, sign: str) -> None:
        if _is_sum(n):
            op, left, right = n  # type: ignore[misc]
            flat_sum(left, sign)
            flat_sum(right, sign if op == "+" else ("-" if sign == "+" else "+"))
        else:
            terms.append(sign + _canon(n))

    flat_sum(node, "+")
    return "S(" + ",".join(sorted(terms)) + ")"


def split_of(node_or_canon: Node | str) -> str:
    """``"train"`` or ``"test"``: the split an expression (or its canonical string) belongs to."""
    canon = node_or_canon if isinstance(node_or_canon, str) else _canon(node_or_canon)
    h = int.from_bytes(hashlib.blake2b(b"ccpo-arith-split|" + canon.encode(), digest_size=8).digest(), "big")
    return "test" if h % 10_000 < TEST_FRACTION * 10_000 else "train"


# --------------------------------------------------------------------------------------------------
# Level generators
# --------------------------------------------------------------------------------------------------
def _chain(st: _Stream, terms: list[Node]) -> Node:
    """Left-associated ``t0 ± t1 ± t2``, never going negative."""
    node = terms[0]
    for k, term in enumerate(terms[1:]):
        op = st.choice("+-")
        if op == "-" and _value(node) < _value(term):
            if k == 0:
                node, term = term, node  # keep the subtraction, swap its operands
            else:
                op = "+"
        node = (op, node, term)
    return node


def _products(st: _Stream, n: int, big: tuple[int, int], small: tuple[int, int]) -> list[Node]:
    return [("*", st.randint(*big), st.randint(*small)) for _ in range(n)]


_GENERATORS: dict[int, Callable[[_Stream], Node]] = {
    1: lambda st: _chain(st, [*_products(st, 1, (2, 9), (2, 9)), st.randint(1, 9)]),
    2: lambda st: _chain(st, _products(st, 2, (10, 99), (2, 9))),
    3: lambda st: ("*", _chain(st, _products(st, 2, (10, 99), (2, 9))), st.randint(2, 9)),
    4: lambda st: _chain(st, _products(st, 3, (10, 99), (2, 9))),
    5: lambda st: _chain(st, _products(st, 3, (10, 99), (10, 99))),
}


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
def _check_levels(level: int | Sequence[int]) -> tuple[int, ...]:
    levels = (level,) if isinstance(level, int) and not isinstance(level, bool) else tuple(level)
    if not levels or any(isinstance(x, bool) or x not in _GENERATORS for x in levels):
        raise ValueError(
            f"arith level must be one of {sorted(_GENERATORS)} or a non-empty list of them, got {level!r}"
        )
    return levels


class ArithDataset(Dataset):
    """Seeded synthetic multi-step integer problems (see the module docstring for the levels).

    Args:
        split: ``"train"`` or ``"test"`` (disjoint by construction).
        level: 1..5, or a list of levels: item ``i`` then has level ``level[i % len(level)]``.
        seed: selects a different, equally distributed stream of problems (the split does not depend on it).
        size: number of items; ``None`` = unbounded, with nominal ``len()`` :data:`NOMINAL_SIZE`.
        variant: ``"standard"`` or ``"freeride"`` (the free-riding probe).
        easy_fraction: for ``"freeride"``, the probability that an item is a solo (thought-free) item.

    Ids are ``arith/<variant>/<split>/L<levels>/s<seed>/<i>``, e.g. ``arith/standard/train/L2/s0/17``.
    Each problem's ``extras`` hold ``level``, ``variant``, ``kind`` (``"joint"``/``"solo"``),
    ``needs_thought``, ``expression``, ``steps`` (``["23*4=92", "17*3=51"]``), ``intermediates``
    (``[92, 51]``), ``final_step`` (``"92+51"``), ``full_expression`` (for a solo item, the level
    problem it was cut from), ``split``, ``seed`` and ``index``.
    """

    def __init__(
        self,
        split: str = "train",
        level: int | Sequence[int] = 2,
        seed: int = 0,
        size: int | None = None,
        variant: str = "standard",
        easy_fraction: float = 0.5,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"arith split must be one of {list(SPLITS)}, got {split!r}")
        if variant not in VARIANTS:
            raise ValueError(f"arith variant must be one of {list(VARIANTS)}, got {variant!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"arith seed must be an int, got {seed!r}")
        if not 0.0 <= float(easy_fraction) <= 1.0:
            raise ValueError(f"easy_fraction must be in [0, 1], got {easy_fraction!r}")
        self.levels = _check_levels(level)
        self.seed = seed
        self.variant = variant
        self.easy_fraction = float(easy_fraction)
        self.size = None if size is None else _check_limit(size)
        super().__init__((), name="arith", split=split, origin="generated")
        spec = "-".join(map(str, self.levels))
        self._prefix = f"arith/{variant}/{split}/L{spec}/s{seed}/"
        self._cached = lru_cache(maxsize=8192)(self._make)

    def __len__(self) -> int:
        return NOMINAL_SIZE if self.size is None else self.size

    def _get(self, index: int) -> Problem:
        return self._cached(index)

    def __repr__(self) -> str:
        return (
            f"ArithDataset(split={self.split!r}, level={list(self.levels)}, seed={self.seed}, "
            f"size={self.size}, variant={self.variant!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuild from the parameters: the per-instance lru_cache cannot be pickled (DDP, process pools).
        return (
            ArithDataset,
            (self.split, list(self.levels), self.seed, self.size, self.variant, self.easy_fraction),
        )

    def take(self, n: int) -> ArithDataset:
        n = _check_limit(n)
        if n >= len(self):
            return self
        return ArithDataset(
            self.split, list(self.levels), self.seed, min(n, len(self)), self.variant, self.easy_fraction
        )

    def index_of(self, problem_id: str) -> int:
        """Position of an id of this dataset (parsed, not searched)."""
        pid = str(problem_id)
        if pid.startswith(self._prefix) and pid[len(self._prefix) :].isdigit():
            i = int(pid[len(self._prefix) :])
            if i < len(self):
                return i
            raise KeyError(f"problem id {pid!r}: index {i} is beyond this arith dataset's size {len(self)}")
        raise KeyError(
            f"problem id {pid!r} is not in this arith dataset; its ids look like '{self._prefix}<index>' "
            f"(variant, split, levels and seed must match)"
        )

    def _make(self, i: int) -> Problem:
        level = self.levels[i % len(self.levels)]
        for attempt in range(10_000):
            st = _Stream("ccpo-arith-v1", self.variant, self.split, level, self.seed, i, attempt)
            tree = _GENERATORS[level](st)
            solo = self.variant == "freeride" and st.random() < self.easy_fraction
            if solo:
                op, left, right = tree  # type: ignore[misc]
                shown: Node = (op, _value(left), _value(right))  # just the final operation
            else:
                shown = tree
            if split_of(shown) == self.split:
                break
        else:  # pragma: no cover - would need ~10^4 consecutive hash misses
            raise RuntimeError(f"arith: could not draw a {self.split} problem for index {i}")
        steps = _steps(shown)
        inner = steps[:-1]
        expr = _render(shown)
        return Problem(
            id=f"{self._prefix}{i}",
            problem=f"Compute {expr}.",
            answer=str(_value(shown)),
            source="arith",
            answer_type="math",
            extras={
                "level": level,
                "variant": self.variant,
                "kind": "solo" if solo else "joint",
                "needs_thought": bool(inner),
                "expression": expr,
                "steps": [f"{e}={v}" for e, v in inner],
                "intermediates": [v for _, v in inner],
                "final_step": steps[-1][0],
                "full_expression": _render(tree),
                "split": self.split,
                "seed": self.seed,
                "index": i,
            },
        )


# --------------------------------------------------------------------------------------------------
# Scripted helpers
# --------------------------------------------------------------------------------------------------
def arith_oracle_thought(problem: Problem) -> str:
    """The helpful thought for an arith problem: every intermediate result, never the answer.

    ``"23*4=92, 17*3=51"`` for ``Compute (23*4)+(17*3).``; ``""`` for a freeride solo item (nothing
    to precompute).

    Raises:
        ValueError: ``problem`` is not an arith problem.
    """
    steps = problem.extras.get("steps") if problem.source == "arith" else None
    if steps is None:
        raise ValueError(f"arith_oracle_thought needs an arith problem, got one from {problem.source!r}")
    return ", ".join(steps)


def arith_corrupt_thought(thought: str, rng: random.Random) -> str:
    """``thought`` with one digit of one intermediate result changed (never to the same digit, never to a
    leading zero): ``"7*8=56"`` may become ``"7*8=46"``. For deliberately wrong thoughts (SFT noise, tests)."""
    steps = thought.split(", ")
    k = rng.randrange(len(steps))
    lhs, value = steps[k].split("=")
    pos = rng.randrange(len(value))
    digits = [d for d in "0123456789" if d != value[pos] and not (pos == 0 and d == "0" and len(value) > 1)]
    steps[k] = f"{lhs}={value[:pos]}{rng.choice(digits)}{value[pos + 1 :]}"
    return ", ".join(steps)


def arith_thought_correct(problem: Problem, thought: str) -> bool:
    """Whether ``thought`` holds every intermediate ``x*y=v`` of an arith problem (spaces ignored).

    ``7*8=560`` does not count for ``7*8=56``. True for problems with no intermediate step.
    """
    steps = problem.extras.get("steps") or ()
    flat = thought.replace(" ", "")
    return all(re.search(rf"(?<![\d*+-]){re.escape(s)}(?!\d)", flat) for s in steps)


_STEP_RE = re.compile(r"(\d+[+\-*]\d+)\s*=\s*(\d+)")
_PAREN_NUM_RE = re.compile(r"\((\d+)\)")
_ONE_OP_RE = re.compile(r"(\d+)([+\-*])(\d+)")


def arith_one_op_solve(problem: str, thought: str = "") -> str | None:
    """A scripted Solver that can do exactly one operation.

    It substitutes each ``x op y=v`` found in ``thought`` into the expression of ``problem`` (text
    ``Compute <expr>.``); if what remains is a single operation on two numbers, it returns the result
    as a string, otherwise ``None``. With :func:`arith_oracle_thought` it solves every arith problem;
    alone, only freeride solo items. (It trusts the thought: a wrong step gives a wrong answer.)
    """
    expr = problem.strip().removeprefix("Compute").strip().removesuffix(".").replace(" ", "")
    known = _STEP_RE.findall(thought.replace(" ", ""))
    changed = True
    while changed:
        changed = False
        for lhs, val in known:
            new = re.sub(r"(?<!\d)" + re.escape(lhs) + r"(?!\d)", val, expr)
            new = _PAREN_NUM_RE.sub(r"\1", new)
            if new != expr:
                expr, changed = new, True
        bare = _PAREN_NUM_RE.sub(r"\1", expr)
        changed = changed or bare != expr
        expr = bare
    m = _ONE_OP_RE.fullmatch(expr)
    if not m:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return str(a + b if op == "+" else a - b if op == "-" else a * b)


def load_arith(
    split: str = "train",
    *,
    level: int | Sequence[int] = 2,
    seed: int = 0,
    limit: int | None = None,
    size: int | None = None,
    variant: str = "standard",
    easy_fraction: float = 0.5,
    data_dir: object = None,
) -> ArithDataset:
    """Registry loader for ``arith``: ``limit`` (or ``size``) bounds it; ``data_dir`` is ignored."""
    del data_dir  # generated, no files; accepted so callers can pass data_dir to every dataset
    n = size if limit is None else (limit if size is None else min(limit, size))
    return ArithDataset(split, level, seed, n, variant, easy_fraction)
