"""Facts defined once: the README's exit-code table and the verbs' --help lines come from
fer_edge/cli/exitcodes.py, and the exit code of each error and stream ending is decided there."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.cli import build_parser
from fer_edge.cli.exitcodes import EXIT_CODES, Exit, for_ending, for_error, markdown_table
from fer_edge.errors import DeviceError, FerEdgeError, InputError, MissingDependencyError, ModelError, UsageError
from fer_edge.runtime.imagesize import MAX_PIXELS

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_table_is_the_one_the_code_defines():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "doc_tables.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme
    assert f"({MAX_PIXELS / 1e6:g} million by default)" in markdown_table()


def test_a_stale_table_is_found(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import doc_tables
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = readme.replace("| 7 | several inputs", "| 8 | several inputs")
    assert stale != readme and doc_tables.render(stale) == readme


def test_every_code_has_one_row_and_the_verbs_name_theirs():
    assert [int(e.code) for e in EXIT_CODES] == sorted({int(c) for c in Exit})
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices and "infer" in a.choices)
    infer, webcam = sub.choices["infer"].description, sub.choices["webcam"].description
    assert "Exit codes: 0 ok, 2 bad command line, 3 no readable input" in infer and "7 some inputs failed" in infer
    assert "6 optional dependency missing" in webcam and "130 interrupted" in webcam


@pytest.mark.parametrize("exc,code", [(UsageError("x"), 2), (InputError("x"), 3), (ModelError("x"), 4),
                                      (DeviceError("x"), 5), (MissingDependencyError("x"), 6),
                                      (FerEdgeError("x"), 1), (RuntimeError("x"), 1)])
def test_each_error_class_has_its_code(exc, code):
    assert for_error(exc) == code


def test_each_stream_ending_has_its_code():
    assert [for_ending(e) for e in ("eof", "max_frames", "quit", "interrupted", "lost", "truncated", "?")] == \
        [0, 0, 0, 130, 5, 3, 1]
