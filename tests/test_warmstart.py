"""The ``arith-warmstart`` builder: cache, fingerprint, SFT example format, loss, the loader hook, the CLI.

Everything here uses a quick recipe on the ``tiny`` preset built once per session into a temporary cache,
so the file runs in well under a minute. The real default recipe (minutes on 2 cores) is measured by
``python -m ccpo_agents.models.warmstart``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ccpo_agents.models import warmstart as ws
from ccpo_agents.models.registry import ModelNotFoundError
from ccpo_agents.models.sft import collate
from ccpo_agents.models.warmstart import WarmStartRecipe, build_warmstart, make_sft_examples
from ccpo_agents.policies.hf import HFPolicy
from ccpo_agents.policies.roles import DEFAULT_SYSTEM_PROMPTS
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv
from ccpo_env.data.arith import ArithDataset, arith_oracle_thought

QUICK = WarmStartRecipe(model="tiny", num_steps=40, batch_size=16, lr=3e-3, warmup_steps=5, eval_problems=4)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cache root, built folder) of the quick recipe, laid out as ``$CCPO_CACHE_DIR/warmstart/<fp>``."""
    root = tmp_path_factory.mktemp("ccpo-cache")
    return root, build_warmstart(QUICK, cache_dir=root / "warmstart", progress=False)


