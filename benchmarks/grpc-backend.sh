#!/usr/bin/env bash
# benchmarks/grpc-backend.sh: h2load against /pb.Outliers/Detect, `outliers backend`
# versus the article's Python server (examples/python/server.py), in the same run.
#
# Usage:
#   benchmarks/grpc-backend.sh            # after `swift build -c release` and `make deps`
#   N=20000 R=5 benchmarks/grpc-backend.sh
#
# Environment (all optional):
#   OUTLIERS_BIN  server binary            (default .build/release/outliers; built by nobody here)
#   PYTHON        Python with grpcio/numpy (default .venv/bin/python)
#   N             requests per h2load run  (default 10000)
#   R             repetitions; medians are reported (default 3)
#   CONFIGS       h2load client/stream shapes "CxM ..." (default "1x1 1x16 4x4":
#                 1 connection 1 stream, 1 connection 16 streams, 4 connections x 4 streams)
#   SERVERS       which servers to run (default "outliers python"; also "outliers-tls":
#                 `outliers backend --tls-cert …` with a certificate made here, h2load over
#                 https with ALPN h2)
#   OUT           also write the summary table to this file
#
# What it does, all on 127.0.0.1 only:
#   1. writes the article's request as a gRPC body file: 0x00 + uint32 big-endian length +
#      OutliersRequest bytes (1000 metrics from SplitMix64 seed 2020 scaled to [0,40),
#      outliers 97.3/92.1/93.2 planted at 7/113/835, name "CPU", time 2020-05-22T14:13:11Z;
#      the same data as Tests/fixtures/make_fixtures.py "article-demo");
#   2. for each server: starts it pinned to core 0 (`taskset -c 0`; ours with --threads 1),
#      checks with a real grpcio call that Detect answers [7, 113, 835] (h2load itself only
#      looks at :status, not grpc-status), warms up, then runs, pinned to core 1,
#        h2load -n N -c C -m M -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
#               -d body.bin --log-file LOG http://127.0.0.1:PORT/pb.Outliers/Detect
#      R times per shape, checks every request succeeded, computes p50/p99 from the log
#      file, and checks the gRPC answer once more afterwards;
#   3. prints a table of medians: server, connections x streams, req/s, p50, p99 (ms).
# Every h2load run is bounded by `timeout`; servers are stopped by their PID on exit.
# The Python server logs two INFO lines per request (as in the article) to a log file.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTLIERS_BIN=${OUTLIERS_BIN:-.build/release/outliers}
PYTHON=${PYTHON:-.venv/bin/python}
N=${N:-10000}
R=${R:-3}
CONFIGS=${CONFIGS:-"1x1 1x16 4x4"}
SERVERS=${SERVERS:-"outliers python"}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

die() { echo "grpc-backend.sh: $*" >&2; exit 1; }
command -v h2load >/dev/null || die "h2load not found (apt-get install nghttp2-client)"
command -v taskset >/dev/null || die "taskset not found (apt-get install util-linux)"
[ -x "$PYTHON" ] || die "$PYTHON not found: run make deps (python3 -m venv .venv && .venv/bin/pip install -r Tests/interop/requirements.txt)"
if [[ " $SERVERS " == *" outliers "* ]]; then
  [ -x "$OUTLIERS_BIN" ] || die "$OUTLIERS_BIN not found: build it first (swift build -c release) or set OUTLIERS_BIN"
