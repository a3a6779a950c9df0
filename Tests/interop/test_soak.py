"""The bounded soak of `make test`: scripts/soak with 100,000 requests (the full
1,000,000 is `make soak`, against the release build) through `outliers serve` with
the binary under test. scripts/soak checks every answer and fails when resident memory
grows by 10 MiB or more, or descriptors do not return to their warm-up count.

Run:  .venv/bin/python -m pytest Tests/interop/test_soak.py
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, record_measurement, require_binary

SOAK = REPO / "scripts" / "soak"
REQUESTS = 100_000
MAIN_RUN_SECONDS = 45  # the debug build does 100,000 in ~14 s on 2 cores


def test_bounded_soak():
    if shutil.which("wrk") is None:
        pytest.fail("wrk not installed (apt-get install wrk; `make deps` does it)")
    assert SOAK.is_file(), f"{SOAK} missing"
    env = {**os.environ, "SOAK_BIN": str(require_binary()), "SOAK_REQUESTS": str(REQUESTS),
           "SOAK_MAX_SECONDS": str(MAIN_RUN_SECONDS)}
    proc = subprocess.run([str(SOAK)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=MAIN_RUN_SECONDS + 60)
    out = proc.stdout + proc.stderr
    figures = re.search(r"^soak: requests .*$", out, re.M)
    if figures:
        record_measurement(figures.group(0))
    assert proc.returncode == 0, f"scripts/soak failed (exit {proc.returncode}):\n{out[-6000:]}"
    assert figures and "soak: OK" in out, out[-6000:]
    # It did what it says: all the requests, all checked.
    lua = re.search(r"^soak-lua: responses (\d+);", out, re.M)
    assert lua and int(lua.group(1)) >= REQUESTS, out[-3000:]
