"""A source tree without the compiled extension says, in one line, what to run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fer_edge

MESSAGE = "fer_edge._native is not built: run `pip install -e .` in the source tree"


@pytest.fixture(scope="module")
def unbuilt_tree(tmp_path_factory) -> Path:
    """A copy of the fer_edge sources without any compiled file, as a fresh clone has."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(Path(fer_edge.__file__).resolve().parent, root / "fer_edge",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "training"))
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    # -S: no site-packages processing, so no editable-install finder; numpy & co. come from
    # their directory on PYTHONPATH, behind the unbuilt tree.
    site = str(Path(np.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), site])
    return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=env, cwd=root,
                          timeout=120)


def test_import_of_the_missing_extension_is_one_line(unbuilt_tree):
    r = _run(unbuilt_tree, "-c", "import fer_edge._native")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"fer_edge._unbuilt.NativeNotBuiltError: {MESSAGE}"
    r = _run(unbuilt_tree, "-c", "from fer_edge import _native")
    assert r.stderr.strip().splitlines()[-1].endswith(MESSAGE)


@pytest.mark.parametrize("argv", [["--help"], ["data", "stats", "x.csv"], ["demo"]])
def test_cli_in_an_unbuilt_tree_prints_one_line(unbuilt_tree, argv):
    r = _run(unbuilt_tree, "-m", "fer_edge", *argv)
    assert r.returncode == 1
    assert r.stderr.strip() == f"fer-edge: error: {MESSAGE}" and r.stdout == ""


def test_the_installed_package_has_its_extension():
    import importlib.machinery

    from fer_edge import _native

    # the compiled module, not a Python stand-in of the same name
    assert _native.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), _native.__file__
