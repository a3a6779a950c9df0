"""Backends that change (issue 16, item 3), with real processes and real requests:
`gateway --backend dns:///NAME:PORT` resolves NAME again while requests run; new
addresses join the round robin, removed ones drain; an address whose grpc.health.v1
Check is not SERVING leaves the rotation and comes back when it is.

NAME is resolved through /etc/hosts: the gateway runs in a private mount namespace
(`unshare -m`, as root) where a file of the test's is bind-mounted over /etc/hosts, and
the test rewrites that file in place (same inode, so the mount sees it) while the load
runs. The backends listen on 127.0.0.1 to 127.0.0.4, one port.

Run:  .venv/bin/python -m pytest Tests/interop/test_backend_discovery.py
"""

import http.client
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import HTTPProcess, PostLoad, Server, free_port, record_measurement, require_binary

NAME = "backends.test"
HERE = Path(__file__).parent


def write_hosts(path, addresses):
    # In place: a rename would leave the bind mount on the old inode.
    with open(path, "r+" if path.exists() else "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join(f"{a} {NAME}\n" for a in addresses))
        f.truncate()


def require_unshare():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("these tests need root and unshare(1) (util-linux) for a private /etc/hosts")


def start_gateway(procs, hosts, port, *extra):
    require_unshare()
    http_port = free_port()
    argv = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
            str(require_binary()), "gateway", "--host", "127.0.0.1", "--port", str(http_port),
            "--backend", f"dns:///{NAME}:{port}", "--access-log", "off", *map(str, extra)]
    gateway = HTTPProcess("gateway", argv, procs._log("gateway", http_port), http_port)
    return procs._track(gateway)


def start_backend(procs, address, port, script, *extra):
    argv = [sys.executable, str(HERE / script), "--host", address, "--port", str(port), *map(str, extra)]
    backend = Server(script, argv, procs._log(f"{script}-{address}", port), port)
    backend.host, backend.address = address, f"{address}:{port}"
    procs.started.append(backend)
    return backend


def calls(backend):
    return backend.log_tail(1 << 22).count("detect call")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {timeout} s: {what}")


