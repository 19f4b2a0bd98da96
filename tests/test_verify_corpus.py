"""The verifier on answers written without ``\\boxed``: extraction modes, the labelled corpus, the
decimal-approximation boundary and the equivalence classes added for prose, bare and unit answers."""

from __future__ import annotations

import collections
import json
from fractions import Fraction
from pathlib import Path

import pytest

from ccpo_env.verify import (
    DEFAULT_EXTRACTION,
    EXTRACTION_MODES,
    TRAINING_EXTRACTION,
    equivalent,
    extract_answer,
    make_trl_reward,
    verify,
    verify_batch,
)
from ccpo_env.verify.approx import REL_TOL, approximates, decimal_places

CORPUS = Path(__file__).parent / "data" / "verify_corpus.jsonl"
FORMS = ("boxed", "prose", "bare", "choice", "units", "numeric", "relation", "structured")


def _corpus() -> list[dict]:
    with open(CORPUS) as f:
        return [json.loads(line) for line in f]


ROWS = _corpus()


# ----------------------------------------------------------------------------- the corpus itself
def test_corpus_is_large_balanced_and_well_formed():
    assert len(ROWS) >= 300
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    counts = collections.Counter(r["form"] for r in ROWS)
    assert set(counts) == set(FORMS) and min(counts.values()) >= 25
    for form in FORMS:  # every form has right and wrong answers, so agreement cannot come from a constant
        labels = [r["label"] for r in ROWS if r["form"] == form]
        assert 0.3 <= sum(labels) / len(labels) <= 0.8, form
    assert all(isinstance(r["label"], bool) and r["response"] and r["gold"] for r in ROWS)


def test_corpus_agreement_per_form():
    verdicts = verify_batch([r["response"] for r in ROWS], [r["gold"] for r in ROWS])
    wrong = [(r["id"], v) for r, v in zip(ROWS, verdicts) if v.correct is not r["label"]]
    by_form = collections.Counter(i.split("-")[0] for i, _ in wrong)
    for form in FORMS:
        n = sum(r["form"] == form for r in ROWS)
        assert by_form[form] <= max(1, n // 25), (form, [w for w in wrong if w[0].startswith(form)])
    # no new false positives: every wrong answer in the corpus is rejected
    false_pos = [(r["id"], v) for r, v in zip(ROWS, verdicts) if v.correct and not r["label"]]
    assert not false_pos, false_pos


def test_boxed_answers_score_the_same_in_every_mode():
    boxed = [r for r in ROWS if "\\boxed" in r["response"] or "\\fbox" in r["response"]]
    assert len(boxed) > 100
    responses, golds = [r["response"] for r in boxed], [r["gold"] for r in boxed]
    results = [verify_batch(responses, golds, extraction=mode) for mode in EXTRACTION_MODES]
    assert results[0] == results[1] == results[2]


# ----------------------------------------------------------------------------- extraction modes
PROSE = "Adding the parts, she pays 12 dollars in total."


@pytest.mark.parametrize(
    ("text", "boxed", "anchored", "lenient"),
    [
        ("so \\boxed{7}. The answer is 8.", "7", "7", "7"),
        ("The answer is 42.", None, "42", "42"),
        (PROSE, None, None, "12"),
        ("3/4", None, None, "3/4"),
        ("Hence $x \\le 4$ is the solution.", None, None, "x \\le 4"),
        ("Answer\n\\[ 7 \\]", None, "7", "7"),
        ("We get $x = 3$ on day one, and the total is 15. Hope this helps!", None, None, "15"),
        ("I think it is about 7 or maybe 8 apples.", None, None, None),
        ("Final answer: the perimeter is 36 cm.", None, "the perimeter is 36 cm", "36"),
        ("x = 4, which we check: 2(4) + 3 = 11.", None, None, "x = 4"),
        ("She needs 8 more boxes, which is 48 cookies.", None, None, "48"),
        ("So the recipe needs 7 1/4 cups.", None, None, "7 1/4"),
        ("So she pays \\$12 and \\$3 in tax, 15 in all.", None, None, "15"),
        ("", None, None, None),
    ],
)
def test_extraction_modes(text, boxed, anchored, lenient):
    assert extract_answer(text, "boxed") == boxed
    assert extract_answer(text, "anchored") == anchored
    assert extract_answer(text, "lenient") == lenient
    assert extract_answer(text) == lenient  # the default


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is clearly B, not A or C.", "B"),
        ("B. because the product of two odd numbers is odd.", "B"),
        ("C) 24 because each pair is counted twice.", "C"),
        ("So I would pick option D.", "D"),
        ("(A) is wrong and (B) is wrong, so it must be (E).", "E"),
        ("A careful count gives 24 pairs.", "24"),  # "A" as an article is no choice; the number remains
    ],
)
def test_choice_letters_in_prose(text, letter):
    assert extract_answer(text, choices=True) == letter


