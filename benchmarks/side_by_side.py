#!/usr/bin/env python3
"""Ours and the peers in one run, alternating, medians of R rounds (benchmarks/README.md).

Sections (SECTIONS, default all):
  a  gRPC backend, h2load -c1 -m16 (and -m1), 1000 metrics: outliers backend, grpc-go,
     the article's Python server
  b  gateway whole path, wrk -t1 -c16 POST /detect: outliers serve; Go net/http +
     encoding/json proxy -> grpc-go; grpc-gateway v1.6.4 -> grpc-go; pinned (servers
     on cpu0, load on cpu1), then unpinned (2 cores shared with wrk)
  c  latency p50/p99 through each gateway at -c16 and -c256 (pinned)
  d  size: 10, 1000, 100000 metrics through outliers serve, -c1: time per metric
  e  100,000 bare numbers against 100,000 metric objects through outliers serve, -c1
  f  the 1000-metric body gzipped (Content-Encoding: gzip, about 8 KB instead of 71 KB)
     against the same body plain, through outliers serve, wrk -c16, pinned

Every system is checked for the right answer before it is measured; a system that
does not start or answers wrongly fails the run. BASELINE_BIN adds a second outliers
binary (an older build) as a system of its own, measured in the same rounds.
"""

import gzip
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / ".build-peers"
R = int(os.environ.get("R", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
SECTIONS = os.environ.get("SECTIONS", "a b c d e f").split()
OURS = Path(os.environ.get("OUTLIERS_BIN", REPO / ".build/release/outliers"))
BASELINE = Path(os.environ["BASELINE_BIN"]) if os.environ.get("BASELINE_BIN") else None
OUT = Path(os.environ.get("OUT", REPO / ".build-bench" / time.strftime("side-by-side-%Y%m%d-%H%M%S")))
PYTHON = REPO / ".venv/bin/python"
SERVER_CPU = ["taskset", "-c", "0"]
LOAD_CPU = ["taskset", "-c", "1"]
EXPECTED = {"indices": [7, 113, 835]}


def fail(message):
    sys.exit(f"side-by-side: {message}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, process, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"nothing listens on {port} after {timeout} s: {process.args}")


class Processes:
    """Servers of one measurement, stopped together (also on any failure)."""

    def __init__(self, log_name):
        self.log = open(OUT / f"{log_name}.log", "ab")
        self.processes = []

    def start(self, argv, port, pinned):
        process = subprocess.Popen((SERVER_CPU if pinned else []) + [str(a) for a in argv],
                                   stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        self.processes.append(process)
        wait_port(port, process)
        return process

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.log.close()


def backend(system, processes, pinned=True):
    """Starts a gRPC backend; its port."""
    port = free_port()
    if system in ("ours", "baseline"):
        binary = OURS if system == "ours" else BASELINE
        processes.start([binary, "backend", "--host", "127.0.0.1", "--port", port], port, pinned)
    elif system == "grpc-go":
        processes.start([PEERS / "bin/server", "-addr", f"127.0.0.1:{port}"], port, pinned)
    elif system == "python":
        processes.start([PYTHON, "examples/python/server.py", "--host", "127.0.0.1", "--port", port,
                         "--no-reflection"], port, pinned)
    else:
        fail(f"unknown backend {system}")
    return port


def gateway(system, processes, pinned=True):
    """Starts a whole REST path (gateway and its backend); the gateway's port."""
    http = free_port()
    if system in ("ours", "baseline"):
        binary = OURS if system == "ours" else BASELINE
        processes.start([binary, "serve", "--host", "127.0.0.1", "--http-port", http,
                         "--grpc-port", free_port()], http, pinned)
    elif system == "go-json-proxy":
        grpc_port = backend("grpc-go", processes, pinned)
        processes.start([PEERS / "bin/litegw", "-addr", f"127.0.0.1:{http}", "-backend", f"127.0.0.1:{grpc_port}",
                         "-json", "std"], http, pinned)
    elif system == "grpc-gateway":
        grpc_port = backend("grpc-go", processes, pinned)
        processes.start([PEERS / "bin/gateway", "-addr", f"127.0.0.1:{http}", "-backend", f"127.0.0.1:{grpc_port}"],
                        http, pinned)
    else:
        fail(f"unknown gateway {system}")
    return http


def check_backend(system, port):
    result = subprocess.run([PEERS / "bin/client", "-addr", f"127.0.0.1:{port}"], capture_output=True, text=True,
                            timeout=30)
    if "outliers at: [7 113 835]" not in result.stdout + result.stderr:
        fail(f"{system} answered the article's client wrongly: {result.stdout}{result.stderr}")


def check_gateway(system, port, body, headers=None):
    extra = [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
    result = subprocess.run(["curl", "-s", "--max-time", "30", "-H", "Content-Type: application/json", *extra,
                             "--data-binary", f"@{body}", f"http://127.0.0.1:{port}/detect"],
                            capture_output=True, text=True)
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        fail(f"{system} did not answer JSON: {result.stdout[:200]!r} {result.stderr}")
    if "indices" not in answer:
        fail(f"{system} answered {result.stdout[:200]}")
    return answer


def h2load(port, streams):
    argv = LOAD_CPU + ["h2load", "-c1", "-m", str(streams), "-D", str(DURATION), "--warm-up-time", "1",
                       "-d", str(PEERS / "data/req1000.grpc"), "-H", "content-type: application/grpc",
                       "-H", "te: trailers", f"http://127.0.0.1:{port}/pb.Outliers/Detect"]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=DURATION + 60).stdout
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if not rate or not codes or int(codes.group(1)) == 0 or sum(map(int, codes.groups()[1:])) > 0:
        fail(f"h2load failed:\n{output}")
    return float(rate.group(1))


def wrk(port, body, connections, pinned=True, duration=None, headers=None):
    lua = OUT / f"post-{Path(body).name}.lua"
    if not lua.exists():
        extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
        lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' + extra +
                       f'local f = assert(io.open("{body}", "rb"))\nwrk.body = f:read("*a")\nf:close()\n')
    argv = (LOAD_CPU if pinned else []) + ["wrk", "-t1", f"-c{connections}", f"-d{duration or DURATION}s",
                                           "--latency", "-s", str(lua), f"http://127.0.0.1:{port}/detect"]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=(duration or DURATION) + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rate or "Non-2xx" in output or re.search(r"Socket errors:.*(read|write) [1-9]", output):
        fail(f"wrk failed or saw errors:\n{output}")
    def latency(percent):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            fail(f"no {percent}% latency in wrk's output:\n{output}")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return {"rate": float(rate.group(1)), "p50": latency(50), "p99": latency(99)}


def body_files():
    """Bodies for sections d and e: the article's shape with random values (fixed seed)."""
    bodies = {}
    generator = random.Random(15)
    for count in (10, 1000, 100_000):
        values = [generator.random() * 40 for _ in range(count)]
        for index in (7, 113, 835):
            if index < count:
                values[index] = 97.0 + index / 1000
        objects = OUT / f"metrics-{count}.json"
        objects.write_text(json.dumps({"metrics": [{"time": "2020-05-22T14:13:11Z", "name": "CPU", "value": v}
                                                   for v in values]}))
        bare = OUT / f"bare-{count}.json"
        bare.write_text(json.dumps(values))
        bodies[count] = (objects, bare)
    return bodies


def median(samples):
    return statistics.median(samples) if samples else float("nan")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for path, what in [(OURS, "OUTLIERS_BIN (swift build -c release)"), (PEERS / "bin/server", "the peers (benchmarks/peers/setup.sh)"),
                       (PYTHON, "the venv (make venv)")]:
        if not path.exists():
            fail(f"{path} is missing: {what}")
    if BASELINE and not BASELINE.exists():
        fail(f"BASELINE_BIN {BASELINE} is missing")
    ours = ["ours"] + (["baseline"] if BASELINE else [])
    json_body = PEERS / "data/req1000.json"
    results = {}  # (section, system, setting) -> list of samples
    def add(key, value):
        results.setdefault(key, []).append(value)

    bodies = body_files() if {"d", "e"} & set(SECTIONS) else {}
    checked = set()
    for round_number in range(1, R + 1):
        print(f"round {round_number} of {R}", flush=True)
        if "a" in SECTIONS:
            for system in ours + ["grpc-go", "python"]:
                with Processes(f"a-{system}") as processes:
                    port = backend(system, processes)
                    if system not in checked:
                        check_backend(system, port)
                        checked.add(system)
                    for streams in (16, 1):
                        add(("a", system, f"-m{streams}"), h2load(port, streams))
        for pinned in ([True, False] if "b" in SECTIONS else []) + ([True] if "c" in SECTIONS and "b" not in SECTIONS else []):
            systems = ours + ["go-json-proxy", "grpc-gateway"] if pinned else ours + ["go-json-proxy"]
            for system in systems:
                with Processes(f"b-{system}") as processes:
                    port = gateway(system, processes, pinned)
                    if check_gateway(system, port, json_body) != EXPECTED:
                        fail(f"{system} answered wrongly for the article's data")
                    setting = "pinned" if pinned else "unpinned"
                    add(("b", system, setting), wrk(port, json_body, 16, pinned))
                    if pinned and "c" in SECTIONS:
                        add(("c", system, "c256"), wrk(port, json_body, 256, pinned))
        if "d" in SECTIONS or "e" in SECTIONS:
            for system in ours:
                with Processes(f"d-{system}") as processes:
                    port = gateway(system, processes)
                    for count, (objects, bare) in bodies.items():
                        if "d" in SECTIONS or count == 100_000:
                            add(("d", system, f"objects-{count}"), wrk(port, objects, 1))
                        if "e" in SECTIONS and count == 100_000:
                            if check_gateway(system, port, bare) != check_gateway(system, port, objects):
                                fail(f"{system}: bare numbers and metric objects answered differently")
                            add(("e", system, "bare-100000"), wrk(port, bare, 1))
        if "f" in SECTIONS:
            with Processes("f-ours") as processes:
                port = gateway("ours", processes, True)
                gzipped = OUT / "req1000.json.gz"
                if not gzipped.exists():
                    gzipped.write_bytes(gzip.compress(json_body.read_bytes(), 6))
                if check_gateway("ours", port, gzipped, {"Content-Encoding": "gzip"}) != EXPECTED:
                    fail("ours answered the gzipped body wrongly")
                add(("f", "ours", "plain"), wrk(port, json_body, 16))
                add(("f", "ours", "gzip"), wrk(port, gzipped, 16, headers={"Content-Encoding": "gzip"}))
    (OUT / "results.json").write_text(json.dumps({" | ".join(k): v for k, v in results.items()}, indent=1))
    summary = report(results, ours)
    (OUT / "summary.md").write_text(summary)
    print(summary)
    print(f"raw results: {OUT}/results.json; server logs: {OUT}/*.log")


def report(results, ours):
    lines = [f"Medians of {R} rounds of {DURATION} s, systems alternating; servers on cpu0, load on cpu1 "
             "unless unpinned.\n"]
    def rates(section, system, setting):
        samples = results.get((section, system, setting), [])
        return [s["rate"] if isinstance(s, dict) else s for s in samples]
    if "a" in SECTIONS:
        lines += ["### a. gRPC backend (h2load -c1, 1000 metrics)\n", "| system | -m16 req/s | -m1 req/s | ours/this at -m16 |",
                  "|---|---:|---:|---:|"]
        top = median(rates("a", "ours", "-m16"))
        for system in ours + ["grpc-go", "python"]:
            m16, m1 = median(rates("a", system, "-m16")), median(rates("a", system, "-m1"))
            lines.append(f"| {system} | {m16:,.0f} | {m1:,.0f} | {top / m16:.1f}× |")
        lines.append("")
    if "b" in SECTIONS:
        lines += ["### b. Gateway whole path (wrk -t1 -c16, POST /detect, 1000 metrics)\n",
                  "| system | pinned req/s | unpinned req/s | ours/this pinned | ours/this unpinned |", "|---|---:|---:|---:|---:|"]
        top_pinned, top_free = median(rates("b", "ours", "pinned")), median(rates("b", "ours", "unpinned"))
        for system in ours + ["go-json-proxy", "grpc-gateway"]:
            pinned, free = median(rates("b", system, "pinned")), median(rates("b", system, "unpinned"))
            free_text = f"{free:,.0f}" if free == free else "—"
            free_ratio = f"{top_free / free:.1f}×" if free == free else "—"
            lines.append(f"| {system} | {pinned:,.0f} | {free_text} | {top_pinned / pinned:.1f}× | {free_ratio} |")
        lines.append("")
    if "c" in SECTIONS:
        lines += ["### c. Latency through each gateway (pinned), ms\n", "| system | c16 p50 | c16 p99 | c256 p50 | c256 p99 | c256 req/s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for system in ours + ["go-json-proxy", "grpc-gateway"]:
            c16 = results.get(("b", system, "pinned"), [])
            c256 = results.get(("c", system, "c256"), [])
            # wrk counts no latency when no request finished within the run (rate 0).
            cell = lambda samples, key: (f"{median([s[key] for s in samples]):.2f}"
                                         if samples and median([s["rate"] for s in samples]) > 0 else "—")
            lines.append(f"| {system} | {cell(c16, 'p50')} | {cell(c16, 'p99')} | {cell(c256, 'p50')} | {cell(c256, 'p99')} | "
                         f"{median([s['rate'] for s in c256]):,.0f} |")
        lines.append("")
    if "d" in SECTIONS:
        lines += ["### d. Cost by size (outliers serve, wrk -c1)\n", "| system | metrics | req/s | µs per request | µs per metric | per metric / at 1000 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for system in ours:
            at_1000 = 1e6 / median(rates("d", system, "objects-1000")) / 1000
            for count in (10, 1000, 100_000):
                rate = median(rates("d", system, f"objects-{count}"))
                per_metric = 1e6 / rate / count
                lines.append(f"| {system} | {count:,} | {rate:,.1f} | {1e6 / rate:,.0f} | {per_metric:.3f} | {per_metric / at_1000:.2f} |")
        lines.append("")
    if "e" in SECTIONS:
        lines += ["### e. 100,000 bare numbers against 100,000 metric objects (outliers serve, -c1)\n",
                  "| system | objects ms | bare numbers ms | bare / objects |", "|---|---:|---:|---:|"]
        for system in ours:
            objects = 1e3 / median(rates("d", system, "objects-100000"))
            bare = 1e3 / median(rates("e", system, "bare-100000"))
            lines.append(f"| {system} | {objects:.1f} | {bare:.1f} | {bare / objects:.2f} |")
        lines.append("")
    if "f" in SECTIONS:
        plain, gzipped = median(rates("f", "ours", "plain")), median(rates("f", "ours", "gzip"))
        sizes = (PEERS / "data/req1000.json").stat().st_size, (OUT / "req1000.json.gz").stat().st_size
        lines += ["### f. A gzipped body (outliers serve, wrk -t1 -c16, pinned)\n",
                  "| body | bytes | req/s | / plain |", "|---|---:|---:|---:|",
                  f"| plain JSON | {sizes[0]:,} | {plain:,.0f} | 1.00 |",
                  f"| gzip (Content-Encoding: gzip) | {sizes[1]:,} | {gzipped:,.0f} | {gzipped / plain:.2f} |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
