"""FSDP2 (torch's ``fully_shard`` per decoder layer) on 2 CPU processes (gloo): train, checkpoint, resume, gather."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_two_processes


@pytest.mark.slow
@pytest.mark.multiproc
def test_fsdp2_two_steps_sharded_checkpoint_resume_and_full_gather(tmp_path):
    run_two_processes(Path(__file__).with_name("fsdp_two_steps.py"), tmp_path, port=29531)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for r in (r0, r1):
        assert r["world"] == 2
        assert r["local_numel"] * 2 == r["full_numel"], "each rank holds half of the parameters"
        assert r["momentum_is_sharded"], "optimizer state is sharded like the parameters"
        assert r["trained"] and r["max_change"] > 1e-3
        # the averaged reduce-scatter gives the gradient of the whole batch: same weights as unsharded training
        assert r["max_diff_vs_unsharded"] < 1e-5, r
        assert r["digest_resumed"] == r["digest"], "resuming from the step-1 shards reproduces step 2 exactly"
        assert r["resumed_extra"] == {"step": 1}
        assert r["keys_match_hf"] and r["gathered_logits_max_diff"] < 1e-5
        assert r["bf16_ckpt_loss_finite"] and r["bf16_trained"] and r["bf16_checkpointing_on"]
        assert r["bf16_param_dtype"] == "torch.float32", "bf16 compute keeps fp32 master weights"
        assert r["by_name"]["digest"] == r["digest_resumed"] and r["by_name"]["momentum_equal"], r["by_name"]
    assert r0["digest"] == r1["digest"], "both ranks gather the same full weights"
    assert r0["by_name"]["rank0_has_state"] and r1["by_name"]["others_empty"], "full state lands on rank 0 only"
    assert r0["aligned"] == [[0], [1], [2]] and r1["aligned"] == [[0], [], []], "padded to the larger count"
    assert r0["rank0_only_sizes"] > 0 and r1["rank0_only_sizes"] == 0, "rank0_only gathers onto rank 0 alone"
    assert sorted(p.name for p in (tmp_path / "ckpt_step1").iterdir()) == [
        ".metadata", "__0_0.distcp", "__1_0.distcp", "extra.json"], "one shard file per rank"


def test_accelerate_example_configs_parse_as_documented():
    from accelerate.commands.config.config_args import ClusterConfig

    folder = Path(__file__).resolve().parents[1] / "examples" / "accelerate"
    ddp = ClusterConfig.from_yaml_file(str(folder / "ddp_1node.yaml"))
    assert ddp.distributed_type.value == "MULTI_GPU" and ddp.num_machines == 1 and ddp.mixed_precision == "bf16"
    fsdp = ClusterConfig.from_yaml_file(str(folder / "fsdp2.yaml"))
    assert fsdp.distributed_type.value == "FSDP" and fsdp.mixed_precision == "bf16"
    assert fsdp.fsdp_config["fsdp_version"] == 2 and fsdp.fsdp_config["fsdp_reshard_after_forward"] is True
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert fsdp.fsdp_config["fsdp_activation_checkpointing"] is True
    assert fsdp.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    multi = ClusterConfig.from_yaml_file(str(folder / "multinode.yaml"))
    assert multi.num_machines == 2 and multi.num_processes == 16 and multi.main_process_ip


def test_decoder_layers_are_the_fsdp_units_of_each_family():
    from ccpo_agents.models.families import FAMILIES, build_family
    from ccpo_agents.trainer.fsdp import decoder_layers

    for name in FAMILIES:
        model, _ = build_family(name)
        layers = decoder_layers(model)
        assert len(layers) == model.config.num_hidden_layers
        assert all(type(m).__name__.endswith("DecoderLayer") for m in layers), name
    with pytest.raises(ValueError, match="lists no decoder-layer classes"):
        import torch

        decoder_layers(torch.nn.Linear(2, 2))


def _fsdp_trainer(tmp_path, *overrides: str, accelerator=None):
    from helpers import coin_verifier

    from ccpo_agents.config import load_config
    from ccpo_agents.trainer import Trainer
    from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv

    cfg = load_config(overrides=["policy.model=tiny", f"train.output_dir={tmp_path}", "train.progress=false",
                                 "train.plot=false", "train.tensorboard=false", *overrides])  # fmt: skip
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    return Trainer(cfg, env=env, accelerator=accelerator)


class FSDPAccelerator:  # what the trainer reads of an accelerate Accelerator launched with fsdp2.yaml
    num_processes, process_index, is_main_process = 1, 0, True
    distributed_type = "FSDP"

    def __init__(self) -> None:
        import torch

        self.device = torch.device("cpu")


def test_generation_on_a_sharded_model_is_refused_with_the_fix(tmp_path):
    from ccpo_agents.config import ConfigError

    with pytest.raises(ConfigError, match=r"FSDP .* needs policy.backend=vllm.*stalls.*or DDP"):
        _fsdp_trainer(tmp_path, "policy.backend=hf", accelerator=FSDPAccelerator())
    with pytest.raises(ConfigError, match=r"lora under FSDP is not supported.*use DDP"):
        _fsdp_trainer(tmp_path, "policy.backend=vllm", "policy.parameterisation=lora", accelerator=FSDPAccelerator())


def test_train_fsdp_config_checks_and_single_process_no_op(tmp_path):
    from ccpo_agents.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"train.fsdp=true supports .* 'bf16', not 'fp16'"):
        load_config(overrides=["train.fsdp=true", "train.mixed_precision=fp16"])
    trainer = _fsdp_trainer(tmp_path, "train.fsdp=true", "train.steps=1", "rollout.prompts_per_step=2",
                            "rollout.num_thoughts=2", "policy.generation.max_new_tokens=4", "eval.limit=0")  # fmt: skip
    assert trainer.fsdp is False  # one process: nothing to shard, the HF backend stays allowed
    trainer.train()
    assert trainer.step == 1