def test_choice_gold_uses_prose_letters_only_when_lenient():
    assert verify("B. because it is even.", "B").correct
    assert not verify("B. because it is even.", "B", extraction="anchored").correct
    assert not verify("The answer is clearly B, not A or C.", "A").correct
    assert not verify(
        "\\boxed{\\text{(C)}1}", "\\text{(C)}"
    ).correct  # a letter glued to a digit is no choice


def test_mode_constants_and_bad_mode():
    assert EXTRACTION_MODES == ("boxed", "anchored", "lenient")
    assert DEFAULT_EXTRACTION == "lenient" and TRAINING_EXTRACTION == "anchored"
    for call in (
        lambda: verify("\\boxed{1}", "1", extraction="strict"),
        lambda: verify_batch(["1"], ["1"], extraction="loose"),
        lambda: extract_answer("1", "all"),
        lambda: make_trl_reward(extraction="box"),
    ):
        with pytest.raises(ValueError, match="boxed, anchored, lenient"):
            call()


def test_trl_reward_defaults_to_the_training_mode():
    reward = make_trl_reward()
    assert reward(None, [PROSE, "\\boxed{12}"], answer=["12", "12"]) == [0.0, 1.0]
    lenient = make_trl_reward(extraction="lenient")
    assert lenient(None, [PROSE], answer=["12"]) == [1.0]


def test_label_extraction_modes():
    assert verify("so the conclusion is false.", "False", answer_type="label").correct
    assert not verify("so the conclusion is false.", "False", answer_type="label", extraction="boxed").correct
    assert verify("\\boxed{False}", "False", answer_type="label", extraction="boxed").correct


# ----------------------------------------------------------------------------- decimal approximations
@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("0.333333", "\\frac{1}{3}", True),  # relative error exactly 1e-6: inclusive boundary
        ("0.33333", "\\frac{1}{3}", False),  # 1e-5
        ("0.142857", "\\frac{1}{7}", True),  # exactly 1e-6 again (10^6 = 1 mod 7)
        ("0.14286", "\\frac{1}{7}", False),
        ("0.1428571428571", "\\frac{1}{7}", True),
        ("0.1428581428571", "\\frac{1}{7}", False),  # long but a wrong digit: outside the last digit
        ("0.6666666", "\\frac{2}{3}", True),  # truncated
        ("0.6666676", "\\frac{2}{3}", False),  # 1.4e-6
        ("1.0000001", "1", False),  # terminating golds are compared exactly
        ("6.9999999", "7", False),
        ("1.414214", "\\sqrt{2}", True),
        ("1.41421", "\\sqrt{2}", False),  # 2.5e-6
        ("3.14159", "\\pi", True),  # 8.4e-7
        ("3.1416", "\\pi", False),  # 2.3e-6
        ("-0.333333", "\\frac{1}{3}", False),
        ("3.333333e-1", "\\frac{1}{3}", True),
    ],
)
def test_approximation_boundary(pred, gold, expected):
    assert verify(f"\\boxed{{{pred}}}", gold).correct is expected


