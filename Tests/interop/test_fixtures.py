"""The committed detection fixtures are what their scripts write today (numpy and scipy
as pinned in requirements.txt): a stale fixture would let the Swift tests check
against answers nobody can reproduce."""

import subprocess
import sys

from conftest import REPO


def test_robust_fixtures_are_a_fresh_generation(tmp_path):
    out = tmp_path / "robust.json"
    proc = subprocess.run([sys.executable, str(REPO / "Tests" / "fixtures" / "make_robust_fixtures.py"), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    committed = (REPO / "Tests" / "fixtures" / "robust.json").read_bytes()
    assert out.read_bytes() == committed, \
        "Tests/fixtures/robust.json is stale: run .venv/bin/python Tests/fixtures/make_robust_fixtures.py"
