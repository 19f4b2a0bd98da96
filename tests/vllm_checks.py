"""Checks of :class:`~ccpo_agents.policies.vllm.VLLMPolicy` against the real vLLM engine, run in the vLLM venv.

``tests/test_vllm.py`` runs this script with ``.venv-vllm/bin/python`` (vLLM pins its own transformers, so
it lives in its own venv) and asserts on the JSON it writes: one engine load serves every check, which
keeps the CI cost to one engine start. Each check records its measurements, or the traceback if it raised.

    .venv-vllm/bin/python tests/vllm_checks.py OUT.json [--only NAME,...]

The model is a random-init 2-layer Qwen2 (head_dim 32: the CPU attention backend refuses smaller heads)
saved with ``save_pretrained`` - an ordinary Hugging Face folder - and the engine runs in fp32 in this
process with a 64 MiB KV cache, so it fits beside other work on a small machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

PROMPTS = ["Compute (3+4)*2.", "What is 12-5?", "Add 7 and 9.", "Compute 6*7."]
ENGINE_KWARGS: dict[str, Any] = dict(
    dtype="float32", max_model_len=512, kv_cache_memory_bytes=64 * 2**20, enforce_eager=True, seed=0,
    enable_lora=True, max_lora_rank=8, max_loras=2,
)  # fmt: skip


def build_model(out_dir: Path) -> tuple[Any, Any]:
    from ccpo_agents.models.tiny import build_tiny_model, save_tiny, train_tokenizer

    tok = train_tokenizer()
    model = build_tiny_model(tok, hidden_size=64, heads=2, kv_heads=1, intermediate=128, seed=0)
    save_tiny(model, tok, out_dir)
    return model, tok


def hf_logprobs(model: Any, gens: list[Any], pad_id: int, temperature: float = 1.0) -> list[list[float]]:
    from ccpo_agents.policies.scoring import pad_batch, sequence_logprobs

    batch = pad_batch([g.prompt_token_ids for g in gens], [g.token_ids for g in gens], pad_id)
    with torch.no_grad():
        lp = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_mask,
                               temperature=temperature).logprobs  # fmt: skip
    return [lp[i, : len(g.token_ids)].tolist() for i, g in enumerate(gens)]


def sft_steps(model: Any, tok: Any, targets: dict[str, str], steps: int, lr: float, system: str | None = None) -> None:
    """A few Adam steps of teacher forcing on ``prompt -> target``: makes greedy decoding peaked and changed."""
    from ccpo_agents.policies.base import encode_prompt

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    rows = []
    for prompt, target in targets.items():
        p = encode_prompt(tok, prompt, system)
        c = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append((p, c))
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.0
        for p, c in rows:
            ids = torch.tensor([p + c])
            logits = model(input_ids=ids).logits[0, len(p) - 1 : -1]
            loss = loss + torch.nn.functional.cross_entropy(logits, torch.tensor(c))
        loss.backward()
        opt.step()
    model.eval()


def check_logprobs(ctx: dict[str, Any]) -> dict[str, Any]:
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.vllm import VLLMPolicy

    out: dict[str, Any] = {}
    for temperature in (1.0, 0.7):
        pol = VLLMPolicy(ctx["llm"], tokenizer=ctx["tok"],
                         generation=GenerationConfig(max_new_tokens=12, temperature=temperature))  # fmt: skip
        gens = pol(PROMPTS * 4, seeds=list(range(16)))
        ref = hf_logprobs(ctx["model"], gens, ctx["tok"].pad_token_id, temperature)
        diffs = [abs(a - b) for g, r in zip(gens, ref) for a, b in zip(g.logprobs, r)]
        out[f"t{temperature}"] = {"max_abs_diff": max(diffs), "tokens": len(diffs),
                                  "mean_logprob": sum(x for g in gens for x in g.logprobs) / len(diffs)}  # fmt: skip
    return out


def check_seeds(ctx: dict[str, Any]) -> dict[str, Any]:
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.vllm import VLLMPolicy

    pol = VLLMPolicy(ctx["llm"], tokenizer=ctx["tok"], generation=GenerationConfig(max_new_tokens=10))
    a = [g.token_ids for g in pol(PROMPTS * 2, seeds=list(range(8)))]
    b = [g.token_ids for g in pol(PROMPTS * 2, seeds=list(range(8)))]
    c = [g.token_ids for g in pol(PROMPTS * 2, seeds=list(range(100, 108)))]
    # The same seeds give the same sample whatever else is in the batch.
    d = [g.token_ids for g in pol(PROMPTS[:1] * 2 + ["unrelated"], seeds=[0, 4, 7])]
    return {"same_seeds_equal": a == b, "other_seeds_differ": a != c,
            "batch_independent": d[:2] == [a[0], a[4]]}  # fmt: skip


def check_row_seeded(ctx: dict[str, Any]) -> dict[str, Any]:
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.vllm import VLLMPolicy

    pol = VLLMPolicy(ctx["llm"], tokenizer=ctx["tok"], generation=GenerationConfig(max_new_tokens=6, row_seeded=True))
    alone = pol(PROMPTS[:1], seeds=[11])[0].token_ids
    mixed = [g.token_ids for g in pol([PROMPTS[2], PROMPTS[0], PROMPTS[1], PROMPTS[0]], seeds=[5, 11, 6, 12])]
    seeds = list(range(64))

    def first(prompt: str, s: list[int]) -> list[int]:
        return [g.token_ids[0] for g in pol([prompt] * len(s), seeds=s)]

    base = first(PROMPTS[0], seeds)
    same = sum(a == b for a, b in zip(base, first(PROMPTS[1], seeds)))
    other = sum(a == b for a, b in zip(base, first(PROMPTS[1], [x + 1000 for x in seeds])))
    return {"batch_independent": mixed[1] == alone, "duplicate_rows_differ": mixed[3] != alone,
            "first_token_agreement_same_seed": same, "first_token_agreement_other_seed": other}  # fmt: skip


def _greedy(policy: Any, prompts: list[str]) -> list[list[int]]:
    return [list(g.token_ids) for g in policy(prompts)]


def check_sync(ctx: dict[str, Any]) -> dict[str, Any]:
    """Train the HF model, sync it into the engine, compare greedy decoding."""
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.hf import HFPolicy
    from ccpo_agents.policies.vllm import VLLMPolicy

    model, tok = ctx["model"], ctx["tok"]
    gen = GenerationConfig(max_new_tokens=12, do_sample=False)
    vpol = VLLMPolicy(ctx["llm"], tokenizer=tok, generation=gen)
    hpol = HFPolicy(model, tok, generation=gen)
    before_v, before_h = _greedy(vpol, PROMPTS), _greedy(hpol, PROMPTS)
    targets = dict(zip(PROMPTS, ["The answer is \\boxed{14}.", "12-5 = 7.", "7+9 = 16.", "6*7 = 42."]))
    sft_steps(model, tok, targets, steps=20, lr=2e-2)
    trained_h = _greedy(hpol, PROMPTS)
    stale_v = _greedy(vpol, PROMPTS)
    t0 = time.perf_counter()
    vpol.sync_weights(model)
    sync_s = time.perf_counter() - t0
    synced_v = _greedy(vpol, PROMPTS)
    # Sampled-token log-probs of the synced engine against the trained HF model: a peaked distribution,
    # unlike the near-uniform random init of check_logprobs.
    spol = VLLMPolicy(ctx["llm"], tokenizer=tok, generation=GenerationConfig(max_new_tokens=12))
    gens = spol(PROMPTS * 2, seeds=list(range(8)))
    ref = hf_logprobs(model, gens, tok.pad_token_id)
    diffs = [abs(a - b) for g, r in zip(gens, ref) for a, b in zip(g.logprobs, r)]
    return {"trained_logprob_max_abs_diff": max(diffs),
            "trained_mean_logprob": sum(x for g in gens for x in g.logprobs) / len(diffs),
            "trained_texts": [tok.decode(t) for t in trained_h],
            "before_equal": before_v == before_h, "training_changed_hf": trained_h != before_h,
            "stale_engine_differs": stale_v != trained_h, "synced_equal": synced_v == trained_h,
            "sync_seconds": sync_s}  # fmt: skip


def check_lora(ctx: dict[str, Any]) -> dict[str, Any]:
    """Two per-role adapters on one base: each role's vLLM LoRA output equals HF's with that adapter."""
    from ccpo_agents.policies.base import GenerationConfig, LoraSettings
    from ccpo_agents.policies.hf import HFPolicy
    from ccpo_agents.policies.loading import add_lora, use_adapter
    from ccpo_agents.policies.vllm import VLLMPolicy

    base, tok = ctx["model"], ctx["tok"]
    peft_model = add_lora(base, LoraSettings(r=8, alpha=16), ["thinker", "solver"], seed=0)
    gen = GenerationConfig(max_new_tokens=10, do_sample=False)
    out: dict[str, Any] = {}
    targets = {"thinker": "First add, then multiply.", "solver": "The answer is \\boxed{14}."}
    for role, target in targets.items():
        with use_adapter(peft_model, role):
            for name, p in peft_model.named_parameters():
                p.requires_grad_(f".{role}." in name and "lora_" in name)
            sft_steps(peft_model, tok, {PROMPTS[0]: target}, steps=25, lr=3e-2, system=role)
    engine_base = _greedy(VLLMPolicy(ctx["llm"], tokenizer=tok, generation=gen, system_prompt="thinker"), PROMPTS[:1])
    for role in targets:
        vpol = VLLMPolicy(ctx["llm"], tokenizer=tok, role=role, system_prompt=role, generation=gen)
        path = vpol.sync_lora(peft_model, role, Path(ctx["tmp"]) / f"lora-{role}")
        with use_adapter(peft_model, role):
            hf = _greedy(HFPolicy(peft_model, tok, system_prompt=role, generation=gen, adapter=role), PROMPTS[:1])
        v = _greedy(vpol, PROMPTS[:1])
        out[role] = {"equal": v == hf, "text": tok.decode(hf[0]), "adapter_dir": str(path),
                     "adapter_tag": vpol(PROMPTS[:1])[0].extra.get("adapter")}  # fmt: skip
    out["roles_differ"] = out["thinker"]["text"] != out["solver"]["text"]
    out["base_unchanged_by_lora"] = engine_base == _greedy(
        VLLMPolicy(ctx["llm"], tokenizer=tok, generation=gen, system_prompt="thinker"), PROMPTS[:1]
    )
    peft_model.unload()  # give the base model back without adapters for later checks
    return out


def check_sleep(ctx: dict[str, Any]) -> dict[str, Any]:
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.vllm import VLLMPolicy

    pol = VLLMPolicy(ctx["llm"], tokenizer=ctx["tok"], generation=GenerationConfig(max_new_tokens=8, do_sample=False))
    before = _greedy(pol, PROMPTS)
    pol.sleep(level=1)
    pol.wake_up()
    return {"same_after_wake": _greedy(pol, PROMPTS) == before}


def check_train_cli(ctx: dict[str, Any]) -> dict[str, Any]:
    """``ccpo train policy.backend=vllm`` end to end: two CCPO steps, then a resume to a third."""
    from ccpo_agents.cli import main as cli

    out_dir = Path(ctx["tmp"]) / "run"
    args = ["train", f"policy.model={Path(ctx['tmp']) / 'model'}", "policy.backend=vllm",
            "policy.vllm.in_process=true", f"policy.vllm.kv_cache_memory_bytes={64 * 2**20}",
            "policy.vllm.dtype=float32", "policy.vllm.max_model_len=512", "policy.vllm.enforce_eager=true",
            "credit.method=ccpo_tree", "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.num_solo=2",
            "policy.generation.max_new_tokens=8", "train.progress=false", f"train.output_dir={out_dir}",
            "--no-eval"]  # fmt: skip
    codes = [cli([*args, "train.steps=2"])]
    codes.append(cli([*args, "train.steps=3", "--resume"]))
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"exit_codes": codes, "steps": [r.get("step") for r in rows],
            "engine_sync_seconds": [r.get("time/engine_sync") for r in rows],
            "generated_tokens": [r.get("perf/generated_tokens") for r in rows]}  # fmt: skip


def check_train_lora_cli(ctx: dict[str, Any]) -> dict[str, Any]:
    """``policy.parameterisation=lora`` on vLLM: per-role adapters reach the engine as LoRARequests each step."""
    from ccpo_agents.cli import main as cli

    out_dir = Path(ctx["tmp"]) / "run-lora"
    code = cli(["train", f"policy.model={Path(ctx['tmp']) / 'model'}", "policy.backend=vllm",
                "policy.parameterisation=lora", "policy.vllm.in_process=true",
                f"policy.vllm.kv_cache_memory_bytes={64 * 2**20}", "policy.vllm.dtype=float32",
                "policy.vllm.max_model_len=512", "policy.vllm.enforce_eager=true", "credit.method=ccpo_tree",
                "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.num_solo=2",
                "policy.generation.max_new_tokens=8", "train.progress=false", "train.steps=2",
                f"train.output_dir={out_dir}", "--no-eval"])  # fmt: skip
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    adapters = sorted(p.parent.name for p in (out_dir / "engine-rank0" / "vllm-lora").glob("*/*/adapter_config.json"))
    return {"exit_code": code, "steps": [r.get("step") for r in rows], "adapters": adapters}


def check_train_families(ctx: dict[str, Any]) -> dict[str, Any]:
    """``ccpo train policy.backend=vllm`` on the non-Qwen2 families built in memory, full parameters and LoRA
    per role: two steps each, with a greedy engine-vs-HF comparison after the last sync. OLMo-3 is left out of this in-process check: vLLM
    serves it through its Transformers backend, which patches transformers' ``Olmo3Model`` in place, so the
    trainer's own HF forward in the same process breaks (a separate engine process avoids that)."""
    import gc

    from helpers import coin_verifier, engine_greedy_matches_hf  # coin: a random model still gets advantages

    from ccpo_agents.config import load_config
    from ccpo_agents.trainer import Trainer
    from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv

    out: dict[str, Any] = {}
    env = ThinkSolveEnv("arith", templates=COMPACT_TEMPLATES, verifier=coin_verifier, split="train")
    for name, param in [(n, p) for n in ("tiny-llama3.1", "tiny-qwen3-base") for p in ("shared", "lora")]:
        run = Path(ctx["tmp"]) / f"run-{name}-{param}"
        cfg = load_config(overrides=[f"policy.parameterisation={param}",
            f"policy.model={name}", "policy.backend=vllm", "policy.vllm.in_process=true",
            f"policy.vllm.kv_cache_memory_bytes={16 * 2**20}", "policy.vllm.dtype=float32",
            "policy.vllm.max_model_len=512", "policy.vllm.enforce_eager=true", "credit.method=ccpo_tree",
            "rollout.prompts_per_step=2", "rollout.num_thoughts=2", "rollout.num_solo=2", "optim.lr=1e-2",
            "policy.generation.max_new_tokens=8", "train.progress=false", "train.plot=false", "train.steps=2",
            "train.tensorboard=false", "eval.limit=0", f"train.output_dir={run}"])  # fmt: skip
        trainer = Trainer(cfg, env=env)
        before = {k: v.clone() for k, v in trainer.roles.model_for("solver").state_dict().items()}
        history = trainer.train()
        model = trainer.roles.model_for("solver")
        pol = trainer.roles.policy_for("solver")
        adapter = "solver" if param == "lora" else None  # LoRA: the role's adapter reaches vLLM as a LoRARequest
        out[name if param == "shared" else f"{name}-lora"] = {
            "steps": [h["step"] for h in history], "architecture": type(model).__name__,
            "trained": any(not torch.equal(before[k], v) for k, v in model.state_dict().items()),
            "greedy_equal_hf": engine_greedy_matches_hf(pol, model, PROMPTS, adapter=adapter),
            "engine_syncs": trainer.engine.syncs}  # fmt: skip
        del trainer, model, pol
        gc.collect()
    return out