def test_approximation_policy_units():
    assert decimal_places("-0.125") == (Fraction(-1, 8), 3)
    assert decimal_places("1.5e-3") == (Fraction(3, 2000), 4)
    assert decimal_places("12") is None and decimal_places("\\frac{1}{2}") is None
    assert Fraction(1, 10**6) == REL_TOL
    assert approximates("0.333333", Fraction(1, 3)) is True
    assert approximates("0.333334", Fraction(1, 3)) is False  # not 1/3 rounded: relative error 2e-6
    assert approximates("1", Fraction(1, 3)) is None  # not a decimal: the policy does not apply
    assert approximates("0.5", complex(0.5, 1.0)) is False


def test_approximations_do_not_join_vote_classes():
    # equivalent() is symmetric; an approximation is not an exact value, so the classes stay apart
    assert not equivalent("0.333333", "\\frac{1}{3}")
    assert equivalent("0.5", "\\frac{1}{2}")


# ----------------------------------------------------------------------------- equivalence classes
@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("\\boxed{40\\textnormal{ km}}", "40 km", True),
        ("\\boxed{45\\textnormal{ km}}", "40 km", False),
        ("It costs \\$12.", "12", True),
        ("It costs 12$.", "12", True),
        ("\\boxed{15 %}", "15\\%", True),
        ("\\boxed{7\\frac{1}{4}}", "7.25", True),
        ("\\boxed{7 1/4}", "7.25", True),
        ("\\boxed{3,5}", "3.5", True),
        ("\\boxed{3,500}", "3.5", False),
        ("\\boxed{3,5}", "3,5", True),
        ("\\boxed{x \\approx 9}", "9", True),
        ("\\boxed{x = 2\\sqrt{2} \\approx 2.83}", "2\\sqrt{2}", True),
        ("\\boxed{x = 3\\sqrt{2} \\approx 4.24}", "2\\sqrt{2}", False),
        ("x >= 2", "x \\geq 2", True),
        ("x ≥ 2", "x \\geq 2", True),
        ("\\boxed{−3}", "-3", True),
        ("2*pi", "2\\pi", True),
        ("sqrt(2)/2", "\\frac{\\sqrt{2}}{2}", True),
        ("\\boxed{\\frac{1}{2006!}}", "\\frac{1}{2004!}", False),  # exact factorials, not floats
        ("\\boxed{19, 46, 82}", "19, 46, \\text{ and } 82", True),
        ("\\boxed{E: a polygenic score}", "E", True),
    ],
)
def test_equivalence_classes(response, gold, expected):
    assert verify(response, gold).correct is expected


# ----------------------------------------------------------------------------- in-process shapes (no sympy)
@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("x \\geq 2", "[2,\\infty)", (True, "exact")),
        ("x > 2", "[2,\\infty)", (False, "mismatch")),
        ("-3 \\leq t < 4", "[-3,4)", (True, "exact")),
        ("x < 1", "(1,\\infty)", (False, "mismatch")),
        ("[\\sqrt{2}, +\\infty)", "m \\geq \\sqrt{2}", (True, "exact")),
        ("6x - 7y + 4 = 0", "5x - 7y + 4 = 0", (False, "mismatch")),
        ("2 \\pm \\sqrt{19}", "1 \\pm \\sqrt{19}", (False, "mismatch")),
        ("1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}", (True, "exact")),
        ("2021", "\\pm 2021", (False, "mismatch")),
        ("\\{-1, 1\\}", "\\pm 1", (True, "exact")),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            (False, "mismatch"),
        ),
        (
            "\\begin{pmatrix} 1 & 2 & 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            (False, "mismatch"),
        ),
        (
            "\\begin{pmatrix} 0.5 & 2 \\end{pmatrix}",
            "\\begin{pmatrix} \\frac12 & 2 \\end{pmatrix}",
            (True, "rational"),
        ),
    ],
)
def test_decided_in_process(pred, gold, expected):
    from ccpo_env.verify.compare import decide
    from ccpo_env.verify.normalize import normalize_math

    assert decide(normalize_math(pred), normalize_math(gold)) == expected
