#!/usr/bin/env bash
# examples/curl.sh: the REST gateway by example, against a running `outliers serve`.
#
#   outliers serve &                 # or: make serve   (gateway on 8080, gRPC on 9999)
#   examples/curl.sh                 # HOST=127.0.0.1 PORT=8081 examples/curl.sh
#
# Prints every command, then its answer. Covers each body shape, the error cases,
# protobuf in and out, Grpc-Timeout, X-Request-Id, metadata, the gRPC path, /healthz,
# /metrics, /openapi.yaml.
# The contract is openapi.yaml (served at /openapi.yaml) and DESIGN.md §2.
#
# Binary protobuf bodies are made with protoc from Protos/outliers.proto (package
# protobuf-compiler; /usr/include holds google/protobuf/timestamp.proto with
# libprotobuf-dev); without protoc those steps are skipped. Note --data-binary for
# binary bodies: curl -d strips newlines and carriage returns, which is harmless
# for examples/metrics.json but corrupts protobuf.
set -u
cd "$(dirname "$0")/.."

HOST=${HOST:-localhost}
PORT=${PORT:-8080}
URL="http://$HOST:$PORT"
CURL="curl -sS --max-time 30"
PROTO_ARGS="-I Protos -I /usr/include Protos/outliers.proto"
TMP=$(mktemp -d /tmp/outliers-curl.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

section() { printf '\n======== %s\n' "$*"; }

# show TITLE COMMAND: print the command, run it, print its answer (and a newline).
show() {
  printf '\n# %s\n$ %s\n' "$1" "$2"
  eval "$2"
  echo
}

if ! $CURL -o /dev/null "$URL/healthz" 2>/dev/null; then
  echo "curl.sh: nothing answers on $URL; start the server first (outliers serve, or make serve)," >&2
  echo "         or point HOST/PORT at it: HOST=127.0.0.1 PORT=8080 $0" >&2
  exit 1
fi

# -w prints the status after the body (\n first: the bodies end without one).
STATUS="-w '\n(HTTP %{http_code})'"

section "Body shapes (answers: the indices of the outliers, ascending)"
show "The article's demo data, 1000 metrics (the README's first example)" \
  "$CURL $URL/detect -d @examples/metrics.json"
show "proto3 JSON of pb.OutliersRequest" \
  "$CURL $URL/detect -H 'Content-Type: application/json' -d '{\"metrics\":[{\"time\":\"2020-05-22T14:13:11Z\",\"name\":\"CPU\",\"value\":1},{\"time\":\"2020-05-22T14:13:12Z\",\"name\":\"CPU\",\"value\":2},{\"time\":\"2020-05-22T14:13:13Z\",\"name\":\"CPU\",\"value\":100},{\"value\":1},{\"value\":3},{\"value\":200},{\"value\":1}]}'"
show "A bare array of metric objects" \
  "$CURL $URL/detect -d '[{\"name\":\"CPU\",\"value\":1},{\"value\":2},{\"value\":100},{\"value\":1},{\"value\":3},{\"value\":200},{\"value\":1}]'"
show "A bare array of numbers (the article's example: it says [2, 5]; its own 2-sigma rule gives [5])" \
  "$CURL $URL/detect -d '[1,2,100,1,3,200,1]'"
show "Other proto3 JSON: any UTC offset, 0-9 fractional digits, values as strings, fields left out" \
  "$CURL $URL/detect -d '{\"metrics\":[{\"time\":\"2020-05-22T16:13:11.5+02:00\",\"value\":\"1\"},{\"time\":\"2020-05-22T14:13:11.123456789Z\",\"value\":2},{\"value\":\"100\"},{\"value\":1},{\"value\":3},{\"value\":200},{}]}'"
show "No outliers: an empty list, never a missing field" \
  "$CURL $URL/detect -d '[1,1,1,1]'"

section "Binary protobuf in and out (Content-Type / Accept: application/x-protobuf)"
if command -v protoc >/dev/null; then
  show "Encode the article's example as a binary pb.OutliersRequest with protoc" \
    "printf 'metrics { value: 1 } metrics { value: 2 } metrics { value: 100 } metrics { value: 1 } metrics { value: 3 } metrics { value: 200 } metrics { time { seconds: 1590156791 } name: \"CPU\" value: 1 }' | protoc --encode=pb.OutliersRequest $PROTO_ARGS > $TMP/request.pb && wc -c < $TMP/request.pb"
  show "Protobuf in, JSON out" \
    "$CURL $URL/detect -H 'Content-Type: application/x-protobuf' --data-binary @$TMP/request.pb"
  show "JSON in, protobuf out (decoded with protoc)" \
    "$CURL $URL/detect -H 'Accept: application/x-protobuf' -d @examples/metrics.json | protoc --decode=pb.OutliersResponse $PROTO_ARGS"
  show "Protobuf in and out" \
    "$CURL $URL/detect -H 'Content-Type: application/x-protobuf' -H 'Accept: application/x-protobuf' --data-binary @$TMP/request.pb | protoc --decode=pb.OutliersResponse $PROTO_ARGS"
  show "Bytes that are not a pb.OutliersRequest: 400" \
    "printf '\\377\\377\\377\\377' | $CURL $URL/detect -H 'Content-Type: application/x-protobuf' --data-binary @- $STATUS"
else
  echo "(protoc not found: apt-get install protobuf-compiler libprotobuf-dev; protobuf examples skipped)"
fi

section "Errors: {\"code\": <gRPC code>, \"message\": ..., \"details\": []} with grpc-gateway's HTTP status"
show "Malformed JSON: 400, the message says what and where (line, column)" \
  "$CURL $URL/detect -d '{\"metrics\":[{\"value\":1,}]}' $STATUS"
show "Trailing garbage: 400" \
  "$CURL $URL/detect -d '[1,2,3] x' $STATUS"
show "Wrong type: 400 naming the JSON path" \
  "$CURL $URL/detect -d '{\"metrics\":[{\"value\":1},{\"value\":2},{\"value\":3},{\"value\":true}]}' $STATUS"
show "Unknown field: 400 naming it" \
  "$CURL $URL/detect -d '{\"metrics\":[{\"value\":1,\"cpu\":2}]}' $STATUS"
show "A value that is not finite (the backend's INVALID_ARGUMENT): 400" \
  "$CURL $URL/detect -d '[1,\"NaN\",3]' $STATUS"
show "A Content-Type the gateway does not read: 415" \
  "$CURL $URL/detect -H 'Content-Type: text/plain' -d '[1,2,3]' $STATUS"
show "Wrong method: 405, with Allow (headers shown)" \
  "$CURL -i -X GET $URL/detect"
show "Unknown path: 404" \
  "$CURL $URL/nope $STATUS"
show "A body over the limit (16 MiB unless --max-body-bytes): 413, before it is parsed" \
  "head -c 17000000 /dev/zero | tr '\\0' ' ' | $CURL $URL/detect --data-binary @- $STATUS"

section "Headers: Grpc-Timeout (the backend call's deadline) and X-Request-Id"
show "Grpc-Timeout as gRPC writes it: digits and a unit (H M S m u n); 5S is five seconds" \
  "$CURL $URL/detect -H 'Grpc-Timeout: 5S' -d '[1,2,100,1,3,200,1]'"
show "An invalid Grpc-Timeout: 400" \
  "$CURL $URL/detect -H 'Grpc-Timeout: soon' -d '[1,2,3]' $STATUS"
echo "# (A backend slower than the deadline gives 504, code 4: try"
echo "#  .venv/bin/python examples/python/server.py --port 9998 --delay 1 &"
echo "#  outliers gateway --port 8081 --backend 127.0.0.1:9998 &"
echo "#  curl -s localhost:8081/detect -H 'Grpc-Timeout: 100m' -d '[1,2,3]')"
show "X-Request-Id is echoed (and sent to the backend as metadata)" \
  "$CURL -i $URL/detect -H 'X-Request-Id: curl-example-42' -d '[1,2,3]' | grep -i '^x-request-id'"
show "Without one, the gateway makes one (32 hex digits)" \
  "$CURL -i $URL/detect -d '[1,2,3]' | grep -i '^x-request-id'"

section "Metadata by grpc-gateway's rules, and the gRPC method's own path"
show "Grpc-Metadata-<Key> goes to the backend as <key>; its response metadata comes back as Grpc-Metadata-* / Grpc-Trailer-*" \
  "$CURL -i $URL/detect -H 'Grpc-Metadata-Tenant: acme' -H 'Authorization: Bearer example' -d '[1,2,100,1,3,200,1]'"
show "A header that cannot be metadata: 400 naming it" \
  "$CURL $URL/detect -H 'Grpc-Metadata-Trace-Bin: not base64!' -d '[1]' $STATUS"
show "POST /pb.Outliers/Detect answers as /detect (Envoy's auto_mapping)" \
  "$CURL $URL/pb.Outliers/Detect -H 'Content-Type: application/json' -d '{\"metrics\":[{\"value\":1},{\"value\":2},{\"value\":100},{\"value\":1},{\"value\":3},{\"value\":200},{\"value\":1}]}'"
echo
echo "# With 'outliers serve --auth-token-file FILE', a request without 'Authorization: Bearer <token>' gets 401 (code 16)."
echo "# With 'outliers serve --cors-origin https://app.example', a browser's preflight from that origin gets 204:"
echo "#   curl -si -X OPTIONS $URL/detect -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type'"

section "Detection options: another rule, a threshold, a series per name, the details"
show "The median absolute deviation finds the 100 the two-sigma rule misses" \
  "$CURL '$URL/detect?method=mad' -d '[1,2,100,1,3,200,1]'"
show "In the body: IQR (Tukey's k = 1.5 unless a threshold is given), a series per name, each outlier's score and each series' bounds" \
  "$CURL $URL/detect -d '{\"metrics\":[{\"name\":\"cpu\",\"value\":12},{\"name\":\"mem\",\"value\":40},{\"name\":\"cpu\",\"value\":13},{\"name\":\"mem\",\"value\":41},{\"name\":\"cpu\",\"value\":95},{\"name\":\"mem\",\"value\":40},{\"name\":\"cpu\",\"value\":12}],\"options\":{\"method\":\"IQR\",\"groupByName\":true,\"details\":true}}'"
show "An unknown query parameter: 400 naming it" \
  "$CURL '$URL/detect?metod=mad' -d '[1]' $STATUS"

section "Compression: Content-Encoding gzip/deflate in, gzip out for Accept-Encoding: gzip (answers of 1 KiB or more)"
show "A gzip body (the limit applies to its decompressed size)" \
  "gzip -c examples/metrics.json | $CURL $URL/detect -H 'Content-Encoding: gzip' --data-binary @-"
show "Another coding: 415 naming it" \
  "$CURL $URL/detect -H 'Content-Encoding: br' -d '[1]' $STATUS"
show "curl --compressed: a gzipped answer, decoded by curl (here the spec, 40 KB; Content-Encoding in the head)" \
  "$CURL --compressed -D - -o /dev/null $URL/openapi.yaml"

section "Operations"
show "Readiness: the backend's grpc.health.v1 Check (503 when it is down or not serving)" \
  "$CURL $URL/healthz $STATUS"
show "Prometheus metrics (a few lines of them)" \
  "$CURL $URL/metrics | grep -E '^outliers_gateway_(requests_total|requests_in_flight|upstream_errors_total|request_duration_seconds_count)' | sed -n 1,12p"
show "The OpenAPI 3.1 description of all this (its first lines)" \
  "$CURL $URL/openapi.yaml | sed -n 1,5p"
