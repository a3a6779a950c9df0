#!/usr/bin/env python3
"""A grpcio backend whose Detect echoes the metadata it received, to check what the
gateway forwards and how it maps the answer's metadata back (Tests/interop/test_gateway_features.py).

    .venv/bin/python Tests/interop/echo_backend.py --port PORT

Detect answers an empty pb.OutliersResponse with, for every metadata entry `k: v` it
received, initial metadata `got-k: v` and trailing metadata `trailer-got-k: v` (a
`-bin` key's bytes are sent back as bytes, so grpcio base64-encodes them again). A call
carrying `fail: CODE` ends with that status instead (message "failed as asked"),
metadata echoed the same way. Prints "echo backend ready on port N" once serving.
"""

import argparse
import sys

import grpc

from grpcio_server import serve

DETECT = "/pb.Outliers/Detect"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    codes = {c.value[0]: c for c in grpc.StatusCode}

    def detect(request, context):
        received = list(context.invocation_metadata())
        context.send_initial_metadata(tuple((f"got-{k}", v) for k, v in received))
        context.set_trailing_metadata(tuple((f"trailer-got-{k}", v) for k, v in received))
        fail = dict(received).get("fail")
        if fail is not None:
            context.abort(codes[int(fail)], "failed as asked")
        return b""

    identity = (lambda b: b)
    handlers = {DETECT: grpc.unary_unary_rpc_method_handler(detect, identity, identity)}

    return serve(handlers, args.host, args.port, "echo backend")


if __name__ == "__main__":
    sys.exit(main())
