"""`fer-edge infer` takes what users pass and says how to fix what it cannot: an image on
standard input (`infer -`), an empty folder, a folder with other files in it, a training
checkpoint given as --model."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fer_edge.cli.exitcodes import EXIT_INPUT, EXIT_MODEL, EXIT_OK, EXIT_USAGE

from conftest import cli_env
from fixtures_runtime import cnn_model, model_dir, sample_image  # noqa: F401


def _infer(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m fer_edge infer ARGS` with ``stdin`` piped in (bytes in, text out)."""
    done = subprocess.run([sys.executable, "-m", "fer_edge", "infer", *args], input=stdin, capture_output=True,
                          env=cli_env(), timeout=timeout)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_infer_dash_reads_one_image_from_standard_input(cnn_model, sample_image, tmp_path):  # noqa: F811
    by_file = _infer(str(sample_image), "--model", str(cnn_model), "--json")
    piped = _infer("-", "--model", str(cnn_model), "--json", "--save-annotated", str(tmp_path / "out"),
                   stdin=sample_image.read_bytes())
    assert piped.returncode == EXIT_OK, piped.stderr
    image = json.loads(piped.stdout)["images"][0]
    assert image["path"] == "-" and image["error"] is None
    assert image["faces"] == json.loads(by_file.stdout)["images"][0]["faces"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["stdin.png"]


def test_infer_dash_with_nothing_or_no_image_piped_in_is_one_line(cnn_model):  # noqa: F811
    empty = _infer("-", "--model", str(cnn_model))
    assert empty.returncode == EXIT_INPUT
    assert empty.stderr.strip().splitlines()[-1] == "fer-edge: error: not an image (empty): standard input"
    text = _infer("-", "--model", str(cnn_model), stdin=b"hello\n" * 10_000)
    assert text.returncode == EXIT_INPUT and text.stdout == ""
    last = text.stderr.strip().splitlines()[-1]
    assert last.startswith("fer-edge: error: not an image") and len(last) < 150


def test_infer_dash_from_a_terminal_says_to_pipe_an_image(cnn_model):  # noqa: F811
    pty = pytest.importorskip("pty")
    import os

    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "fer_edge", "infer", "-", "--model", str(cnn_model)],
                              stdin=follower, capture_output=True, text=True, env=cli_env(), timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == EXIT_USAGE
    assert "fer-edge infer - < photo.jpg" in done.stderr


# --------------------------------------------------------------------------- a checkpoint as --model


def _checkpoints(tmp_path):
    """Files as PyTorch writes them: torch.save's zip archive, a bare pickle, a .pth of an old format."""
    import pickle
    import zipfile

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    with zipfile.ZipFile(run / "best.pt", "w") as z:
        z.writestr("best/data.pkl", pickle.dumps({"format": "fer-edge-checkpoint"}))
    (tmp_path / "weights.bin").write_bytes(pickle.dumps({"model": [1, 2, 3]}, protocol=4))
    (tmp_path / "old.pth").write_bytes(b"\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19.")  # legacy torch.save magic
    return run


def test_a_training_checkpoint_as_model_names_the_export_command(sample_image, tmp_path):  # noqa: F811
    run = _checkpoints(tmp_path)
    for model, checkpoint in ((run / "best.pt", run / "best.pt"), (run, run / "best.pt"),
                              (tmp_path / "weights.bin", tmp_path / "weights.bin"),
                              (tmp_path / "old.pth", tmp_path / "old.pth")):
        done = _infer(str(sample_image), "--model", str(model))
        assert done.returncode == EXIT_MODEL, (model, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert f"fer-edge export --checkpoint {checkpoint} --out model.onnx" in last, last
        assert "Protobuf" not in last


def test_the_api_gives_the_same_advice(tmp_path):
    from fer_edge.errors import ModelError
    from fer_edge.runtime.model import FerModel

    run = _checkpoints(tmp_path)
    with pytest.raises(ModelError, match="fer-edge export --checkpoint"):
        FerModel.load(run / "best.pt")


# --------------------------------------------------------------------------- folders


def test_an_empty_folder_is_no_images_found_before_the_model_loads(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _infer(str(empty), "--model", str(tmp_path / "not-there.onnx"))  # the model is never opened
    assert done.returncode == EXIT_INPUT
    assert done.stdout == ""  # no table: not "1 image(s)"
    assert done.stderr.strip() == f"fer-edge: error: no images found in folder: {empty}"


def test_files_skipped_in_a_folder_are_named_under_verbose(cnn_model, sample_image, tmp_path):  # noqa: F811
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copyfile(sample_image, folder / "a.jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"")
    quiet = _infer(str(folder), "--model", str(cnn_model))
    assert quiet.returncode == EXIT_OK and "notes.txt" not in quiet.stderr
    loud = _infer(str(folder), "--model", str(cnn_model), "-v")
    assert loud.returncode == EXIT_OK
    assert f"fer-edge: skipped {folder / 'notes.txt'}: not an image file name" in loud.stderr
    assert f"fer-edge: skipped {folder / '.hidden.jpg'}: a hidden file" in loud.stderr
    assert loud.stdout.splitlines()[-1] == "1 image(s), 1 face(s), 0 failed"


def test_the_table_counts_the_images_read_not_the_sources(cnn_model, sample_image, tmp_path):  # noqa: F811
    empty, notes = tmp_path / "empty", tmp_path / "notes.txt"
    empty.mkdir()
    notes.write_text("not an image")
    done = _infer(str(sample_image), str(empty), str(notes), "--model", str(cnn_model))
    assert done.stdout.splitlines()[-1] == "1 image(s), 1 face(s), 2 failed"
    assert "no images found in folder" in done.stderr
