"""Tests for ccpo_env.verify: labelled cases, guards, adversarial inputs, timeouts, pool lifecycle, APIs."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ccpo_env.verify import (
    Verdict,
    cache_info,
    clear_cache,
    equivalent,
    extract_answer,
    make_trl_reward,
    verify,
    verify_batch,
)
from ccpo_env.verify import pool as vpool

sys.path.insert(0, str(Path(__file__).parent))
from verify_cases import CASES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WALL = 10.0  # generous per-item bound for adversarial inputs (they take milliseconds)
NEEDS_SYMPY = ("\\sqrt{2}", "\\frac{2}{\\sqrt{2}}")  # a pair only math-verify can decide


def _ids(case):
    return f"{case[0]}:{case[2][:20]}"


# ----------------------------------------------------------------------------- labelled cases
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_labelled_case(case):
    _, response, gold, expected, answer_type = case
    v = verify(response, gold, answer_type=answer_type)
    assert isinstance(v, Verdict)
    assert v.correct is expected, v


def test_labelled_set_is_large_and_balanced():
    assert len(CASES) >= 60
    assert sum(c[3] for c in CASES) >= 20 and sum(not c[3] for c in CASES) >= 20


def test_verify_batch_agrees_with_verify():
    responses, golds, types = [c[1] for c in CASES], [c[2] for c in CASES], [c[4] for c in CASES]
    single = [verify(r, g, answer_type=t) for r, g, t in zip(responses, golds, types)]
    clear_cache()
    batch = verify_batch(responses, golds, answer_types=types, workers=2)
    assert batch == single


# ----------------------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed{\\boxed{7}}", "7"),  # the innermost (last-starting) box
        ("$\\boxed 5$", "5"),
        ("\\fbox{x+1}", "x+1"),
        ("good \\boxed{3} then cut off \\boxed{4", "3"),
        ("empty \\boxed{} but The answer is 9.", "9"),
        ("The final answer is $\\frac{1}{2}$. Done", "\\frac{1}{2}"),
        ("**Final Answer**\n\n$12$", "12"),
        ("Answer: -3.5", "-3.5"),
        ("blah\n\\[ x = 2 \\]", "x = 2"),
        ("blah\n42", "42"),
        ("I guess 7 or 8", None),
        ("", None),
        ("   \n ", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_non_string():
    assert extract_answer(None) is None  # type: ignore[arg-type]
    assert extract_answer(12) is None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- known math-verify false positives
@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
        ("2^{100}+1", "2^{100}"),
        ("2^{100}", "2^{100}+1"),
        ("x=1", "x=2"),
        ("y=3", "y=4"),
        ("52_9", "52_8"),
        ("\\frac{1}{2^{99}}, 1", "\\frac{1}{2^{98}}, 1"),
        (
            "\\hbar\\omega(v+1/2)-\\frac{E^2e^2}{2m\\omega^3}",
            "\\hbar\\omega(v+1/2)-\\frac{E^2e^2}{2m\\omega^2}",
        ),
    ],
)
def test_math_verify_false_positives_fixed(pred, gold):
    assert not verify(f"\\boxed{{{pred}}}", gold).correct


# ----------------------------------------------------------------------------- adversarial inputs
_rng = random.Random(0)
_UNICODE = "".join(chr(_rng.randint(32, 0x2FFFF)) for _ in range(3000))
ADVERSARIAL = [
    ("\\boxed{10^{10^{10^{10}}}}", "1"),
    ("\\boxed{1}", "10^{10^{10^{10}}}"),
    ("\\boxed{x^{10^{10^{10}}}}", "x"),
    ("\\boxed{100000000!}", "1"),
    ("a" * 200_000 + " \\boxed{5}", "5"),
    ("b" * 200_000, "5"),
    ("\\boxed{" * 40_000, "5"),
    ("}" * 100_000, "5"),
    ("$" * 100_000, "1"),
    ("\\(" * 50_000, "1"),
    ("The answer is " + "\\(" * 20_000, "1"),
    ("\\boxed{\\frac{1}{0}}", "1"),
    ("\\boxed{\\frac{1}{0}}", "\\frac{1}{0}"),
    ("\\boxed{" + "(" * 3000 + "}", "1"),
    ("\\boxed{" + "{" * 2000 + "1" + "}" * 2000 + "}", "1"),
    ("\\boxed{\\left(}", "1"),
    ("\\boxed{\\frac{}{}}", "1"),
    ("\\boxed{\\}", "1"),
    ("", ""),
    ("", "5"),
    ("\\boxed{5}", ""),
    (_UNICODE, "5"),
    (_UNICODE + "\\boxed{" + _UNICODE[:40] + "}", _UNICODE[:40]),
    ("\x00\x01\\boxed{\ud800}", "1"),
    ("answer: " + "1" * 20_000, "1"),
    (None, "1"),
    (12, "12"),
]


@pytest.mark.parametrize("pair", ADVERSARIAL, ids=[f"adv{i}" for i in range(len(ADVERSARIAL))])
def test_adversarial_inputs_return_quickly(pair):
    response, gold = pair
    t0 = time.monotonic()
    v = verify(response, gold)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < WALL
    assert isinstance(v, Verdict) and isinstance(v.correct, bool) and isinstance(v.reason, str)
    assert v.pred is None or isinstance(v.pred, str)


def test_adversarial_results():
    assert verify("\\boxed{10^{10^{10^{10}}}}", "1").reason == "too_large"
    assert verify("\\boxed{\\frac{1}{0}}", "1") == Verdict(False, "\\frac{1}{0}", "mismatch")
    assert verify("", "5") == Verdict(False, None, "no_answer")
    assert verify("\\boxed{5}", "").reason == "no_gold"
    assert verify("a" * 200_000 + " \\boxed{5}", "5").correct
    assert verify("answer: " + "1" * 20_000, "1").reason == "answer_too_long"
    assert verify(12, "12").correct  # type: ignore[arg-type]


def test_equivalent_and_batch_never_raise_on_junk():
    junk = ["", "\\boxed{", "}}}", "\\frac{1}{0}", "10^{10^{10^{10}}}", _UNICODE[:100], "$$", "\\left("]
    for a in junk:
        for b in junk[:4]:
            assert isinstance(equivalent(a, b), bool)
    assert len(verify_batch(junk, junk[::-1])) == len(junk)


# ----------------------------------------------------------------------------- timeouts, threads, pool lifecycle
def test_timeout_off_main_thread(monkeypatch):
    monkeypatch.setattr(vpool, "_SLOW_FOR_TEST", 60.0)  # every worker comparison now "hangs"
    clear_cache()
    out: dict = {}

    def target():
        t0 = time.monotonic()
        out["verdict"] = verify(f"\\boxed{{{NEEDS_SYMPY[0]}}}", NEEDS_SYMPY[1], timeout=1.0)
        out["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(WALL + 30)  # includes a possible worker start-up
    assert not thread.is_alive()
    assert out["verdict"] == Verdict(False, NEEDS_SYMPY[0], "timeout")
    assert out["elapsed"] < WALL + 20
    monkeypatch.setattr(vpool, "_SLOW_FOR_TEST", 0.0)
    # the killed worker was replaced: the pool still answers, and timeouts are not cached
    assert verify(f"\\boxed{{{NEEDS_SYMPY[0]}}}", NEEDS_SYMPY[1]).correct


def test_batch_timeout_is_per_item(monkeypatch):
    monkeypatch.setattr(vpool, "_SLOW_FOR_TEST", 60.0)
    clear_cache()
    t0 = time.monotonic()
    # numerically equal, not identical: only math-verify (in a worker) can decide these two
    out = verify_batch(
        ["\\boxed{\\sqrt{8}}", "\\boxed{\\sqrt{12}}", "\\boxed{2}"],
        ["2\\sqrt{2}", "2\\sqrt{3}", "2"],
        timeout=1.0,
    )
    assert [v.reason for v in out] == ["timeout", "timeout", "exact"]
    assert time.monotonic() - t0 < WALL + 20


def test_concurrent_threads_share_the_pool():
    clear_cache()
    pairs = [(f"\\boxed{{\\sqrt{{{k * k * 2}}}}}", f"{k}\\sqrt{{2}}") for k in range(2, 8)]
    results: list = [None] * len(pairs)

    def work(i):
        results[i] = verify(*pairs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(v is not None and v.correct for v in results), results


@pytest.mark.multiproc
@pytest.mark.parametrize("method", ["spawn", "forkserver", "subprocess"])
def test_pool_start_methods(method):
    pool = vpool.WorkerPool(method=method)
    try:
        result: dict = {}
        thread = threading.Thread(
            target=lambda: result.update(r=pool.run([(*NEEDS_SYMPY, False)], timeout=60))
        )
        thread.start()
        thread.join(120)
        assert result["r"] == [(True, "math_verify")]
    finally:
        pool.close()
    assert pool.size == 0


def test_bad_start_method_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="subprocess"):
        vpool.WorkerPool(method="threads")
    monkeypatch.setenv("CCPO_VERIFY_START_METHOD", "nope")
    with pytest.raises(ValueError, match="spawn"):
        vpool.default_start_method()


_CHILD = """
import os, sys, time
from ccpo_env.verify import verify
from ccpo_env.verify import pool
assert verify("\\\\boxed{\\\\sqrt{2}}", "\\\\frac{2}{\\\\sqrt{2}}").correct
print(" ".join(str(w.proc.pid) for w in pool.get_pool()._idle), flush=True)
if sys.argv[1] == "hang":
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.multiproc
def test_workers_are_cleaned_up_at_exit():
    out = subprocess.run([sys.executable, "-c", _CHILD, "exit"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert pids and _wait_gone(pids, 10)


@pytest.mark.multiproc
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_workers_exit_when_owner_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, "hang"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        pids = [int(p) for p in line.split()]
        assert pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(pids, 10)
    finally:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- cache, equivalent, TRL, arguments
def test_cache_is_hit_on_repeats():
    clear_cache()
    responses = [c[1] for c in CASES if c[4] == "math"]
    golds = [c[2] for c in CASES if c[4] == "math"]
    first = verify_batch(responses, golds)
    hits = cache_info()["hits"]
    second = verify_batch(responses, golds)
    assert first == second
    # every repeated pair is a cache hit, except the few "no_answer" items that never reach the cache
    assert cache_info()["hits"] - hits >= len(set(zip(responses, golds))) - 5
    assert 0 < cache_info()["size"] <= cache_info()["maxsize"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("\\frac12", "0.5", True),
        ("x=5", "5", True),
        ("(B)", "B", True),
        ("1,000", "1000", True),
        ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}", True),
        ("1/2^{99}", "1/2^{98}", False),
        ("3", "4", False),
        ("(1,2)", "(2,1)", False),
        ("\\{1,2\\}", "\\{2,1\\}", True),
        ("50\\%", "50", True),
        ("", "", False),
    ],
)
def test_equivalent_symmetric(a, b, expected):
    assert equivalent(a, b) is expected
    assert equivalent(b, a) is expected


