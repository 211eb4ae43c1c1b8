#!/usr/bin/env bash
# Regenerates the Python gRPC code from protos/ into memos_cluster/api/. The proto path is mapped
# so that the generated modules import each other as memos_cluster.api.memos.v1.*.
# Run after editing a .proto; tests/unit/test_protos.py fails if the committed code is stale.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here}
python -m grpc_tools.protoc \
  -Imemos_cluster/api="$here/protos" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$here/protos/memos/v1/memos.proto"
