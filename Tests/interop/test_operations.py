"""Operations (issue 16): the access log, in text and as JSON lines, and turned off.

Run:  .venv/bin/python -m pytest Tests/interop/test_operations.py
"""

import json
import time
from pathlib import Path

import requests

T = 30


def access_lines(proc, count, timeout=10):
    """The JSON access-log lines in the process's log, once there are `count`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in Path(proc.log_path).read_text().splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("logger") == "outliers.access"]
        if len(access) >= count or time.monotonic() > deadline:
            return lines, access
        time.sleep(0.05)


def test_access_log_as_json_lines_field_by_field(procs):
    served = procs.serve("--log-format", "json")
    body = b"[1,2,100,1,3,200,1]"
    answers = [
        requests.post(served.url + "/detect?method=mad", data=body, timeout=T),
        requests.post(served.url + "/detect", data=b"[1,", timeout=T),
        requests.get(served.url + "/nope", timeout=T),
        requests.get(served.url + "/healthz", timeout=T, headers={"X-Request-Id": "probe-1"}),
    ]
    assert [a.status_code for a in answers] == [200, 400, 404, 200]
    lines, access = access_lines(served, 4)
    # Every line is JSON (the startup lines too), each with its time, level and logger.
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), lines
    assert len(access) == 4, access
    expected = [("POST", "/detect", 200, 0, len(body)), ("POST", "/detect", 400, 3, 3),
                ("GET", "/nope", 404, 5, 0), ("GET", "/healthz", 200, 0, 0)]
    # Lines are written as requests complete, on the connections' threads: matched by id.
    by_id = {line["request_id"]: line for line in access}
    for answer, (method, path, status, code, bytes_in) in zip(answers, expected):
        line = by_id[answer.headers["X-Request-Id"]]
        assert line["message"] == "access" and line["level"] == "info"
        assert (line["method"], line["path"], line["status"], line["grpc_code"], line["bytes_in"]) == \
            (method, path, status, code, bytes_in), line
        assert line["bytes_out"] == len(answer.content), (line, answer.content)
        assert line["request_id"] == answer.headers["X-Request-Id"]
        assert line["client"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
        assert line["time"].endswith("Z") and "T" in line["time"]
    assert "probe-1" in by_id


def test_access_log_in_text_and_off(procs):
    text = procs.serve()
    assert requests.post(text.url + "/detect", data=b"[1,2,3]", timeout=T).status_code == 200
    deadline = time.monotonic() + 10
    while "outliers.access" not in Path(text.log_path).read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(l for l in Path(text.log_path).read_text().splitlines() if "outliers.access" in l)
    for field in ("method=POST", "path=/detect", "status=200", "grpc_code=0", "bytes_in=7", "client=127.0.0.1"):
        assert field in line, line
    quiet = procs.serve("--access-log", "off", "--log-format", "json")
    for _ in range(3):
        assert requests.post(quiet.url + "/detect", data=b"[1,2,3]", timeout=T).status_code == 200
    time.sleep(0.5)
    lines, access = access_lines(quiet, 1, timeout=0.5)
    assert access == [] and lines, lines


# ----------------------------------------------------------------------------- the environment

import os
import subprocess

from conftest import free_port, require_binary


def run(args, env, timeout=60):
    return subprocess.run([str(require_binary()), *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def test_flags_from_the_environment_and_the_flag_wins(procs, rest):
    # A variable alone is the flag: detect against the module's serve, from OUTLIERS_SERVER.
    result = run(["detect", "--demo"], {"OUTLIERS_SERVER": rest.grpc_address, "OUTLIERS_JSON": "true"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"indices": [7, 113, 835]}
    # A variable and the flag: the flag wins (the variable names a port nothing serves).
    result = run(["detect", "--demo", "--server", rest.grpc_address], {"OUTLIERS_SERVER": "127.0.0.1:1"})
    assert result.returncode == 0 and result.stdout.strip() == "outliers at: [7 113 835]", result.stderr
    # A switch, and options of a long-running command (the page off, JSON logs).
    served = procs.serve_with_env({"OUTLIERS_NO_UI": "true", "OUTLIERS_LOG_FORMAT": "json",
                                   "OUTLIERS_METHOD": "not a flag of serve: ignored"})
    assert requests.get(served.url + "/", timeout=T).status_code == 404
    lines, access = access_lines(served, 1)
    assert access and access[0]["path"] == "/"


def test_a_bad_variable_is_named(rest):
    result = run(["serve", "--grpc-port", str(free_port())], {"OUTLIERS_HTTP_PORT": "eighty"})
    assert result.returncode == 64, result.stderr
    assert "'eighty' is invalid for '--http-port" in result.stderr and "OUTLIERS_HTTP_PORT" in result.stderr, result.stderr
    result = run(["gateway", "--backend", "127.0.0.1:1"], {"OUTLIERS_NO_UI": "sometimes"})
    assert result.returncode == 64
    assert "OUTLIERS_NO_UI=sometimes: --no-ui is a switch; give true or false" in result.stderr, result.stderr
    result = run(["detect", "--demo"], {"OUTLIERS_THRESHOLD": "-1"})
    assert result.returncode == 64 and "--threshold must be a finite number >= 0" in result.stderr, result.stderr
    assert "(--threshold was given by the environment variable OUTLIERS_THRESHOLD)" in result.stderr, result.stderr
    helped = run(["--help"], {})
    assert "OUTLIERS_<FLAG>" in helped.stdout and "wins over its variable" in helped.stdout.replace("\n", " ")


def test_every_metrics_family_has_help(rest):
    requests.post(rest.url + "/detect", data=b"[1,2,3]", timeout=T)
    requests.post(rest.url + "/detect", data=b"[1,", timeout=T)
    text = requests.get(rest.url + "/metrics", timeout=T).text
    lines = text.splitlines()
    types = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    helps = {line.split()[2]: line.split(" ", 3)[3] for line in lines if line.startswith("# HELP ")}
    assert len(types) >= 3 and set(types) == set(helps), (types, helps)
    assert "outliers_backend_calls_total" in types and "outliers_gateway_requests_total" in types, types
    for name in types:
        assert helps[name] and helps[name] != name, (name, helps[name])
    # HELP comes right before its TYPE, as Prometheus writes it.
    for index, line in enumerate(lines):
        if line.startswith("# TYPE "):
            assert lines[index - 1].startswith("# HELP " + line.split()[2] + " "), lines[index - 1:index + 1]
    assert text.endswith("\n")


# ----------------------------------------------------------------------------- graceful drain

import signal


def test_sigterm_turns_healthz_503_at_once_then_drains_after_the_delay(procs):
    served = procs.serve("--drain-delay", "2s")
    assert requests.get(served.url + "/healthz", timeout=T).status_code == 200
    started = time.monotonic()
    served.proc.send_signal(signal.SIGTERM)
    while True:
        answer = requests.get(served.url + "/healthz", timeout=T)
        if answer.status_code == 503 or time.monotonic() - started > 1:
            break
    elapsed = time.monotonic() - started
    assert answer.status_code == 503 and answer.json()["status"] == "NOT_SERVING", answer.text
    assert elapsed < 1, elapsed
    # The listener stays open through the delay: requests are still answered.
    for _ in range(5):
        assert requests.post(served.url + "/detect", data=b"[1,2,100,1,3,200,1]", timeout=T).json() == {"indices": [5]}
    assert time.monotonic() - started < 1.8, "the checks above must fall within the delay"
    assert served.proc.wait(timeout=15) == 0
    assert time.monotonic() - started >= 2, "exited before the drain delay"
    log = Path(served.log_path).read_text()
    assert "serving on for the drain delay" in log, log[-2000:]


def test_without_a_delay_sigterm_stops_at_once(procs):
    served = procs.serve()
    started = time.monotonic()
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 2


# ----------------------------------------------------------------------------- overload

import socket
import threading


def metric_value(url, family, label):
    for line in requests.get(url + "/metrics", timeout=T).text.splitlines():
        if line.startswith(family + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_past_max_in_flight_a_request_gets_503_at_once(procs):
    slow = procs.delay_backend(1.0)
    gateway = procs.gateway([slow], "--max-in-flight", "2")
    results = [None] * 6

    def call(i):
        started = time.monotonic()
        answer = requests.post(gateway.url + "/detect", data=b"[1,2,3]", timeout=T)
        results[i] = (answer.status_code, answer.headers.get("Retry-After"), time.monotonic() - started, answer.text)

    # Two in flight (the cap): both answered, none lost.
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results[:2]] == [200, 200], results
    # Six at once: two served, four refused at once with Retry-After.
    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(served) == 2 and len(refused) == 4, results
    for status, retry_after, elapsed, text in refused:
        assert retry_after == "1" and elapsed < 0.5, (retry_after, elapsed)
        assert "overloaded" in json.loads(text)["message"] and "--max-in-flight 2" in text
    assert metric_value(gateway.url, "outliers_gateway_overload_rejections_total", 'reason="requests in flight"') == 4


def test_past_max_buffered_bytes_a_request_gets_503(procs):
    served = procs.serve("--max-buffered-bytes", "100000")
    body = ("[" + ",".join(["1"] * 40000) + "]").encode()  # 80,001 bytes
    # A holds 60,000 bytes of its body, sending slowly.
    a = socket.create_connection(("127.0.0.1", served.port), timeout=T)
    a.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:60000])
    time.sleep(0.3)
    # B's 80,001 bytes would make 140,001 held: refused.
    b = requests.post(served.url + "/detect", data=body, timeout=T)
    assert b.status_code == 503 and b.headers["Retry-After"] == "1", b.text
    assert "--max-buffered-bytes 100000" in b.json()["message"]
    # A finishes and is answered; what B held was given back, so C fits.
    a.sendall(body[60000:])
    answer = a.recv(65536)
    a.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    c = requests.post(served.url + "/detect", data=body, timeout=T)
    assert c.status_code == 200, c.text
    assert metric_value(served.url, "outliers_gateway_overload_rejections_total", 'reason="buffered body bytes"') == 1


def test_a_backend_going_away_and_back_is_logged_once_each(procs):
    backend = procs.backend()
    port = backend.port
    gateway = procs.gateway([backend], "--log-format", "json")
    assert requests.post(gateway.url + "/detect", data=b"[1,2,3]", timeout=T).status_code == 200
    backend.stop()
    for _ in range(8):
        assert requests.post(gateway.url + "/detect", data=b"[1,2,3]", timeout=T).status_code == 503
    procs.backend(port)
    deadline = time.monotonic() + 10
    while requests.post(gateway.url + "/detect", data=b"[1,2,3]", timeout=T).status_code != 200:
        assert time.monotonic() < deadline, "the backend was not found again"
        time.sleep(0.1)
    for _ in range(5):
        assert requests.post(gateway.url + "/detect", data=b"[1,2,3]", timeout=T).status_code == 200
    lines, _ = access_lines(gateway, 0)
    changes = [line for line in lines if line["message"] in ("backend unreachable", "backend reachable again")]
    assert [c["message"] for c in changes] == ["backend unreachable", "backend reachable again"], changes
    assert changes[0]["backend"] == f"127.0.0.1:{port}" and changes[0]["level"] == "warning"
    assert "refused" in changes[0]["cause"].lower(), changes[0]


# ----------------------------------------------------------------------------- the backend's metrics and call log

import grpc

from conftest import REPO


def samples(text):
    """{(family, frozenset(labels)): value} of a Prometheus text exposition."""
    import re
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


DETECT = frozenset({("method", "/pb.Outliers/Detect"), ("grpc_code", "OK")})


def test_backend_metrics_port_counts_calls_by_method_and_code(procs, pb):
    metrics_port = free_port()
    backend = procs.backend(None, "--metrics-port", metrics_port)
    url = f"http://127.0.0.1:{metrics_port}"
    with grpc.insecure_channel(backend.address) as channel:
        stub = pb.OutliersStub(channel)
        for _ in range(3):
            stub.Detect(pb.OutliersRequest(metrics=[pb.Metric(value=v) for v in (1, 2, 100, 1, 3, 200, 1)]), timeout=T)
        try:
            stub.Detect(pb.OutliersRequest(metrics=[pb.Metric(value=float("nan"))]), timeout=T)
            raise AssertionError("NaN was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        for path in ("/pb.Outliers/Nope", "/random/path/1", "/random/path/2"):
            try:
                channel.unary_unary(path)(b"", timeout=T)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    text = requests.get(url + "/metrics", timeout=T).text
    got = samples(text)
    assert got[("outliers_backend_calls_total", DETECT)] == 3, text
    assert got[("outliers_backend_calls_total", frozenset({("method", "/pb.Outliers/Detect"),
                                                           ("grpc_code", "INVALID_ARGUMENT")}))] == 1, text
    # Paths without a handler share one label value: clients cannot grow the series.
    assert got[("outliers_backend_calls_total", frozenset({("method", "unknown"), ("grpc_code", "UNIMPLEMENTED")}))] == 3
    assert not any("/random" in str(labels) or "Nope" in str(labels) for _, labels in got), text
    detect = frozenset({("method", "/pb.Outliers/Detect")})
    assert got[("outliers_backend_call_duration_seconds_count", detect)] == 4, text
    assert got[("outliers_backend_call_duration_seconds_bucket", detect | {("le", "+Inf")})] == 4
    assert 0 < got[("outliers_backend_call_duration_seconds_sum", detect)] < 4
    assert got[("outliers_backend_calls_in_flight", frozenset())] == 0
    assert got[("outliers_backend_connections_total", frozenset())] >= 1
    # Every family has its HELP; other paths and methods are refused in JSON.
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")} == set(families)
    assert len(families) == 5, families
    other = requests.get(url + "/detect", timeout=T)
    assert other.status_code == 404 and other.json()["code"] == 5, other.text
    post = requests.post(url + "/metrics", data=b"x", timeout=T)
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD", post.text


def test_serve_shows_the_backends_metrics_beside_the_gateways(procs):
    served = procs.serve()
    assert requests.post(served.url + "/detect", data=b"[1,2,100,1,3,200,1]", timeout=T).status_code == 200
    assert requests.get(served.url + "/healthz", timeout=T).status_code == 200
    got = samples(requests.get(served.url + "/metrics", timeout=T).text)
    assert got[("outliers_backend_calls_total", DETECT)] == 1
    assert got[("outliers_backend_calls_total", frozenset({("method", "/grpc.health.v1.Health/Check"),
                                                           ("grpc_code", "OK")}))] >= 1
    assert got[("outliers_gateway_requests_total", frozenset({("route", "/detect"), ("code", "200")}))] == 1


def test_the_backends_call_log_is_at_debug(procs, pb):
    quiet = procs.backend(None)
    chatty = procs.backend(None, "--log-level", "debug", "--log-format", "json")
    for backend in (quiet, chatty):
        with grpc.insecure_channel(backend.address) as channel:
            pb.OutliersStub(channel).Detect(pb.OutliersRequest(metrics=[pb.Metric(value=1)]), timeout=T)
            try:
                channel.unary_unary("/pb.Outliers/Nope")(b"", timeout=T)
            except grpc.RpcError:
                pass
    time.sleep(0.2)
    assert '"call"' not in quiet.log_tail(1 << 20) and " call" not in quiet.log_tail(1 << 20)
    lines = [json.loads(line) for line in chatty.log_tail(1 << 20).splitlines() if line.startswith("{")]
    calls = [line for line in lines if line["message"] == "call"]
    assert len(calls) == 2, lines
    ok, missing = calls
    assert ok["level"] == "debug" and ok["method"] == "/pb.Outliers/Detect" and ok["grpc_code"] == "OK", ok
    assert float(ok["duration_ms"]) >= 0 and int(ok["request_bytes"]) == len(pb.OutliersRequest(metrics=[pb.Metric(value=1)]).SerializeToString()) and ok["peer"].startswith("127.0.0.1:"), ok
    assert missing["grpc_code"] == "UNIMPLEMENTED" and "Nope" in missing["grpc_message"], missing