fi
if [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
else
  echo "warning: fewer than 2 cores, server and load share a core" >&2
  PIN_SERVER=""; PIN_LOAD=""
fi

WORK=$(mktemp -d /tmp/grpc-backend-bench.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Python helper
HELPER="$WORK/helper.py"
cat >"$HELPER" <<'EOF'
import os, socket, statistics, sys
ROOT, WORK, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
sys.path.insert(0, os.path.join(ROOT, "Tests", "fixtures"))
stubs = os.path.join(WORK, "stubs")

def load_stubs():
    if not os.path.exists(os.path.join(stubs, "outliers_pb2.py")):
        import grpc_tools
        from grpc_tools import protoc
        os.makedirs(stubs, exist_ok=True)
        wk = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        protos = os.path.join(ROOT, "Protos")
        rc = protoc.main(["protoc", f"-I{protos}", f"-I{wk}", f"--python_out={stubs}",
                          f"--grpc_python_out={stubs}", os.path.join(protos, "outliers.proto")])
        assert rc == 0, "protoc failed"
    sys.path.insert(0, stubs)
    import outliers_pb2, outliers_pb2_grpc
    return outliers_pb2, outliers_pb2_grpc

def demo_request(pb):
    import make_fixtures
    from google.protobuf.timestamp_pb2 import Timestamp
    values = make_fixtures.generate(2020, 1000, 0.0, 40.0, [[7, 97.3], [113, 92.1], [835, 93.2]])
    ts = Timestamp(seconds=1590156791)  # 2020-05-22T14:13:11Z
    return pb.OutliersRequest(metrics=[pb.Metric(time=ts, name="CPU", value=float(v)) for v in values])

if cmd == "port":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
elif cmd == "body":
    pb, _ = load_stubs()
    payload = demo_request(pb).SerializeToString()
    with open(args[0], "wb") as f:
        f.write(b"\x00" + len(payload).to_bytes(4, "big") + payload)
    print(len(payload) + 5)
elif cmd == "check":  # ADDR TIMEOUT [CA]: wait until serving, then check the answer
    import time, grpc
    pb, pbg = load_stubs()
    deadline = time.monotonic() + float(args[1])
    if len(args) > 2:
        with open(args[2], "rb") as f:
            channel = grpc.secure_channel(args[0], grpc.ssl_channel_credentials(f.read()),
                                          options=[("grpc.ssl_target_name_override", "localhost")])
    else:
        channel = grpc.insecure_channel(args[0])
    with channel as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=max(deadline - time.monotonic(), 0.1))
        except grpc.FutureTimeoutError:
            sys.exit(f"no server on {args[0]}")
        got = list(pbg.OutliersStub(ch).Detect(demo_request(pb), timeout=10).indices)
    if got != [7, 113, 835]:
        sys.exit(f"wrong answer from {args[0]}: {got}")
    print("ok [7, 113, 835]")
elif cmd == "latency":  # LOGFILE EXPECTED -> "p50_ms p99_ms"
    lat, bad = [], 0
    with open(args[0]) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) < 3:
                continue
            if cols[1] != "200":
                bad += 1
            lat.append(int(cols[2]))
    if bad or len(lat) != int(args[1]):
        sys.exit(f"log {args[0]}: {len(lat)} requests logged, {bad} not 200 (expected {args[1]})")
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0
    print(f"{pick(0.50):.3f} {pick(0.99):.3f}")
elif cmd == "median":  # DECIMALS VALUES...
    print(f"{statistics.median(float(a) for a in args[1:]):.{int(args[0])}f}")
EOF
helper() { "$PYTHON" "$HELPER" "$ROOT" "$WORK" "$@"; }

BODY="$WORK/body.bin"
echo "request body: $(helper body "$BODY") bytes (5-byte gRPC prefix + OutliersRequest, 1000 metrics) -> $BODY"

CERT="$WORK/cert.pem"; KEY="$WORK/key.pem"
if [[ " $SERVERS " == *" outliers-tls "* ]]; then
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$KEY" -out "$CERT" 2>/dev/null \
    || die "openssl could not make a certificate"
fi

# The server's URL scheme and check arguments, per server name.
scheme() { [ "$1" = outliers-tls ] && echo https || echo http; }
check_args() { [ "$1" = outliers-tls ] && echo "$CERT"; }

