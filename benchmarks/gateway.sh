#!/usr/bin/env bash
# benchmarks/gateway.sh: wrk against the REST gateway of `outliers serve`: POST /detect
# with the article's 1000-metric JSON (examples/metrics.json, the whole path: HTTP,
# JSON -> protobuf, gRPC hop, detection, JSON answer), and GET /openapi.yaml, a static
# answer of our own gateway (the ceiling of its HTTP front), in the same run.
#
# Usage:
#   benchmarks/gateway.sh               # after `swift build -c release` (make release)
#   R=5 DURATION=20 CONNS="1 16 64" benchmarks/gateway.sh
#
# Environment (all optional):
#   OUTLIERS_BIN  server binary                 (default .build/release/outliers)
#   DURATION      seconds per wrk run           (default 10)
#   CONNS         wrk connection counts         (default "1 16")
#   R             repetitions; medians reported (default 3)
#   ROUTES        what to load                  (default "detect openapi"; also "metrics", "healthz")
#   WRK_THREADS   wrk threads (at most the smallest of CONNS) (default 1)
#   WARMUP        seconds of warm-up per route  (default 2)
#   SERVE_ARGS    extra `outliers serve` flags  (e.g. "--threads 1")
#   TLS           1: serve with --tls-cert/--tls-key (a certificate made here), both hops
#                 over TLS, wrk and curl over https (default 0)
#   OUT           also write the summary table to this file
#
# What it does, on 127.0.0.1 only:
#   1. starts `outliers serve --host 127.0.0.1 --http-port P --grpc-port G` on free ports,
#      pinned to core 0 (taskset -c 0); wrk runs pinned to core 1;
#   2. checks once, before any timing, that POST /detect with examples/metrics.json
#      answers exactly {"indices":[7,113,835]} and that GET /openapi.yaml is openapi.yaml;
#   3. per route: a warm-up, then for each connection count R runs of
#        wrk -t WRK_THREADS -c C -d DURATION --latency [-s detect.lua] URL
#      (detect.lua sets method POST, the body and Content-Type: application/json),
#      each failing the script on socket errors or non-2xx answers;
#   4. checks the answer again, stops the server (SIGTERM), and prints a table of the
#      medians: route, connections, req/s, p50 ms, p99 ms (wrk's latency distribution).
# Every wrk run is bounded by `timeout`; the server is stopped by its PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
OUTLIERS_BIN=${OUTLIERS_BIN:-.build/release/outliers}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 16"}
R=${R:-3}
ROUTES=${ROUTES:-"detect openapi"}
WRK_THREADS=${WRK_THREADS:-1}
WARMUP=${WARMUP:-2}
SERVE_ARGS=${SERVE_ARGS:-}
EXPECTED='{"indices":[7,113,835]}'
BODY_FILE=$(pwd)/examples/metrics.json

die() { echo "gateway.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
command -v taskset >/dev/null || die "taskset not found (apt-get install util-linux)"
[ -x "$OUTLIERS_BIN" ] || die "$OUTLIERS_BIN not found: build it first (swift build -c release) or set OUTLIERS_BIN"
[ -f "$BODY_FILE" ] || die "$BODY_FILE not found (.venv/bin/python examples/make_metrics.py writes it)"
[[ "$DURATION" =~ ^[0-9]+$ ]] || die "DURATION is whole seconds, not '$DURATION'"
for c in $CONNS; do
  [ "$c" -ge "$WRK_THREADS" ] || die "WRK_THREADS=$WRK_THREADS is more than CONNS value $c"
done
if [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
else
  echo "warning: fewer than 2 cores, server and wrk share a core" >&2
  PIN_SERVER=""; PIN_LOAD=""
fi

WORK=$(mktemp -d /tmp/gateway-bench.XXXXXX)
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( (RANDOM % 20000) + 20000 ))
    # Free when nothing accepts on it and no socket is bound to it.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && \
       ! grep -qi ":$(printf '%04X' "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$p"; return
    fi
  done
  die "no free port found"
}

median() { # NUMBERS... -> the median (mean of the middle two for an even count)
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
    if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f\n", m }'
}

to_ms() { # wrk duration (123.45us, 1.23ms, 2.00s, 1.00m) -> milliseconds
  awk -v d="$1" 'BEGIN {
    n = d + 0; u = d; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    else if (u == "h") n *= 3600000; else if (u != "ms") { print "?"; exit 1 }
    printf "%.3f\n", n }'
}

# ---------------------------------------------------------------- wrk script
cat >"$WORK/detect.lua" <<EOF
-- POST /detect with the article's 1000 metrics as JSON.
local f = assert(io.open("$BODY_FILE", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF

route_path() {
  case $1 in
    detect) echo /detect ;;
    openapi) echo /openapi.yaml ;;
    metrics) echo /metrics ;;
    healthz) echo /healthz ;;
    *) die "unknown route '$1' (detect, openapi, metrics, healthz)" ;;
  esac
}

