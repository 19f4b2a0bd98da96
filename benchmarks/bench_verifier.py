"""Verifier throughput and accuracy: ``ccpo_env.verify.verify_batch`` vs plain math-verify, in one run.

Pairs: every MATH500 gold as a correct boxed response and as a wrong one (its first digit changed, or the
next item's gold when it has no digit), plus the hand-labelled set in ``tests/verify_cases.py``.
Measured side by side on the same pairs:

- verifications/s of ``verify_batch`` with a cold cache (workers already started; start-up reported
  separately) and with a warm cache;
- verifications/s of plain ``math_verify.parse(gold)`` + ``parse(response)`` + ``verify`` one by one
  (its defaults, main thread);
- agreement with the labels for both (labelled set; and on the MATH500 pairs, where "perturbed = wrong").

    python benchmarks/bench_verifier.py            # full run (~1 min on 2 cores)
    python benchmarks/bench_verifier.py --quick    # a few seconds

Reads ``$CCPO_DATA_DIR/math500.jsonl`` (default ``../shared/data`` next to the repo); writes
``benchmarks/results/bench_verifier.json``.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

from ccpo_env.verify import clear_cache, shutdown, verify_batch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUICK_GOLDS = 40

Pair = tuple[str, str, bool, str, str]  # (response, gold, label, answer_type, group)


def load_labelled() -> list[Pair]:
    spec = importlib.util.spec_from_file_location("verify_cases", ROOT / "tests" / "verify_cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(r, g, label, t, "labelled") for _, r, g, label, t in module.CASES]


def load_math500(data_dir: Path) -> list[str]:
    path = data_dir / "math500.jsonl"
    if not path.exists():
        raise SystemExit(
            f"bench_verifier: {path} not found. Set CCPO_DATA_DIR to the folder holding math500.jsonl "
            "(see ../shared/data/SOURCES.md), or pass --no-data to use only the labelled set."
        )
    with open(path) as f:
        return [json.loads(line)["answer"] for line in f]


def perturb(gold: str, fallback: str) -> str:
    """A wrong answer: the first digit of the gold changed (units and exponents come later), else another gold."""
    m = re.search(r"\d", gold)
    if m is None:
        return fallback
    i = m.start()
    return gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :]


def build_pairs(golds: list[str]) -> list[Pair]:
    pairs: list[Pair] = []
    for i, gold in enumerate(golds):
        wrong = perturb(gold, golds[(i + 1) % len(golds)])
        pairs.append(
            (f"Step by step ... so the answer is $\\boxed{{{gold}}}$.", gold, True, "math", "math500")
        )
        pairs.append(
            (f"Step by step ... so the answer is $\\boxed{{{wrong}}}$.", gold, False, "math", "math500")
        )
    return pairs


def run_ours(pairs: list[Pair], workers: int, timeout: float) -> dict:
    responses, golds, types = [p[0] for p in pairs], [p[1] for p in pairs], [p[3] for p in pairs]
    shutdown()
    clear_cache()
    start = time.perf_counter()
    verify_batch(["\\boxed{\\sqrt{2}}"] * workers, ["\\frac{2}{\\sqrt{2}}"] * workers, workers=workers)
    startup = time.perf_counter() - start  # workers start lazily; this is the one-off price
    clear_cache()
    start = time.perf_counter()
    verdicts = verify_batch(responses, golds, answer_types=types, timeout=timeout, workers=workers)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    again = verify_batch(responses, golds, answer_types=types, timeout=timeout, workers=workers)
    warm = time.perf_counter() - start
    assert again == verdicts
    return {
        "n_pairs": len(pairs),
        "seconds_cold": cold,
        "per_s_cold": len(pairs) / cold,
        "seconds_warm": warm,
        "per_s_warm": len(pairs) / warm,
        "worker_startup_seconds": startup,
        "workers": workers,
        "timeout": timeout,
        "correct": [v.correct for v in verdicts],
        "reasons": dict(collections.Counter(v.reason for v in verdicts)),
    }


def run_plain(pairs: list[Pair]) -> dict:
    from math_verify import parse
    from math_verify import verify as mv_verify

    from ccpo_env.verify.compare import WARMUP_PAIRS

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for pred, gold in WARMUP_PAIRS:  # the same one-off warm-up our workers do before they count as ready
        mv_verify(parse(f"${gold}$"), parse(f"${pred}$"))
    correct = []
    start = time.perf_counter()
    for response, gold, _, _, _ in pairs:
        correct.append(bool(mv_verify(parse(f"${gold}$"), parse(response))))
    seconds = time.perf_counter() - start
    return {"n_pairs": len(pairs), "seconds": seconds, "per_s": len(pairs) / seconds, "correct": correct}


def agreement(pairs: list[Pair], correct: list[bool], group: str) -> float | None:
    hits = [c == p[2] for p, c in zip(pairs, correct) if p[4] == group]
    return sum(hits) / len(hits) if hits else None


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, write JSON; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_GOLDS} MATH500 golds")
    parser.add_argument(
        "--data-dir", default=os.environ.get("CCPO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--no-data", action="store_true", help="labelled set only (no MATH500 file needed)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--out", default=str(RESULTS / "bench_verifier.json"))
    args = parser.parse_args(argv)

    labelled = load_labelled()
    golds = [] if args.no_data else load_math500(Path(args.data_dir))
    if args.quick:
        golds = golds[:QUICK_GOLDS]
    pairs = build_pairs(golds) + labelled

    ours = run_ours(pairs, args.workers, args.timeout)
    plain = run_plain(pairs)
    for res in (ours, plain):
        res["agreement"] = agreement(pairs, res["correct"], "labelled")
        res["agreement_math500"] = agreement(pairs, res["correct"], "math500")
    disagreements = [
        {"response": p[0][-80:], "gold": p[1], "label": p[2], "ours": o, "math_verify": m}
        for p, o, m in zip(pairs, ours.pop("correct"), plain.pop("correct"))
        if o != p[2] or m != p[2]
    ]
    result = {
        "benchmark": "bench_verifier",
        "quick": args.quick,
        "n_math500_golds": len(golds),
        "n_labelled": len(labelled),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "ours": ours,
        "math_verify": plain,
        "speedup_cold": ours["per_s_cold"] / plain["per_s"],
        "speedup_warm": ours["per_s_warm"] / plain["per_s"],
        "disagreements_with_labels": disagreements,
    }

    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:5.1f}%"

    print(
        f"\nverifier benchmark: {len(pairs)} pairs ({len(golds)} MATH500 golds x2 + {len(labelled)} labelled)"
    )
    print(f"{'method':<34}{'verif/s':>10}{'ratio':>8}{'agree(labelled)':>17}{'agree(MATH500)':>16}")
    rows = [
        ("plain math-verify, one by one", plain["per_s"], 1.0, plain),
        (f"verify_batch cold ({args.workers} workers)", ours["per_s_cold"], result["speedup_cold"], ours),
        ("verify_batch warm cache", ours["per_s_warm"], result["speedup_warm"], ours),
    ]
    for name, rate, ratio, res in rows:
        print(
            f"{name:<34}{rate:>10.0f}{ratio:>7.1f}x{pct(res['agreement']):>17}{pct(res['agreement_math500']):>16}"
        )
    print(f"(worker start-up, paid once: {ours['worker_startup_seconds']:.2f} s; reasons: {ours['reasons']})")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
