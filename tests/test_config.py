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
        ("policy.parameterisation=moe", r"shared"),
        ("rollout.num_thoughts=0", r"num_thoughts must be >= 1"),
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
