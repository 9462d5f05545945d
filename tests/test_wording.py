"""The runtime says which setting to change; the CLI words it as a flag, the API as a keyword.
So no string the runtime builds (docstrings and comments aside) names a command-line flag."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli.wording import FLAGS, message, remedies, say
from fer_edge.errors import InputError
from fer_edge.remedy import ANY, Remedy
from fer_edge.runtime.detect import create_detector, no_face_remedies
from fer_edge.runtime.imagesize import check_pixels

RUNTIME = Path(__file__).resolve().parents[1] / "fer_edge" / "runtime"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
# The one piece of advice that is a whole command for a shell: how to export a training checkpoint
# given where a model is expected (fer_edge.runtime.model.export_first).
SHELL_COMMANDS = {"export_first"}


def _strings(tree: ast.AST):
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in SHELL_COMMANDS:
            docs.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                docs.add(id(node.body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def test_no_runtime_string_names_a_flag():
    found = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            for m in FLAG.finditer(text):
                found.append(f"{path.relative_to(RUNTIME)}:{line}: {m.group(0)}")
    assert not found, found


def test_the_flag_check_finds_a_flag():
    tree = ast.parse('def f():\n    """Docs may say --detect-scale."""\n    raise ValueError("use --detect-scale 1")\n')
    assert [FLAG.findall(t) for _, t in _strings(tree)] == [["--detect-scale"]]


def test_a_remedy_is_a_keyword_for_python_and_a_flag_for_the_cli(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (30000).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00"
    with pytest.raises(InputError) as info:
        check_pixels(png + b"\x00" * 8, "big.png", 1000)
    exc = info.value
    assert "30000x30000" in exc.message and "--" not in str(exc)
    assert str(exc).endswith("; try max_pixels (a higher limit, if the image is genuine)")
    assert message(exc).endswith("; try --max-pixels N (a higher limit, if the image is genuine)")
    assert say(InputError("plain")) == "plain"


def test_no_face_advice_in_both_words():
    haar = create_detector("haar")
    tips = no_face_remedies(haar, 0.5)
    assert [t.setting for t in tips] == ["detect_scale", "detector", "no_detect"]
    cli = remedies(tips)
    assert cli.startswith("--detect-scale 1 (faces smaller than about 40 px are missed at 0.5); --detector yunet (")
    assert cli.endswith("--no-detect (if the inputs are already face crops)")
    api = "; ".join(t.words() for t in tips)
    assert api.startswith("detect_scale=1 (") and "detector='yunet'" in api and "no_detect=True" in api
    assert no_face_remedies(create_detector("none"))[-1].setting == "no_detect"


def test_every_setting_a_runtime_remedy_names_has_a_flag():
    for det in ("yunet", "haar", "none"):
        for r in no_face_remedies(create_detector(det), 0.25):
            assert r.setting is None or r.setting in FLAGS
    assert Remedy("model", ANY).words() == "model" and remedies([Remedy("model", ANY, "x")]) == "--model PATH (x)"
    assert remedies([Remedy("detector_model", None, "the shipped one")]) == "leaving out --detector-model (the shipped one)"