def test_equivalent_labels():
    assert equivalent("True", "\\text{true}", answer_type="label")
    assert not equivalent("True", "False", answer_type="label")
    assert equivalent("Unknown", "Uncertain", answer_type="label")


def test_trl_reward_str_and_chat():
    reward = make_trl_reward("answer", correct=1.0, incorrect=-1.0, no_answer=-2.0)
    assert reward.__name__ == "ccpo_verifier_answer"
    assert reward(
        prompts=["p"] * 3, completions=["\\boxed{2}", "\\boxed{3}", "no idea"], answer=["2", "2", "2"]
    ) == [
        1.0,
        -1.0,
        -2.0,
    ]
    chat = [
        [{"role": "assistant", "content": "so \\boxed{\\frac{1}{2}}"}],
        [
            {"role": "user", "content": "\\boxed{1}"},
            {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{7}"}]},
        ],
    ]
    assert reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2, completions=chat, answer=["0.5", "1"]
    ) == [1.0, -1.0]
    with pytest.raises(KeyError, match="answer"):
        reward(prompts=["p"], completions=["\\boxed{2}"], solution=["2"])


def test_trl_reward_labels_and_type_column():
    reward = make_trl_reward("gold", answer_type_column="kind")
    out = reward(None, ["\\boxed{True}", "\\boxed{4}"], gold=["True", "4"], kind=["label", "math"])
    assert out == [1.0, 1.0]


