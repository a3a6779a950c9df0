"""Our gRPC client (`outliers detect`, H2GRPC's GRPCChannel) against the article's
Python grpcio server (examples/python/server.py): the real peer for the client half.

Each test starts its own Python server(s) on free ports and runs the binary given by
OUTLIERS_BIN (default .build/debug/outliers). `outliers detect --calls N --concurrency C
--json` prints one summary line: {"calls":N,"codes":{"OK":…,"UNAVAILABLE":…},…}.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON_SERVER = REPO / "examples" / "python" / "server.py"


def binary():
    env = os.environ.get("OUTLIERS_BIN")
    path = Path(env) if env else REPO / ".build" / "debug" / "outliers"
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"outliers binary not found at {path}: build it first (make build)")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PythonServer:
    """The article's server on 127.0.0.1:port, ready once it accepts connections."""

    def __init__(self, tmp_path, port=None, delay=0.0, workers=64):
        self.port = port or free_port()
        self.log = open(tmp_path / f"python-server-{self.port}-{time.monotonic_ns()}.log", "wb")
        argv = [sys.executable, str(PYTHON_SERVER), "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(workers), "--no-reflection"]
        if delay:
            argv += ["--delay", str(delay)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"python server exited: {Path(self.log.name).read_text()[-2000:]}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.25).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "python server not ready in 30 s"
                time.sleep(0.05)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(**kwargs):
        server = PythonServer(tmp_path, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def detect(*args, timeout=60, stdin=None):
    result = subprocess.run([binary(), "detect", *args], capture_output=True, text=True,
                            timeout=timeout, input=stdin)
    return result


def start_detect(*args):
    """`outliers detect --json …` in the background, for tests that act while it runs."""
    return subprocess.Popen([binary(), "detect", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_detect(proc, timeout=180):
    """Waits (never a hang: bounded) and returns the run's summary line."""
    out, err = proc.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, f"no summary; stderr: {err[-2000:]}"
    data = json.loads(lines[-1])
    assert sum(data["codes"].values()) == data["calls"], data
    return data


def summary(result):
    line = result.stdout.strip().splitlines()[-1]
    data = json.loads(line)
    assert sum(data["codes"].values()) == data["calls"], data
    return data


def test_demo_data_against_the_articles_server(servers):
    server = servers()
    result = detect("--demo", "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "outliers at: [7 113 835]"


def test_json_file_stdin_and_json_output(servers):
    server = servers()
    result = detect("--server", server.address, str(REPO / "examples" / "metrics.json"))
    assert result.stdout.strip() == "outliers at: [7 113 835]", result.stderr
    result = detect("--server", server.address, "--json", "-", stdin="[1, 2, 100, 1, 3, 200, 1]")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"indices":[5]}'


def test_bad_input_file_is_a_clear_error(servers, tmp_path):
    server = servers()
    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics":[{"value":1},{"valu":2}]}')
    result = detect("--server", server.address, str(bad))
    assert result.returncode == 1
    assert "metrics[1].valu" in result.stderr and "unknown field" in result.stderr
    result = detect("--server", server.address, str(tmp_path / "missing.json"))
    assert result.returncode == 1 and "cannot read" in result.stderr


def test_bad_flags_exit_64():
    for args in (["--demo", "file.json"], [], ["--demo", "--server", "nohost"], ["--demo", "--timeout", "soon"]):
        result = detect(*args)
        assert result.returncode == 64, (args, result.stderr)
        assert result.stderr.strip(), args


def test_server_down_is_unavailable_quickly_then_reconnects(servers):
    port = free_port()
    started = time.monotonic()
    result = detect("--demo", "--server", f"127.0.0.1:{port}")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr and "refused" in result.stderr, result.stderr
    assert elapsed < 3, f"took {elapsed:.2f} s to report a refused connection"
    # One client process: calls fail fast while the server is down, then succeed once
    # it is up (reconnection with backoff), all in the same channel.
    proc = start_detect("--demo", "--server", f"127.0.0.1:{port}", "--calls", "60", "--rate", "20")
    time.sleep(0.3)
    servers(port=port)  # up after about a second (Python imports grpc and numpy)
    data = finish_detect(proc)
    assert set(data["codes"]) <= {"OK", "UNAVAILABLE"}, data
    assert data["codes"].get("UNAVAILABLE", 0) > 0, data
    assert data["codes"].get("OK", 0) > 0, data


def test_server_killed_mid_run_every_call_ends_with_a_status(servers):
    server = servers(workers=300)
    proc = start_detect("--demo", "--server", server.address, "--calls", "100000", "--concurrency", "200")
    time.sleep(1.5)
    server.kill()
    data = finish_detect(proc, timeout=120)  # never a hang
    assert data["calls"] == 100000 and sum(data["codes"].values()) == 100000, data
    assert data["codes"].get("OK", 0) > 0, data
    assert data["codes"].get("UNAVAILABLE", 0) > 0, data
    assert set(data["codes"]) <= {"OK", "UNAVAILABLE"}, data
    assert proc.returncode == 1


def test_deadline_shorter_than_the_handler_is_deadline_exceeded(servers):
    server = servers(delay=1.0)
    started = time.monotonic()
    result = detect("--demo", "--server", server.address, "--timeout", "200ms")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "DEADLINE_EXCEEDED" in result.stderr, result.stderr
    assert elapsed < 0.9, f"a 200 ms deadline took {elapsed:.2f} s"


def test_two_backends_one_stopped_calls_keep_succeeding(servers):
    alive = servers()
    dead_port = free_port()
    # Stopped before the run: its connection attempts fail and the calls go to the other.
    result = detect("--demo", "--server", f"127.0.0.1:{dead_port},{alive.address}", "--calls", "50", "--json")
    data = summary(result)
    assert data["codes"] == {"OK": 50}, data
    # Stopped in the middle of the run: calls in flight on it may fail, the rest succeed.
    first, second = servers(workers=200), servers(workers=200)
    proc = start_detect("--demo", "--server", f"{first.address},{second.address}", "--calls", "6000", "--concurrency", "8")
    time.sleep(1.0)
    first.kill()
    data = finish_detect(proc)
    assert set(data["codes"]) <= {"OK", "UNAVAILABLE"}, data
    assert data["codes"].get("UNAVAILABLE", 0) <= 8, f"only the calls in flight may fail: {data}"
    assert data["codes"]["OK"] >= 6000 - 8, data


def test_goaway_lets_calls_in_flight_finish(servers):
    # grpcio's server.stop(grace) sends GOAWAY and lets calls in flight complete.
    server = servers(delay=1.0, workers=32)
    proc = start_detect("--demo", "--server", server.address, "--calls", "16", "--concurrency", "16")
    time.sleep(0.4)
    server.terminate()
    data = finish_detect(proc, timeout=60)
    assert data["codes"] == {"OK": 16}, data
    # New calls after the GOAWAY go to a new connection: to a restarted server.
    server.proc.wait(timeout=30)
    restarted = servers(port=server.port)
    result = detect("--demo", "--server", restarted.address)
    assert result.stdout.strip() == "outliers at: [7 113 835]", result.stderr


def test_no_outliers_prints_an_empty_list(servers):
    server = servers()
    result = detect("--server", server.address, "-", stdin="[1, 2, 3]")
    assert result.returncode == 0 and result.stdout.strip() == "outliers at: []"
