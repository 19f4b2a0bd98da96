"""Dataset registry, resolution order (data_dir > CCPO_DATA_DIR > Hub), normalisation and errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccpo_env.data import (
    Dataset,
    DatasetArgumentError,
    DatasetNotFoundError,
    Problem,
    UnknownDatasetError,
    check_dataset_args,
    describe_datasets,
    list_datasets,
    load_dataset,
    register_dataset,
)
from ccpo_env.data import hub as hub_mod
from ccpo_env.data import registry as registry_mod

BENCHMARKS = ["math500", "aime24", "aime25", "amc23", "gaokao2023en", "minerva_math", "gsm8k", "folio"]
EXPECTED_COUNTS = {
    "math500": 500,
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "gaokao2023en": 383,  # 385 upstream, 2 with an empty gold answer
    "minerva_math": 272,
    "gsm8k": 1319,
    "folio": 204,
}

REAL_DIR = os.environ.get("CCPO_DATA_DIR", "")
needs_real = pytest.mark.skipif(
    not (REAL_DIR and (Path(REAL_DIR) / "math500.jsonl").is_file()),
    reason="CCPO_DATA_DIR with the benchmark files is not set",
)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rec(i: int, answer: str = "1", **extra) -> dict:
    return {"id": f"x-{i}", "problem": f"What is {i}?", "answer": answer, "source": "math500", **extra}


@pytest.fixture
def no_env(monkeypatch):
    """No CCPO_DATA_DIR, and a Hub step that fails at once (no network is ever touched)."""
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)

    def no_datasets():
        raise ImportError("No module named 'datasets' (simulated)")

    monkeypatch.setattr(hub_mod, "_import_datasets", no_datasets)


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry_mod, "_REGISTRY", registry_mod._REGISTRY.copy())


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
def test_list_datasets_has_all_names_sorted():
    names = list_datasets()
    assert names == sorted(names)
    assert set(BENCHMARKS) | {"arith", "math_train"} <= set(names)
    desc = describe_datasets()
    assert list(desc) == names and all(isinstance(v, str) and v for v in desc.values())


@pytest.mark.parametrize("bad", ["math5000", "MATH500", "gsm8"])
def test_unknown_name_lists_valid_names_and_close_matches(bad):
    with pytest.raises(UnknownDatasetError) as ei:
        load_dataset(bad)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, ValueError)
    msg = str(ei.value)
    assert "Valid names:" in msg and all(n in msg for n in list_datasets())
    assert "Did you mean" in msg
    assert "\\n" not in msg  # not KeyError's repr()


def test_register_custom_loader(scratch_registry):
    probs = [Problem(id=f"c{i}", problem=f"p{i}", answer=str(i), source="custom") for i in range(4)]

    def loader(split="test", scale=1):
        return probs[: 4 // scale]

    register_dataset("custom", loader, description="mine")
    assert "custom" in list_datasets() and describe_datasets()["custom"] == "mine"
    ds = load_dataset("custom", limit=3)
    assert isinstance(ds, Dataset) and ds.name == "custom" and [p.id for p in ds] == ["c0", "c1", "c2"]
    assert len(load_dataset("custom", scale=2)) == 2
    with pytest.raises(TypeError, match="does not take option"):
        load_dataset("custom", bogus=1)
    with pytest.raises(TypeError, match="data_dir"):
        load_dataset("custom", data_dir="/nowhere")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("custom", loader)
    register_dataset("custom", lambda split="test": probs[:1], overwrite=True)
    assert len(load_dataset("custom")) == 1
    register_dataset("nosplit", lambda: probs, description="takes nothing")
    assert len(load_dataset("nosplit", limit=2)) == 2
    with pytest.raises(TypeError, match="split"):
        load_dataset("nosplit", split="train")


def test_datasets_pickle(tmp_path, monkeypatch):
    import pickle

    from ccpo_env.data import ArithDataset

    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    write_jsonl(tmp_path / "aime24.jsonl", [rec(i, str(i)) for i in range(3)])
    ds = load_dataset("aime24", data_dir=tmp_path)
    back = pickle.loads(pickle.dumps(ds))
    assert list(back) == list(ds) and back.name == "aime24" and back.origin == ds.origin
    ar = ArithDataset("test", level=[1, 3], seed=2, size=50, variant="freeride")
    ar[3]  # fill the cache first
    back = pickle.loads(pickle.dumps(ar))
    assert list(back) == list(ar) and repr(back) == repr(ar)


# --------------------------------------------------------------------------------------------------
# Resolution order
# --------------------------------------------------------------------------------------------------
def test_data_dir_beats_env(tmp_path, monkeypatch):
    a = write_jsonl(tmp_path / "a" / "math500.jsonl", [rec(0, "from-arg")])
    b = write_jsonl(tmp_path / "b" / "math500.jsonl", [rec(0, "from-env")])
    monkeypatch.setenv("CCPO_DATA_DIR", str(b.parent))
    assert load_dataset("math500", data_dir=a.parent)[0].answer == "from-arg"
    assert load_dataset("math500", data_dir=str(a.parent)).origin == str(a)
    env_ds = load_dataset("math500")
    assert env_ds[0].answer == "from-env" and env_ds.origin == str(b)


def test_data_dir_without_file_goes_on_to_env_with_a_warning(tmp_path, monkeypatch, caplog):
    (tmp_path / "empty").mkdir()
    b = write_jsonl(tmp_path / "b" / "amc23.jsonl", [rec(0, "27")])
    monkeypatch.setenv("CCPO_DATA_DIR", str(b.parent))
    with caplog.at_level(logging.WARNING, logger="ccpo_env.data"):
        ds = load_dataset("amc23", data_dir=tmp_path / "empty")
    assert ds[0].answer == "27" and ds.origin == str(b)
    assert any("amc23.jsonl not found" in r.getMessage() for r in caplog.records)


def test_missing_everything_names_all_three_options(tmp_path, no_env):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("math500", data_dir=tmp_path)
    err = ei.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert "data_dir" in msg and str(tmp_path / "math500.jsonl") in msg  # what was tried
    assert "CCPO_DATA_DIR" in msg and "not set" in msg
    assert "pip install datasets" in msg and "not installed" in msg
    assert "HuggingFaceH4/MATH-500" in msg
    assert err.name == "math500" and len(err.tried) == 3


def test_unreachable_hub_fails_fast(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    monkeypatch.setattr(hub_mod, "_offline_mode", lambda mod: False)
    monkeypatch.setattr(hub_mod, "_probe_hub", lambda timeout: "cannot reach huggingface.co:443 (simulated)")
    t0 = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("gsm8k")
    assert time.monotonic() - t0 < 5
    msg = str(ei.value)
    assert "cannot reach" in msg and "HF_HUB_OFFLINE=1" in msg and "openai/gsm8k" in msg


def test_offline_hub_with_empty_cache_raises_in_a_fresh_process(tmp_path):
    """The real Hub code path, offline: `datasets` must fail fast and we must say what to do."""
    pytest.importorskip("datasets")
    env = {k: v for k, v in os.environ.items() if k != "CCPO_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    code = (
        "from ccpo_env.data import load_dataset, DatasetNotFoundError\n"
        "try:\n    load_dataset('aime25')\nexcept DatasetNotFoundError as e:\n    print('RAISED'); print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "RAISED" in out.stdout, out.stdout + out.stderr
    assert "opencompass/AIME2025" in out.stdout and "CCPO_DATA_DIR" in out.stdout


# --------------------------------------------------------------------------------------------------
# Normalisation of local files
# --------------------------------------------------------------------------------------------------
def test_empty_answers_are_skipped_and_counted(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    recs = [rec(0, "5"), rec(1, ""), rec(2, "  "), rec(3, "7", subject="Algebra")]
    write_jsonl(tmp_path / "minerva_math.jsonl", recs)
    with caplog.at_level(logging.INFO, logger="ccpo_env.data"):
        ds = load_dataset("minerva_math", data_dir=tmp_path)
    assert [p.id for p in ds] == ["x-0", "x-3"]
    assert ds.skipped == 2 and ds.skipped_ids == ("x-1", "x-2")
    assert any("skipped 2" in r.getMessage() for r in caplog.records)
    assert ds[1].extras == {"subject": "Algebra"} and ds[1].source == "minerva_math"
    with pytest.raises(KeyError, match="empty"):
        ds.index_of("x-1")


def test_local_file_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    (tmp_path / "aime24.jsonl").write_text(json.dumps(rec(0)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"aime24.jsonl:2"):
        load_dataset("aime24", data_dir=tmp_path)
    write_jsonl(tmp_path / "aime25.jsonl", [rec(0), rec(0)])
    with pytest.raises(ValueError, match="duplicate id"):
        load_dataset("aime25", data_dir=tmp_path)
    write_jsonl(tmp_path / "amc23.jsonl", [{"id": "a", "answer": "1"}])
    with pytest.raises(ValueError, match="'problem'"):
        load_dataset("amc23", data_dir=tmp_path)


def test_folio_is_a_label_dataset(tmp_path, monkeypatch):
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    write_jsonl(tmp_path / "folio.jsonl", [rec(0, "True"), rec(1, "Uncertain")])
    ds = load_dataset("folio", data_dir=tmp_path)
    assert {p.answer_type for p in ds} == {"label"}
    math = load_dataset("gsm8k", data_dir=write_jsonl(tmp_path / "g" / "gsm8k.jsonl", [rec(0)]).parent)
    assert math[0].answer_type == "math"


def test_split_and_limit(tmp_path, monkeypatch):
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    write_jsonl(tmp_path / "gsm8k.jsonl", [rec(i, str(i)) for i in range(10)])
    full = load_dataset("gsm8k", data_dir=tmp_path)
    assert [p.id for p in load_dataset("gsm8k", data_dir=tmp_path, limit=4)] == [p.id for p in full[:4]]
    assert len(load_dataset("gsm8k", data_dir=tmp_path, limit=0)) == 0
    assert len(load_dataset("gsm8k", data_dir=tmp_path, limit=99)) == 10
    with pytest.raises(ValueError, match="limit"):
        load_dataset("gsm8k", data_dir=tmp_path, limit=-1)
    with pytest.raises(DatasetArgumentError, match=r"no split 'train'; its splits: 'test'\. For training data"):
        load_dataset("gsm8k", split="train", data_dir=tmp_path)
    with pytest.raises(DatasetArgumentError, match=r"does not take option\(s\) \['level'\]; its options: \['cache_dir'"):
        check_dataset_args("math500", options={"level": [1]})
    with pytest.raises(UnknownDatasetError, match="Did you mean 'math500'"):
        check_dataset_args("MATH-500")
    check_dataset_args("arith", split="train", options={"level": [1]})  # valid: no error, nothing loaded


def test_dataset_sequence_api(tmp_path, monkeypatch):
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    write_jsonl(tmp_path / "math500.jsonl", [rec(i, str(i)) for i in range(5)])
    ds = load_dataset("math500", data_dir=tmp_path)
    assert ds.name == "math500" and ds.split == "test" and ds.skipped == 0
    assert len(ds) == 5 and ds[-1].id == "x-4" and [p.id for p in ds][:2] == ["x-0", "x-1"]
    assert ds.index_of("x-3") == 3 and ds[3] in ds and ds.index(ds[3]) == 3
    sub = ds[1:3]
    assert isinstance(sub, Dataset) and [p.id for p in sub] == ["x-1", "x-2"] and sub.name == "math500"
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(KeyError, match="did you mean 'x-3'"):
        ds.index_of("x-33")
    with pytest.raises(TypeError):
        ds[0] = ds[1]  # type: ignore[index]
    with pytest.raises(AttributeError):
        ds[0].answer = "changed"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Hub normalisers, run on local files through `datasets`
# --------------------------------------------------------------------------------------------------
def test_hub_normaliser_on_a_local_json_file(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    rows = [
        {"question": "Janet has 1,200 eggs...", "answer": "She sells 1,200 - 3 = 1197\n#### 1,197"},
        {"question": "Two?", "answer": "1+1\n#### 2"},
    ]
    path = write_jsonl(tmp_path / "hub" / "gsm8k_test.jsonl", rows)
    ds = load_dataset("gsm8k", hub_path=path, cache_dir=str(tmp_path / "cache"))
    assert ds.origin == str(path) and [p.id for p in ds] == ["gsm8k-0", "gsm8k-1"]
    assert ds[0].answer == "1197" and ds[0].extras["solution"] == "She sells 1,200 - 3 = 1197"
    assert ds[0].problem == rows[0]["question"] and ds[0].source == "gsm8k"

    math_rows = [
        {
            "problem": "p1",
            "solution": "s",
            "answer": "\\frac12",
            "subject": "Algebra",
            "level": 2,
            "unique_id": "test/algebra/1.json",
        },
        {
            "problem": "p2",
            "solution": "s",
            "answer": "",
            "subject": "Algebra",
            "level": 3,
            "unique_id": "test/algebra/2.json",
        },
    ]
    path = write_jsonl(tmp_path / "hub" / "math500.json", math_rows)
    ds = load_dataset("math500", hub_path=path, cache_dir=str(tmp_path / "cache"))
    assert [p.id for p in ds] == ["test/algebra/1.json"] and ds.skipped == 1
    assert ds[0].answer == "\\frac12" and ds[0].extras["level"] == 2


def test_hub_folio_normaliser_matches_the_local_layout(tmp_path, monkeypatch, caplog):
    pytest.importorskip("datasets")
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    rows = [
        {"premises": "All A are B.\nx is A.", "conclusion": "x is B.", "label": "True", "story_id": 1},
        {"premises": "Some A are B.", "conclusion": "x is B.", "label": "Unknown", "story_id": 2},
    ]
    path = write_jsonl(tmp_path / "folio_val.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="ccpo_env.data"):
        ds = load_dataset("folio", hub_path=path, cache_dir=str(tmp_path / "cache"))
    assert [p.answer for p in ds] == ["True", "Uncertain"] and ds[0].answer_type == "label"
    assert ds[0].problem == (
        "Premises:\nAll A are B.\nx is A.\n\nConclusion: x is B.\n\n"
        "Is the conclusion True, False, or Uncertain given the premises?"
    )
    assert any("revised FOLIO" in r.getMessage() for r in caplog.records)


def test_hub_path_that_does_not_exist(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.delenv("CCPO_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("gsm8k", hub_path=tmp_path / "nope.jsonl")


def test_hub_normalisers_directly():
    """Row -> record rules that need no `datasets` (column aliases, answer clean-up, ids)."""
    specs = hub_mod.HUB_SPECS
    assert set(specs) == set(BENCHMARKS) | {"math_train"}
    m = specs["math_train"].normalise(
        {"problem": "p", "solution": "so $\\boxed{\\frac{1}{2}}$.", "level": "Level 3", "type": "Algebra"}, 7, "algebra"
    )
    assert (m["id"], m["answer"], m["level"]) == ("math-train/algebra/7", "\\frac{1}{2}", "Level 3")
    r = specs["amc23"].normalise({"question": "q", "answer": 27.0, "url": "u"}, 5, None)
    assert (r["id"], r["answer"], r["url"]) == ("amc23-5", "27", "u")
    r = specs["aime25"].normalise({"question": "q", "answer": "70"}, 0, "II")
    assert r["id"] == "aime2025-II-1"
    assert specs["aime25"].normalise({"question": "q", "answer": "1"}, 16, None)["id"] == "aime2025-II-2"
    r = specs["aime24"].normalise({"id": 60, "problem": "q", "answer": "204", "year": "2024"}, 0, None)
    assert (r["id"], r["answer"], r["year"]) == ("aime2024-60", "204", "2024")
    r = specs["gaokao2023en"].normalise({"question": "q", "answer": "$\\{1,2\\}$ "}, 3, None)
    assert (r["id"], r["answer"]) == ("gaokao2023en-3", "\\{1,2\\}")
    assert specs["gaokao2023en"].normalise({"question": "q", "answer": "$$"}, 4, None)["answer"] == ""
    r = specs["minerva_math"].normalise({"problem": "q", "solution": "so \\boxed{\\frac{1}{2}} m"}, 7, None)
    assert (r["id"], r["answer"]) == ("minerva-7", "\\frac{1}{2}")
    with pytest.raises(ValueError, match="columns"):
        specs["gsm8k"].normalise({"prompt": "q", "answer": "#### 1"}, 0, None)
    with pytest.raises(ValueError, match="####"):
        specs["gsm8k"].normalise({"question": "q", "answer": "12"}, 0, None)


# --------------------------------------------------------------------------------------------------
# The real benchmark files (CCPO_DATA_DIR)
# --------------------------------------------------------------------------------------------------
@needs_real
@pytest.mark.parametrize("name", BENCHMARKS)
def test_real_counts(name):
    ds = load_dataset(name)
    assert len(ds) == EXPECTED_COUNTS[name]
    assert ds.origin == str(Path(REAL_DIR) / f"{name}.jsonl")
    assert all(p.answer.strip() and p.source == name for p in ds)
    assert len({p.id for p in ds}) == len(ds)
    assert {p.answer_type for p in ds} == {"label" if name == "folio" else "math"}


@needs_real
def test_real_gaokao_skips_its_two_empty_answers():
    ds = load_dataset("gaokao2023en")
    assert ds.skipped == 2 and set(ds.skipped_ids) == {"gaokao2023en-167", "gaokao2023en-192"}


@needs_real
def test_real_folio_labels():
    assert {p.answer for p in load_dataset("folio")} == {"True", "False", "Uncertain"}


def test_math_train_is_a_train_split(tmp_path):
    f = tmp_path / "math_train.jsonl"
    f.write_text('{"id": "m0", "problem": "1+1?", "answer": "2", "source": "math_train"}\n')
    assert load_dataset("math_train", split="train", data_dir=tmp_path)[0].answer == "2"
    with pytest.raises(ValueError, match="has no split 'test'; its splits: 'train'$"):
        load_dataset("math_train", split="test", data_dir=tmp_path)