def test_bad_answer_type_raises_with_valid_names():
    for call in (
        lambda: verify("\\boxed{1}", "1", answer_type="numeric"),
        lambda: verify_batch(["\\boxed{1}"], ["1"], answer_types=["bogus"]),
        lambda: equivalent("1", "1", answer_type="bogus"),
        lambda: make_trl_reward(answer_type="bogus"),
    ):
        with pytest.raises(ValueError, match="math.*label"):
            call()


def test_bad_batch_arguments():
    with pytest.raises(ValueError):
        verify_batch(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        verify_batch(["a"], ["a"], timeout=0)
    with pytest.raises(ValueError):
        verify_batch(["a"], ["a"], workers=0)
    with pytest.raises(ValueError):
        verify_batch("abc", "abc")  # type: ignore[arg-type]
    assert verify_batch([], []) == []


def test_no_heavy_imports_in_parent():
    code = (
        "import sys\nfrom ccpo_env.verify import verify\n"
        "assert verify('\\\\boxed{\\\\frac{2}{4}}', '0.5').correct\n"
        "bad = [m for m in ('torch', 'sympy', 'math_verify') if m in sys.modules]\nassert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- real data
DATA_DIR = os.environ.get("CCPO_DATA_DIR")


def _load(name: str) -> list[dict]:
    path = Path(DATA_DIR or "") / f"{name}.jsonl"
    if not DATA_DIR or not path.exists():
        pytest.skip(f"CCPO_DATA_DIR not set or {name}.jsonl missing")
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_math500_golds_verify_against_themselves():
    rows = _load("math500")
    verdicts = verify_batch(["\\boxed{" + r["answer"] + "}" for r in rows], [r["answer"] for r in rows])
    assert sum(v.correct for v in verdicts) >= 499
    dollar = verify_batch(
        ["The answer is $\\boxed{" + r["answer"] + "}$." for r in rows],
        ["$" + r["answer"] + "$" for r in rows],
    )
    assert sum(v.correct for v in dollar) >= 499


def test_gsm8k_and_folio_sample():
    rows = _load("gsm8k")[::7]
    assert all(
        v.correct
        for v in verify_batch(["\\boxed{" + r["answer"] + "}" for r in rows], [r["answer"] for r in rows])
    )
    rows = _load("folio")
    verdicts = verify_batch(
        [f"The answer is {r['answer']}." for r in rows],
        [r["answer"] for r in rows],
        answer_types=["label"] * len(rows),
    )
    assert all(v.correct for v in verdicts)


# ----------------------------------------------------------------------------- benchmark smoke test
def test_bench_verifier_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_verifier", ROOT / "benchmarks" / "bench_verifier.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    argv = ["--quick", "--out", str(out)]
    if not DATA_DIR:
        argv += ["--no-data"]
    result = bench.main(argv)
    saved = json.loads(out.read_text())
    assert saved["ours"]["agreement"] >= saved["math_verify"]["agreement"]
    assert result["ours"]["n_pairs"] == saved["ours"]["n_pairs"] > 0