start_server() { # NAME PORT
  local name=$1 port=$2
  case $name in
    outliers) $PIN_SERVER "$OUTLIERS_BIN" backend --host 127.0.0.1 --port "$port" --threads 1 \
                >"$WORK/$name.log" 2>&1 & ;;
    outliers-tls) $PIN_SERVER "$OUTLIERS_BIN" backend --host 127.0.0.1 --port "$port" --threads 1 \
                --tls-cert "$CERT" --tls-key "$KEY" >"$WORK/$name.log" 2>&1 & ;;
    python)   $PIN_SERVER "$PYTHON" examples/python/server.py --host 127.0.0.1 --port "$port" \
                >"$WORK/$name.log" 2>&1 & ;;
    *) die "unknown server $name" ;;
  esac
  SERVER_PID=$!
  # shellcheck disable=SC2046 # check_args is empty or one path
  if ! helper check "127.0.0.1:$port" 20 $(check_args "$name"); then
    echo "--- $name log:" >&2; tail -n 40 "$WORK/$name.log" >&2; die "$name did not serve correctly"
  fi
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

run_h2load() { # PORT C M N LOGFILE -> prints req/s (SCHEME: http or https)
  local port=$1 c=$2 m=$3 n=$4 log=$5 out
  out=$(timeout "$RUN_TIMEOUT" $PIN_LOAD h2load -n "$n" -c "$c" -m "$m" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$BODY" \
        --log-file "$log" "${SCHEME:-http}://127.0.0.1:$port/pb.Outliers/Detect" 2>&1) \
    || { echo "$out" >&2; die "h2load failed or timed out (${RUN_TIMEOUT}s)"; }
  local ok
  ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  [ "$ok" = "$n" ] || { echo "$out" >&2; die "h2load: $ok of $n requests succeeded"; }
  sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out"
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
echo "h2load: N=$N requests per run, R=$R runs per shape, shapes (connections x streams): $CONFIGS"
for name in $SERVERS; do
  port=$(helper port)
  SCHEME=$(scheme "$name")
  start_server "$name" "$port"
  echo "== $name on 127.0.0.1:$port (pid $SERVER_PID, ${PIN_SERVER:-unpinned}): answer ok"
  run_h2load "$port" 1 16 1000 "$WORK/warmup.log" >/dev/null  # warm-up, not recorded
  for shape in $CONFIGS; do
    c=${shape%x*}; m=${shape#*x}
    rps_all=(); p50_all=(); p99_all=()
    for r in $(seq "$R"); do
      log="$WORK/$name-$shape-$r.log"
      rps=$(run_h2load "$port" "$c" "$m" "$N" "$log")
      lat=$(helper latency "$log" "$N") || die "bad h2load log $log"
      read -r p50 p99 <<<"$lat"
      echo "   $name ${c}x${m} run $r: $rps req/s, p50 $p50 ms, p99 $p99 ms"
      rps_all+=("$rps"); p50_all+=("$p50"); p99_all+=("$p99")
    done
    printf '%s %s %s %s %s\n' "$name" "$shape" \
      "$(helper median 1 "${rps_all[@]}")" "$(helper median 3 "${p50_all[@]}")" \
      "$(helper median 3 "${p99_all[@]}")" >>"$RESULTS"
  done
  # shellcheck disable=SC2046
  helper check "127.0.0.1:$port" 10 $(check_args "$name") >/dev/null || die "$name answered wrongly after the load"
  stop_server
done

{
  echo
  echo "gRPC Detect, 1000-metric request, server on core 0, h2load on core 1; medians of $R runs of $N requests"
  printf '%-12s %-16s %12s %10s %10s\n' server "conns x streams" "req/s" "p50 ms" "p99 ms"
  while read -r name shape rps p50 p99; do
    c=${shape%x*}; m=${shape#*x}
    printf '%-12s %-16s %12s %10s %10s\n' "$name" "$c x $m ($((c * m)))" "$rps" "$p50" "$p99"
  done <"$RESULTS"
} | tee ${OUT:+"$OUT"}
