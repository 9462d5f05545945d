"""The real-data tests find FER2013 where FER_EDGE_FER2013_DIR says, not only in ../shared."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_fer2013_dir_comes_from_the_environment(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS / "test_data_real.py"), "-q", "-rs", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300, cwd=TESTS.parent,
        env={**os.environ, "FER_EDGE_FER2013_DIR": str(tmp_path)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"real FER2013 data not found at {tmp_path} (set FER_EDGE_FER2013_DIR" in r.stdout
    assert " passed" not in r.stdout  # every real-data test looked in tmp_path and skipped
