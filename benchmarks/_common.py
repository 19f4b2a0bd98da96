"""Helpers shared by the model benchmarks (``bench_rollout.py``, ``bench_step.py``).

Not a benchmark itself. The scripts import it as a sibling module (``python benchmarks/bench_x.py`` puts
``benchmarks/`` on ``sys.path``; the smoke tests add it).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"

#: Qwen2.5-0.5B's architecture (config.json of ``Qwen/Qwen2.5-0.5B-Instruct``), for a random-init model of the
#: same shape and cost: no download. The vocabulary is the real one (151,936 rows: the LM head is ~27% of
#: the FLOPs); prompts are encoded with the local tiny tokenizer, whose ids are a subset.
QWEN25_05B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)  # fmt: skip
SHAPES = {"qwen2.5-0.5b": QWEN25_05B}


def add_model_args(parser: Any, default_model: str) -> None:
    """The model/device options both benchmarks share."""
    parser.add_argument("--model", default=default_model, help="tiny preset or local path (default %(default)s)")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default=None,
        help="instead of --model: a random-initialised Qwen2 of this shape with the tiny tokenizer (no download)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), fp32, bf16, fp16")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")


def setup_torch(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


def build_model(model: str, shape: str | None, *, device: str, dtype: str, seed: int = 0) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode on ``device``: a tiny preset/path via the library's loader, or a
    random-initialised model of a named :data:`SHAPES` entry with the tiny tokenizer."""
    from ccpo_agents.policies.loading import load_model_and_tokenizer, resolve_dtype

    if shape is None:
        return load_model_and_tokenizer(model, dtype=dtype, device=device, seed=seed)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from ccpo_agents.models.tiny import EOS_TOKEN, PAD_TOKEN, train_tokenizer

    tok = train_tokenizer()
    eos, pad = tok.convert_tokens_to_ids(EOS_TOKEN), tok.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(**SHAPES[shape], bos_token_id=None, eos_token_id=eos, pad_token_id=pad)
    torch_dtype = resolve_dtype(dtype, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            net = Qwen2ForCausalLM(config).to(torch_dtype)
    net.generation_config.eos_token_id = [eos, pad]
    net.generation_config.pad_token_id = pad
    net.generation_config.bos_token_id = None
    return net.eval(), tok


def force_full_length(model: Any, stop_ids: Sequence[int]) -> None:
    """Make every completion exactly ``max_new_tokens`` long: the end tokens get probability 0.

    ``generate`` fills fields its ``generation_config`` leaves unset from the model's own
    ``generation_config``, so this reaches ``HFPolicy``'s calls (which never set ``suppress_tokens``) and the
    raw baseline alike. A random model otherwise stops at random points, and a batch runs until its
    longest row ends, which would make token counts (and tokens/s) differ between the compared sides.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.generation_config.suppress_tokens = sorted({int(t) for t in stop_ids})


def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def machine_info(args: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": args.device,
        "dtype": args.dtype,
    }
    with contextlib.suppress(OSError):  # not on every platform
        info["load_avg_1m"] = os.getloadavg()[0]
    if torch.device(args.device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def write_json(path: Path, result: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")


def fmt_goal(ok: bool) -> str:
    return "met" if ok else "NOT met"
