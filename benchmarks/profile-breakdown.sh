#!/usr/bin/env bash
# The per-request profile of the gateway's whole path on one core: `outliers serve`
# (gateway and backend) pinned to cpu0, wrk -t1 -c16 on cpu1 posting the 1000-metric
# body, perf sampling all of cpu0 (kernel included) with call chains for SECONDS.
# Prints the breakdown by phase (profile_breakdown.py) and keeps perf.data.
#
#   benchmarks/profile-breakdown.sh [OUTLIERS_BIN] [OUT_DIR]
#   SECONDS_PROFILED=8 BODY=examples/metrics.json PORT=8190
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/outliers}
out=${2:-.build-bench/profile-$(date +%Y%m%d-%H%M%S)}
seconds=${SECONDS_PROFILED:-8}
body=${BODY:-examples/metrics.json}
port=${PORT:-8190}
for tool in perf wrk taskset; do
  command -v $tool >/dev/null || { echo "profile-breakdown: $tool is missing (apt-get install linux-perf wrk util-linux)" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "profile-breakdown: no binary at $bin (swift build -c release)" >&2; exit 1; }
[[ -f $body ]] || { echo "profile-breakdown: no body at $body" >&2; exit 1; }
mkdir -p "$out"
lua="$out/post.lua"
cat > "$lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("$body", "rb"))
wrk.body = f:read("*a")
f:close()
LUA

taskset -c 0 "$bin" serve --http-port "$port" --grpc-port $((port + 1)) > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "localhost:$port/healthz" && break; sleep 0.1; done
answer=$(curl -s "localhost:$port/detect" --data-binary @"$body")
echo "answer: $answer"

taskset -c 1 wrk -t1 -c16 -d$((seconds + 3))s -s "$lua" "http://127.0.0.1:$port/detect" > "$out/wrk.txt" 2>&1 &
load=$!
sleep 1
perf record -a -C 0 -F 1999 -g -o "$out/perf.data" -- sleep "$seconds" 2> "$out/perf-record.log"
wait $load
rate=$(awk '/^Requests\/sec:/ {print $2}' "$out/wrk.txt")
[[ -n $rate ]] || { echo "profile-breakdown: wrk measured nothing:" >&2; cat "$out/wrk.txt" >&2; exit 1; }
perf script -i "$out/perf.data" -F comm,ip,sym,dso 2>/dev/null > "$out/perf.script"
python3 benchmarks/profile_breakdown.py "$rate" < "$out/perf.script" | tee "$out/breakdown.md"
echo "perf data: $out/perf.data ($(wc -l < "$out/perf.script") lines of perf script)"