def test_addresses_join_leave_and_unhealthy_ones_sit_out_while_requests_run(procs, tmp_path):
    port = free_port()
    health = {a: tmp_path / f"health-{a}" for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    for path in health.values():
        path.write_text("SERVING")
    backends = {a: start_backend(procs, a, port, "scripted_backend.py", "--count-calls", "--health-file", path)
                for a, path in health.items()}
    for backend in backends.values():
        backend.wait_ready()
    one, two, three = backends.values()
    hosts = tmp_path / "hosts"
    write_hosts(hosts, ["127.0.0.1", "127.0.0.2"])
    gateway = start_gateway(procs, hosts, port, "--resolve-interval", "200ms", "--health-check-interval", "200ms")
    load = PostLoad(gateway)
    try:
        wait_until(lambda: calls(one) > 20 and calls(two) > 20, 10, "both first addresses serve")
        assert calls(three) == 0, "127.0.0.3 served before the name had it"

        started = time.monotonic()
        write_hosts(hosts, ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
        wait_until(lambda: calls(three) > 20, 5, "the added address 127.0.0.3 serves")
        joined = time.monotonic() - started

        started = time.monotonic()
        write_hosts(hosts, ["127.0.0.2", "127.0.0.3"])
        wait_until(lambda: "backend address removed" in gateway.log_tail(1 << 20), 5, "127.0.0.1 removed")
        left = time.monotonic() - started
        time.sleep(0.2)  # its calls in flight finish
        before = calls(one)
        time.sleep(1.0)
        assert calls(one) == before, "the removed address 127.0.0.1 still gets calls"

        started = time.monotonic()
        health["127.0.0.2"].write_text("NOT_SERVING")
        wait_until(lambda: "out of rotation" in gateway.log_tail(1 << 20), 5, "127.0.0.2 out of rotation")
        ejected = time.monotonic() - started
        time.sleep(0.2)
        before, others = calls(two), calls(three)
        time.sleep(1.0)
        assert calls(two) == before, "the NOT_SERVING address 127.0.0.2 still gets calls"
        assert calls(three) > others + 20, "127.0.0.3 alone did not take the load"

        started = time.monotonic()
        health["127.0.0.2"].write_text("SERVING")
        wait_until(lambda: calls(two) > before + 20, 5, "127.0.0.2 back in rotation")
        readmitted = time.monotonic() - started
    finally:
        load.stop()
    assert load.failures == [], f"{len(load.failures)} of {len(load.results)} requests failed: {load.failures[:5]}"
    log = gateway.log_tail(1 << 22)
    assert f"backend=127.0.0.3:{port}" in log and "backend address added" in log, log[-3000:]
    assert f"backend=127.0.0.1:{port}" in log, log[-3000:]
    assert "status=NOT_SERVING" in log and "back in rotation" in log, log[-3000:]
    record_measurement(
        f"dns:/// with --resolve-interval 200ms and --health-check-interval 200ms, 4 clients: "
        f"{len(load.results)} requests, 0 failed; an added address served after {joined:.2f} s, a removed "
        f"one left after {left:.2f} s, NOT_SERVING left after {ejected:.2f} s and SERVING came back after "
        f"{readmitted:.2f} s")


def test_a_removed_address_finishes_its_calls_in_flight(procs, tmp_path):
    port = free_port()
    slow = [start_backend(procs, a, port, "delay_backend.py", "--delay", "1.5", "--count-calls")
            for a in ("127.0.0.1", "127.0.0.2")]
    for backend in slow:
        backend.wait_ready()
    hosts = tmp_path / "hosts"
    write_hosts(hosts, ["127.0.0.1", "127.0.0.2"])
    gateway = start_gateway(procs, hosts, port, "--resolve-interval", "100ms")
    results = []

    def call():
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=20)
        conn.request("POST", "/detect", body=b"[1,2,100,1,3,200,1]")
        response = conn.getresponse()
        results.append((response.status, response.read(), time.monotonic()))

    clients = [threading.Thread(target=call) for _ in range(8)]
    for t in clients:
        t.start()
    time.sleep(0.5)  # every call is out, half of them on 127.0.0.1
    write_hosts(hosts, ["127.0.0.2"])
    wait_until(lambda: "backend address removed" in gateway.log_tail(1 << 20), 3, "127.0.0.1 removed")
    removed = time.monotonic()
    gone = slow[0]
    # Calls were out on the removed address when it went, none answered yet.
    in_flight = gone.log_tail(1 << 20).count("detect call")
    assert in_flight >= 1 and "detect answered" not in gone.log_tail(1 << 20), gone.log_tail()
    for t in clients:
        t.join(timeout=20)
    assert [status for status, _, _ in results] == [200] * 8, results
    assert all(body == b'{"indices":[5]}' for _, body, _ in results), results
    assert all(answered > removed for _, _, answered in results), (removed, results)
    # ... and each of them was answered there, on the retired connection.
    assert gone.log_tail(1 << 20).count("detect answered") == in_flight, gone.log_tail()
    assert calls(slow[1]) == 8 - in_flight


def test_a_name_that_resolves_later_is_waited_for(procs, tmp_path):
    """A headless Service without ready pods has no records: the gateway starts anyway,
    answers 503 naming the resolution, and serves once the name resolves."""
    port = free_port()
    hosts = tmp_path / "hosts"
    write_hosts(hosts, [])
    gateway = start_gateway(procs, hosts, port, "--resolve-interval", "30s")
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request("POST", "/detect", body=b"[1,2,3]")
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 503 and f"cannot resolve {NAME}" in body, body
    backend = start_backend(procs, "127.0.0.1", port, "scripted_backend.py")
    backend.wait_ready()
    write_hosts(hosts, ["127.0.0.1"])
    # Not the 30 s period: a call that finds no address resolves again (at most once a second).
    deadline = time.monotonic() + 5
    while True:
        conn.request("POST", "/detect", body=b"[1,2,3]")
        response = conn.getresponse()
        body = response.read().decode()
        if response.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status == 200, body
    assert "cannot resolve the backend target" in gateway.log_tail(1 << 20)
