"""The synthetic ``arith`` family: determinism, levels, split disjointness, thoughts, freeride."""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys

import pytest

from ccpo_env.data import ArithDataset, Problem, arith_one_op_solve, arith_oracle_thought, load_dataset
from ccpo_env.data import arith as arith_mod

LEVELS = [1, 2, 3, 4, 5]


# -- an evaluator and canonicaliser written independently of the library ---------------------------
def expr_of(problem: Problem) -> str:
    m = re.fullmatch(r"Compute (.+)\.", problem.problem)
    assert m, problem.problem
    return m.group(1)


def evaluate(node: ast.AST) -> int:
    if isinstance(node, ast.Expression):
        return evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp):
        a, b = evaluate(node.left), evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
    raise AssertionError(f"unexpected node {ast.dump(node)}")


def canonical(node: ast.AST) -> str:
    """Sorted signed terms / sorted factors: equal for commutative rewrites."""
    if isinstance(node, ast.Expression):
        return canonical(node.body)
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node.op, ast.Mult):
        factors: list[str] = []

        def fm(n):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
                fm(n.left)
                fm(n.right)
            else:
                factors.append(canonical(n))

        fm(node)
        return "*(" + ",".join(sorted(factors)) + ")"
    terms: list[str] = []

    def fs(n, sign):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            fs(n.left, sign)
            fs(n.right, sign if isinstance(n.op, ast.Add) else -sign)
        else:
            terms.append(("+" if sign > 0 else "-") + canonical(n))

    fs(node, 1)
    return "+(" + ",".join(sorted(terms)) + ")"


def parse(problem: Problem) -> ast.Expression:
    return ast.parse(expr_of(problem), mode="eval")


def items(split="train", level=LEVELS, n=200, **kw) -> list[Problem]:
    return list(ArithDataset(split, level, size=n, **kw))


# --------------------------------------------------------------------------------------------------
def test_deterministic_in_process_and_pinned():
    a, b = items(n=50), items(n=50)
    assert [(p.id, p.problem, p.answer, p.extras) for p in a] == [
        (p.id, p.problem, p.answer, p.extras) for p in b
    ]
    # Pinned values: a change to the generator changes every benchmark built on arith. Bump the
    # stream version ("ccpo-arith-v1") on purpose and update these if that is intended.
    ds = ArithDataset("train", level=2, seed=0)
    assert [ds[i].problem for i in range(3)] == [
        "Compute (47*7)+(29*3).",
        "Compute (80*8)+(44*6).",
        "Compute (62*6)-(93*2).",
    ]
    assert ds[0].answer == "416"
    assert ArithDataset("test", level=1, seed=3)[7] == ArithDataset("test", level=1, seed=3, size=10)[7]
    assert ArithDataset("train", level=2, seed=1)[0].problem != ds[0].problem  # seeds differ


def _digest(problems: list[Problem]) -> str:
    return hashlib.sha256("\n".join(f"{p.id}|{p.problem}|{p.answer}" for p in problems).encode()).hexdigest()


