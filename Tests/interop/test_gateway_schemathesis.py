"""Schemathesis against a running `outliers serve` on 127.0.0.1 with openapi.yaml:
every check (server errors, status codes, content types, response headers and
schemas, negative and positive data, methods, Allow), bounded in examples and time.

not_a_server_error is replaced by Tests/interop/schemathesis_hooks.py's check, which
is the same except for a 504 DEADLINE_EXCEEDED answering a Grpc-Timeout under 100 ms
(schemathesis generates `9424n`; the spec documents 504 for it).

The seed is fixed so that a failure is reproducible (OUTLIERS_SCHEMATHESIS_SEED picks
another); schemathesis' own output, with a curl line per failure, is printed on failure.

Run:  .venv/bin/python -m pytest Tests/interop/test_gateway_schemathesis.py
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import REPO, record_measurement

OPENAPI = REPO / "openapi.yaml"
HOOKS_DIR = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 60
TIME_LIMIT = 80  # seconds for the whole run; schemathesis takes ~10 s here
SEED = int(os.environ.get("OUTLIERS_SCHEMATHESIS_SEED", "2"))


def test_schemathesis_all_checks(rest, tmp_path):
    assert SCHEMATHESIS.exists(), (f"{SCHEMATHESIS} not installed: pip install -r "
                                   "Tests/interop/requirements.txt (schemathesis is pinned there)")
    argv = [str(SCHEMATHESIS), "run", str(OPENAPI), "--url", rest.url,
            "--checks", "all", "--exclude-checks", "not_a_server_error",
            "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
            "--request-timeout", "15", "--generation-database", "none", "--no-color",
            "--report", "junit", "--report-dir", str(tmp_path / "report")]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS_DIR), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    # cwd: schemathesis writes nothing into the repository.
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIME_LIMIT)
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    cases = re.search(r"(\d+) generated, (.*)", out)
    record_measurement(f"schemathesis seed {SEED}, --max-examples {MAX_EXAMPLES}: "
                       f"{cases.group(0) if cases else 'no summary'} in {elapsed:.1f} s")
    assert proc.returncode == 0, f"schemathesis failed (exit {proc.returncode}):\n{out[-20000:]}"
    assert cases and int(cases.group(1)) >= 70, f"too few cases were run:\n{out[-5000:]}"
    # Every operation of the spec was tested (none skipped for want of a serializer).
    tested = re.search(r"Tested:\s+(\d+)", out)
    operations = sum(1 for item in yaml.safe_load(OPENAPI.read_text())["paths"].values()
                     for method in item if method in ("get", "head", "post", "put", "delete", "patch", "options"))
    assert tested and int(tested.group(1)) == operations, out[-5000:]
    rest.check_alive()
