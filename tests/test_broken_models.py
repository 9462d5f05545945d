"""Models and checkpoints that get past the first checks but cannot be used: one line, exit 4.

Each of these was a traceback (exit 1) or a printed ``nan``: an ONNX file that loads and
then fails when run, one whose scores are NaN, and checkpoints with our format tag but a
missing or mistyped field (``model_name`` absent, ``version: 'abc'``, ``model`` a tensor).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from fer_edge.errors import ModelError
from fixtures_runtime import write_model

EXIT_MODEL = 4


@pytest.fixture
def face_png(tmp_path):
    import cv2

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8))
    return path


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("kind, why", [("fails_at_run", "fails when run"), ("nan", "non-finite scores")])
def test_a_model_that_cannot_give_scores_is_refused_at_load(tmp_path, kind, why):
    from fer_edge.runtime.model import FerModel

    path = write_model(tmp_path / f"{kind}.onnx", kind=kind)
    with pytest.raises(ModelError, match=why):
        FerModel.load(path, device="cpu")


@pytest.mark.parametrize("kind, why", [("fails_at_run", "fails when run"), ("nan", "non-finite scores")])
def test_infer_with_such_a_model_is_one_line_and_exit_4(tmp_path, face_png, kind, why):
    path = write_model(tmp_path / f"{kind}.onnx", kind=kind)
    r = run_cli("infer", "--model", str(path), "--no-detect", "--json", str(face_png))
    assert r.returncode == EXIT_MODEL, r.stderr
    assert why in _one_line(r)
    assert "nan" not in r.stdout.lower()


def test_a_working_model_still_loads(tmp_path):
    from fer_edge.runtime.model import FerModel

    m = FerModel.load(write_model(tmp_path / "ok.onnx", kind="linear"), device="cpu")
    assert m.predict_proba(np.zeros((2, 1, 48, 48), np.float32)).shape == (2, 7)


def _checkpoint(tmp_path, **changes):
    import torch

    from fer_edge.training.checkpoint import FORMAT, VERSION
    from fer_edge.training.models import create_model

    model = create_model("fernet_s")
    ckpt = {"format": FORMAT, "version": VERSION, "kind": "best", "model_name": "fernet_s",
            "model": model.state_dict(), "epoch": 1, "norm": {"mean": 128.0, "std": 64.0},
            "config": {}, "history": []}
    for k, v in changes.items():
        if v is _DROP:
            del ckpt[k]
        else:
            ckpt[k] = v
    path = tmp_path / "best.pt"
    torch.save(ckpt, path)
    return path


_DROP = object()
BROKEN = {
    "no model_name": ({"model_name": _DROP}, "'model_name' is missing"),
    "version abc": ({"version": "abc"}, "'version' is 'abc', not an integer"),
    "model a tensor": ({"model": "tensor"}, "'model' is not a dict of named weight tensors"),
    "unknown model": ({"model_name": "resnet9000"}, "'resnet9000' is not one of"),
    "nan mean": ({"norm": {"mean": float("nan"), "std": 64.0}}, "finite mean and a positive std"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_checkpoint_with_a_broken_field_is_a_model_error(tmp_path, case):
    pytest.importorskip("torch")
    import torch

    from fer_edge.training.checkpoint import load_checkpoint

    changes, why = BROKEN[case]
    if changes.get("model") == "tensor":
        changes = {"model": torch.zeros(3, 3)}
    path = _checkpoint(tmp_path, **changes)
    with pytest.raises(ModelError, match=why.replace("(", r"\(")):
        load_checkpoint(path)


@pytest.mark.parametrize("verb", ["eval", "export"])
@pytest.mark.parametrize("case", ["no model_name", "version abc", "model a tensor"])
def test_eval_and_export_of_a_broken_checkpoint_are_one_line_and_exit_4(tmp_path, fer_csv, verb, case):
    pytest.importorskip("torch")
    import torch

    changes, why = BROKEN[case]
    if changes.get("model") == "tensor":
        changes = {"model": torch.zeros(3, 3)}
    path = _checkpoint(tmp_path, **changes)
    args = (["eval", "--model", str(path), "--data", str(fer_csv), "--out", str(tmp_path / "ev")] if verb == "eval"
            else ["export", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")])
    r = run_cli(*args)
    assert r.returncode == EXIT_MODEL, r.stderr
    assert why in _one_line(r)
    assert not (tmp_path / "m.onnx").exists()


def test_json_never_holds_nan_or_infinity():
    from fer_edge import jsonout

    doc = {"a": float("nan"), "b": [1.5, float("inf"), np.float32("-inf"), np.float64(2.0)], "c": (np.int64(3),)}
    text = jsonout.dumps(doc)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON")) == {
        "a": None, "b": [1.5, None, None, 2.0], "c": [3]}