def test_build_saves_a_loadable_model_with_recipe_and_metrics(built: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, path = built
    assert path == root / "warmstart" / QUICK.fingerprint()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp folder left behind
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.eos_token == "<|im_end|>" and tok.chat_template
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert json.loads((path / "recipe.json").read_text()) == QUICK.to_dict()
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["fingerprint"] == QUICK.fingerprint()
    for temp in ("T=1.0", "greedy"):
        assert set(metrics["accuracy"][temp]) >= {"joint", "oracle", "solo", "thinker", "by_level"}
        assert all(0.0 <= metrics["accuracy"][temp][k] <= 1.0 for k in ("joint", "oracle", "solo", "thinker"))


def test_sft_loss_decreases(built: tuple[Path, Path]) -> None:
    curve = json.loads((built[1] / "metrics.json").read_text())["loss_curve"]
    assert [c["step"] for c in curve][-1] == QUICK.num_steps
    assert curve[-1]["loss"] < 0.7 * curve[0]["loss"]


def test_second_call_is_a_cache_hit(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, path = built
    mtime = (path / "model.safetensors").stat().st_mtime_ns

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cache hit must not train again")

    monkeypatch.setattr(ws, "train_sft", no_training)
    assert build_warmstart(QUICK, cache_dir=root / "warmstart", progress=False) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_a_changed_field_gives_a_new_fingerprint_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    changed = QUICK.replace(lr=1e-3, eval_problems=0)
    assert changed.fingerprint() != QUICK.fingerprint()
    assert QUICK.replace().fingerprint() == QUICK.fingerprint()
    # Building is stubbed (the real build is covered above): only the folder logic is under test here.
    monkeypatch.setattr(ws, "_build_model", lambda recipe: (tiny_model, tiny_tokenizer))
    monkeypatch.setattr(ws, "train_sft", lambda *a, **k: [])
    a = build_warmstart(changed, cache_dir=tmp_path, progress=False)
    b = build_warmstart(changed.replace(levels=[2]), cache_dir=tmp_path, progress=False)
    assert a != b and a.name == changed.fingerprint() and b.parent == a.parent == tmp_path
    assert (a / "config.json").is_file() and (b / "metrics.json").is_file()


def test_fingerprint_is_stable_across_processes() -> None:
    code = (
        "from ccpo_agents.models.warmstart import WarmStartRecipe as R;"
        "print(R().fingerprint(), R(levels=[2, 1], system_prompts={'solver': 'x'}).fingerprint())"
    )
    env = [{**os.environ, "PYTHONHASHSEED": seed} for seed in ("1", "2")]  # str hashing differs between them
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=e)
             for e in env]  # fmt: skip
    outs = {p.communicate(timeout=120)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1
    other = WarmStartRecipe(levels=(2, 1), system_prompts={"solver": "x"})
    here = [WarmStartRecipe().fingerprint(), other.fingerprint()]
    assert outs.pop().split() == here


@pytest.mark.parametrize("system_prompts", [{}, DEFAULT_SYSTEM_PROMPTS])
def test_sft_examples_are_exactly_what_the_policy_sees(
    system_prompts: dict[str, str], tiny_model: Any, tiny_tokenizer: Any
) -> None:
    mix = {**QUICK.example_mix, "solver_easy": 0.1}
    recipe = QUICK.replace(system_prompts=dict(system_prompts), levels=[1, 2], thinker_noise=0.0, example_mix=mix)
    examples = make_sft_examples(recipe, tiny_tokenizer, 4)
    main_kinds = ["thinker", "solver_joint", "solver_solo"]
    assert [e.kind for e in examples[:12]] == main_kinds * 4
    assert [e.kind for e in examples[12:]] == ["solver_easy"] * 8  # 4 one-op items, solo + distractor
    data = ArithDataset("train", [1, 2], seed=recipe.data_seed)
    env = ThinkSolveEnv(dataset=data, templates=COMPACT_TEMPLATES)
    eos = tiny_tokenizer.eos_token_id
    for n, ex in enumerate(examples[:12]):
        problem = data[n // 3]
        role = "thinker" if ex.kind == "thinker" else "solver"
        policy = HFPolicy(tiny_model, tiny_tokenizer, role=role, system_prompt=system_prompts.get(role))
        # The observation the env gives at RL time, built here independently of the builder.
        remove = ["thinker"] if ex.kind == "solver_solo" else []
        env.reset(seed=0, options={"problem": n // 3, "remove": remove})
        if ex.kind == "solver_joint":
            env.step(arith_oracle_thought(problem))
        assert ex.observation == str(env.observe(role))
        assert ex.prompt_ids == policy.encode(ex.observation)
        assert ex.completion_ids[-1] == eos
        assert tiny_tokenizer.decode(ex.completion_ids[:-1]) == ex.target
        want = arith_oracle_thought(problem) if ex.kind == "thinker" else f"\\boxed{{{problem.answer}}}"
        assert ex.target == want and not ex.noisy
    assert examples[0].observation == f"Plan: {data[0].problem}"
    assert examples[2].observation == f"Solve: {data[0].problem}"
    # The free-riding probe's one-op items: the Solver alone, then after a thought it must ignore.
    easy = ArithDataset("train", [1, 2], seed=recipe.data_seed, variant="freeride", easy_fraction=1.0)
    solver = HFPolicy(tiny_model, tiny_tokenizer, role="solver", system_prompt=system_prompts.get("solver"))
    for k, (alone, distracted) in enumerate(zip(examples[12::2], examples[13::2])):
        problem = easy[k]
        assert problem.extras["kind"] == "solo"
        assert alone.observation == f"Solve: {problem.problem}"
        assert distracted.observation.startswith(f"Solve: {problem.problem}") and "*" in distracted.observation
        for ex in (alone, distracted):
            assert ex.target == f"\\boxed{{{problem.answer}}}" and ex.prompt_ids == solver.encode(ex.observation)
    assert {e.kind for e in make_sft_examples(QUICK, tiny_tokenizer, 4)} == set(main_kinds)  # default: no easy


def test_batches_follow_the_mix_and_are_seeded(tiny_tokenizer: Any) -> None:
    recipe = QUICK.replace(num_steps=50, example_mix={"thinker": 1.0, "solver_joint": 3.0}, thinker_noise=0.5)
    pool = make_sft_examples(recipe, tiny_tokenizer, 30)
    batches = ws.sample_batches(recipe, pool)
    assert len(batches) == 50 and all(len(b) == recipe.batch_size for b in batches)
    drawn = [e for b in batches for e in b]
    share = sum(e.kind == "solver_joint" for e in drawn) / len(drawn)
    noisy = sum(e.noisy for e in drawn) / sum(e.kind == "thinker" for e in drawn)
    assert not any(e.kind == "solver_solo" for e in drawn)
    assert 0.68 < share < 0.82 and 0.35 < noisy < 0.65
    again = ws.sample_batches(recipe, pool)
    def texts(bs: list[list[Any]]) -> list[list[str]]:
        return [[e.observation + e.target for e in b] for b in bs]

    assert texts(again) == texts(batches)


def test_loss_is_masked_to_the_completion(tiny_tokenizer: Any) -> None:
    examples = make_sft_examples(QUICK.replace(levels=[1, 2]), tiny_tokenizer, 4)
    pad = tiny_tokenizer.pad_token_id
    batch = collate(examples, pad)
    for r, ex in enumerate(examples):
        n_p, n_c = len(ex.prompt_ids), len(ex.completion_ids)
        assert batch["input_ids"][r, : n_p + n_c].tolist() == ex.prompt_ids + ex.completion_ids
        assert batch["labels"][r, n_p : n_p + n_c].tolist() == ex.completion_ids
        assert (batch["labels"][r, :n_p] == -100).all() and (batch["labels"][r, n_p + n_c :] == -100).all()
        assert batch["attention_mask"][r].sum() == n_p + n_c


def test_thinker_noise_corrupts_one_intermediate(tiny_tokenizer: Any) -> None:
    recipe = QUICK.replace(thinker_noise=0.3, levels=[2])
    pool = make_sft_examples(recipe, tiny_tokenizer, 20)
    assert len(pool) == 20 * 4
    for clean, noisy in zip(pool[0::4], pool[3::4]):
        assert clean.kind == noisy.kind == "thinker" and noisy.noisy and not clean.noisy
        assert noisy.prompt_ids == clean.prompt_ids and len(noisy.target) == len(clean.target)
        assert sum(a != b for a, b in zip(noisy.target, clean.target)) == 1


def test_arith_warmstart_name_resolves(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    from ccpo_agents.policies.loading import load_model_and_tokenizer

    root, path = built
    monkeypatch.setattr(ws, "default_recipe", lambda *name: QUICK)
    monkeypatch.setenv("CCPO_CACHE_DIR", str(root))
    model, tok = load_model_and_tokenizer("arith-warmstart", device="cpu")
    saved = AutoModelForCausalLM.from_pretrained(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), saved.state_dict().values()))
    policy = HFPolicy.from_pretrained("arith-warmstart", device="cpu", role="solver")
    assert policy.tokenizer.eos_token == tok.eos_token
    with pytest.raises(ModelNotFoundError, match="Did you mean 'arith-warmstart'"):
        load_model_and_tokenizer("arith-warmstart-nope")


def test_cli_prints_the_table(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(ws, "default_recipe", lambda *name: QUICK)
    threads = torch.get_num_threads()
    try:
        assert ws.main(["--cache-dir", str(built[1].parent), "--threads", str(threads)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert str(built[1]) in out and "(b) Solver + oracle thought" in out and "greedy" in out


@pytest.mark.parametrize(
    "bad",
    [{"model": "huge"}, {"model_dims": {"width": 8}}, {"templates": "nope"}, {"example_mix": {"critic": 1.0}},
     {"example_mix": {"thinker": 0.0}}, {"thinker_noise": 2.0}, {"num_steps": 0}],
)
def test_bad_recipes_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WarmStartRecipe(**bad)


def test_named_recipes() -> None:
    assert ws.default_recipe() == WarmStartRecipe()
    probe = ws.default_recipe("arith-warmstart-freeride")
    assert probe.example_mix["solver_easy"] > 0 and "solver_easy" not in WarmStartRecipe().example_mix
    assert probe.fingerprint() != WarmStartRecipe().fingerprint()
    with pytest.raises(ValueError, match="valid names"):
        ws.default_recipe("arith-warmstart-nope")


def test_init_from_goes_on_training_the_built_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccpo_agents.models.tiny import load_tiny

    parent = QUICK.replace(num_steps=10, eval_problems=0)
    mix = {"solver_joint": 1.0, "solver_easy": 1.0}
    child = parent.replace(init_from="arith-warmstart", num_steps=5, lr=1e-3, example_mix=mix)
    monkeypatch.setattr(ws, "default_recipe", lambda name="arith-warmstart": parent)
    path = build_warmstart(child, cache_dir=tmp_path, progress=False)
    parent_path = tmp_path / parent.fingerprint()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, parent_path.name])
    (pm, _), (cm, _) = load_tiny(parent_path), load_tiny(path)
    pairs = list(zip(pm.state_dict().values(), cm.state_dict().values()))
    assert all(a.shape == b.shape for a, b in pairs) and not all(torch.equal(a, b) for a, b in pairs)
    assert json.loads((path / "recipe.json").read_text())["init_from"] == "arith-warmstart"
    # A changed parent is a different child.
    before = child.fingerprint()
    monkeypatch.setattr(ws, "default_recipe", lambda name="arith-warmstart": parent.replace(seed=1))
    assert child.fingerprint() != before
    with pytest.raises(ValueError, match="init_from"):
        WarmStartRecipe(init_from="gpt-2")


def test_shipped_weights_are_what_the_name_resolves_to() -> None:
    """``arith-warmstart`` resolves to the shipped folder (no build on first use) while the recipe is unchanged."""
    shipped = ws.shipped_folder("arith-warmstart")
    metrics = json.loads((shipped / "metrics.json").read_text())
    assert metrics["fingerprint"] == ws.default_recipe().fingerprint()
    assert json.loads((shipped / "recipe.json").read_text()) == ws.default_recipe().to_dict()
    assert ws.resolve_warmstart("arith-warmstart") == shipped
    assert (shipped / "model.safetensors").stat().st_size < 3_000_000


@pytest.mark.slow
def test_recipe_reproduces_the_shipped_weights(tmp_path: Path) -> None:
    """Rebuild the default recipe from scratch (~3-5 min on 2 cores) and compare with the shipped weights.

    Bit-for-bit reproduction holds for the versions the weights were built with (pinned in constraints/cpu.txt),
    the same torch thread count and the same CPU kernels (``torch.backends.cpu.get_cpu_capability()``). With
    other versions the test is skipped. On another CPU kind (AVX2 here against the build machine's, which the
    shipped metrics did not record) floating-point sums round differently and two runs drift apart after a few
    dozen steps, so the test asserts what still must hold: the same examples, initialisation and batch order
    (identical losses over the first 30 steps, where rounding has not yet compounded) and the same training
    outcome (mean of the last 10 logged losses within 15%; measured on AVX2: 0.0829 against 0.0880).
    """
    import transformers
    from safetensors.torch import load_file

    shipped = ws.shipped_folder("arith-warmstart")
    metrics = json.loads((shipped / "metrics.json").read_text())
    if (torch.__version__, transformers.__version__) != (metrics["torch"], metrics["transformers"]):
        pytest.skip(f"weights were built with torch {metrics['torch']} / transformers {metrics['transformers']}; "
                    f"this is {torch.__version__} / {transformers.__version__} (see constraints/cpu.txt)")
    threads = torch.get_num_threads()
    torch.set_num_threads(metrics["torch_threads"])
    try:
        built = build_warmstart(ws.default_recipe().replace(eval_problems=0), cache_dir=tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    a, b = load_file(built / "model.safetensors"), load_file(shipped / "model.safetensors")
    assert a.keys() == b.keys()
    curve = json.loads((built / "metrics.json").read_text())["loss_curve"]
    if metrics.get("cpu_capability") == torch.backends.cpu.get_cpu_capability():
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst <= 1e-6, f"rebuilt weights differ from the shipped ones by up to {worst}"
        assert curve == metrics["loss_curve"]
        return
    shipped_curve = metrics["loss_curve"]
    assert [c["step"] for c in curve] == [c["step"] for c in shipped_curve]
    early = [(c["loss"], s["loss"]) for c, s in zip(curve, shipped_curve) if c["step"] <= 30]
    assert len(early) == 3 and all(x == pytest.approx(y, abs=1e-4) for x, y in early), early
    final = sum(c["loss"] for c in curve[-10:]) / 10
    final_shipped = sum(c["loss"] for c in shipped_curve[-10:]) / 10
    assert final == pytest.approx(final_shipped, rel=0.15), (final, final_shipped)


def test_a_child_of_the_shipped_parent_starts_from_the_shipped_weights(tmp_path: Path) -> None:
    """Building ``arith-warmstart-freeride`` does not rebuild its parent when the package ships it (~10 min)."""
    from ccpo_agents.models.tiny import load_tiny

    child = ws.default_recipe("arith-warmstart-freeride").replace(num_steps=1, lr=0.0, eval_problems=0)
    path = build_warmstart(child, cache_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no parent folder was built
    (pm, _), (cm, _) = load_tiny(ws.shipped_folder("arith-warmstart")), load_tiny(path)
    assert all(torch.equal(a, b) for a, b in zip(pm.state_dict().values(), cm.state_dict().values()))  # lr 0
