#!/usr/bin/env bash
# Sets up the venv (scripts/install.sh) and runs every test: unit tests (no Ray), integration tests
# (one real Ray + Serve + milvus-lite cluster over gRPC), then the scripted end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[test] unit and integration tests ..."
.venv/bin/python -m pytest -p no:cacheprovider "$@"
echo "[test] end-to-end demo ..."
.venv/bin/memos-cluster demo
