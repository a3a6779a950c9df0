#!/usr/bin/env python3
"""A gRPC backend whose answers are fixed on its command line, so that the gateway's
mapping of backend outcomes it cannot get from `outliers backend` (UNKNOWN, CANCELLED,
a garbled answer, NOT_SERVING, a server without pb.Outliers) can be checked against
openapi.yaml's examples (Tests/interop/test_gateway_spec_examples.py).

    .venv/bin/python Tests/interop/scripted_backend.py --port PORT \
        [--detect-status CODE --detect-message TEXT | --detect-raw HEX | --no-detect] \
        [--health SERVING|NOT_SERVING|SERVICE_UNKNOWN|UNKNOWN | --health-file PATH] \
        [--count-calls]

--detect-message may hold `{x-request-id}`: replaced by the x-request-id metadata the
call carried ("(none)" when absent), which shows what the gateway forwarded.
Without a --detect-* option, Detect answers an empty pb.OutliersResponse.
Prints "scripted backend ready on port N" once serving.
"""

import argparse
import sys

import grpc

from grpcio_server import serve
from grpc_health.v1 import health_pb2

DETECT = "/pb.Outliers/Detect"
HEALTH = "/grpc.health.v1.Health/Check"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--detect-status", type=int, metavar="CODE",
                    help="fail Detect with this gRPC status code (1-16)")
    ap.add_argument("--detect-message", default="", metavar="TEXT")
    ap.add_argument("--detect-raw", metavar="HEX", help="answer Detect with these bytes")
    ap.add_argument("--no-detect", action="store_true",
                    help="serve no pb.Outliers at all (grpcio answers UNIMPLEMENTED)")
    ap.add_argument("--no-health", action="store_true",
                    help="serve no grpc.health.v1 (grpcio answers UNIMPLEMENTED), as the article's server")
    ap.add_argument("--health", default="SERVING",
                    choices=["SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN"])
    ap.add_argument("--health-file", metavar="PATH",
                    help="answer Check with the status named in this file, read at each call "
                         "(the test changes it while the backend runs)")
    ap.add_argument("--count-calls", action="store_true",
                    help='print "detect call" for each Detect call, so a test can count them')
    args = ap.parse_args()
    if args.detect_status is not None and not 1 <= args.detect_status <= 16:
        ap.error("--detect-status must be 1..16")

    codes = {c.value[0]: c for c in grpc.StatusCode}
    raw = bytes.fromhex(args.detect_raw) if args.detect_raw is not None else b""

    def detect(request, context):
        if args.count_calls:
            print("detect call", flush=True)
        metadata = dict(context.invocation_metadata())
        if args.detect_status is not None:
            message = args.detect_message.replace("{x-request-id}",
                                                  metadata.get("x-request-id", "(none)"))
            context.abort(codes[args.detect_status], message)
        return raw

    def check(request, context):
        status = args.health
        if args.health_file:
            with open(args.health_file) as f:
                status = f.read().strip()
        return health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.ServingStatus.Value(status)
        ).SerializeToString()

    identity = (lambda b: b)
    handlers = {} if args.no_health else {HEALTH: grpc.unary_unary_rpc_method_handler(check, identity, identity)}
    if not args.no_detect:
        handlers[DETECT] = grpc.unary_unary_rpc_method_handler(detect, identity, identity)

    return serve(handlers, args.host, args.port, "scripted backend")


if __name__ == "__main__":
    sys.exit(main())
