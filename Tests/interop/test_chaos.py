"""Chaos under load: the backend killed (SIGKILL) and restarted behind a separate
gateway; the gateway, and `outliers serve`, stopped with SIGTERM while requests are
in flight.

Load: CLIENTS threads, each on its own keep-alive connection (a new one after the
server says Connection: close), POST /detect back to back, every call with a client
timeout, for a bounded time. Every request is recorded: when it was handed to the
socket, when it ended, and how (status and body, or the exception).

Run:  .venv/bin/python -m pytest Tests/interop/test_chaos.py
"""

import http.client
import json
import signal
import socket
import subprocess
import threading
import time

from conftest import REPO, free_port, record_measurement

CLIENTS = 16
ARTICLE = b"[1,2,100,1,3,200,1]"
ARTICLE_ANSWER = b'{"indices":[5]}'
DEMO = (REPO / "examples" / "metrics.json").read_bytes()
DEMO_ANSWER = b'{"indices":[7,113,835]}'
CLIENT_TIMEOUT = 12.0  # above the gateway's default 10 s deadline: a hang shows as a timeout


class Outcome:
    __slots__ = ("sent", "ended", "status", "body", "error", "close")

    def __init__(self, sent, ended, status=None, body=b"", error=None, close=False):
        self.sent, self.ended, self.status, self.body = sent, ended, status, body
        self.error, self.close = error, close

    def __repr__(self):
        what = self.error or f"{self.status} {self.body[:120]!r}"
        return f"<sent {self.sent:.3f} ended {self.ended:.3f}: {what}>"


class Load:
    """CLIENTS threads sending `body` to /detect until stop() (or `limit` seconds)."""

    def __init__(self, port, body, clients=CLIENTS, limit=30.0):
        self.port, self.body, self.limit = port, body, limit
        self.outcomes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self):
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=CLIENT_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self._threads), "a load thread hung"

    def _record(self, outcome):
        with self._lock:
            self.outcomes.append(outcome)

    def _connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)

    def _run(self):
        conn = self._connection()
        end = self.started + self.limit
        headers = {"Content-Type": "application/json"}
        while not self._stop.is_set() and time.monotonic() < end:
            sent = None
            try:
                conn.request("POST", "/detect", self.body, headers)
                sent = time.monotonic()  # the whole request is with the kernel now
                resp = conn.getresponse()
                data = resp.read()
                close = resp.will_close
                self._record(Outcome(sent, time.monotonic(), resp.status, data, close=close))
                if close:
                    conn.close()
                    conn = self._connection()
            except (OSError, http.client.HTTPException) as err:
                now = time.monotonic()
                # Not sent at all (refused, or the connection was gone before the
                # request went out): `sent` stays None.
                self._record(Outcome(sent, now, error=f"{type(err).__name__}: {err}"))
                conn.close()
                conn = self._connection()
                time.sleep(0.005)  # a refused connect would otherwise spin
        conn.close()


def is_answer(o, body):
    return o.status == 200 and o.body == body


def is_error_body(o, codes):
    try:
        err = json.loads(o.body)
    except ValueError:
        return False
    return isinstance(err, dict) and err.get("code") in codes and set(err) == {"code", "message", "details"}


def start_backend(procs, port):
    """`outliers backend` on `port` (the same port again after a kill: retried while the
    old socket lingers); returns (process, when its port first accepted)."""
    accepted = {}
    stop = threading.Event()

    def watch():  # the moment the port accepts, independent of the fixture's readiness check
        while not stop.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                accepted["at"] = time.monotonic()
                return
            except OSError:
                time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = procs.backend(port)
    finally:
        watcher.join(timeout=15)
        stop.set()
    assert "at" in accepted, "the backend never accepted"
    return proc, accepted["at"]