def test_deterministic_across_processes():
    here = _digest(items("test", n=100, seed=5, variant="freeride"))
    code = (
        "import hashlib\nfrom ccpo_env.data import ArithDataset\n"
        "ps = list(ArithDataset('test', [1,2,3,4,5], seed=5, size=100, variant='freeride'))\n"
        "print(hashlib.sha256('\\n'.join(f'{p.id}|{p.problem}|{p.answer}' for p in ps).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == here, out.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_levels_have_the_documented_shape(level):
    shapes = {
        1: r"\((\d)\*(\d)\)[+-](\d)|(\d)-\((\d)\*(\d)\)",
        2: r"\((\d\d)\*(\d)\)[+-]\((\d\d)\*(\d)\)",
        3: r"\(\((\d\d)\*(\d)\)[+-]\((\d\d)\*(\d)\)\)\*(\d)",
        4: r"\((\d\d)\*(\d)\)[+-]\((\d\d)\*(\d)\)[+-]\((\d\d)\*(\d)\)",
        5: r"\((\d\d)\*(\d\d)\)[+-]\((\d\d)\*(\d\d)\)[+-]\((\d\d)\*(\d\d)\)",
    }
    n_steps = {1: 1, 2: 2, 3: 3, 4: 4, 5: 4}
    ps = items(level=level, n=300) + items("test", level=level, n=100)
    for p in ps:
        m = re.fullmatch(shapes[level], expr_of(p))
        assert m, p.problem
        nums = [int(g) for g in m.groups() if g is not None]
        if level == 1:
            assert all(1 <= x <= 9 for x in nums)
        elif level == 5:
            assert all(10 <= x <= 99 for x in nums)
        else:  # (big*small) pairs; level 3 ends with a one-digit multiplier
            big, small = nums[0 : 4 if level == 3 else None : 2], nums[1::2] + nums[4:] * (level == 3)
            assert all(10 <= x <= 99 for x in big) and all(2 <= x <= 9 for x in small)
        assert p.extras["level"] == level and len(p.extras["steps"]) == n_steps[level]
    ops = "".join(re.sub(r"[^+-]", "", expr_of(p)) for p in ps)
    assert 0.3 < ops.count("-") / len(ops) < 0.7  # both signs occur


def test_level_mix_is_round_robin():
    ds = ArithDataset("train", level=[3, 1], size=6)
    assert [p.extras["level"] for p in ds] == [3, 1, 3, 1, 3, 1]
    assert ds[0].id == "arith/standard/train/L3-1/s0/0"


def test_answers_are_correct_and_steps_consistent():
    for p in items(n=400) + items("test", n=200) + items(n=200, variant="freeride"):
        value = evaluate(parse(p))
        assert p.answer == str(value) and value >= 0
        assert p.extras["expression"] == expr_of(p)
        for step, inter in zip(p.extras["steps"], p.extras["intermediates"], strict=True):
            lhs, rhs = step.split("=")
            assert evaluate(ast.parse(lhs, mode="eval")) == int(rhs) == inter >= 0
        assert evaluate(ast.parse(p.extras["final_step"], mode="eval")) == value
        assert evaluate(ast.parse(p.extras["full_expression"], mode="eval")) == value


def test_train_and_test_are_disjoint():
    train = (
        items("train", n=3000) + items("train", n=1000, seed=7) + items("train", n=1000, variant="freeride")
    )
    test = items("test", n=2000) + items("test", n=1000, seed=9, variant="freeride")
    train_keys = {canonical(parse(p)) for p in train}
    test_keys = {canonical(parse(p)) for p in test}
    assert not train_keys & test_keys
    assert not {p.problem for p in train} & {p.problem for p in test}
    assert len(test_keys) > 1000  # a real test set, not a handful of repeats
    assert {arith_mod.split_of(arith_mod._canon(ast_to_node(parse(p).body))) for p in test} == {"test"}


def ast_to_node(node: ast.AST):
    """Our AST -> the library's tuple tree, to check split_of on the library's own canonical form."""
    if isinstance(node, ast.Constant):
        return node.value
    op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
    return (op, ast_to_node(node.left), ast_to_node(node.right))


def test_commutative_rewrites_share_a_split():
    for expr in ["(23*4)+(17*3)", "(93*7)-(12*5)+(40*2)", "((23*4)+(17*3))*5"]:
        tree = ast_to_node(ast.parse(expr, mode="eval").body)
        op, left, right = tree
        assert op in "+*"
        assert arith_mod.split_of(tree) == arith_mod.split_of((op, right, left))
    # (a*b) and (b*a), and term order in a sum, give the same canonical form
    assert arith_mod._canon(("+", ("*", 23, 4), ("*", 17, 3))) == arith_mod._canon(
        ("+", ("*", 3, 17), ("*", 4, 23))
    )


def test_oracle_thought_helps_a_one_operation_solver():
    for level in LEVELS:
        for p in items("test", level=level, n=150):
            thought = arith_oracle_thought(p)
            assert thought and thought == ", ".join(p.extras["steps"])
            assert p.extras["final_step"] not in thought  # the last operation is the Solver's job
            assert arith_one_op_solve(p.problem) is None  # alone: fails
            assert arith_one_op_solve(p.problem, thought) == p.answer  # with the thought: solves
            assert p.extras["kind"] == "joint" and p.extras["needs_thought"]
    p = ArithDataset("train", level=2)[0]
    assert arith_oracle_thought(p) == "47*7=329, 29*3=87"
    assert arith_one_op_solve(p.problem, "47*7=329") is None  # half a thought is not enough
    with pytest.raises(ValueError):
        arith_oracle_thought(Problem(id="x", problem="1+1", answer="2", source="gsm8k"))


def test_freeride_variant():
    for level in LEVELS:
        ps = items("train", level=level, n=400, variant="freeride")
        solo = [p for p in ps if p.extras["kind"] == "solo"]
        joint = [p for p in ps if p.extras["kind"] == "joint"]
        assert 0.4 < len(solo) / len(ps) < 0.6
        for p in solo:  # the easy part: one operation, the Solver alone gets it right
            assert not p.extras["needs_thought"] and arith_oracle_thought(p) == ""
            assert re.fullmatch(r"\d+[+\-*]\d+", expr_of(p))
            assert arith_one_op_solve(p.problem) == p.answer
            assert p.extras["final_step"] == expr_of(p) != p.extras["full_expression"]
        for p in joint:  # the hard part: needs the thought
            assert p.extras["needs_thought"] and arith_one_op_solve(p.problem) is None
            assert arith_one_op_solve(p.problem, arith_oracle_thought(p)) == p.answer
    assert {p.extras["kind"] for p in items(n=50, variant="freeride", easy_fraction=0.0)} == {"joint"}
    assert {p.extras["kind"] for p in items(n=50, variant="freeride", easy_fraction=1.0)} == {"solo"}
    # solo accuracy of the one-op Solver ~ easy_fraction; joint accuracy 100 %
    ps = items("test", level=2, n=400, variant="freeride", easy_fraction=0.3)
    solo_acc = sum(arith_one_op_solve(p.problem) == p.answer for p in ps) / len(ps)
    joint_acc = sum(arith_one_op_solve(p.problem, arith_oracle_thought(p)) == p.answer for p in ps) / len(ps)
    assert 0.2 < solo_acc < 0.4 and joint_acc == 1.0


def test_ascii_alphabet_and_length_bounds():
    ps = items(n=1000) + items("test", level=[5], n=300) + items(n=300, variant="freeride")
    allowed = set(arith_mod.ALPHABET)
    for p in ps:
        thought = arith_oracle_thought(p)
        for text in (p.problem, thought, p.answer):
            assert text.isascii() and set(text) <= allowed, text
        assert len(p.problem) <= arith_mod.MAX_PROBLEM_CHARS
        assert len(thought) <= arith_mod.MAX_THOUGHT_CHARS
        assert len(p.answer) <= arith_mod.MAX_ANSWER_CHARS and p.answer.isdigit()
        assert p.source == "arith" and p.answer_type == "math"


def test_load_dataset_arith_options_and_size():
    ds = load_dataset("arith", split="train", level=2, seed=0, limit=1000, variant="freeride")
    assert isinstance(ds, ArithDataset) and len(ds) == 1000 and ds.split == "train"
    assert ds[999].id == "arith/freeride/train/L2/s0/999"
    assert ds[5] == ArithDataset("train", 2, 0, variant="freeride")[5]
    unbounded = load_dataset("arith", data_dir="/ignored")  # split defaults to "test"
    assert len(unbounded) == arith_mod.NOMINAL_SIZE and unbounded.split == "test"
    assert unbounded[10**9 - 1].extras["index"] == 10**9 - 1  # any index, generated on demand
    assert len(unbounded.take(7)) == 7 and len(load_dataset("arith", size=20, limit=5)) == 5
    assert ds.index_of(ds[42].id) == 42 and ds[42] in ds
    with pytest.raises(KeyError, match="look like"):
        ds.index_of("arith/standard/train/L2/s0/42")
    with pytest.raises(KeyError, match="beyond"):
        ds.index_of("arith/freeride/train/L2/s0/1000")
    with pytest.raises(IndexError):
        ds[1000]
    for bad in (
        {"split": "validation"},
        {"level": 6},
        {"level": []},
        {"variant": "lazy"},
        {"easy_fraction": 2},
    ):
        with pytest.raises(ValueError):
            load_dataset("arith", **bad)
    with pytest.raises(TypeError, match="does not take"):
        load_dataset("arith", levels=2)
    ids = [p.id for p in load_dataset("arith", split="train", level=[1, 2], limit=300)]
    assert len(set(ids)) == 300
