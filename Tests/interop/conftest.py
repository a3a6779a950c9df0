"""Fixtures for the gRPC interop tests (Python grpcio and friends against a real server).

Server under test (started once per session on a free 127.0.0.1 port):
  * default: `$OUTLIERS_BIN backend --host 127.0.0.1 --port PORT`, where OUTLIERS_BIN
    defaults to .build/debug/outliers, falling back to .build/release/outliers;
  * INTEROP_SERVER=python: examples/python/server.py (the article's server), so the
    tests can be developed and checked against a reference implementation. Tests of
    behaviour the article's server does not have skip or xfail there, saying why.

Run:  .venv/bin/python -m pytest Tests/interop
"""

import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "Protos"
IS_PYTHON = os.environ.get("INTEROP_SERVER", "").strip().lower() == "python"
READY_TIMEOUT = 20.0

sys.path.insert(0, str(REPO / "Tests" / "fixtures"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary():
    env = os.environ.get("OUTLIERS_BIN")
    if env:
        p = Path(env)
        if not p.is_absolute():
            p = REPO / p
        return p if p.exists() else None
    for rel in (".build/debug/outliers", ".build/release/outliers"):
        p = REPO / rel
        if p.exists():
            return p
    return None


class Server:
    """A server process under test, its output in a log file."""

    def __init__(self, kind, argv, log_path, port, env=None):
        self.kind = kind
        self.argv = argv
        self.log_path = log_path
        self.host = "127.0.0.1"
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, **env} if env else None)

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, limit=6000):
        if not self._log.closed:
            self._log.flush()
        try:
            data = Path(self.log_path).read_bytes()
        except OSError:
            return "(no log)"
        return data[-limit:].decode("utf-8", "replace")

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            pytest.fail(f"server exited with {rc}; its output:\n{self.log_tail()}")

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                socket.create_connection((self.host, self.port), timeout=0.25).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            pytest.fail(f"server not accepting on {self.address} after {timeout:.0f} s; "
                        f"{' '.join(map(str, self.argv))}\n{self.log_tail()}")
        with grpc.insecure_channel(self.address) as ch:
            try:
                grpc.channel_ready_future(ch).result(timeout=max(deadline - time.monotonic(), 1))
            except grpc.FutureTimeoutError:
                self.stop()
                pytest.fail(f"no HTTP/2 handshake with {self.address} within {timeout:.0f} s\n"
                            f"{self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the server; return its exit code (killing it if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._log.close()
                return None
        self._log.close()
        return self.proc.returncode


def start_server(tmp_dir, extra_args=()):
    port = free_port()
    log = Path(tmp_dir) / f"server-{port}.log"
    if IS_PYTHON:
        argv = [sys.executable, str(REPO / "examples" / "python" / "server.py"),
                "--host", "127.0.0.1", "--port", str(port), *extra_args]
        kind = "python"
    else:
        binary = server_binary()
        if binary is None:
            pytest.fail("no server binary: build it (swift build), set OUTLIERS_BIN, or run "
                        "with INTEROP_SERVER=python to test the article's Python server")
        argv = [str(binary), "backend", "--host", "127.0.0.1", "--port", str(port), *extra_args]
        kind = "binary"
    server = Server(kind, argv, log, port)
    server.wait_ready()
    return server


@pytest.fixture(scope="session")
def stubs_dir(tmp_path_factory):
    """Python stubs for Protos/outliers.proto, generated with grpc_tools.protoc."""
    import grpc_tools
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("stubs")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["grpc_tools.protoc", f"-I{PROTOS}", f"-I{well_known}",
                      f"--python_out={out}", f"--grpc_python_out={out}",
                      str(PROTOS / "outliers.proto")])
    assert rc == 0, f"protoc failed on {PROTOS / 'outliers.proto'}"
    sys.path.insert(0, str(out))
    return out


@pytest.fixture(scope="session")
def pb(stubs_dir):
    pb2 = importlib.import_module("outliers_pb2")
    pb2_grpc = importlib.import_module("outliers_pb2_grpc")
    return SimpleNamespace(OutliersRequest=pb2.OutliersRequest, Metric=pb2.Metric,
                           OutliersResponse=pb2.OutliersResponse, pb2=pb2,
                           OutliersStub=pb2_grpc.OutliersStub, stubs_dir=stubs_dir)


