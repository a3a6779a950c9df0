"""Connections that stay honest (issue 16, item 5): the gateway's HTTP/2 keepalive
PINGs find a backend that froze (SIGSTOP: no FIN, no RST, the kernel still accepts) and
its calls fail over instead of hanging to their deadline; the backend's ping limits
(grpc-go's: too frequent → GOAWAY ENHANCE_YOUR_CALM "too_many_pings"); and the backend's
--max-connection-age, after which a grpcio client reconnects without a failed call.

Run:  .venv/bin/python -m pytest Tests/interop/test_connections.py
"""

import signal
import threading
import time

import grpc
import requests
from hyperframe.frame import GoAwayFrame, PingFrame

from conftest import PostLoad, free_port, record_measurement
from test_h2_conformance import RawConnection

ENHANCE_YOUR_CALM = 0xB


def freeze_one_of_two(procs, *gateway_args):
    """Two backends, a gateway over both, load; the first backend frozen 1 s into it
    for 4 s. Returns (results, frozen_at, gateway)."""
    frozen, healthy = procs.backend(), procs.backend()
    gateway = procs.gateway([frozen, healthy], "--access-log", "off", *gateway_args)
    load = PostLoad(gateway)
    try:
        time.sleep(1.0)
        frozen.proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        time.sleep(4.0)
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
        load.stop()
    return load.results, frozen_at, gateway


def test_keepalive_fails_a_frozen_backends_calls_over_within_its_time(procs):
    interval, timeout = 0.5, 0.5
    results, frozen_at, gateway = freeze_one_of_two(
        procs, "--keepalive", f"{int(interval * 1000)}ms", "--keepalive-timeout", f"{int(timeout * 1000)}ms",
        "--timeout", "10s")
    # Detection takes an interval of silence, then the PING's timeout (and a tick's slack).
    bound = interval * 2 + timeout + 1.0
    during = [r for r in results if r[1] > frozen_at]
    slowest = max(end - start for start, end, _, _ in during)
    assert slowest < bound, f"a request took {slowest:.2f} s (bound {bound} s)"
    after = [r for r in results if r[0] > frozen_at + bound]
    assert after and all(status == 200 for _, _, status, _ in after), \
        [r for r in after if r[2] != 200][:5]
    failed = [r for r in during if r[2] != 200]
    assert all(status == 503 for _, _, status, _ in failed), failed[:5]
    assert "keepalive PING" in gateway.log_tail(1 << 20), gateway.log_tail(3000)
    record_measurement(
        f"one of two backends frozen (SIGSTOP) under 4 clients, --keepalive {interval}s --keepalive-timeout "
        f"{timeout}s: {len(during)} requests after the freeze, {len(failed)} answered 503 (in flight on it), "
        f"slowest {slowest:.2f} s; every request from {bound:.1f} s on answered 200 ({len(after)})")


def test_without_keepalive_a_frozen_backends_calls_hang_to_their_deadline(procs):
    """The control: the same freeze with --keepalive off holds calls until the deadline."""
    results, frozen_at, _ = freeze_one_of_two(procs, "--keepalive", "off", "--timeout", "2s")
    during = [r for r in results if r[1] > frozen_at]
    slowest = max(end - start for start, end, _, _ in during)
    assert slowest >= 1.9, f"slowest {slowest:.2f} s: the freeze was noticed without keepalive?"


def goaway_after_pings(backend, pings, gap, between=None):
    """Pings on a fresh connection, `gap` seconds apart (calling `between(conn, i)` after
    each); returns (goaway (last_stream_id, code) or None, its debug data, closed)."""

    class Connection(RawConnection):
        debug = b""

        def _handle(self, frame):
            if isinstance(frame, GoAwayFrame):
                self.debug = frame.additional_data
            super()._handle(frame)

    with Connection(backend) as conn:
        for i in range(pings):
            conn.send(PingFrame(0, opaque_data=i.to_bytes(8, "big")))
            if between:
                between(conn, i)
            conn.read_for(gap)
            if conn.goaway or conn.closed:
                break
        conn.read_for(0.3)
        return conn.goaway, conn.debug, conn.closed


def test_too_frequent_pings_get_goaway_enhance_your_calm(procs):
    backend = procs.backend()
    goaway, debug, closed = goaway_after_pings(backend, 6, 0.05)
    assert goaway is not None and goaway[1] == ENHANCE_YOUR_CALM, goaway
    assert debug == b"too_many_pings" and closed, (debug, closed)
    # The backend serves on.
    with grpc.insecure_channel(backend.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=5)


def test_pings_within_the_policy_are_answered(procs, pb):
    # Allowed: as often as --keepalive-min-interval, even without calls when permitted.
    lenient = procs.backend(None, "--keepalive-min-interval", "100ms", "--keepalive-permit-without-calls", "on")
    goaway, _, closed = goaway_after_pings(lenient, 6, 0.15)
    assert goaway is None and not closed
    # Forgiven: each ping after the server sent an answer (grpc-go resets the strikes).
    strict = procs.backend()

    def call(conn, i):
        conn.detect(2 * i + 1, pb)

    goaway, _, closed = goaway_after_pings(strict, 6, 0.05, between=call)
    assert goaway is None and not closed


def metric(url, name):
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} on {url}/metrics")


def test_max_connection_age_rotates_a_grpcio_clients_connection_without_a_failed_call(procs, pb):
    metrics_port = free_port()
    backend = procs.backend(None, "--max-connection-age", "500ms", "--max-connection-age-grace", "5s",
                            "--metrics-port", metrics_port)
    url = f"http://127.0.0.1:{metrics_port}"
    request = pb.OutliersRequest(metrics=[pb.Metric(value=v) for v in (1, 2, 100, 1, 3, 200, 1)])
    answers, failures = [], []

    def calls(stub, until):
        while time.monotonic() < until:
            try:
                answers.append(list(stub.Detect(request, timeout=10).indices))
            except grpc.RpcError as e:
                failures.append(f"{e.code()}: {e.details()}")

    with grpc.insecure_channel(backend.address) as channel:
        stub = pb.OutliersStub(channel)
        until = time.monotonic() + 3.5
        threads = [threading.Thread(target=calls, args=(stub, until)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    connections = metric(url, "outliers_backend_connections_total")
    assert failures == [], failures[:5]
    assert answers and all(a == [5] for a in answers)
    # One connection at a time, each asked to go after about half a second.
    assert connections >= 4, f"{connections} connections in 3.5 s with --max-connection-age 500ms"
    record_measurement(f"--max-connection-age 500ms, a grpcio channel with 3 threads for 3.5 s: "
                       f"{len(answers)} calls, 0 failed, over {connections:.0f} connections")


def test_past_the_grace_a_long_call_is_cut_off(procs):
    """A health Watch stays open for ever; the age's grace ends it."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    backend = procs.backend(None, "--max-connection-age", "300ms", "--max-connection-age-grace", "500ms")
    # A connection of its own: grpcio would otherwise reuse the one wait_ready opened,
    # which is older than this test's clock.
    with grpc.insecure_channel(backend.address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        started = time.monotonic()
        first = next(watch)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        try:
            for _ in watch:
                pass
            raise AssertionError("the Watch ended without an error")
        except grpc.RpcError as e:
            ended = time.monotonic() - started
            assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
    # Age 300 ms ± 10 %, then the grace of 500 ms.
    assert 0.6 < ended < 2.0, f"cut off after {ended:.2f} s"