run_wrk() { # ROUTE CONNS SECONDS OUTFILE
  local route=$1 c=$2 d=$3 out=$4 script=()
  [ "$route" = detect ] && script=(-s "$WORK/detect.lua")
  if ! timeout $((d + 60)) $PIN_LOAD wrk -t "$WRK_THREADS" -c "$c" -d "${d}s" --timeout 10s --latency \
       "${script[@]}" "$URL$(route_path "$route")" >"$out" 2>&1; then
    cat "$out" >&2; die "wrk failed or timed out on $route -c $c"
  fi
  if grep -qE '^ *(Socket errors|Non-2xx or 3xx responses)' "$out"; then
    cat "$out" >&2; die "errors during the $route -c $c run (see above)"
  fi
}

check_answers() {
  local got
  got=$(curl -sS --max-time 30 -H 'Content-Type: application/json' --data-binary @"$BODY_FILE" "$URL/detect") \
    || die "POST /detect failed"
  [ "$got" = "$EXPECTED" ] || die "POST /detect answered '$got', not '$EXPECTED'"
  curl -sS --max-time 30 "$URL/openapi.yaml" | cmp -s - openapi.yaml \
    || die "GET /openapi.yaml is not openapi.yaml byte for byte"
}

# ---------------------------------------------------------------- server
HTTP_PORT=$(free_port)
GRPC_PORT=$(free_port)
while [ "$GRPC_PORT" = "$HTTP_PORT" ]; do GRPC_PORT=$(free_port); done
URL="http://127.0.0.1:$HTTP_PORT"
if [ "${TLS:-0}" = 1 ]; then
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null \
    || die "openssl could not make a certificate"
  SERVE_ARGS="$SERVE_ARGS --tls-cert $WORK/cert.pem --tls-key $WORK/key.pem"
  export CURL_CA_BUNDLE="$WORK/cert.pem"  # curl verifies against it
  URL="https://127.0.0.1:$HTTP_PORT"
fi
# shellcheck disable=SC2086 # SERVE_ARGS and PIN_SERVER are word lists
$PIN_SERVER "$OUTLIERS_BIN" serve --host 127.0.0.1 --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" \
  $SERVE_ARGS >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "outliers serve exited"; }
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/healthz")" = 200 ]; then
    ready=1; break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { tail -n 40 "$WORK/serve.log" >&2; die "outliers serve not ready within 30 s"; }
check_answers
echo "outliers serve (pid $SERVER_PID, ${PIN_SERVER:-unpinned}) on $URL, gRPC 127.0.0.1:$GRPC_PORT: answer $EXPECTED ok"
echo "wrk: ${PIN_LOAD:-unpinned}, -t $WRK_THREADS, ${DURATION} s per run, R=$R runs per shape, connections: $CONNS"
echo "POST /detect body: examples/metrics.json, $(wc -c <"$BODY_FILE") bytes; GET /openapi.yaml: $(wc -c <openapi.yaml) bytes"

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for route in $ROUTES; do
  route_path "$route" >/dev/null
  run_wrk "$route" 16 "$WARMUP" "$WORK/warmup.txt"  # not recorded
  for c in $CONNS; do
    rps_all=(); p50_all=(); p99_all=()
    for r in $(seq "$R"); do
      out="$WORK/$route-$c-$r.txt"
      run_wrk "$route" "$c" "$DURATION" "$out"
      rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
      p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
      p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
      [ -n "$rps" ] && [ "$p50" != "?" ] && [ "$p99" != "?" ] || { cat "$out" >&2; die "cannot read wrk's output"; }
      printf '   %-8s -c %-3s run %s: %10s req/s  p50 %8s ms  p99 %8s ms\n' "$route" "$c" "$r" "$rps" "$p50" "$p99"
      rps_all+=("$rps"); p50_all+=("$p50"); p99_all+=("$p99")
    done
    printf '%s %s %s %s %s\n' "$(route_path "$route")" "$c" "$(median "${rps_all[@]}")" \
      "$(median "${p50_all[@]}")" "$(median "${p99_all[@]}")" >>"$RESULTS"
  done
done
check_answers  # still right after the load
stop_server

{
  echo
  echo "outliers serve on core 0, wrk on core 1, 127.0.0.1, ${URL%%://*}; medians of $R runs of ${DURATION} s"
  echo "(POST /detect: examples/metrics.json, 1000 metrics; GET /openapi.yaml: static, the HTTP front's ceiling)"
  printf '%-16s %6s %12s %10s %10s\n' route conns "req/s" "p50 ms" "p99 ms"
  while read -r path c rps p50 p99; do
    printf '%-16s %6s %12.1f %10.3f %10.3f\n' "$path" "$c" "$rps" "$p50" "$p99"
  done <"$RESULTS"
} | tee ${OUT:+"$OUT"}
