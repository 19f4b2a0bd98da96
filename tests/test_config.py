"""Typed config: YAML + overrides, unknown keys and bad values give errors naming what is valid."""

from __future__ import annotations

import pytest

from ccpo_agents.config import (
    ConfigError,
    ExperimentConfig,
    default_config,
    load_config,
    parse_override,
    to_dict,
)


def test_default_is_the_cpu_arith_experiment():
    cfg = default_config()
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.env.dataset == "arith" and cfg.env.templates == "compact"
    assert cfg.policy.model == "arith-warmstart" and cfg.env.dataset_options == {"level": [1]}
    assert cfg.policy.system_prompts == {} and cfg.optim.lr == 3e-5
    assert cfg.credit.method == "ccpo_tree" and cfg.algo.estimator.name == "grpo" and cfg.algo.loss.name == "ppo"


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  steps: 5\n  schedule: alternate\ncredit:\n  method: ccpo_paired\n  options: {alpha: 2.0}\n"
                 "algo:\n  loss: {name: gspo}\npolicy:\n  generation: {max_new_tokens: 12}\n")
    cfg = load_config(f, ["train.steps=7", "algo.estimator.name=rloo", "env.dataset_options={level: 3}"])
    assert cfg.train.steps == 7 and cfg.train.schedule == "alternate"
    assert cfg.credit.method == "ccpo_paired" and cfg.credit.options == {"alpha": 2.0}
    assert cfg.algo.loss.name == "gspo" and cfg.algo.estimator.name == "rloo"
    assert cfg.policy.generation.max_new_tokens == 12
    assert cfg.env.dataset_options == {"level": 3}
    assert to_dict(cfg)["train"]["steps"] == 7


@pytest.mark.parametrize(
    "override, match",
    [
        ("train.stpes=3", r"unknown config key 'train.stpes' \(did you mean 'steps'\?\); valid keys in train are"),
        ("tran.steps=3", r"did you mean 'train'"),
        ("algo.loss.nme=x", r"valid keys in algo.loss are: .*name"),
        ("train.steps=lots", r"train.steps: expected an integer"),
        ("train.schedule=sometimes", r"joint.*alternate"),
        ("credit.method=cppo_tree", r"ccpo_tree"),
        ("credit.options={alpah: 1}", r"alpah"),
        ("algo.estimator.name=grpoo", r"grpo"),
        ("algo.loss.name=ppo2", r"ppo"),
        ("env.topology=chain", r"think_solve"),
        ("env.extraction=loose", r"env.extraction=.loose. is not valid; choose one of \[.boxed., .anchored., .lenient.\]"),
        ("policy.parameterisation=moe", r"shared"),
        ("rollout.num_thoughts=0", r"num_thoughts must be >= 1"),
        ("rollout.common_random_numbers=sometimes", r"rollout.common_random_numbers=.sometimes. is not valid; choose true, false or auto"),
    ],
)
def test_bad_keys_and_values_are_clear_errors(override, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        load_config(overrides=[override])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key.subkey=value"):
        parse_override("train.steps")
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/config.yaml")


def test_example_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "examples" / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files, "examples/configs should hold example configs"
    for f in files:
        load_config(f)


# ---------------------------------------------------------------------- first contact
def test_changing_the_dataset_is_all_it_takes():
    """The embedded default's arith options belong to arith: another dataset starts from its own defaults,
    trains on its only split when it has no training split, and is also what is evaluated."""
    cfg = load_config(overrides=["env.dataset=math500"])
    assert cfg.env.dataset_options == {} and cfg.eval.datasets == []
    from ccpo_agents.envs import eval_split, train_split

    assert train_split(cfg.env) == "test" and eval_split(cfg.eval, "math500") == "test"
    assert train_split(load_config().env) == "train" and eval_split(load_config().eval, "arith") == "test"
    # options given with the new dataset are kept; arith options without a dataset change stay too
    assert load_config(overrides=["env.dataset=math500", "env.dataset_options={hub_path: x}"]).env.dataset_options == {
        "hub_path": "x"}
    assert load_config(overrides=["env.dataset_options={level: [2]}"]).env.dataset_options == {"level": [2]}


@pytest.mark.parametrize("overrides, match", [
    (["env.dataset=math5000"], r"env.dataset: unknown dataset 'math5000'. Did you mean 'math500'\? Valid names: "),
    (["env.dataset=math500", "env.dataset_options={level: 2}"],
     r"dataset 'math500' does not take option\(s\) \['level'\]; its options: \['cache_dir', 'hub_path'\]"),
    (["env.dataset=math500", "env.split=train"], r"dataset 'math500' has no split 'train'; its splits: 'test'"),
    (["eval.datasets=[gsm8k]", "eval.split=train"], r"eval.datasets \('gsm8k'\): dataset 'gsm8k' has no split"),
    (["policy.model=/no/such/folder"], r"policy.model: model folder '/no/such/folder' does not exist"),
    (["policy.model=tiny-smal"], r"unknown model 'tiny-smal'. Did you mean 'tiny-small'\?"),
    (["algo.estimator.name=grpoo"], r"algo.estimator: unknown advantage estimator 'grpoo'.*Did you mean 'grpo'"),
    (["algo.loss.name=gspoo"], r"algo.loss: unknown policy loss 'gspoo'; valid names: 'ppo', 'gspo'"),
    (["credit.method=voting"], r"needs \['loo'\], which env.topology='think_solve' cannot provide"),
    (["policy.system_prompts={critic: hi}"], r"policy.system_prompts names role\(s\) \['critic'\]"),
    (["env.topology=voting", "train.schedule=alternate", "credit.method=shared"],
     r"train.schedule='alternate' needs at least two trained roles; got \['voter'\]"),
])  # fmt: skip
def test_bad_combinations_fail_at_load_with_what_is_valid(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=overrides)


def test_config_is_torch_free():
    """Loading and checking a config (load_config runs check_config) imports neither torch nor transformers."""
    import subprocess
    import sys

    code = ("import sys; from ccpo_agents.config import load_config;"
            "cfg = load_config(overrides=['env.dataset=math500', 'credit.method=ccpo_paired']);"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
