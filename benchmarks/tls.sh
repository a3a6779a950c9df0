#!/usr/bin/env bash
# benchmarks/tls.sh: TLS against cleartext, in one run (issue 12).
#
# Usage:
#   benchmarks/tls.sh                  # after `swift build -c release` and `make deps`
#   R=5 DURATION=10 K=1000 benchmarks/tls.sh
#
# Environment (all optional):
#   OUTLIERS_BIN  server binary                          (default .build/release/outliers)
#   R             repetitions; medians are reported      (default 3)
#   N             requests per h2load run (gRPC backend) (default 10000)
#   DURATION      seconds per wrk run (gateway)          (default 5)
#   K             new connections per handshake run      (default 500)
#
# What it runs, on 127.0.0.1, servers pinned to core 0 and load to core 1:
#   1. benchmarks/grpc-backend.sh with SERVERS="outliers outliers-tls": h2load over h2c
#      and over TLS (ALPN h2), the 1000-metric Detect, shapes 1x1, 1x16, 4x4;
#   2. benchmarks/gateway.sh for POST /detect, once cleartext (TLS=0) and once with
#      `serve --tls-…` (TLS=1: HTTPS and the gRPC hop over TLS), wrk -c 1 and -c 16;
#   3. new connections per second: h2load -n K -c K -m 1 (K clients, one connection and
#      one request each, so every request pays a connection and, over TLS, a full
#      handshake: ECDHE P-256, ECDSA P-256, TLS 1.3) against
#        the backend: grpc.health.v1.Health/Check, h2c against TLS;
#        the gateway:  GET /healthz over HTTP/1.1 (h2load --h1), http against https.
# Prints each part's table; the last is the handshake table (medians of R runs).
set -euo pipefail

cd "$(dirname "$0")/.."
OUTLIERS_BIN=${OUTLIERS_BIN:-.build/release/outliers}
R=${R:-3}
N=${N:-10000}
DURATION=${DURATION:-5}
K=${K:-500}

die() { echo "tls.sh: $*" >&2; exit 1; }
command -v h2load >/dev/null || die "h2load not found (apt-get install nghttp2-client)"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
[ -x "$OUTLIERS_BIN" ] || die "$OUTLIERS_BIN not found: build it first (swift build -c release)"
if [ "$(nproc)" -ge 2 ]; then PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"; else PIN_SERVER=""; PIN_LOAD=""; fi

echo "### 1. gRPC backend, h2c against TLS"
R=$R N=$N SERVERS="outliers outliers-tls" OUTLIERS_BIN=$OUTLIERS_BIN benchmarks/grpc-backend.sh
echo
echo "### 2. gateway (outliers serve), POST /detect, cleartext"
R=$R DURATION=$DURATION ROUTES=detect CONNS="1 16" TLS=0 OUTLIERS_BIN=$OUTLIERS_BIN benchmarks/gateway.sh
echo
echo "### 2. gateway (outliers serve), POST /detect, both hops over TLS"
R=$R DURATION=$DURATION ROUTES=detect CONNS="1 16" TLS=1 OUTLIERS_BIN=$OUTLIERS_BIN benchmarks/gateway.sh

# ---------------------------------------------------------------- 3. handshakes
WORK=$(mktemp -d /tmp/tls-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null \
  || die "openssl could not make a certificate"
printf '\0\0\0\0\0' >"$WORK/empty.grpc"  # an empty HealthCheckRequest, gRPC-framed
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; die "nothing on port $1"; }

B_PLAIN=$(port); B_TLS=$(port); H_PLAIN=$(port); G_PLAIN=$(port); H_TLS=$(port); G_TLS=$(port)
TLS_ARGS=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
$PIN_SERVER "$OUTLIERS_BIN" backend --port "$B_PLAIN" --threads 1 >"$WORK/b1.log" 2>&1 & PIDS+=($!)
$PIN_SERVER "$OUTLIERS_BIN" backend --port "$B_TLS" --threads 1 "${TLS_ARGS[@]}" >"$WORK/b2.log" 2>&1 & PIDS+=($!)
$PIN_SERVER "$OUTLIERS_BIN" serve --http-port "$H_PLAIN" --grpc-port "$G_PLAIN" >"$WORK/s1.log" 2>&1 & PIDS+=($!)
$PIN_SERVER "$OUTLIERS_BIN" serve --http-port "$H_TLS" --grpc-port "$G_TLS" "${TLS_ARGS[@]}" >"$WORK/s2.log" 2>&1 & PIDS+=($!)
for p in "$B_PLAIN" "$B_TLS" "$H_PLAIN" "$H_TLS"; do wait_port "$p"; done

handshakes() { # LABEL H2LOAD-ARGS... -> a result line: label, conn/s
  local label=$1; shift
  local rates=() out ok rate
  for _ in $(seq "$R"); do
    out=$(timeout 120 $PIN_LOAD h2load -n "$K" -c "$K" -m 1 -t 1 "$@" 2>&1) || { echo "$out" >&2; die "h2load failed: $label"; }
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
    [ "$ok" = "$K" ] || { echo "$out" >&2; die "$label: $ok of $K requests succeeded"; }
    rate=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    echo "   $label: $rate new connections/s" >&2
    rates+=("$rate")
  done
  printf '%-44s %10s\n' "$label" "$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.0f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
}

GRPC=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/empty.grpc")
{
  echo
  echo "### 3. new connections per second: h2load -n $K -c $K -m 1 (one request per connection), medians of $R"
  printf '%-44s %10s\n' "what" "conn/s"
  handshakes "backend, h2c, Health/Check" "${GRPC[@]}" "http://127.0.0.1:$B_PLAIN/grpc.health.v1.Health/Check"
  handshakes "backend, TLS 1.3 + ALPN h2, Health/Check" "${GRPC[@]}" "https://127.0.0.1:$B_TLS/grpc.health.v1.Health/Check"
  handshakes "gateway, http, GET /healthz (HTTP/1.1)" --h1 "http://127.0.0.1:$H_PLAIN/healthz"
  handshakes "gateway, https, GET /healthz (HTTP/1.1)" --h1 "https://127.0.0.1:$H_TLS/healthz"
}
