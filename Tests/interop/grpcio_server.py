"""What the test backends written on grpcio share: serve a table of method handlers
on host:port until SIGTERM or SIGINT, saying when ready."""

import signal
import threading
from concurrent import futures

import grpc


def serve(handlers, host, port, banner, credentials=None, setup=None, **server_options):
    """Serves {method path: grpc.RpcMethodHandler}; prints "<banner> ready on port N".
    With `credentials` (grpc.ssl_server_credentials) the port is TLS; `setup(server)`
    registers generated servicers too."""

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            return handlers.get(details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[Handler()], **server_options)
    if setup:
        setup(server)
    if credentials is None:
        server.add_insecure_port(f"{host}:{port}")
    elif server.add_secure_port(f"{host}:{port}", credentials) == 0:
        raise SystemExit(f"cannot listen on {host}:{port}")
    server.start()
    print(f"{banner} ready on port {port}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()
    return 0