def test_backend_sigkill_under_load_then_restart(procs):
    backend, _ = start_backend(procs, free_port())
    gw = procs.gateway([backend])
    with Load(gw.port, ARTICLE) as load:
        time.sleep(1.5)
        killed = time.monotonic()
        backend.proc.send_signal(signal.SIGKILL)
        backend.proc.wait(timeout=10)
        time.sleep(1.5)  # the gateway without a backend, under load
        _, back = start_backend(procs, backend.port)
        time.sleep(3.0)  # after the return
        load.stop()
    outcomes = load.outcomes
    errors = [o for o in outcomes if o.error]
    wrong = [o for o in outcomes if not o.error and not is_answer(o, ARTICLE_ANSWER)
             and not (o.status in (503, 504) and is_error_body(o, {14, 4}))]
    down = [o for o in outcomes if o.status in (503, 504)]
    first_ok = min((o.ended for o in outcomes if o.ended > back and is_answer(o, ARTICLE_ANSWER)),
                   default=None)
    late_failures = [o for o in outcomes if o.sent and o.sent > back + 1.0 and not is_answer(o, ARTICLE_ANSWER)]
    recovery = None if first_ok is None else first_ok - back
    record_measurement(
        f"backend SIGKILL under {CLIENTS} clients: {len(outcomes)} requests, "
        f"{sum(is_answer(o, ARTICLE_ANSWER) for o in outcomes)} answered 200, {len(down)} 503/504 "
        f"(down {back - killed:.2f} s), {len(errors)} connection errors; first 200 "
        f"{'never' if recovery is None else f'{recovery * 1000:.0f} ms'} after the restarted "
        f"backend accepted")
    assert not errors, f"{len(errors)} requests got no HTTP answer: {errors[:5]}"
    assert not wrong, f"{len(wrong)} unexpected answers: {wrong[:5]}"
    assert down, "no 503/504 while the backend was down: was it killed?"
    assert recovery is not None and recovery < 1.0, \
        f"first success {recovery} s after the backend's return (limit 1 s)"
    assert not late_failures, (f"{len(late_failures)} failures sent more than 1 s after the "
                               f"backend's return: {late_failures[:5]}")
    gw.check_alive()


def sigterm_under_load(proc, load):
    """Let the load run, SIGTERM `proc`, keep the load going until the process exits;
    return (exit code, signal time, exit time)."""
    time.sleep(1.5)
    signalled = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None  # still running 20 s after SIGTERM: the assertion on rc says so
    exited = time.monotonic()
    time.sleep(0.3)  # new connections after the exit: refused
    load.stop()
    return rc, signalled, exited


def assert_no_in_flight_request_lost(what, proc, load, answer, rc, signalled, exited):
    outcomes = load.outcomes
    before = [o for o in outcomes if o.sent is not None and o.sent < signalled]
    lost = [o for o in before if not is_answer(o, answer)]
    in_flight = [o for o in before if o.ended > signalled]
    timeouts = [o for o in outcomes if o.error and "timed out" in o.error]
    after = [o for o in outcomes if o.sent is None or o.sent >= signalled]
    refused = [o for o in after if o.error]
    record_measurement(
        f"{what} SIGTERM under {CLIENTS} clients: {len(before)} requests sent before the signal "
        f"({len(in_flight)} in flight at it), {len(lost)} lost; exit {rc} after "
        f"{exited - signalled:.2f} s; after the signal {len(after)} attempts, "
        f"{len(refused)} refused/closed")
    assert rc == 0, f"{what} exited {rc} after SIGTERM\n{proc.log_tail()}"
    assert in_flight, "no request was in flight at the signal: the test proved nothing"
    assert not lost, f"{len(lost)} requests sent before SIGTERM lost: {lost[:5]}"
    assert not timeouts, f"{len(timeouts)} requests hung: {timeouts[:5]}"
    wrong = [o for o in after if not o.error and not is_answer(o, answer)]
    assert not wrong, f"answers after the signal that are neither right nor refused: {wrong[:5]}"


def test_gateway_sigterm_under_load(procs):
    # A backend that takes 100 ms per call, so that every client has a call in flight
    # at the signal (delay_backend.py: asyncio, not thread-bound).
    backend = procs.delay_backend(0.1)
    gw = procs.gateway([backend])
    with Load(gw.port, ARTICLE) as load:
        rc, signalled, exited = sigterm_under_load(gw, load)
    assert_no_in_flight_request_lost("gateway", gw, load, ARTICLE_ANSWER, rc, signalled, exited)
    backend.check_alive()


def test_serve_sigterm_under_load(procs):
    srv = procs.serve()
    # examples/metrics.json (1000 metrics): more work per call, more calls in flight.
    with Load(srv.port, DEMO) as load:
        rc, signalled, exited = sigterm_under_load(srv, load)
    assert_no_in_flight_request_lost("serve", srv, load, DEMO_ANSWER, rc, signalled, exited)
