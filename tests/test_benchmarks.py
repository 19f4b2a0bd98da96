"""Smoke tests of the benchmark scripts: each ``--quick`` run finishes and writes JSON with the expected keys.

Numbers are not checked (performance is measured by the scripts themselves, not in timed tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# torch is already loaded here, so the scripts cannot switch OpenMP to passive waiting; with 2 spinning threads
# on a busy 2-core box a quick run takes ~10x longer. One thread keeps the smoke tests fast.
ONE_THREAD = ("--threads", "1")


@pytest.fixture
def load_bench(monkeypatch):
    """Import ``benchmarks/<name>.py`` as a module, undoing its process-wide side effects afterwards."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    threads = torch.get_num_threads()

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    torch.set_num_threads(threads)


def _run(module: ModuleType, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    result = module.main(["--quick", "--out", str(out), *extra])
    on_disk = json.loads(out.read_text())
    assert on_disk["benchmark"] == result["benchmark"]
    return on_disk


def test_bench_env_quick(load_bench, tmp_path):
    res = _run(load_bench("bench_env"), tmp_path)
    assert res["benchmark"] == "bench_env" and res["rows"]
    for row in res["rows"]:
        assert {"env", "verifier", "batched_eps_per_s", "loop_eps_per_s"} <= set(row)
        assert row["batched_eps_per_s"] > 0 and row["loop_eps_per_s"] > 0


def test_bench_verifier_quick(load_bench, tmp_path):
    module = load_bench("bench_verifier")
    data_dir = Path(os.environ.get("CCPO_DATA_DIR", str(BENCH.parents[1] / "shared" / "data")))
    extra = [] if (data_dir / "math500.jsonl").exists() else ["--no-data"]
    res = _run(module, tmp_path, "--data-dir", str(data_dir), *extra)
    assert res["benchmark"] == "bench_verifier"
    assert {"ours", "math_verify", "speedup_cold", "speedup_warm", "machine"} <= set(res)
    assert {"per_s_cold", "per_s_warm", "agreement"} <= set(res["ours"])
    assert res["ours"]["agreement"] is not None


def test_bench_rollout_quick(load_bench, tmp_path):
    res = _run(load_bench("bench_rollout"), tmp_path, *ONE_THREAD)
    assert res["benchmark"] == "bench_rollout" and res["quick"]
    assert {"raw/flat", "driver/flat", "one_at_a_time/flat", "raw/tree", "driver/tree", "driver_nodedup/tree"} <= set(
        res["results"]
    )
    for key in ("overhead_flat", "overhead_tree", "speedup_vs_one_at_a_time", "dedup_on_vs_off_tree"):
        assert res["ratios"][key] > 0
    assert set(res["goals"]) == {"overhead_flat_le_1.10", "overhead_tree_le_1.10", "speedup_ge_5x_at_8_episodes"}
    # The comparison is only fair if every side generated the same number of tokens.
    tokens = {k: v["tokens"] for k, v in res["results"].items()}
    assert tokens["raw/flat"] == tokens["driver/flat"] == tokens["one_at_a_time/flat"]
    assert tokens["raw/tree"] == tokens["driver/tree"] == tokens["driver_nodedup/tree"]


def test_bench_step_quick(load_bench, tmp_path):
    res = _run(load_bench("bench_step"), tmp_path, *ONE_THREAD)
    assert res["benchmark"] == "bench_step"
    rows = {r["label"]: r for r in res["rows"]}
    assert set(rows) == {"shared", "ccpo_event", "ccpo_paired", "ccpo_tree", "sepo", "ccpo_tree (dedup off)"}
    for r in rows.values():
        assert {"generations", "extra_generations", "step_s", "ratio_vs_shared", "rollout_s", "credit_s", "update_s"} <= set(r)
    assert rows["shared"]["extra_generations"] == {"solo": 0, "ratings": 0}
    assert rows["sepo"]["extra_generations"]["ratings"] > 0 and rows["ccpo_paired"]["extra_generations"]["solo"] > 0
    assert rows["ccpo_tree"]["generations"] == rows["ccpo_tree (dedup off)"]["generations"]


def test_bench_crn_quick(load_bench, tmp_path):
    res = _run(load_bench("bench_crn"), tmp_path, *ONE_THREAD, "--output-dir", str(tmp_path / "run"))
    assert res["benchmark"] == "bench_crn" and set(res["arms"]) == {"crn", "independent"}
    assert res["joint_identical_across_arms"]  # only the solo answers' noise differs between the arms
    lo, hi = res["var_delta_ratio_ci95"]
    assert lo <= res["var_delta_ratio"] <= hi and res["sampler"]["row_seeded_s_per_step"] > 0


def test_credit_ablations_paired_comparison(load_bench):
    ab = load_bench("credit_ablations")
    # hand-computed: diffs (arm − shared) +0.02, +0.03, +0.02, +0.03 → mean 0.025, sd 0.005774, se 0.002887
    runs = [{"arm": a, "seed": s, "final": {"joint_acc": v}}
            for s, (b, x) in enumerate([(0.50, 0.52), (0.60, 0.63), (0.55, 0.57), (0.40, 0.43)])
            for a, v in (("shared", b), ("ccpo_tree", x))]
    c = ab.compare(runs, "joint_acc", ["shared", "ccpo_tree"])["ccpo_tree"]
    half = 3.182 * 0.002887  # t_{0.975, 3} · se (one comparison: no Bonferroni factor)
    assert c["mean_diff"] == pytest.approx(0.025) and c["seeds"] == 4
    assert c["t_ci"] == pytest.approx([0.025 - half, 0.025 + half], abs=2e-3 * half)
    assert c["verdict"] == "better"  # [0.0158, 0.0342] excludes 0
    # with a second comparison the level is Bonferroni-adjusted (97.5%), so the interval widens
    runs += [{"arm": "shared_aa", "seed": r["seed"], "final": r["final"]} for r in runs if r["arm"] == "shared"]
    wide = ab.compare(runs, "joint_acc", ["shared", "ccpo_tree", "shared_aa"])
    assert wide["ccpo_tree"]["level"] == pytest.approx(0.975)
    assert wide["ccpo_tree"]["t_ci"][0] < c["t_ci"][0] and wide["shared_aa"]["mean_diff"] == 0.0
    assert ab.t_quantile(0.975, 9) == pytest.approx(2.262, abs=1e-3)


def test_credit_ablations_token_efficiency_by_hand(load_bench):
    ab = load_bench("credit_ablations")
    # shared ends at 0.60 after 100 tokens; the arm's curve passes 0.55 at 50 and 0.65 at 70, so it reaches
    # 0.60 at 50 + (0.05 / 0.10) * 20 = 60 tokens: ratio 100 / 60
    curve = [{"tokens": t, "joint_acc": a} for t, a in [(0, 0.5), (50, 0.55), (70, 0.65), (100, 0.7)]]
    runs = [{"arm": "shared", "seed": s, "tokens": 100.0, "final": {"joint_acc": 0.6}} for s in (0, 1)]
    runs += [{"arm": "ccpo_tree", "seed": s, "tokens": 100.0, "final": {"joint_acc": 0.7}, "curve": curve}
             for s in (0, 1)]  # fmt: skip
    e = ab.token_efficiency(runs, "ccpo_tree")
    assert e["ratio"] == pytest.approx(100 / 60) and e["ci"] == pytest.approx([100 / 60, 100 / 60])
    assert e["target_joint_acc"] == pytest.approx(0.6)
    never = [{**r, "curve": [{**c, "joint_acc": 0.5} for c in curve]} if r["arm"] != "shared" else r for r in runs]
    assert ab.token_efficiency(never, "ccpo_tree")["ratio"] == 0.0  # never reaches the target: below 1


def test_credit_ablations_quick(load_bench, tmp_path):
    ab = load_bench("credit_ablations")
    res = _run(ab, tmp_path, *ONE_THREAD, "--arms", "shared", "shared_aa", "ccpo_tree", "ccpo_tree_solo", "c3",
               "--curve", "0", "0.5")  # fmt: skip
    assert set(res["summary"]["arms"]) == {"shared", "shared_aa", "ccpo_tree", "ccpo_tree_solo", "c3"}
    rows = res["summary"]["vs_shared"]["joint_acc"]
    assert set(rows) == {"shared_aa", "ccpo_tree", "ccpo_tree_solo", "c3"} and all(r["seeds"] == 2 for r in rows.values())
    assert set(res["summary"]["vs_ccpo_tree"]["joint_acc"]) == {"ccpo_tree_solo", "c3"}
    assert rows["ccpo_tree"]["level"] == pytest.approx(1 - 0.05 / 6)  # 4 vs shared + 2 vs ccpo_tree
    assert [len(r["curve"]) for r in res["runs"]] == [3] * 10  # 0, 0.5 and the final point
    assert set(res["summary"]["token_efficiency"]) == {"shared", "shared_aa", "ccpo_tree", "ccpo_tree_solo", "c3"}
    assert (tmp_path / "result.png").stat().st_size > 0
    # c3 samples no solo answers, so the same budget buys it more steps than ccpo_tree
    steps = {a: sum(r["steps"] for r in res["runs"] if r["arm"] == a) for a in ("c3", "ccpo_tree")}
    assert steps["c3"] > steps["ccpo_tree"]

    # --reuse: the stored runs come back after shared seed 0 is retrained and reproduces exactly
    again = _run(ab, tmp_path / "again", *ONE_THREAD, "--arms", "shared", "ccpo_tree", "--curve", "0", "0.5",
                 "--reuse", str(tmp_path / "result.json"))  # fmt: skip
    assert again["reused_runs"] == 4
    stored = {(r["arm"], r["seed"]): r for r in res["runs"]}
    assert all(ab.same_run(r, stored[r["arm"], r["seed"]]) for r in again["runs"])  # the check run: timings differ
    # a stored run that does not reproduce stops the study instead of mixing machines
    tampered = json.loads((tmp_path / "result.json").read_text())
    tampered["runs"][0]["final"]["joint_acc"] += 0.01
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    with pytest.raises(SystemExit, match="did not reproduce"):
        ab.main(["--quick", "--out", str(tmp_path / "t" / "r.json"), *ONE_THREAD, "--arms", "shared",
                 "--curve", "0", "0.5", "--reuse", str(tmp_path / "tampered.json")])
    # other settings: refused before anything trains
    with pytest.raises(SystemExit, match=r"other settings for \['budget'\]"):
        ab.reusable_runs(tmp_path / "result.json", {**res["args"], "budget": 1}, [("shared", 0)])


def test_credit_ablations_sepo_arms(load_bench, tmp_path):
    """``sepo_free`` leaves its ratings out of the budget, so it takes more steps than ``sepo``; both runs end
    with a check of the trained policies' ratings (the shipped warm start was never taught to rate)."""
    res = _run(load_bench("credit_ablations"), tmp_path, *ONE_THREAD, "--arms", "shared", "sepo", "sepo_free")
    runs = {(r["arm"], r["seed"]): r for r in res["runs"]}
    for seed in (0, 1):
        sepo, free = runs["sepo", seed], runs["sepo_free", seed]
        assert free["steps"] > sepo["steps"] and sepo["rating_tokens"] > 0 and free["rating_tokens"] > 0
        # the untaught model's ratings run to their 40-token limit, 2 per ~16-token episode: only a budget that
        # leaves them out can count fewer tokens than they took
        assert free["tokens"] < free["rating_tokens"]
        assert sepo["rating_tokens"] < sepo["tokens"] and 0 <= free["final"]["rating_parsed"] <= 1
        assert runs["shared", seed]["rating_tokens"] == 0 and "rating_parsed" not in runs["shared", seed]["final"]


def test_freeride_probe_reuses_stored_runs_and_runs_shared_without_std_scaling(load_bench, tmp_path):
    probe = load_bench("freeride_probe")
    first = _run(probe, tmp_path / "a", *ONE_THREAD, "--arms", "shared")
    again = _run(probe, tmp_path / "b", *ONE_THREAD, "--arms", "shared", "shared_dr_grpo",
                 "--reuse", str(tmp_path / "a" / "result.json"))  # fmt: skip
    assert again["reused_runs"] == 2 and set(again["summary"]["arms"]) == {"shared", "shared_dr_grpo"}
    stored = {r["seed"]: r for r in first["runs"]}
    assert all(r["final"] == stored[r["seed"]]["final"] for r in again["runs"] if r["arm"] == "shared")
    with pytest.raises(SystemExit, match="cost"):  # another thought cost is another protocol
        probe.main(["--quick", "--cost", "0.1", "--reuse", str(tmp_path / "a" / "result.json"),
                    "--out", str(tmp_path / "c.json")])


def test_freeride_probe_quick(load_bench, tmp_path):
    res = _run(load_bench("freeride_probe"), tmp_path, *ONE_THREAD)
    assert set(res["summary"]["arms"]) == {"solver_only", "shared", "ccpo_tree"}
    assert set(res["summary"]["vs_shared/contribution"]) == {"solver_only", "ccpo_tree"}
    assert all(r["final"]["thought_len"] > 0 and r["curve"] for r in res["runs"])
    assert all(len(r["points"]) == 2 and 0 <= r["final"]["oracle_acc"] <= 1 for r in res["runs"])
    assert res["args"]["cost"] == 0.05 and (tmp_path / "result.png").stat().st_size > 0


def test_voting_credit_quick(load_bench, tmp_path):
    res = _run(load_bench("voting_credit"), tmp_path, *ONE_THREAD, "--voters", "3")
    assert set(res["summary"]["arms"]) == {"shared", "voting", "voting_shapley"}
    assert set(res["summary"]["vs_shared/joint_acc"]) == {"voting", "voting_shapley"}
    c = res["summary"]["vs_voting/joint_acc"]["voting_shapley"]
    assert c["seeds"] == 2 and c["level"] == pytest.approx(1 - 0.05 / 3)
    assert all(r["steps"] > 0 and 0 <= r["final"]["joint_acc"] <= 1 for r in res["runs"])


def test_credit_assignment_summary_is_mean_and_std_over_seeds(load_bench) -> None:
    ca = load_bench("credit_assignment")

    def run(seed: int, final: float, reached: dict | None) -> dict:
        point = {"step": 10, "tokens": 100.0, "wall": 1.0, "joint_acc": final, "solo_acc": 0.1,
                 "contribution": final - 0.1, "thought_beats_solo": 0.5}
        start = {**point, "step": 0, "joint_acc": 0.5}
        mid = {**point, "step": 5, "joint_acc": 0.55 + 0.1 * seed}
        return {"study": "main", "method": "m", "seed": seed, "final": point, "steps": 10, "start": start,
                "curve": [start, mid, point], "adv_var": {"thinker": 0.25 * (seed + 1)}, "to_target": reached,
                "credit_metrics": {"credit/delta_pos_frac": 0.5 + 0.25 * seed}}

    summary = ca.summarise([run(0, 0.6, {"step": 4, "tokens": 40.0, "wall": 2.0}), run(1, 0.8, None)], 7)
    row = summary["main"]["m"]
    assert row["compare_step"] == 5 and row["joint_acc_at_step"] == pytest.approx(0.6)
    assert row["credit/delta_pos_frac"] == pytest.approx(0.625)
    assert row["joint_acc"] == pytest.approx(0.7) and row["joint_acc_std"] == pytest.approx(0.1)
    assert row["contribution"] == pytest.approx(0.6) and row["thinker_adv_var"] == pytest.approx(0.375)
    assert row["reached_target"] == 1 and row["steps_to_target"] == 4 and row["wall_to_target"] == 2.0


@pytest.mark.slow
def test_credit_assignment_quick_runs_every_study(load_bench, tmp_path: Path) -> None:
    ca = load_bench("credit_assignment")
    out = tmp_path / "ca.json"
    result = ca.main(["--quick", "--model", "tiny", "--freeride-model", "tiny", *ONE_THREAD, "--out", str(out)])
    saved = json.loads(out.read_text())
    assert set(saved["summary"]) == {"main", "freeride", "voting"}
    assert set(saved["summary"]["main"]) == {"shared", "ccpo_tree"}
    assert set(saved["summary"]["voting"]) == {"shared", "voting"}
    assert "joint/contribution" in saved["summary"]["freeride"]["shared"]  # the probe's items needing a thought
    assert all(r["curve"][-1]["tokens"] >= saved["args"]["budget"] for r in result["runs"])
    assert out.with_suffix(".png").stat().st_size > 0


def test_gpu_check_smoke(load_bench, tmp_path):
    """benchmarks/gpu_check.py --smoke: the GPU check's code path on CPU with a 2-layer shape."""
    out = tmp_path / "gpu_check.json"
    res = load_bench("gpu_check").main(["--smoke", "--no-vllm", "--steps", "2", "--out", str(out), *ONE_THREAD])
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == res["benchmark"] == "gpu_check" and saved["smoke"]
    hf = saved["generation"]["hf"]
    assert hf["tokens"] == 4 * 2 * 8 and hf["tokens_per_s"] > 0  # every completion is exactly max_new_tokens
    assert saved["generation"]["vllm"] == {"skipped": "--no-vllm"} and saved["generation"]["vllm_vs_hf"] is None
    assert [r["step"] for r in saved["ccpo_steps"]] == [1, 2]
    for r in saved["ccpo_steps"]:
        assert r["perf/trained_tokens_per_s"] > 0 and r["perf/peak_memory_mb"] > 0 and r["solver/optimizer_steps"] >= 1
