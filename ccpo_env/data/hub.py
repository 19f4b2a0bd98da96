"""The third resolution step: the Hugging Face Hub through ``datasets`` (imported lazily).

Each benchmark has a :class:`HubSpec`: a public dataset id, the (config, split) parts to read, and a
row normaliser producing the same record shape as the local ``<name>.jsonl`` files (same ids where
the upstream order allows). The mapping, column by column:

============  =====================================  ================  ==========================================
name          Hub dataset (config) split             id                problem / answer
============  =====================================  ================  ==========================================
math500       HuggingFaceH4/MATH-500, test            ``unique_id``     ``problem`` / ``answer``
aime24        HuggingFaceH4/aime_2024, train          aime2024-<id>     ``problem`` / ``answer``
aime25        opencompass/AIME2025 (AIME2025-I,       aime2025-I-<k>,   ``question`` / ``answer``
              AIME2025-II), test                      aime2025-II-<k>
amc23         math-ai/amc23, test                     amc23-<row>       ``question`` / ``answer`` (27.0 -> "27")
gaokao2023en  MARIO-Math-Reasoning/Gaokao2023-Math-   gaokao2023en-<r>  ``question`` / ``answer`` with ``$`` removed
              En, train (its only split)
minerva_math  math-ai/minervamath, test               minerva-<row>     ``question`` / ``answer`` (else the last
                                                                        ``\\boxed{}`` of ``solution``)
gsm8k         openai/gsm8k (main), test               gsm8k-<row>       ``question`` / text after ``####``, no commas
folio         tasksource/folio, validation            folio-hub-<row>   premises + conclusion / ``label``
============  =====================================  ================  ==========================================

Where a column name differs between mirrors (``problem``/``question``), the normaliser accepts both;
a row with none of the expected columns is a ``ValueError`` naming the columns it has. The ids and
columns follow the dataset cards and public loaders at the time of writing; CI never reaches the Hub.
FOLIO on the Hub is the revised release, whose validation split differs from the v0.0 file (204 items)
that ``CCPO_DATA_DIR`` provides; its ids are therefore ``folio-hub-<row>``, and loading it logs a warning.

Tests and offline users point the step at a local copy with the ``hub_path`` option: a JSON/JSONL
file in the upstream column layout, a local dataset folder, or another Hub id with the same columns.
The real normalisers run on it.

The Hub must never hang: when ``datasets`` is not in offline mode, a TCP probe of the endpoint (or the
HTTPS proxy) with a short timeout (``CCPO_HUB_TIMEOUT``, default 3 s) runs first; if it fails, the step
fails at once with a message suggesting ``HF_HUB_OFFLINE=1`` for a cached copy.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccpo_env.data.local import answer_to_str

logger = logging.getLogger("ccpo_env.data")

Row = Mapping[str, Any]
Record = dict[str, Any]


class HubUnavailable(RuntimeError):
    """The Hub step could not provide the data (no ``datasets``, offline, unreachable, not found)."""


@dataclass(frozen=True)
class HubSpec:
    """Where a benchmark lives on the Hub and how its rows become records.

    Attributes:
        repo: the Hub dataset id.
        parts: ``(config, split, tag)`` triples read in order and concatenated; ``tag`` is passed to
            the normaliser (e.g. AIME I/II).
        normalise: ``(row, k, tag) -> record`` where ``k`` is the row's position within its part
            (``tag`` is ``None`` when ``hub_path`` points at a single local file).
    """

    repo: str
    parts: tuple[tuple[str | None, str, str | None], ...]
    normalise: Callable[[Row, int, str | None], Record]


# --------------------------------------------------------------------------------------------------
# Normalisers
# --------------------------------------------------------------------------------------------------
def _pick(row: Row, *names: str) -> Any:
    """The first of ``names`` present in the row; a clear error listing the columns otherwise."""
    for n in names:
        if n in row:
            return row[n]
    raise ValueError(f"Hub row has none of the columns {list(names)}; it has {sorted(row)}")


def _rest(row: Row, *used: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in used}


def _last_boxed(text: str) -> str:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), matched by braces; ``""`` if none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return ""
    i = text.find("{", start)
    if i < 0:
        return ""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return ""


def _norm_math500(row: Row, k: int, tag: str | None) -> Record:
    return {
        "id": row.get("unique_id") or f"math500-{k}",
        "problem": _pick(row, "problem"),
        "answer": answer_to_str(_pick(row, "answer")),
        **_rest(row, "unique_id", "problem", "answer"),
    }


def _norm_aime24(row: Row, k: int, tag: str | None) -> Record:
    # HuggingFaceH4/aime_2024 keeps AI-MO's ids (60..89), the same ids as the Qwen2.5-Math file.
    rid = row.get("id")
    return {
        "id": f"aime2024-{rid if rid is not None else k}",
        "problem": _pick(row, "problem", "question", "Problem"),
        "answer": answer_to_str(_pick(row, "answer", "Answer")),
        **_rest(row, "id", "problem", "question", "Problem", "answer", "Answer"),
    }


def _norm_aime25(row: Row, k: int, tag: str | None) -> Record:
    if tag is None:  # a single local file holding both papers: I is rows 0-14, II rows 15-29
        tag, k = ("I", k) if k < 15 else ("II", k - 15)
    return {
        "id": f"aime2025-{tag}-{k + 1}",
        "problem": _pick(row, "question", "problem"),
        "answer": answer_to_str(_pick(row, "answer")),
        **_rest(row, "id", "question", "problem", "answer"),
    }


def _norm_amc23(row: Row, k: int, tag: str | None) -> Record:
    return {
        "id": f"amc23-{k}",
        "problem": _pick(row, "question", "problem"),
        "answer": answer_to_str(_pick(row, "answer")),
        **_rest(row, "id", "question", "problem", "answer"),
    }


def _norm_gaokao(row: Row, k: int, tag: str | None) -> Record:
    raw = answer_to_str(_pick(row, "answer"))
    answer = raw.replace("$", "").strip()  # the Qwen2.5-Math parser's rule, as in the local file
    return {
        "id": f"gaokao2023en-{k}",
        "problem": _pick(row, "question", "problem"),
        "answer": answer,
        "answer_original": raw,
        **({"answer_missing": True} if not answer else {}),
        **_rest(row, "question", "problem", "answer"),
    }


def _norm_minerva(row: Row, k: int, tag: str | None) -> Record:
    answer = answer_to_str(row.get("answer"))
    if not answer:
        answer = _last_boxed(str(row.get("solution") or ""))
    return {
        "id": f"minerva-{k}",
        "problem": _pick(row, "question", "problem"),
        "answer": answer,
        **_rest(row, "question", "problem", "answer", "idx"),
    }


def _norm_gsm8k(row: Row, k: int, tag: str | None) -> Record:
    full = str(_pick(row, "answer"))
    solution, sep, final = full.rpartition("####")
    if not sep:
        raise ValueError(f"gsm8k row {k}: answer has no '####' marker: {full[-80:]!r}")
    return {
        "id": f"gsm8k-{k}",
        "problem": _pick(row, "question", "problem"),
        "answer": final.replace(",", "").strip(),
        "solution": solution.strip(),
        **_rest(row, "question", "problem", "answer"),
    }


_FOLIO_LABELS = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}


def folio_prompt(premises: str | list[str], conclusion: str) -> str:
    """The FOLIO problem text, identical in layout to the local ``folio.jsonl``."""
    lines = premises if isinstance(premises, list) else str(premises).splitlines()
    body = "\n".join(str(x) for x in lines if str(x).strip())
    return (
        f"Premises:\n{body}\n\nConclusion: {conclusion}\n\n"
        "Is the conclusion True, False, or Uncertain given the premises?"
    )


def _norm_folio(row: Row, k: int, tag: str | None) -> Record:
    label = str(_pick(row, "label")).strip()
    return {
        "id": f"folio-hub-{k}",
        "problem": folio_prompt(_pick(row, "premises"), str(_pick(row, "conclusion"))),
        "answer": _FOLIO_LABELS.get(label.lower(), label),
        **_rest(row, "label"),
    }


def _norm_math_train(row: Row, k: int, tag: str | None) -> Record:
    solution = str(_pick(row, "solution"))
    subject = tag or str(row.get("type", "math"))
    return {
        "id": f"math-train/{subject}/{k}",
        "problem": _pick(row, "problem"),
        "answer": _last_boxed(solution),
        "solution": solution,
        **_rest(row, "problem", "solution"),
    }


_MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                  "prealgebra", "precalculus")

HUB_SPECS: dict[str, HubSpec] = {
    "math500": HubSpec("HuggingFaceH4/MATH-500", ((None, "test", None),), _norm_math500),
    "aime24": HubSpec("HuggingFaceH4/aime_2024", ((None, "train", None),), _norm_aime24),
    "aime25": HubSpec(
        "opencompass/AIME2025", (("AIME2025-I", "test", "I"), ("AIME2025-II", "test", "II")), _norm_aime25
    ),
    "amc23": HubSpec("math-ai/amc23", ((None, "test", None),), _norm_amc23),
    "gaokao2023en": HubSpec(
        "MARIO-Math-Reasoning/Gaokao2023-Math-En", ((None, "train", None),), _norm_gaokao
    ),
    "minerva_math": HubSpec("math-ai/minervamath", ((None, "test", None),), _norm_minerva),
    "gsm8k": HubSpec("openai/gsm8k", (("main", "test", None),), _norm_gsm8k),
    "folio": HubSpec("tasksource/folio", ((None, "validation", None),), _norm_folio),
    # MATH train (Hendrycks et al.), one config per subject; the paper's RL training set.
    "math_train": HubSpec("EleutherAI/hendrycks_math", tuple((s, "train", s) for s in _MATH_SUBJECTS), _norm_math_train),
}


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def _import_datasets() -> Any:
    import datasets  # noqa: PLC0415 - lazy on purpose: an optional, heavy dependency

    return datasets


def _offline_mode(datasets_mod: Any) -> bool:
    """Whether ``datasets`` runs cache-only (it reads HF_HUB_OFFLINE/HF_DATASETS_OFFLINE at import)."""
    return bool(getattr(getattr(datasets_mod, "config", None), "HF_HUB_OFFLINE", False))


def _probe_hub(timeout: float) -> str | None:
    """``None`` if a TCP connection to the Hub endpoint (or the HTTPS proxy) opens in time, else why not."""
    proxy = next(
        (
            os.environ[v]
            for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
            if os.environ.get(v)
        ),
        "",
    )
    url = (
        urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy
        else urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    )
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"cannot reach {host}:{port} ({type(e).__name__}: {e})"
    return None


def _rows(ds: Any) -> list[Row]:
    return [dict(r) for r in ds]


def _load_local(
    datasets_mod: Any, path: Path, spec: HubSpec, cache_dir: str | None
) -> list[tuple[list[Row], str | None]]:
    if path.is_file():
        fmt = {".csv": "csv", ".parquet": "parquet"}.get(path.suffix.lower(), "json")
        ds = datasets_mod.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache_dir)
        return [(_rows(ds), None)]
    dd = datasets_mod.load_dataset(str(path), cache_dir=cache_dir)
    wanted = spec.parts[0][1]
    if wanted in dd:
        split = wanted
    elif len(dd) == 1:
        split = next(iter(dd))
    else:
        raise HubUnavailable(f"local folder {path} has splits {sorted(dd)}; expected {wanted!r}")
    return [(_rows(dd[split]), None)]


def _looks_like_path(s: str) -> bool:
    """A local path rather than a Hub id (``owner/name``), judged by its shape."""
    suffix = Path(s).suffix.lower()
    return (
        s.startswith((".", "/", "~"))
        or "\\" in s
        or s.count("/") > 1
        or suffix in {".json", ".jsonl", ".csv", ".parquet"}
    )


def load_hub_records(
    name: str, *, hub_path: str | os.PathLike[str] | None = None, cache_dir: str | None = None
) -> tuple[list[Record], str]:
    """Rows of benchmark ``name`` from the Hub (or ``hub_path``), normalised; and their origin string.

    Raises:
        HubUnavailable: ``datasets`` is missing, the Hub cannot be reached, or loading failed.
        ValueError: rows were found but do not have the expected columns.
    """
    spec = HUB_SPECS[name]
    try:
        datasets_mod = _import_datasets()
    except ImportError as e:
        raise HubUnavailable(f"the `datasets` package is not installed ({e})") from None

    local = Path(hub_path) if hub_path is not None and Path(hub_path).exists() else None
    if hub_path is not None and local is None and _looks_like_path(str(hub_path)):
        raise HubUnavailable(f"hub_path {str(hub_path)!r} does not exist")
    repo = str(hub_path) if hub_path is not None and local is None else spec.repo
    try:
        if local is not None:
            parts = _load_local(datasets_mod, local, spec, cache_dir)
            origin = str(local)
        else:
            if not _offline_mode(datasets_mod):
                timeout = float(os.environ.get("CCPO_HUB_TIMEOUT", "3"))
                why = _probe_hub(timeout)
                if why:
                    raise HubUnavailable(
                        f"{why}; to use a copy already in the Hugging Face cache set HF_HUB_OFFLINE=1 "
                        "(before Python starts)"
                    )
            parts = [
                (_rows(datasets_mod.load_dataset(repo, config, split=split, cache_dir=cache_dir)), tag)
                for config, split, tag in spec.parts
            ]
            origin = f"hf://{repo}"
    except HubUnavailable:
        raise
    except Exception as e:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ...)
        msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise HubUnavailable(f"loading {repo!r} failed: {type(e).__name__}: {msg}") from e

    # Normalisation runs outside the try above: a column mismatch is a real error, not "unavailable".
    records = [spec.normalise(row, k, tag) for rows, tag in parts for k, row in enumerate(rows)]
    if name == "folio":
        logger.warning(
            "folio: loaded from %s, the revised FOLIO release; the local folio.jsonl (v0.0 validation, "
            "204 items) differs. Set CCPO_DATA_DIR to use it.",
            origin,
        )
    return records, origin
