#!/usr/bin/env python3
"""The article's Python servicer (examples/python/server.py) served by grpcio over TLS,
for the gateway's --backend-tls tests (Tests/interop/test_tls.py).

    .venv/bin/python Tests/interop/tls_backend.py --port PORT --cert C --key K [--client-ca CA]

With --client-ca, client certificates signed by it are required. grpc.health.v1 answers
SERVING. Prints "tls backend ready on port N" once serving; SIGTERM stops it (grpcio_server.serve).
"""

import argparse
import os
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "examples", "python")))
import server as article  # noqa: E402  (the article's server module: its servicer and stubs)
from grpcio_server import serve  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    args = ap.parse_args()

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_server_credentials(
        [(read(args.key), read(args.cert))],
        root_certificates=read(args.client_ca) if args.client_ca else None,
        require_client_auth=bool(args.client_ca))

    def setup(server):
        article.outliers_pb2_grpc.add_OutliersServicer_to_server(article.OutliersServer(), server)
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    return serve({}, args.host, args.port, "tls backend", credentials=credentials, setup=setup)


if __name__ == "__main__":
    sys.exit(main())