FAMILY_ENGINE_KWARGS: dict[str, Any] = dict(dtype="float32", max_model_len=256, kv_cache_memory_bytes=16 * 2**20,
                                            enforce_eager=True, seed=0)  # fmt: skip


def check_families(ctx: dict[str, Any]) -> dict[str, Any]:
    """Each paper family's tiny stand-in, saved as an HF folder: vLLM greedy == HF greedy, log-probs agree.

    One short-lived engine per family (a few seconds each in-process); instruct families are prompted
    through their chat template, the base model through a plain prompt, on both sides via ``encode_prompt``.
    The HF side runs *before* the engine is built: vLLM 0.32 serves ``Olmo3ForCausalLM`` through its
    Transformers modeling backend, which patches transformers' ``Olmo3Model`` class in place, so an HF
    Olmo3 model in the same process cannot run a forward pass afterwards. The comparison is therefore on
    greedy decoding: the same tokens, and each token's log-prob (unscaled log-softmax on both sides).
    """
    import gc

    from ccpo_agents.models.families import FAMILIES, build_family
    from ccpo_agents.policies.base import GenerationConfig
    from ccpo_agents.policies.hf import HFPolicy
    from ccpo_agents.policies.vllm import VLLMPolicy, build_llm

    out: dict[str, Any] = {}
    greedy = GenerationConfig(max_new_tokens=12, do_sample=False)
    for name in sorted(FAMILIES):
        t0 = time.perf_counter()
        model, tok = build_family(name, seed=0)
        folder = Path(ctx["tmp"]) / name
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        hpol = HFPolicy(model, tok, generation=greedy, system_prompt="S")
        h = hpol(PROMPTS)
        llm = build_llm(folder, in_process=True, **FAMILY_ENGINE_KWARGS)
        v = VLLMPolicy(llm, tokenizer=tok, generation=greedy, system_prompt="S",
                       stop_token_ids=hpol.stop_token_ids)(PROMPTS)  # fmt: skip
        equal = [list(a.token_ids) for a in v] == [list(b.token_ids) for b in h]
        diffs = [abs(x - y) for a, b in zip(v, h) for x, y in zip(a.logprobs, b.logprobs)] if equal else [float("inf")]
        out[name] = {"architecture": type(model).__name__, "greedy_equal": equal,
                     "greedy_tokens": sum(len(g.token_ids) for g in h), "logprob_max_abs_diff": max(diffs),
                     "same_prompt_ids": [list(a.prompt_token_ids) for a in v] == [list(b.prompt_token_ids) for b in h],
                     "templated": FAMILIES[name].instruct, "prompt": tok.decode(h[0].prompt_token_ids),
                     "seconds": time.perf_counter() - t0}  # fmt: skip
        del llm
        gc.collect()
    return out


