"""The version is written once (pyproject.toml) and read everywhere else from the install."""
from __future__ import annotations

import re
from importlib import metadata

import fer_edge
from conftest import REPO_ROOT, run_cli


def test_version_comes_from_the_project_metadata():
    written = re.search(r'^version = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert fer_edge.__version__ == metadata.version("fer-edge") == written
    assert run_cli("--version").stdout.strip() == f"fer-edge {written}"
