"""Verifier throughput and accuracy: ``ccpo_env.verify.verify_batch`` vs plain math-verify, in one run.

Pairs: every MATH500 gold as a correct boxed response and as a wrong one (its first digit changed, or the
next item's gold when it has no digit), the hand-labelled set in ``tests/verify_cases.py`` and the labelled
corpus ``tests/data/verify_corpus.jsonl`` (answers in the styles models write, with and without ``\boxed``,
grouped by answer form). Measured side by side on the same pairs:

- verifications/s of ``verify_batch`` with a cold cache (workers already started; start-up reported
  separately) and with a warm cache;
- verifications/s of plain ``math_verify.parse(gold)`` + ``parse(response)`` + ``verify`` one by one
  (its defaults, main thread);
- agreement with the labels for both (labelled set; the MATH500 pairs, where "perturbed = wrong"; and the
  corpus per answer form, where ``verify_batch`` is also shown in its ``"anchored"`` training mode).

    python benchmarks/bench_verifier.py            # full run (~30 s on 2 cores)
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

from ccpo_env.verify import DEFAULT_EXTRACTION, TRAINING_EXTRACTION, clear_cache, shutdown, verify_batch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUICK_GOLDS = 40
CORPUS = ROOT / "tests" / "data" / "verify_corpus.jsonl"

Pair = tuple[str, str, bool, str, str]  # (response, gold, label, answer_type, group)


def load_labelled() -> list[Pair]:
    spec = importlib.util.spec_from_file_location("verify_cases", ROOT / "tests" / "verify_cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(r, g, label, t, "labelled") for _, r, g, label, t in module.CASES]


def load_corpus() -> list[Pair]:
    """The labelled corpus; the group of each pair is ``corpus:<form>``."""
    with open(CORPUS) as f:
        rows = [json.loads(line) for line in f]
    return [(r["response"], r["gold"], r["label"], "math", "corpus:" + r["form"]) for r in rows]


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
    """Share of pairs in ``group`` (or, for ``"corpus:"``, every corpus group) judged as labelled."""
    hits = [
        c == p[2]
        for p, c in zip(pairs, correct)
        if p[4] == group or (group == "corpus:" and p[4].startswith(group))
    ]
    return sum(hits) / len(hits) if hits else None


def per_form(pairs: list[Pair], ours: list[bool], anchored: list[bool], plain: list[bool]) -> dict:
    """Agreement per corpus answer form for each verifier, with the count of pairs."""
    forms = list(dict.fromkeys(p[4] for p in pairs if p[4].startswith("corpus:")))  # in corpus order
    return {
        g.split(":", 1)[1]: {
            "n": sum(p[4] == g for p in pairs),
            "ours": agreement(pairs, ours, g),
            "anchored": agreement(pairs, anchored, g),
            "math_verify": agreement(pairs, plain, g),
        }
        for g in forms
    }


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
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed rounds (ours, then plain, alternating); the median is reported",
    )
    parser.add_argument("--out", default=str(RESULTS / "bench_verifier.json"))
    args = parser.parse_args(argv)

    labelled = load_labelled()
    corpus = load_corpus()
    golds = [] if args.no_data else load_math500(Path(args.data_dir))
    if args.quick:
        golds = golds[:QUICK_GOLDS]
    pairs = build_pairs(golds) + labelled + corpus

    if args.repeats < 1:
        raise SystemExit(f"bench_verifier: --repeats must be >= 1, got {args.repeats}")
    rounds = []  # (ours, plain) per round: the machine is shared, so the ratio is measured round by round
    for _ in range(args.repeats):
        rounds.append((run_ours(pairs, args.workers, args.timeout), run_plain(pairs)))
    ratios = sorted(o["per_s_cold"] / m["per_s"] for o, m in rounds)
    ours, plain = sorted(rounds, key=lambda r: r[0]["per_s_cold"] / r[1]["per_s"])[len(rounds) // 2]
    assert all(o["correct"] == ours["correct"] and m["correct"] == plain["correct"] for o, m in rounds)
    anchored = [
        v.correct
        for v in verify_batch(
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            answer_types=[p[3] for p in pairs],
            timeout=args.timeout,
            workers=args.workers,
            extraction=TRAINING_EXTRACTION,
        )
    ]
    for res in (ours, plain):
        res["agreement"] = agreement(pairs, res["correct"], "labelled")
        res["agreement_math500"] = agreement(pairs, res["correct"], "math500")
        res["agreement_corpus"] = agreement(pairs, res["correct"], "corpus:")
    ours["extraction"] = DEFAULT_EXTRACTION
    forms = per_form(pairs, ours["correct"], anchored, plain["correct"])
    disagreements = [
        {"group": p[4], "response": p[0][-80:], "gold": p[1], "label": p[2], "ours": o, "math_verify": m}
        for p, o, m in zip(pairs, ours.pop("correct"), plain.pop("correct"))
        if o != p[2] or m != p[2]
    ]
    speedup_cold = ours["per_s_cold"] / plain["per_s"]  # the median round
    result = {
        "benchmark": "bench_verifier",
        "quick": args.quick,
        "n_math500_golds": len(golds),
        "n_labelled": len(labelled),
        "n_corpus": len(corpus),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "ours": ours,
        "math_verify": plain,
        "anchored_agreement_corpus": agreement(pairs, anchored, "corpus:"),
        "forms": forms,
        "speedup_cold": speedup_cold,
        "speedup_warm": ours["per_s_warm"] / plain["per_s"],
        "speedup_cold_rounds": ratios,
        "goals": {
            "ge_math_verify_on_every_form": all(f["ours"] >= f["math_verify"] for f in forms.values()),
            "higher_overall_on_corpus": ours["agreement_corpus"] > plain["agreement_corpus"],
            "speedup_cold_ge_3x": speedup_cold >= 3.0,
        },
        "disagreements_with_labels": disagreements,
    }

    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:5.1f}%"

    print(
        f"\nverifier benchmark: {len(pairs)} pairs ({len(golds)} MATH500 golds x2 + {len(labelled)} labelled"
        f" + {len(corpus)} corpus)"
    )
    print(
        f"{'method':<34}{'verif/s':>10}{'ratio':>8}{'agree(labelled)':>17}{'agree(MATH500)':>16}"
        f"{'agree(corpus)':>15}"
    )
    rows = [
        ("plain math-verify, one by one", plain["per_s"], 1.0, plain),
        (f"verify_batch cold ({args.workers} workers)", ours["per_s_cold"], speedup_cold, ours),
        ("verify_batch warm cache", ours["per_s_warm"], result["speedup_warm"], ours),
    ]
    for name, rate, ratio, res in rows:
        print(
            f"{name:<34}{rate:>10.0f}{ratio:>7.1f}x{pct(res['agreement']):>17}{pct(res['agreement_math500']):>16}"
            f"{pct(res['agreement_corpus']):>15}"
        )
    print(f"(worker start-up, paid once: {ours['worker_startup_seconds']:.2f} s; reasons: {ours['reasons']})")
    print(f"\n{'corpus form':<14}{'n':>5}{'math-verify':>13}{'ours (lenient)':>16}{'ours (anchored)':>17}")
    for form, f in forms.items():
        print(f"{form:<14}{f['n']:>5}{pct(f['math_verify']):>13}{pct(f['ours']):>16}{pct(f['anchored']):>17}")
    print(
        f"{'all':<14}{len(corpus):>5}{pct(plain['agreement_corpus']):>13}{pct(ours['agreement_corpus']):>16}"
        f"{pct(result['anchored_agreement_corpus']):>17}"
    )
    print(f"cold speed-up per round: {', '.join(f'{r:.1f}x' for r in ratios)} (median shown above)")
    print(f"goals: {result['goals']}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
