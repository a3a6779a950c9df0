"""The command line as a user meets it: --help everywhere, bad flags exit 64 with a
one-line reason, and `outliers bench --quick` in each output format (the figures are
not checked here, only that every format parses back and the run verified its codecs)."""

import csv
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from test_client_grpc import binary

COMMANDS = ["serve", "backend", "gateway", "detect", "bench"]


def run(*args, timeout=300):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command):
    result = run(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "USAGE:" in result.stdout
    assert "OPTIONS:" in result.stdout


@pytest.mark.parametrize("args", [
    ["backend", "--port", "70000"], ["backend", "--threads", "0"], ["backend", "--log-level", "loud"],
    ["serve", "--http-port", "-1"], ["gateway"], ["gateway", "--backend", "nohostport"],
    ["gateway", "--backend", "h:1", "--timeout", "5 parsecs"], ["detect"], ["bench", "--format", "xml"],
    ["bench", "--sizes", "0"], ["nosuchcommand"],
])
def test_bad_flags_exit_64_with_a_reason(args):
    result = run(*args)
    assert result.returncode == 64, (args, result.returncode, result.stderr)
    assert result.stderr.strip().splitlines()[0].startswith("Error:"), result.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip()


def test_bench_quick_json(tmp_path):
    result = run("bench", "--quick", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"].startswith("outliers-bench/")
    codecs = {r["codec"] for r in data["results"]}
    assert {"protobuf"} <= codecs and len(codecs) >= 4, codecs
    for r in data["results"]:
        assert r["bytes"] > 0 and r["message"] in ("request", "response")
    assert data["summary"]["article"] == {"size_ratio": 4, "speedup": 7.5}
    assert "smaller than JSON" in data["summary"]["line"]


def test_bench_quick_csv_markdown_table_and_chart(tmp_path):
    result = run("bench", "--quick", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, body = rows[0], rows[1:]
    assert "codec" in header and len(body) >= 8
    assert all(len(row) == len(header) for row in body)
    chart = tmp_path / "chart.svg"
    out = tmp_path / "table.md"
    result = run("bench", "--quick", "--format", "markdown", "--output", str(out), "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert "| codec |" in out.read_text().replace("|:", "|") or "| codec" in out.read_text()
    root = ET.parse(chart).getroot()
    assert root.tag.endswith("svg")
    result = run("bench", "--quick")
    assert result.returncode == 0, result.stderr
    # The default table fits 120 columns; lines are wrapped, so words are compared.
    widths = [len(line) for line in result.stdout.splitlines()]
    assert max(widths) <= 120, max(widths)
    assert "(article: about 7.5× faster, about 4× smaller)" in " ".join(result.stdout.split())
    assert "method:" not in result.stdout
    verbose = run("bench", "--quick", "--verbose")
    assert verbose.returncode == 0 and "method:" in verbose.stdout, verbose.stderr
    assert max(len(line) for line in verbose.stdout.splitlines()) <= 120
    wide = run("bench", "--quick", "--format", "wide")
    assert wide.returncode == 0, wide.stderr
    assert "encode, per message" in wide.stdout and "method:" in wide.stdout


def test_bench_refuses_to_time_a_debug_build():
    if "debug" not in binary():
        pytest.skip("the binary under test is a release build, which bench times without --allow-debug")
    result = run("bench")
    assert result.returncode == 64
    assert "debug" in result.stderr.lower()


@pytest.mark.parametrize("command", [["backend", "--port", "0"],
                                     ["gateway", "--port", "0", "--backend", "127.0.0.1:1"],
                                     ["serve", "--http-port", "0", "--grpc-port", "0"]])
def test_a_signal_right_after_start_is_never_lost(command):
    """SIGTERM the moment a server says it listens: the signals used to be set to be
    ignored before their dispatch source existed, so one in that window was dropped and
    the process never exited (1 hang in 30 such runs of `backend` before the fix)."""
    import random
    import signal
    import time
    for attempt in range(20):
        proc = subprocess.Popen([str(binary()), *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.stderr.readline()  # the first log line: the server is up
            time.sleep(random.random() * 0.002)
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{' '.join(command)}: no exit 10 s after SIGTERM (attempt {attempt})")
            assert rc == 0, f"{' '.join(command)} exited {rc} (attempt {attempt})"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()


def test_bench_detection_times_every_rule():
    """`outliers bench --detection`: each rule and a full sort, per size, as a Markdown
    table; the rules find the demo data's three planted outliers at 1000 values."""
    result = run("bench", "--detection", "--quick")
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r[0].strip() for r in rows[1:]] == ["ZSCORE (mean, std)", "MAD (two medians)", "IQR (three order statistics)",
                                               "full sort (for scale)"] * 2, result.stdout
    at_1000 = [r for r in rows[1:] if r[1].strip() == "1,000"]
    assert [r[5].strip() for r in at_1000] == ["3", "3", "3", "—"], result.stdout
    assert all(float(r[2]) > 0 for r in rows[1:]), result.stdout
    bad = run("bench", "--detection", "--format", "json")
    assert bad.returncode == 64 and "--detection" in bad.stderr, bad.stderr
