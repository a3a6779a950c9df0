#!/usr/bin/env python3
"""The article's Python outlier-detection server (grpcio + numpy), for interop
tests and as the baseline of benchmarks/grpc-backend.sh.

    .venv/bin/python examples/python/server.py [--host ::] [--port 9999] [--delay SECONDS]
                                               [--workers N] [--no-reflection]

Same algorithm and server set-up as the article (ThreadPoolExecutor, np.where over
the float64 values, INFO log per request). Additions: stubs are generated at start-up
from ../../Protos when outliers_pb2 is not importable; grpc.health.v1 ("" and
"pb.Outliers" SERVING); server reflection (grpcio-reflection, v1alpha only) unless
--no-reflection; --delay sleeps in every Detect call (slow-backend tests);
--workers sizes the thread pool (default: ThreadPoolExecutor's own, as in the article;
a slow backend under many concurrent calls needs more, e.g. --delay 0.05 --workers 300);
--port 0 picks a free port. Prints "server ready on port N" once serving, and
stops gracefully on SIGTERM/SIGINT.
"""

import argparse
import importlib
import logging
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.normpath(os.path.join(HERE, "..", "..", "Protos"))


def load_stubs():
    """Import outliers_pb2/_grpc, generating them into a temp dir if needed."""
    try:
        return importlib.import_module("outliers_pb2"), importlib.import_module("outliers_pb2_grpc")
    except ImportError:
        pass
    import grpc_tools
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="outliers-py-stubs-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{PROTOS}", f"-I{well_known}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        os.path.join(PROTOS, "outliers.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed ({rc}) generating stubs from {PROTOS}")
    sys.path.insert(0, out)
    return importlib.import_module("outliers_pb2"), importlib.import_module("outliers_pb2_grpc")


outliers_pb2, outliers_pb2_grpc = load_stubs()
OutliersResponse = outliers_pb2.OutliersResponse


def find_outliers(data: np.ndarray):
    """Return indices where values more than 2 standard deviations from mean"""
    out = np.where(np.abs(data - data.mean()) > 2 * data.std())
    # np.where returns a tuple for each dimension, we want the 1st element
    return out[0]


class OutliersServer(outliers_pb2_grpc.OutliersServicer):
    def __init__(self, delay=0.0):
        self.delay = delay

    def Detect(self, request, context):
        logging.info('detect request size: %d', len(request.metrics))
        if self.delay > 0:
            time.sleep(self.delay)
        # Convert metrics to numpy array of values only
        data = np.fromiter((m.value for m in request.metrics), dtype='float64')
        indices = find_outliers(data)
        logging.info('found %d outliers', len(indices))
        resp = OutliersResponse(indices=indices)
        return resp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="::", help="address to bind (default ::, all)")
    ap.add_argument("--port", type=int, default=9999, help="port (default 9999, 0 = any free)")
    ap.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                    help="sleep this long in every Detect call (default 0)")
    ap.add_argument("--workers", type=int, default=None, metavar="N",
                    help="threads serving calls (default: ThreadPoolExecutor's, min(32, cores + 4))")
    ap.add_argument("--no-reflection", action="store_true", help="do not serve reflection")
    args = ap.parse_args()

    logging.basicConfig(
        level=logging.INFO,
        format='%(asctime)s - %(levelname)s - %(message)s',
    )
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be at least 1")
    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers))
    outliers_pb2_grpc.add_OutliersServicer_to_server(OutliersServer(args.delay), server)

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    outliers_name = outliers_pb2.DESCRIPTOR.services_by_name["Outliers"].full_name
    for name in ("", outliers_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    if not args.no_reflection:
        from grpc_reflection.v1alpha import reflection
        reflection.enable_server_reflection(
            (outliers_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    host = f"[{args.host}]" if ":" in args.host else args.host
    port = server.add_insecure_port(f"{host}:{args.port}")
    if port == 0:
        sys.exit(f"cannot listen on {host}:{args.port}")
    server.start()

    def stop(signum, _frame):
        logging.info("signal %d: stopping", signum)
        health_servicer.enter_graceful_shutdown()
        server.stop(grace=5)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.info('server ready on port %r', port)
    print(f"server ready on port {port}", flush=True)
    server.wait_for_termination()


if __name__ == '__main__':
    main()