CHECKS = {"logprobs": check_logprobs, "seeds": check_seeds, "row_seeded": check_row_seeded, "sync": check_sync,
          "lora": check_lora, "sleep": check_sleep, "train_cli": check_train_cli,
          "train_lora_cli": check_train_lora_cli, "families": check_families,
          "train_families": check_train_families}  # fmt: skip


def main(argv: list[str]) -> int:
    out_path = Path(argv[0])
    only = argv[argv.index("--only") + 1].split(",") if "--only" in argv else list(CHECKS)
    torch.manual_seed(0)
    import vllm

    from ccpo_agents.policies.vllm import build_llm

    report: dict[str, Any] = {"vllm_version": vllm.__version__}
    with tempfile.TemporaryDirectory(prefix="ccpo-vllm-") as tmp:
        model, tok = build_model(Path(tmp) / "model")
        t0 = time.perf_counter()
        llm = build_llm(Path(tmp) / "model", in_process=True, **ENGINE_KWARGS)
        report["engine_load_seconds"] = time.perf_counter() - t0
        ctx = {"llm": llm, "model": model, "tok": tok, "tmp": tmp}
        for name in only:
            t0 = time.perf_counter()
            try:
                report[name] = CHECKS[name](ctx)
            except Exception:  # recorded for the pytest side, which fails with the traceback
                report[name] = {"error": traceback.format_exc()}
            report[name]["seconds"] = time.perf_counter() - t0
            out_path.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
