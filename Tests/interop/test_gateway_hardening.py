"""Attacks on the REST gateway and what it must answer (issue 9, the defects list):
connection exhaustion and slow clients, limits that agree with the backend's, strict
HTTP/1.1 framing, header values that are not gRPC metadata, client hang-ups that must
cancel the backend call, kept-alive connections after early errors, and errors in one
shape. Each test failed against the gateway before its fix.

Raw sockets throughout: the attacks are about bytes on the wire, which HTTP client
libraries would tidy up. Every socket has a timeout; every process is stopped by its
fixture.

Run:  .venv/bin/python -m pytest Tests/interop/test_gateway_hardening.py
"""

import json
import os
import re
import resource
import socket
import struct
import threading
import time

import pytest

from conftest import record_measurement

ARTICLE = b"[1, 2, 100, 1, 3, 200, 1]"
ARTICLE_ANSWER = b'{"indices":[5]}'
MiB = 1 << 20


# ----------------------------------------------------------------------------- helpers

def connect(srv, source="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", srv.port))
    return s


def request(path="/detect", body=ARTICLE, method="POST", headers=(), content_length=True):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_length and body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"HTTP {self.status} {self.headers} {self.body[:300]!r}"


def read_response(sock, buffered=b""):
    """One HTTP/1.1 response with a Content-Length body; (response, bytes left over)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole head; got {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        rest += chunk
    return Response(status, headers, rest[:length]), rest[length:]


def closed_by_peer(sock, within=2.0):
    """True when the server closes (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def exchange(srv, raw, source="127.0.0.1"):
    with connect(srv, source) as s:
        s.sendall(raw)
        response, _ = read_response(s)
        return response


def metric_counts(srv):
    with connect(srv) as s:
        s.sendall(request("/metrics", None, "GET"))
        response, _ = read_response(s)
    counts = {}
    for line in response.body.decode().splitlines():
        m = re.match(r'outliers_gateway_requests_total\{(.*)\} (\S+)', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            counts[(labels["route"], labels["code"])] = float(m.group(2))
    return counts


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {timeout} s: {what}")


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    """One `outliers serve` with short slow-client deadlines for the module."""
    from conftest import Processes
    procs = Processes(tmp_path_factory.mktemp("hardening"))
    srv = procs.serve("--header-timeout", "1s", "--body-timeout", "1s")
    yield srv
    procs.stop_all()


# ------------------------------------------------------- 1. connection exhaustion

def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard < needed:
            pytest.fail(f"this test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_4200_slow_connections_from_one_address_do_not_lock_out_another(procs):
    """The attack of the issue: 4,200 connections from 127.0.0.1 that send a byte now
    and then. A client from 127.0.0.2 is still served in under 100 ms, connections
    over the per-client limit are refused at once with a 503, and the slow ones are
    cut off by the head deadline."""
    raise_fd_limit(4200 + 512)
    srv = procs.serve("--header-timeout", "3s")
    slow = []
    try:
        for i in range(4200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind(("127.0.0.1", 0))
            try:
                s.connect(("127.0.0.1", srv.port))
            except BlockingIOError:
                pass
            slow.append(s)
        time.sleep(0.5)
        for s in slow:  # one byte each: not silent, so the idle timeout never fires
            try:
                s.send(b"P")
            except OSError:
                pass
        started = time.monotonic()
        response = exchange(srv, request(), source="127.0.0.2")
        elapsed = time.monotonic() - started
        assert response.status == 200 and response.body == ARTICLE_ANSWER, response
        assert elapsed < 0.1, f"a normal client took {elapsed * 1000:.0f} ms beside 4,200 slow ones"

        # Beyond the per-client limit (1024 by default) the gateway refused at once: a
        # 503 body (most), or a close where the client's byte raced the refusal.
        answered, closed, waiting = 0, 0, list(slow)
        settle = time.monotonic() + 3  # the last of them may still be in the listen backlog
        while len(waiting) > 1024 and time.monotonic() < settle:
            still = []
            for s in waiting:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    still.append(s)
                    continue
                except OSError:
                    closed += 1
                    continue
                if data.startswith(b"HTTP/1.1 503"):
                    answered += 1
                elif not data:
                    closed += 1
            waiting = still
            time.sleep(0.05)
        waiting = len(waiting)
        record_measurement(f"4,200 slow connections from 127.0.0.1: a client from 127.0.0.2 served in "
                           f"{elapsed * 1000:.1f} ms; held {waiting}, refused {answered} with a 503 body "
                           f"and {closed} by a close")
        assert waiting == 1024, f"{waiting} connections held (the per-client limit is 1024)"
        assert answered + closed == 4200 - 1024
        assert answered > (4200 - 1024) * 0.8, f"only {answered} of the refused connections read their 503"

        # The slow ones are cut off by the head deadline (3 s), not held for ever.
        time.sleep(3.5)
        srv.check_alive()
        assert wait_for(lambda: exchange(srv, request(path="/metrics", body=None, method="GET")).status == 200,
                        5, "metrics after the cut-off")
        open_fds = len(os.listdir(f"/proc/{srv.pid}/fd"))
        assert open_fds < 200, f"{open_fds} descriptors still open after the head deadline"
    finally:
        for s in slow:
            s.close()


def test_a_full_gateway_answers_503_at_once_instead_of_hanging(procs):
    srv = procs.serve("--max-connections", "20", "--max-connections-per-client", "20")
    time.sleep(0.5)  # the readiness probe's connection is gone by then
    held = [connect(srv) for _ in range(20)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        with connect(srv) as s:
            s.sendall(request())
            response, _ = read_response(s)
            assert closed_by_peer(s)
        elapsed = time.monotonic() - started
        assert response.status == 503, response
        assert response.header("content-type") == "application/json"
        assert response.json()["code"] == 14
        assert "connection limit" in response.json()["message"]
        assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    finally:
        for s in held:
            s.close()
    # Room again once the held connections are gone.
    wait_for(lambda: exchange(srv, request()).status == 200, 5, "service after the connections closed")


def test_per_client_limit_leaves_room_for_other_addresses(procs):
    srv = procs.serve("--max-connections", "100", "--max-connections-per-client", "5")
    time.sleep(0.5)  # the readiness probe's connection is gone by then
    held = [connect(srv) for _ in range(5)]
    try:
        time.sleep(0.2)
        assert not any(closed_by_peer(s, within=0.05) for s in held), "a held connection was refused"

        over = exchange(srv, request())
        assert over.status == 503, over
        assert "from 127.0.0.1" in over.json()["message"], over
        other = exchange(srv, request(), source="127.0.0.2")
        assert other.status == 200 and other.body == ARTICLE_ANSWER, other
    finally:
        for s in held:
            s.close()


def trickle(sock, data, every=0.1, give_up=3.0):
    """Sends `data` a byte every `every` seconds; (cut off by the server, seconds taken)."""
    started = time.monotonic()
    for i in range(len(data)):
        try:
            sock.send(data[i:i + 1])
        except OSError:
            return True, time.monotonic() - started
        time.sleep(every)
        if time.monotonic() - started > give_up:
            break
    return closed_by_peer(sock, within=1.0), time.monotonic() - started


def test_a_head_sent_one_byte_at_a_time_is_cut_off(gw):
    with connect(gw) as s:
        cut, elapsed = trickle(s, request()[:40])
    assert cut, "a client trickling its head was never cut off"
    assert elapsed < 2.5, f"cut off after {elapsed:.1f} s with --header-timeout 1s"


def test_a_body_sent_slowly_is_cut_off(gw):
    body = b"[" + b"1," * 200 + b"1]"
    with connect(gw) as s:
        s.sendall(request(body=body)[:-len(body)])
        cut, elapsed = trickle(s, body)
    assert cut, "a client trickling its body was never cut off"
    assert elapsed < 2.5, f"cut off after {elapsed:.1f} s with --body-timeout 1s"
    assert wait_for(lambda: metric_counts(gw).get(("/detect", "408")), 3, "a 408 in /metrics")


# ---------------------------------------------------- 2. limits that agree

def test_serve_accepts_every_body_its_gateway_accepts(gw):
    """381,500 bare numbers (6.9 MB of JSON) made a 4.2 MB message, over the backend's
    4 MiB: 429 before. `serve` sizes its backend's limit from the body limit."""
    body = b"[" + b",".join(b"1.5" if i % 1000 else b"900.5" for i in range(381_500)) + b"]"
    response = exchange(gw, request(body=body))
    assert response.status == 200, response
    assert response.json()["indices"][:2] == [0, 1000]


def test_gateway_refuses_a_message_over_the_backend_limit_with_413(procs):
    backend = procs.backend()
    gateway = procs.gateway([backend], "--max-message-bytes", str(1 * MiB))
    # 200,000 metric objects of 11 bytes each: 2.2 MB of protobuf.
    body = b"[" + b",".join(b'{"value":1}' for _ in range(200_000)) + b"]"
    response = exchange(gateway, request(body=body))
    assert response.status == 413, response
    message = response.json()["message"]
    assert str(len(body)) in message and str(1 * MiB) in message, message
    assert response.json()["code"] == 8
    # The same through the protobuf Content-Type.
    framed = b"\x0a\x09\x19" + struct.pack("<d", 1.0)
    protobuf = framed * 100_000
    response = exchange(gateway, request(body=protobuf, headers=["Content-Type: application/x-protobuf"]))
    assert response.status == 413, response
    # Just under the limit still works.
    small = b"[" + b",".join(b"1" for _ in range(1000)) + b",100]"
    assert exchange(gateway, request(body=small)).status == 200


def test_a_16_mib_body_is_refused_without_building_its_message(procs):
    """A full 16 MiB of `1,` built a 92 MB message and peaked at 185 MB before failing.
    The conversion now stops at the limit: memory is bounded by the limit."""
    backend = procs.backend()
    gateway = procs.gateway([backend])
    def peak_kib():
        with open(f"/proc/{gateway.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
    before = peak_kib()
    body = b"[" + b"1," * (8 * MiB - 2) + b"1]"
    assert len(body) <= 16 * MiB
    started = time.monotonic()
    response = exchange(gateway, request(body=body))
    elapsed = time.monotonic() - started
    assert response.status == 413, response
    grown_mib = (peak_kib() - before) / 1024
    record_measurement(f"16 MiB body of `1,` to a gateway with a 4 MiB message limit: 413 in "
                       f"{elapsed * 1000:.0f} ms, peak memory +{grown_mib:.0f} MiB")
    # The body itself (16 MiB) is held; the message stops at 4 MiB.
    assert grown_mib < 48, f"peak memory grew by {grown_mib:.0f} MiB"
    assert elapsed < 5, f"took {elapsed:.1f} s"


# ------------------------------------------------------ 3. request ids

@pytest.mark.parametrize("value", [b"ab\x01cd", b"tab\there", "caf\u00e9".encode(), b"x" * 201])
def test_an_invalid_request_id_is_replaced_not_forwarded(gw, value):
    raw = request(headers=[]).replace(b"\r\n\r\n", b"\r\nX-Request-Id: " + value + b"\r\n\r\n", 1)
    response = exchange(gw, raw)
    assert response.status == 200 and response.body == ARTICLE_ANSWER, response
    echoed = response.header("x-request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", echoed), echoed


def test_a_valid_request_id_is_echoed(gw):
    response = exchange(gw, request(headers=["X-Request-Id: client-42 (retry 1)"]))
    assert response.status == 200
    assert response.header("x-request-id") == "client-42 (retry 1)"


# ------------------------------------------------------ 4. framing

@pytest.mark.parametrize("head", [
    "Content-Length: 25\r\nContent-Length: 19",
    "Content-Length : 25",
    "Content-Length: 25\r\nTransfer-Encoding: chunked",
    "Transfer-Encoding: gzip",
    "Transfer-Encoding: chunked, gzip",
], ids=["two-lengths", "space-before-colon", "length-and-chunked", "gzip-only", "chunked-not-last"])
def test_ambiguous_framing_is_400_and_closes(gw, head):
    raw = (f"POST /detect HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n").encode() + ARTICLE
    with connect(gw) as s:
        s.sendall(raw)
        response, _ = read_response(s)
        assert response.status == 400, response
        assert response.header("content-type") == "application/json"
        assert response.json()["code"] == 3
        assert closed_by_peer(s), "the connection stayed open after a framing error"


# ------------------------------------------------------ 5. hang-ups cancel the call

def test_a_client_that_hangs_up_cancels_the_backend_call(procs):
    backend = procs.delay_backend(3.0)
    gateway = procs.gateway([backend], "--timeout", "20s")
    s = connect(gateway)
    s.sendall(request())
    time.sleep(0.3)
    s.close()
    # Counted as 499 at once, not as a 504 when the deadline passes.
    assert wait_for(lambda: metric_counts(gateway).get(("/detect", "499")), 2, "499 in /metrics")
    counts = metric_counts(gateway)
    assert ("/detect", "504") not in counts and ("/detect", "0") not in counts, counts


# ------------------------------------------------------ 6. keep-alive after early errors

@pytest.mark.parametrize("first,status", [
    (request("/nope", b"[1]"), 404),
    (request("/detect", b"[1]", method="PUT"), 405),
    (request("/detect", b"[1]", headers=["Content-Type: text/plain"]), 415),
    (request("/detect", b"[1,"), 400),
])
def test_early_errors_keep_the_connection(gw, first, status):
    with connect(gw) as s:
        s.sendall(first + request())  # pipelined
        one, rest = read_response(s)
        two, _ = read_response(s, rest)
    assert one.status == status, one
    assert one.header("connection") != "close"
    assert two.status == 200 and two.body == ARTICLE_ANSWER, two


def test_a_body_over_the_limit_by_content_length_is_413_and_closes(procs):
    srv = procs.serve("--max-body-bytes", "1000")
    with connect(srv) as s:
        s.sendall(request(body=b"[" + b"1," * 600 + b"1]"))
        response, _ = read_response(s)
        assert response.status == 413, response
        assert closed_by_peer(s)


# ------------------------------------------------------ 7. errors in one shape

@pytest.mark.parametrize("value", ["", ";;;", " ; charset=utf-8"])
def test_a_content_type_without_a_media_type_is_415(gw, value):
    response = exchange(gw, request(headers=[f"Content-Type:{value}"]))
    assert response.status == 415, response
    assert response.json()["code"] == 3


def test_an_absent_content_type_is_json(gw):
    assert exchange(gw, request()).body == ARTICLE_ANSWER


def test_protobuf_errors_are_in_words(gw):
    response = exchange(gw, request(body=b"\xff\xff\xff\xff", headers=["Content-Type: application/x-protobuf"]))
    assert response.status == 400, response
    message = response.json()["message"]
    assert "malformedProtobuf" not in message and "truncated" not in message, message
    assert message.startswith("body is not a valid protobuf pb.OutliersRequest: "), message


def test_a_zero_grpc_timeout_is_400(gw):
    response = exchange(gw, request(headers=["Grpc-Timeout: 0H"]))
    assert response.status == 400, response
    assert response.json()["message"] == "invalid grpc-timeout: 0H"


def test_aborted_connections_do_not_flood_the_log(procs):
    """23,198 raw libmicrohttpd lines on stderr during one slow-client attack before;
    its messages now go through swift-log at debug level, a few a second at most."""
    srv = procs.serve("--header-timeout", "1s")
    sockets = []
    for _ in range(300):
        s = connect(srv)
        s.send(b"POST /detect HTTP/1.1\r\nContent-Length: 10\r\n\r\n12")
        sockets.append(s)
    # Reset them only once the gateway holds every request (a reset before its head is
    # read is a connection, not a request, and has no access-log line): a CI run that
    # reset them at once logged 43 of 300.
    wait_for(lambda: in_flight(srv) >= len(sockets), 0.8, "300 requests in flight")
    for s in sockets:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset mid-body: libmicrohttpd has something to say about each
    time.sleep(1.5)
    assert exchange(srv, request()).status == 200
    log = srv.log_tail(1 << 20)
    assert "libmicrohttpd" not in log and "Connection reset" not in log, log[-2000:]
    # Besides the access log's line per request (status 499 for each aborted one).
    others = [line for line in log.splitlines() if "outliers.access" not in line]
    assert len(others) < 20, "\n".join(others[-20:])
    assert sum("status=499" in line for line in log.splitlines()) == len(sockets), log[-2000:]


def in_flight(srv):
    """The gateway's in-flight gauge, less the scrape that reads it."""
    with connect(srv) as s:
        s.sendall(request("/metrics", None, "GET"))
        response, _ = read_response(s)
    m = re.search(r"^outliers_gateway_requests_in_flight (\S+)$", response.body.decode(), re.M)
    assert m, "no in-flight gauge on /metrics"
    return float(m.group(1)) - 1


# libmicrohttpd answers these itself, before the gateway sees the request, with its
# own HTML bodies (0.9.75 has no hook to replace them; docs/RELIABILITY.md lists them).
# Pinned here so that a libmicrohttpd upgrade that changes them is noticed: each must
# stay an error with the connection closed, never a hang or a 200.
LIBMICROHTTPD_ANSWERS = [
    ("malformed-content-length", b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n[1]", 400),
    ("huge-content-length", b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413),
    ("malformed-chunk-size", b"POST /detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[1]\r\n0\r\n\r\n", 400),
    ("huge-chunk-size", b"POST /detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", 413),
    ("uri-too-long", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("header-too-large", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ("http-2.0-on-http-1", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
]


@pytest.mark.parametrize("raw,status", [(raw, status) for _, raw, status in LIBMICROHTTPD_ANSWERS],
                         ids=[name for name, _, _ in LIBMICROHTTPD_ANSWERS])
def test_libmicrohttpd_answers_are_errors_that_close(gw, raw, status):
    with connect(gw) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered before the whole request was sent
        data = b""
        s.settimeout(3)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:200]
    assert b"\r\nConnection: close\r\n" in data, data[:200]