@pytest.fixture(scope="session")
def server(tmp_path_factory, stubs_dir):
    srv = start_server(tmp_path_factory.mktemp("server"))
    print(f"\nserver under test ({srv.kind}): {' '.join(srv.argv)}")
    yield srv
    rc = srv.proc.poll()
    srv.stop()
    if rc is not None:
        print(f"server had exited with {rc} before the end; output:\n{srv.log_tail()}")


@pytest.fixture(scope="session")
def channel(server):
    ch = grpc.insecure_channel(server.address)
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def stub(pb, channel):
    return pb.OutliersStub(channel)


@pytest.fixture
def server_factory(tmp_path, stubs_dir):
    """Start extra servers (each test's own); all are stopped at the end of the test."""
    started = []

    def make(extra_args=()):
        s = start_server(tmp_path, extra_args)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def skip_if_python(reason):
    """Skip a test of behaviour the article's Python server lacks (only under python)."""
    if IS_PYTHON:
        test = sys._getframe(1).f_code.co_name
        pytest.skip(f"{test}: INTEROP_SERVER=python: {reason}")


# ----------------------------------------------------------------------------- REST gateway
# Processes for Tests/interop/test_gateway_rest.py: `outliers serve`, `outliers gateway`,
# `outliers backend`, the article's Python server and Tests/interop/delay_backend.py.
# These always run the binary (INTEROP_SERVER does not apply: the gateway is ours).

MEASUREMENTS = []  # (test, text): figures printed in the summary even when tests pass


def record_measurement(text):
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    MEASUREMENTS.append((test, text))
    print(text)


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for test, text in MEASUREMENTS:
            terminalreporter.write_line(f"{test}: {text}")


def wait_accepting(proc, ports, deadline):
    """Wait until every port accepts a TCP connection (failing if proc exits)."""
    for port in ports:
        while True:
            proc.check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.25).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.stop()
                    pytest.fail(f"{proc.kind} not accepting on 127.0.0.1:{port} after "
                                f"{READY_TIMEOUT:.0f} s; {' '.join(map(str, proc.argv))}\n"
                                f"{proc.log_tail()}")
                time.sleep(0.05)


class HTTPProcess(Server):
    """A process serving HTTP/1.1 (the gateway, alone or in `serve`): ready once its
    ports accept connections."""

    def __init__(self, kind, argv, log_path, port, other_ports=(), env=None):
        super().__init__(kind, argv, log_path, port, env)
        self.other_ports = list(other_ports)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout=READY_TIMEOUT):
        wait_accepting(self, [self.port, *self.other_ports], time.monotonic() + timeout)


def require_binary():
    binary = server_binary()
    if binary is None:
        pytest.fail("no outliers binary: build it (swift build) or set OUTLIERS_BIN")
    return binary


