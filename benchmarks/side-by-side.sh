#!/usr/bin/env bash
# Ours and the peers (grpc-go 1.33, grpc-gateway v1.6.4, a Go net/http + encoding/json
# proxy, the article's Python server) measured in one run, alternating, medians of R
# rounds: benchmarks/side_by_side.py says what each section measures.
#
#   benchmarks/side-by-side.sh                       # after make release; builds the peers if missing
#   R=3 DURATION=5 SECTIONS="a b c d e" BASELINE_BIN=/tmp/outliers-old benchmarks/side-by-side.sh
#
# Writes .build-bench/side-by-side-STAMP/{summary.md,results.json,*.log}. Keep the
# machine otherwise idle: the servers share cpu0, the load generator cpu1.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in h2load wrk taskset curl; do
  command -v $tool >/dev/null || { echo "side-by-side: $tool is missing (make deps installs it)" >&2; exit 1; }
done
[[ -x .build-peers/bin/server && -x .build-peers/bin/litegw && -x .build-peers/bin/gateway ]] || benchmarks/peers/setup.sh
[[ -x .venv/bin/python ]] || make venv
exec python3 benchmarks/side_by_side.py
