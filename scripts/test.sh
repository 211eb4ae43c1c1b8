#!/usr/bin/env bash
# Sets up the venv (scripts/install.sh) and runs every test: the scripted end-to-end demo, then
# unit tests (no Ray) and integration tests (one real Ray + Serve + milvus-lite cluster over gRPC,
# HTTP and the Ray transport), then the multi-node tests and the default model's grounded
# answers (tests/cluster: their own simulated multi-node Ray cluster, so their own pytest
# session). The console's browser test needs Debian's chromium: scripts/install_browser.sh.
# Extra arguments go to pytest and replace the default test paths.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_browser.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[test] end-to-end demo ..."
.venv/bin/memos-cluster demo
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
fi
echo "[test] unit and integration tests ..."
.venv/bin/python -m pytest -p no:cacheprovider --durations=10  # the slowest, to watch the 15-minute budget
echo "[test] multi-node tests (simulated cluster) ..."
.venv/bin/python -m pytest -p no:cacheprovider tests/cluster
