#!/usr/bin/env bash
# Sets up the venv (scripts/install.sh) and runs every test: the scripted end-to-end demo, then
# unit tests (no Ray) and integration tests (one real Ray + Serve + milvus-lite cluster over gRPC).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[test] end-to-end demo ..."
.venv/bin/memos-cluster demo
echo "[test] unit and integration tests ..."
.venv/bin/python -m pytest -p no:cacheprovider "$@"