class Processes:
    """Starts gateway-test processes in tmp_dir; stop_all() stops them, newest first."""

    def __init__(self, tmp_dir):
        self.tmp_dir = Path(tmp_dir)
        self.started = []

    def _log(self, name, port):
        return self.tmp_dir / f"{name}-{port}-{len(self.started)}.log"

    def _track(self, proc):
        self.started.append(proc)
        proc.wait_ready()
        return proc

    def serve(self, *extra):
        """`outliers serve`: backend and gateway in one process (.url, .grpc_address)."""
        return self.serve_with_env(None, *extra)

    def serve_with_env(self, env, *extra):
        """`outliers serve` with these environment variables added (OUTLIERS_…)."""
        http_port, grpc_port = free_port(), free_port()
        while grpc_port == http_port:
            grpc_port = free_port()
        argv = [str(require_binary()), "serve", "--host", "127.0.0.1", "--http-port", str(http_port),
                "--grpc-port", str(grpc_port), *map(str, extra)]
        proc = HTTPProcess("serve", argv, self._log("serve", http_port), http_port, [grpc_port], env=env)
        proc.grpc_port = grpc_port
        proc.grpc_address = f"127.0.0.1:{grpc_port}"
        return self._track(proc)

    def gateway(self, backends, *extra):
        """`outliers gateway --backend A[,B…]` (backends: addresses or processes)."""
        targets = ",".join(b if isinstance(b, str) else b.address for b in backends)
        port = free_port()
        argv = [str(require_binary()), "gateway", "--host", "127.0.0.1", "--port", str(port),
                "--backend", targets, *map(str, extra)]
        return self._track(HTTPProcess("gateway", argv, self._log("gateway", port), port))

    def _grpc(self, kind, argv, port, retry_bind):
        deadline = time.monotonic() + (10 if retry_bind else 0)
        while True:
            proc = Server(kind, argv, self._log(kind, port), port)
            self.started.append(proc)
            try:
                rc = proc.proc.wait(timeout=0.3)  # an early exit: the port may still be busy
            except subprocess.TimeoutExpired:
                proc.wait_ready()
                return proc
            if time.monotonic() > deadline:
                pytest.fail(f"{kind} exited with {rc}: {' '.join(argv)}\n{proc.log_tail()}")
            time.sleep(0.3)

    def backend(self, port=None, *extra):
        """`outliers backend` (port=None: a free one; the same port again after a stop
        is retried for up to 10 s, in case the old socket lingers)."""
        port = port or free_port()
        argv = [str(require_binary()), "backend", "--host", "127.0.0.1", "--port", str(port),
                *map(str, extra)]
        return self._grpc("backend", argv, port, retry_bind=True)

    def python(self, *extra):
        """The article's server, examples/python/server.py (e.g. "--delay", 1)."""
        port = free_port()
        argv = [sys.executable, str(REPO / "examples" / "python" / "server.py"), "--host",
                "127.0.0.1", "--port", str(port), *map(str, extra)]
        return self._grpc("python", argv, port, retry_bind=False)

    def delay_backend(self, delay):
        """Tests/interop/delay_backend.py: a lean gRPC backend that answers after `delay`."""
        port = free_port()
        argv = [sys.executable, str(Path(__file__).with_name("delay_backend.py")), "--host",
                "127.0.0.1", "--port", str(port), "--delay", str(delay)]
        return self._grpc("delay-backend", argv, port, retry_bind=False)

    def stop_all(self):
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    """One `outliers serve` for the module: .url (http://127.0.0.1:PORT), .grpc_address."""
    procs = Processes(tmp_path_factory.mktemp("rest"))
    srv = procs.serve()
    print(f"\ngateway under test: {' '.join(srv.argv)}")
    yield srv
    rc = srv.proc.poll()
    procs.stop_all()
    if rc is not None:
        print(f"outliers serve had exited with {rc} before the end; output:\n{srv.log_tail()}")


@pytest.fixture
def procs(tmp_path):
    """Each test's own processes, all stopped at its end."""
    p = Processes(tmp_path)
    yield p
    p.stop_all()


def http_exchange(port, method, path, headers=(), body=None, conn=None, timeout=30):
    """One HTTP/1.1 request (headers: (name, str-or-bytes) pairs, sent as given; nothing
    added but Host and, with a body, Content-Length) on `conn` or a new connection;
    returns (status, [(lower-case name, value)], body, conn)."""
    import http.client
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], data, conn


class PostLoad:
    """Clients posting `body` to a gateway's /detect without pause, each on its own
    keep-alive connection, until stop(). Each request's (start, end, status, detail)
    is kept: status None and the exception as detail for a connection error, the
    body's start as detail for a status other than 200."""

    def __init__(self, gateway, clients=4, body=b"[1,2,100,1,3,200,1]"):
        import http.client
        self._http = http.client
        self.gateway, self.body = gateway, body
        self.results = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _connection(self):
        return self._http.HTTPConnection("127.0.0.1", self.gateway.port, timeout=30)

    def _run(self):
        conn = self._connection()
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                conn.request("POST", "/detect", body=self.body)
                response = conn.getresponse()
                payload = response.read()
                status, detail = response.status, (None if response.status == 200 else payload[:200])
            except (OSError, self._http.HTTPException) as e:
                status, detail = None, repr(e)
                conn.close()
                conn = self._connection()
            self.results.append((started, time.monotonic(), status, detail))
        conn.close()

    @property
    def failures(self):
        return [(status, detail) for _, _, status, detail in self.results if status != 200]

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=40)
        assert not any(t.is_alive() for t in self.threads), "a client hung"
