"""A file that is not a fer-edge checkpoint is named as such, in one line, without torch's
advice to load it with weights_only=False (that would run an untrusted pickle)."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from fer_edge.cli import main  # noqa: E402
from fer_edge.cli.exitcodes import EXIT_MODEL  # noqa: E402
from fer_edge.errors import ModelError  # noqa: E402
from fer_edge.runtime.default_model import default_model_path  # noqa: E402
from fer_edge.training.checkpoint import load_checkpoint  # noqa: E402


class _Custom:  # pickled below: weights_only=True refuses arbitrary classes
    pass


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "text": tmp_path / "fake.pt",
        "empty": tmp_path / "empty.pt",
        "pickle": tmp_path / "object.pt",
        "onnx": tmp_path / "random.onnx",
    }
    files["text"].write_bytes(b"not a checkpoint at all\n" * 10)
    files["empty"].write_bytes(b"")
    files["pickle"].write_bytes(pickle.dumps(_Custom()))
    shutil.copy(default_model_path(), files["onnx"])
    return files


@pytest.mark.parametrize("kind,reason", [("text", "not a PyTorch checkpoint"), ("empty", "empty or truncated"),
                                         ("pickle", "other than tensors"), ("onnx", "it is an ONNX model")])
def test_not_a_checkpoint_is_one_line(tmp_path, kind, reason):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ModelError) as exc:
        load_checkpoint(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: not a fer-edge checkpoint (") and reason in msg
    assert "\n" not in msg and "weights_only" not in msg and len(msg) < 250


def test_cli_eval_and_export_say_not_a_checkpoint(tmp_path, fer_csv, capsys):
    files = _bad_files(tmp_path)
    assert main(["eval", "--model", str(files["text"]), "--data", str(fer_csv)]) == EXIT_MODEL
    assert main(["export", "--checkpoint", str(files["onnx"]), "--out", str(tmp_path / "o.onnx")]) == EXIT_MODEL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert err[0] == f"fer-edge: error: {files['text']}: not a fer-edge checkpoint (not a PyTorch checkpoint file)"
    assert err[1].startswith(f"fer-edge: error: {files['onnx']}: not a fer-edge checkpoint (it is an ONNX model")
    assert not (tmp_path / "o.onnx").exists()
