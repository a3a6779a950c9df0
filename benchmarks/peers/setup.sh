#!/usr/bin/env bash
# Builds the peers the side-by-side benchmark measures ours against, from Debian's Go
# packages in GOPATH mode (no module proxy), into .build-peers/ (never committed):
#   server   grpc-go 1.33 Detect backend (population std, strict >, as ours)
#   gateway  grpc-gateway v1.6.4 reverse proxy, POST /detect body "*" (gateway.yaml)
#   litegw   a Go net/http + encoding/json proxy (-json std), or protojson (-json protojson)
#   client   the article's Go client; writes the request bodies every system is fed
# Idempotent; root; Debian 12.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=$repo/.build-peers
start=$SECONDS

packages=(protobuf-compiler golang-go golang-google-grpc-dev golang-goprotobuf-dev golang-google-protobuf-dev
          golang-github-grpc-ecosystem-grpc-gateway-dev wrk nghttp2-client util-linux curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$out/bin" "$out/tools" "$out/data"
export GO111MODULE=off
gosys=/usr/share/gocode
# The protoc plugins, from Debian's Go sources.
GOPATH=$gosys go build -o "$out/tools/protoc-gen-grpc-gateway" github.com/grpc-ecosystem/grpc-gateway/protoc-gen-grpc-gateway
GOPATH=$gosys go build -o "$out/tools/protoc-gen-go-v2" google.golang.org/protobuf/cmd/protoc-gen-go

# A GOPATH of our own: the peers' sources, and the stubs generated from the project's
# contract (Protos/outliers.proto), mapped to the import path outliers/pb. Debian's
# protoc-gen-go 1.3.5 (APIv1, plugins=grpc) matches grpc 1.33 and grpc-gateway 1.6;
# APIv2 types (outliers/pbv2) are for litegw's protojson mode.
gopath=$out/gopath
rm -rf "$gopath"
mkdir -p "$gopath/src"
cp -r benchmarks/peers/go/src/outliers "$gopath/src/"
timestamp=Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp
protoc -I Protos -I /usr/include \
  --plugin=protoc-gen-grpc-gateway="$out/tools/protoc-gen-grpc-gateway" \
  --go_out=plugins=grpc,$timestamp,Moutliers.proto=outliers/pb:"$gopath/src" \
  --grpc-gateway_out=logtostderr=true,grpc_api_configuration=benchmarks/peers/gateway.yaml,$timestamp,Moutliers.proto=outliers/pb:"$gopath/src" \
  Protos/outliers.proto
# protoc-gen-go 1.3.5 places a file without go_package by its name: into the package.
mv "$gopath/src/outliers.pb.go" "$gopath/src/outliers/pb/"
protoc -I Protos -I /usr/include --plugin=protoc-gen-gov2="$out/tools/protoc-gen-go-v2" \
  --gov2_out="$gopath/src" --gov2_opt=Moutliers.proto=outliers/pbv2 Protos/outliers.proto
for peer in client server gateway litegw; do
  GOPATH="$gopath:$gosys" go build -o "$out/bin/$peer" "outliers/$peer"
done

# The article's data (1000 metrics, outliers planted at 7, 113, 835) as every system
# is fed it: a proto3 JSON body for the gateways, a gRPC frame for h2load.
"$out/bin/client" -n 1000 -write-json "$out/data/req1000.json" -write-grpc "$out/data/req1000.grpc"

# The article's Python server is examples/python/server.py, run from the project's
# venv (make venv), which makes its own stubs.
echo "peers built in $((SECONDS - start)) s: $(ls "$out/bin" | tr '\n' ' ')"
