"""HFPolicy sampling, dedup, determinism, log-prob consistency; role parameterisation; vLLM guard/helpers."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from ccpo_agents.policies import (
    GenerationConfig,
    HFPolicy,
    LoraSettings,
    Policy,
    PolicyConfig,
    RoleModels,
    VLLMPolicy,
    pad_batch,
    resolve_dtype,
    sequence_logprobs,
    vllm_available,
)
from ccpo_agents.policies.vllm import generations_from_request_output, vllm_state_dict
from ccpo_env.records import Generation

OBS = ["Compute (23*4)+(17*3).", "Compute 1+2.", "What is 7*8? Answer briefly please."]


def make_policy(model, tok, **gen):
    gen.setdefault("max_new_tokens", 8)
    return HFPolicy(model, tok, role="solver", system_prompt="You are the Solver.", generation=GenerationConfig(**gen))


class GenerateSpy:
    """Wraps ``model.generate`` to record the prompt rows and num_return_sequences of every call."""

    def __init__(self, model):
        self.calls: list[tuple[int, int]] = []
        self._inner = model.generate
        model.generate = self

    def __call__(self, *args, **kwargs):
        self.calls.append((kwargs["input_ids"].shape[0], kwargs["generation_config"].num_return_sequences))
        return self._inner(*args, **kwargs)


def recompute(model, gens, temperature=1.0):
    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
    with torch.no_grad():
        return sequence_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.completion_mask, temperature=temperature
        ).logprobs


def max_logprob_gap(model, gens, temperature=1.0):
    ref = recompute(model, gens, temperature)
    return max((ref[i, : len(g.token_ids)] - torch.tensor(g.logprobs)).abs().max().item() for i, g in enumerate(gens))


# ---------------------------------------------------------------------------------------------- HFPolicy


def test_generations_are_consistent(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer)
    assert isinstance(policy, Policy)
    gens = policy(OBS, seeds=[0, 1, 2])
    assert len(gens) == len(OBS) and all(isinstance(g, Generation) for g in gens)
    for obs, g in zip(OBS, gens):
        assert len(g.token_ids) == len(g.logprobs) >= 1
        assert all(lp <= 0 and lp > -float("inf") for lp in g.logprobs)
        assert g.prompt_token_ids == policy.encode(obs)
        assert g.text == tiny_tokenizer.decode(g.token_ids, skip_special_tokens=True)
        assert g.extra["role"] == "solver"
    prompt = tiny_tokenizer.decode(gens[0].prompt_token_ids)
    assert prompt.startswith("<|im_start|>system\nYou are the Solver.<|im_end|>\n<|im_start|>user\n" + OBS[0])
    assert prompt.endswith("<|im_start|>assistant\n")
    assert policy([]) == []
    with pytest.raises(ValueError, match="seeds"):
        policy(OBS, seeds=[1])


def test_seeds_reproducible_and_isolated(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, temperature=2.0)
    rng = torch.get_rng_state()
    a = policy(OBS, seeds=[1, 2, 3])
    assert torch.equal(torch.get_rng_state(), rng), "seeded sampling must not touch the global RNG"
    b = policy(OBS, seeds=[1, 2, 3])
    c = policy(OBS, seeds=[4, 5, 6])
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.logprobs for g in a] == [g.logprobs for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]
    # Without seeds sampling uses the global RNG, so torch.manual_seed makes it reproducible.
    torch.manual_seed(7)
    d = policy(OBS)
    torch.manual_seed(7)
    e = policy(OBS)
    assert [g.token_ids for g in d] == [g.token_ids for g in e]


def test_mixed_counts_share_one_call_with_num_return_sequences(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, temperature=2.0)
    spy = GenerateSpy(tiny_model)
    # m = 2 answers for each of two thoughts, k = 4 solo answers: gcd 2 -> 4 rows x 2 samples, one call.
    obs = [OBS[0], OBS[0], OBS[1], OBS[1], OBS[2], OBS[2], OBS[2], OBS[2]]
    gens = policy(obs, seeds=list(range(8)))
    assert [g.prompt_token_ids for g in gens] == [policy.encode(o) for o in obs]
    assert policy.stats.prompts_encoded == 3 and policy.stats.generate_input_rows == 4
    assert spy.calls == [(4, 2)]
    assert len({tuple(gens[i].token_ids) for i in (4, 5, 6, 7)}) == 4


def test_duplicates_are_encoded_once_and_expanded(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, temperature=2.0)
    spy = GenerateSpy(tiny_model)
    obs = [OBS[0], OBS[1], OBS[0], OBS[1], OBS[0], OBS[1], OBS[2]]  # 3 distinct: counts 3, 3, 1
    gens = policy(obs, seeds=list(range(7)))
    assert len(gens) == 7
    assert [g.prompt_token_ids for g in gens] == [policy.encode(o) for o in obs]
    # Counts 3, 3, 1 have gcd 1: each prompt is encoded once and its token ids repeated as rows,
    # all in ONE generate call (one call per distinct count would cost a call per count).
    assert policy.stats.prompts_encoded == 3 and policy.stats.generate_input_rows == 7
    assert spy.calls == [(7, 1)]
    first = [tuple(gens[i].token_ids) for i in (0, 2, 4)]
    assert len(set(first)) == 3, "samples of one prompt must be independent draws"
    # Turning dedup off feeds every row separately.
    policy.generation = policy.generation.replace(deduplicate=False)
    spy.calls.clear()
    policy(obs, seeds=list(range(7)))
    assert sum(rows * n for rows, n in spy.calls) == 7 and all(n == 1 for _, n in spy.calls)


def test_micro_batching_bounds_rows(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, max_batch_size=2)
    spy = GenerateSpy(tiny_model)
    obs = [f"Compute {i}+{i}." for i in range(5)] + ["Compute 9*9."] * 5
    gens = policy(obs, seeds=list(range(10)))
    assert len(gens) == 10
    assert all(rows * n <= 2 for rows, n in spy.calls)
    assert sum(rows * n for rows, n in spy.calls) == 10
    assert [g.prompt_token_ids for g in gens] == [policy.encode(o) for o in obs]
    again = policy(obs, seeds=list(range(10)))
    assert [g.token_ids for g in gens] == [g.token_ids for g in again]


def test_truncation_and_end_token(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=5)
    stop = set(policy.stop_token_ids)
    eos = tiny_tokenizer.eos_token_id
    bias = torch.zeros(len(tiny_tokenizer))
    hook = tiny_model.lm_head.register_forward_hook(lambda mod, inp, out: out + bias)
    bias[list(stop)] = -1e4  # never stop: every completion hits max_new_tokens
    for g in policy(OBS, seeds=[0, 1, 2]):
        assert g.truncated and len(g.token_ids) == 5 and not stop & set(g.token_ids)
    bias[list(stop)] = -1e4
    bias[eos] = 1e4  # always stop at once
    for g in policy(OBS, seeds=[0, 1, 2]):
        assert not g.truncated and g.token_ids == [eos] and g.text == ""
    bias[eos] = 4.0  # a mix of lengths within one batch: nothing after the first end token
    gens = policy(OBS * 8, seeds=list(range(24)))
    assert {g.truncated for g in gens} == {True, False}
    for g in gens:
        ends = [i for i, t in enumerate(g.token_ids) if t in stop]
        assert ends == ([] if g.truncated else [len(g.token_ids) - 1])
        assert len(g.token_ids) == len(g.logprobs) <= 5
    hook.remove()


def test_logprobs_match_recomputed_forward(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=10)
    gens = policy(OBS * 2, seeds=list(range(6)))  # different prompt lengths: left padding in play
    assert max_logprob_gap(tiny_model, gens) < 1e-4
    with torch.no_grad():
        again = policy.logprobs_of([g.prompt_token_ids for g in gens[:2]], [g.token_ids for g in gens[:2]])
    assert torch.allclose(again[1], torch.tensor(gens[1].logprobs), atol=1e-4)
    hot = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=10, temperature=0.7)
    assert max_logprob_gap(tiny_model, hot(OBS, seeds=[1, 2, 3]), temperature=0.7) < 1e-4
    # top-k renormalises over fewer tokens, so sampling-time log-probs are >= the untruncated ones.
    topk = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=10, top_k=5)
    gens = topk(OBS, seeds=[1, 2, 3])
    ref = recompute(tiny_model, gens)
    for i, g in enumerate(gens):
        assert (torch.tensor(g.logprobs) >= ref[i, : len(g.token_ids)] - 1e-5).all()


def test_row_seeded_sampling_is_per_row_and_exact(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=6, temperature=1.5, row_seeded=True)
    # A row's sample depends on its observation and seed only, not on the rest of the batch.
    alone = policy([OBS[0]], seeds=[11])[0]
    mixed = policy([OBS[2], OBS[0], OBS[1], OBS[0]], seeds=[5, 11, 6, 12])
    assert mixed[1].token_ids == alone.token_ids and mixed[3].token_ids != alone.token_ids
    assert max_logprob_gap(tiny_model, mixed, temperature=1.5) < 1e-4  # log-probs of the warped distribution
    # Common random numbers: different prompts with the same seed share their noise, so their first tokens
    # agree far more often than with independent seeds.
    seeds = list(range(64))
    first = lambda obs, s: [g.token_ids[0] for g in policy([obs] * len(s), seeds=s)]  # noqa: E731
    same = sum(a == b for a, b in zip(first(OBS[0], seeds), first(OBS[1], seeds)))
    other = sum(a == b for a, b in zip(first(OBS[0], seeds), first(OBS[1], [s + 1000 for s in seeds])))
    assert same >= other + 16, (same, other)


def test_row_seeded_gumbel_max_samples_the_warped_distribution(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, max_new_tokens=1, top_k=4, row_seeded=True)
    n = 2048
    tokens = [g.token_ids[0] for g in policy([OBS[1]] * n, seeds=list(range(n)))]
    with torch.no_grad():
        ids = torch.tensor([policy.encode(OBS[1])])
        logits = tiny_model(input_ids=ids).logits[0, -1]
    top = torch.topk(logits, 4)
    probs = torch.softmax(top.values, -1)
    assert set(tokens) <= set(top.indices.tolist())
    freq = torch.tensor([tokens.count(t) / n for t in top.indices.tolist()])
    assert (freq - probs).abs().sum() / 2 < 0.04, (freq, probs)  # total variation; ~0.015 expected at n=2048


def test_greedy_duplicates_identical(tiny_model, tiny_tokenizer):
    policy = make_policy(tiny_model, tiny_tokenizer, do_sample=False)
    spy = GenerateSpy(tiny_model)
    gens = policy([OBS[0]] * 3 + [OBS[1]])
    assert gens[0].token_ids == gens[1].token_ids == gens[2].token_ids
    assert spy.calls == [(2, 1)]
    assert gens[0] is not gens[1]
    assert max_logprob_gap(tiny_model, gens) < 1e-4


def test_plain_text_fallback_without_chat_template(tiny_model, tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = None
    policy = HFPolicy(tiny_model, tok, system_prompt="SYS", generation=GenerationConfig(max_new_tokens=3))
    assert tok.decode(policy.encode("Compute 1+2.")) == "SYS\n\nCompute 1+2."
    assert len(policy(["Compute 1+2."], seeds=[0])[0].token_ids) <= 3


def test_generation_config_validation():
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig(temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        GenerationConfig(top_p=0)
    with pytest.raises(ValueError, match="max_batch_size"):
        GenerationConfig(max_batch_size=0)
    assert resolve_dtype("auto", "cpu") == torch.float32 and resolve_dtype("bf16") == torch.bfloat16


def test_from_pretrained_local_dir(tiny_model_dir):
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu", generation=GenerationConfig(max_new_tokens=4))
    assert next(policy.model.parameters()).dtype == torch.float32
    gens = policy(OBS, seeds=[0, 1, 2])
    assert all(len(g.token_ids) <= 4 for g in gens)
    lora = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu", lora=LoraSettings(r=4), role="thinker")
    assert lora.adapter == "thinker" and "thinker" in lora.model.peft_config
    assert lora(OBS[:1], seeds=[0])[0].extra["adapter"] == "thinker"


def test_pad_batch_and_scoring_layout(tiny_model):
    batch = pad_batch([[5, 6, 7], [8]], [[9], [10, 11, 12]], pad_id=0)
    assert batch.prompt_length == 3
    assert batch.input_ids.tolist() == [[5, 6, 7, 9, 0, 0], [0, 0, 8, 10, 11, 12]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]
    assert batch.completion_mask.tolist() == [[1, 0, 0], [1, 1, 1]]
    scored = sequence_logprobs(
        tiny_model, batch.input_ids, batch.attention_mask, batch.completion_mask, return_entropy=True
    )
    assert scored.logprobs.shape == scored.entropy.shape == (2, 3)
    assert scored.logprobs[0, 1:].abs().sum() == 0 and (scored.logprobs[1] < 0).all()
    assert (scored.entropy[1] > 0).all()
    scored.logprobs.sum().backward()
    assert tiny_model.model.embed_tokens.weight.grad is not None
    with pytest.raises(ValueError):
        pad_batch([[]], [[1]], pad_id=0)


# ------------------------------------------------------------------------------------------- roles


def _perturb_adapter(model, role, scale=0.5):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if f"lora_B.{role}." in name:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) * scale)


def _score(roles, role, gens):
    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
    with torch.no_grad(), roles.activate(role) as model:
        return sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_mask).logprobs


def test_lora_roles(tiny_model, tiny_tokenizer):
    base = copy.deepcopy(tiny_model)
    roles = RoleModels.lora(
        tiny_model, tiny_tokenizer, ("thinker", "solver"), LoraSettings(r=4),
        generation=GenerationConfig(max_new_tokens=6),
    )  # fmt: skip
    model = roles.model_for("thinker")
    assert roles.model_for("solver") is model and roles.adapter_for("solver") == "solver"
    names = {r: {n for n, _ in roles.named_trainable_parameters(r)} for r in roles.roles}
    assert names["thinker"] and not names["thinker"] & names["solver"]
    assert all(".thinker." in n and "lora_" in n for n in names["thinker"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == names["thinker"] | names["solver"], "only adapter weights are trainable"
    assert roles.owner("thinker") != roles.owner("solver")

    gens = roles.policy_for("solver")(OBS, seeds=[0, 1, 2])
    assert all(g.extra["adapter"] == "solver" for g in gens)
    base_lp = recompute(base, gens)
    assert torch.allclose(_score(roles, "thinker", gens), base_lp, atol=1e-5)  # LoRA B starts at zero

    _perturb_adapter(model, "thinker")
    assert not torch.allclose(_score(roles, "thinker", gens), base_lp, atol=1e-3)
    assert torch.allclose(_score(roles, "solver", gens), base_lp, atol=1e-5)
    with torch.no_grad(), roles.reference("thinker") as ref:
        batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
        ref_lp = sequence_logprobs(ref, batch.input_ids, batch.attention_mask, batch.completion_mask).logprobs
    assert torch.allclose(ref_lp, base_lp, atol=1e-5)
    t_gen = roles.policy_for("thinker")(OBS, seeds=[0, 1, 2])
    s_gen = roles.policy_for("solver")(OBS, seeds=[0, 1, 2])
    assert [g.token_ids for g in s_gen] == [g.token_ids for g in gens]
    assert [g.token_ids for g in t_gen] != [g.token_ids for g in s_gen]

    # Gradients of a loss computed under one role reach only that role's adapter; switching adapters
    # leaves requires_grad alone.
    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id=0)
    with roles.activate("solver") as m:
        sequence_logprobs(m, batch.input_ids, batch.attention_mask, batch.completion_mask).logprobs.sum().backward()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    assert all(p.grad is not None for p in roles.trainable_parameters("solver"))
    assert all(p.grad is None for p in roles.trainable_parameters("thinker"))
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)
    roles.set_trainable("thinker", False)
    assert not any(p.requires_grad for p in roles.trainable_parameters("thinker"))
    assert all(p.requires_grad for p in roles.trainable_parameters("solver"))


def test_separate_and_shared_roles(tiny_model, tiny_tokenizer):
    other = copy.deepcopy(tiny_model)
    roles = RoleModels.separate({"thinker": (tiny_model, tiny_tokenizer), "solver": (other, tiny_tokenizer)})
    assert roles.model_for("thinker") is not roles.model_for("solver")
    t_params = {id(p) for p in roles.trainable_parameters("thinker")}
    assert t_params.isdisjoint(id(p) for p in roles.trainable_parameters("solver"))
    gens = roles.policy_for("solver")(OBS, seeds=[0, 1, 2])
    before = recompute(other, gens)
    with torch.no_grad():
        tiny_model.lm_head.weight.mul_(3.0)
    assert torch.allclose(recompute(other, gens), before)
    with pytest.raises(RuntimeError, match="reference"), roles.reference("thinker"):
        pass
    roles.snapshot_reference()
    with roles.reference("solver") as ref:
        assert ref is not other and not any(p.requires_grad for p in ref.parameters())
    with pytest.raises(ValueError, match="distinct"):
        RoleModels.separate({"thinker": (other, tiny_tokenizer), "solver": (other, tiny_tokenizer)})

    shared = RoleModels.shared(other, tiny_tokenizer, system_prompts={"thinker": "T", "solver": "S"})
    assert shared.owner("thinker") == shared.owner("solver") == "shared"
    assert shared.trainable_parameters("thinker") == shared.trainable_parameters("solver")
    assert shared.policy_for("thinker").encode("x") != shared.policy_for("solver").encode("x")
    assert len(shared.unique_models()) == 1
    with pytest.raises(KeyError, match="unknown role"):
        shared.policy_for("critic")


def test_policy_config(tiny_model_dir):
    cfg = PolicyConfig.from_dict(
        {
            "model": str(tiny_model_dir),
            "parameterisation": "lora",
            "lora_r": 2,
            "device": "cpu",
            "generation": {"max_new_tokens": 4},
            "role_generation": {"thinker": {"max_new_tokens": 6}},
        }
    )
    roles = RoleModels.from_config(cfg)
    assert roles.parameterisation == "lora" and roles.roles == ("thinker", "solver")
    assert roles.policy_for("thinker").generation.max_new_tokens == 6
    assert roles.policy_for("solver").generation.max_new_tokens == 4
    assert roles.policy_for("thinker").system_prompt.startswith("You are the Thinker")
    assert all(len(g.token_ids) <= 6 for g in roles.policy_for("thinker")(OBS, seeds=[0, 1, 2]))
    sep = RoleModels.from_config(
        PolicyConfig(model={"thinker": str(tiny_model_dir), "solver": "tiny"}, parameterisation="separate", device="cpu")
    )
    assert sep.model_for("thinker") is not sep.model_for("solver")
    with pytest.raises(ValueError, match="valid keys"):
        PolicyConfig.from_dict({"modle": "x"})
    with pytest.raises(ValueError, match="parameterisation"):
        PolicyConfig(parameterisation="tied")
    with pytest.raises(ValueError, match="separate"):
        PolicyConfig(model={"thinker": "a", "solver": "b"})
    with pytest.raises(ValueError, match="unknown generation keys"):
        PolicyConfig(role_generation={"thinker": {"max_tokens": 3}})


# -------------------------------------------------------------------------------------------- vLLM


@pytest.mark.skipif(vllm_available(), reason="vLLM is installed; the guard only applies without it")
def test_vllm_policy_import_guard():
    import ccpo_agents.policies  # noqa: F401  (importable without vllm)

    with pytest.raises(ImportError, match=r"pip install 'ccpo\[vllm\]'"):
        VLLMPolicy("some/model")


def test_vllm_output_conversion():
    lp = lambda x: SimpleNamespace(logprob=x)  # noqa: E731
    completions = [
        SimpleNamespace(text="12", token_ids=[5, 6, 2], logprobs=[{5: lp(-0.1)}, {6: lp(-0.2), 7: lp(-3.0)}, {2: lp(-0.3)}], finish_reason="stop"),
        SimpleNamespace(text="1", token_ids=(5, 5), logprobs=[{5: -0.5}, {5: -0.6}], finish_reason="length"),
    ]  # fmt: skip
    out = SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=completions)
    gens = generations_from_request_output(out, role="solver", adapter="solver")
    assert [g.token_ids for g in gens] == [[5, 6, 2], [5, 5]]
    assert gens[0].logprobs == [-0.1, -0.2, -0.3] and gens[1].logprobs == [-0.5, -0.6]
    assert [g.truncated for g in gens] == [False, True]
    assert gens[0].prompt_token_ids == [1, 2, 3] and gens[0].extra["adapter"] == "solver"


def test_vllm_state_dict_merges_lora(tiny_model):
    plain_keys = set(tiny_model.state_dict())
    roles = RoleModels.lora(tiny_model, _DummyTok(), ("solver",), LoraSettings(r=2, target_modules=["q_proj"]))
    model = roles.model_for("solver")
    _perturb_adapter(model, "solver")
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    expected = layer.base_layer.weight + layer.scaling["solver"] * layer.lora_B["solver"].weight @ layer.lora_A["solver"].weight
    original = layer.base_layer.weight.detach().clone()
    sd = vllm_state_dict(model)
    assert set(sd) == plain_keys
    assert torch.allclose(sd["model.layers.0.self_attn.q_proj.weight"], expected.detach(), atol=1e-6)
    assert torch.equal(layer.base_layer.weight, original), "the base weights must not be touched"
    assert set(vllm_state_dict(sd)) == set(sd)


class _DummyTok:
    pad_token_id = 0
    eos_token_id = 1
    chat_template = None
