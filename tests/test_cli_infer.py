"""`fer-edge infer`, `demo` and `info` through the real CLI entry point."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.cli.exitcodes import EXIT_INPUT, EXIT_MODEL, EXIT_OK, EXIT_PARTIAL
from fer_edge.labels import CLASSES
from fer_edge.runtime.default_model import default_model_path
from fer_edge.runtime.tracking import iou_matrix

from fixtures_runtime import (  # noqa: F401
    SAMPLE_FACE_BOX, bad_models, cnn_model, model_dir, sample_bgr, sample_image, subprocess_env,
    synthetic_background,
)


@pytest.fixture()
def photos(tmp_path, sample_image, sample_bgr):
    """A folder tree: the sample twice (one nested), a face-free PNG, a text file."""
    import cv2

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shutil.copyfile(sample_image, root / "a.jpg")
    cv2.imwrite(str(root / "sub" / "b.png"), cv2.flip(sample_bgr, 1))
    cv2.imwrite(str(root / "empty.png"), synthetic_background((200, 150)))
    (root / "notes.txt").write_text("not an image")
    return root


def _json(capsys):
    out = capsys.readouterr().out
    return json.loads(out)


def test_table_output(cnn_model, sample_image, capsys):
    assert main(["infer", str(sample_image), "--model", str(cnn_model)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["path", "face", "box", "(x,y,w,h)"]
    row = out[2]
    assert str(sample_image.name) in row and row.split()[1] == "1"
    assert row.split()[3] in CLASSES
    assert out[-1] == "1 image(s), 1 face(s), 0 failed"


def test_json_document(cnn_model, photos, capsys):
    code = main(["infer", str(photos), "--model", str(cnn_model), "--json", "--top-k", "2"])
    assert code == EXIT_OK  # notes.txt is not picked up from a folder (not an image extension)
    doc = _json(capsys)
    assert doc["model"]["classes"] == list(CLASSES) and doc["model"]["provider"] == "CPUExecutionProvider"
    by_name = {img["path"].split("/")[-1]: img for img in doc["images"]}
    assert set(by_name) == {"a.jpg", "b.png", "empty.png"}  # recursive
    a = by_name["a.jpg"]
    assert (a["width"], a["height"], a["error"]) == (320, 320, None)
    (face,) = a["faces"]
    assert iou_matrix(np.array([face["box"]]), np.array([SAMPLE_FACE_BOX]))[0, 0] > 0.7
    assert list(face["probabilities"]) == list(CLASSES)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert [t["label"] for t in face["top_k"]][0] == face["label"] and len(face["top_k"]) == 2
    assert len(by_name["b.png"]["faces"]) == 1  # the mirrored photo: face found as well
    assert by_name["empty.png"]["faces"] == [] and by_name["empty.png"]["error"] is None
    assert doc["errors"] == [] and doc["summary"] == {"inputs": 3, "failed": 0, "faces": 2, "warning": None}


def test_glob_and_max_faces(cnn_model, photos, sample_bgr, capsys):
    import cv2

    from fixtures_clips import crowd_scene

    crowd, truth = crowd_scene(sample_bgr)
    cv2.imwrite(str(photos / "sub" / "crowd.png"), crowd)
    pattern = str(photos / "**" / "*.png")

    def faces_per_image(*extra):
        assert main(["infer", pattern, "--model", str(cnn_model), "--json", *extra]) == EXIT_OK
        return {i["path"].split("/")[-1]: i["faces"] for i in _json(capsys)["images"]}

    every = faces_per_image()
    assert sorted(every) == ["b.png", "crowd.png", "empty.png"]  # the glob: PNGs only, nested ones too
    assert len(every["crowd.png"]) >= 3 and len(every["b.png"]) == 1 and every["empty.png"] == []
    for n in (1, 2):
        kept = faces_per_image("--max-faces", str(n))
        assert [len(kept[k]) for k in ("b.png", "crowd.png", "empty.png")] == [1, n, 0]
        # the n largest of the faces found without the limit
        largest = sorted((f["box"][2] * f["box"][3] for f in every["crowd.png"]), reverse=True)[:n]
        assert sorted((f["box"][2] * f["box"][3] for f in kept["crowd.png"]), reverse=True) == largest


def test_partial_failure_processes_the_good_inputs(cnn_model, photos, tmp_path, capsys):
    code = main(["infer", str(photos / "a.jpg"), str(photos / "notes.txt"), str(tmp_path / "missing.jpg"),
                 "--model", str(cnn_model), "--json"])
    assert code == EXIT_PARTIAL
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert len(doc["images"][0]["faces"]) == 1
    errs = {e["path"].split("/")[-1]: e["error"] for e in doc["errors"]}
    assert "not an image" in errs["notes.txt"] and "image not found" in errs["missing.jpg"]
    assert "2 of 3 inputs failed" in cap.err
    unread = [i for i in doc["images"] if i["error"]]
    assert len(unread) == 2 and all(i["width"] is None and i["height"] is None for i in unread)  # never read: no size


def test_all_inputs_bad(cnn_model, photos, tmp_path, capsys):
    assert main(["infer", str(tmp_path / "nope.jpg"), "--model", str(cnn_model)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"fer-edge: error: image not found: {tmp_path / 'nope.jpg'}"
    assert main(["infer", str(photos / "notes.txt"), str(tmp_path / "x*.jpg"), "--model", str(cnn_model)]) == EXIT_INPUT
    assert "no images or videos match" in capsys.readouterr().err


def test_model_errors(bad_models, sample_image, tmp_path, capsys):
    assert main(["infer", str(sample_image), "--model", str(tmp_path / "none.onnx")]) == EXIT_MODEL
    assert capsys.readouterr().err.strip() == f"fer-edge: error: model file not found: {tmp_path / 'none.onnx'}"
    for which in ("garbage", "no_metadata", "wrong_classes"):
        assert main(["infer", str(sample_image), "--model", str(bad_models[which])]) == EXIT_MODEL
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fer-edge: error: ") and "model" in err[0]


def test_device_errors(cnn_model, sample_image, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    assert main(["infer", str(sample_image), "--model", str(cnn_model), "--device", "cuda"]) == 5
    assert "onnxruntime-gpu" in capsys.readouterr().err


def test_no_detect_and_save_annotated(cnn_model, sample_image, sample_bgr, tmp_path, capsys):
    import cv2

    x, y, w, h = SAMPLE_FACE_BOX
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), cv2.cvtColor(sample_bgr[y: y + h, x: x + w], cv2.COLOR_BGR2GRAY))
    out_dir = tmp_path / "annotated"
    code = main(["infer", str(crop), str(sample_image), "--no-detect", "--model", str(cnn_model), "--json",
                 "--save-annotated", str(out_dir)])
    assert code == EXIT_OK
    doc = _json(capsys)
    assert doc["images"][0]["faces"][0]["box"] == [0, 0, w, h]
    assert doc["images"][1]["faces"][0]["box"] == [0, 0, 320, 320]
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["crop.png", "sample_face.jpg"]
    ann = cv2.imread(str(out_dir / "sample_face.jpg"))
    assert ann.shape == sample_bgr.shape
    assert np.abs(ann.astype(int) - sample_bgr.astype(int)).max() > 100  # something was drawn


def test_bad_options(cnn_model, sample_image, capsys):
    # bad option values are usage errors (exit 2): tests/test_cli_validation.py
    for argv in (["--top-k", "0"], ["--max-faces", "0"], ["--detector", "mtcnn"], []):
        with pytest.raises(SystemExit) as e:
            main(["infer", *([str(sample_image), "--model", str(cnn_model)] if argv else []), *argv])
        assert e.value.code == 2


def test_demo(cnn_model, capsys):
    if default_model_path(must_exist=False).is_file():
        assert main(["demo", "--json"]) == EXIT_OK
        doc = _json(capsys)
        assert len(doc["images"][0]["faces"]) == 1
    else:
        assert main(["demo"]) == EXIT_MODEL
        assert "default model is not installed" in capsys.readouterr().err
    assert main(["demo", "--model", str(cnn_model), "--json"]) == EXIT_OK
    doc = _json(capsys)
    assert doc["images"][0]["path"].endswith("sample_face.jpg") and len(doc["images"][0]["faces"]) == 1


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = _json(capsys)
    assert info["native"]["loaded"] is True
    assert "CPUExecutionProvider" in info["providers_available"]
    assert info["device"]["planned"] in info["providers_available"]
    assert info["default_model"]["present"] == default_model_path(must_exist=False).is_file()
    if info["default_model"]["present"]:
        # The shipped file's own (int8) accuracy, recorded at export, is what info reports.
        own = info["default_model"]["publictest_accuracy"]
        assert 0.5 < own < 1.0 and own != info["default_model"]["val_accuracy"]
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "providers" in text
    if info["default_model"]["present"]:
        assert f"PublicTest accuracy {info['default_model']['publictest_accuracy']:.4f} (this file)" in text
    # in a fresh process (this one may have torch loaded by other tests) info itself stays torch-free
    out = subprocess.run([sys.executable, "-m", "fer_edge", "info", "--json"], capture_output=True, text=True,
                         timeout=120, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["torch_imported"] is False


def test_python_m_fer_edge_subprocess(cnn_model, sample_image, tmp_path):
    cmd = [sys.executable, "-m", "fer_edge", "infer", str(sample_image), str(tmp_path / "missing.png"),
           "--model", str(cnn_model), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=subprocess_env())
    assert out.returncode == EXIT_PARTIAL, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["images"][0]["faces"]) == 1
    assert "Traceback" not in out.stderr
    assert "fer-edge: onnxruntime provider: CPUExecutionProvider" in out.stderr


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_sigterm_ends_infer_like_ctrl_c(sample_image, tmp_path):
    # `kill`, `docker stop`: exit 130 and one line, as the README's exit codes promise (was -15, silent)
    import signal

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2000):  # about 10 s of work on 2 cores: the signal comes long before the end
        shutil.copyfile(sample_image, folder / f"f{i:04d}.jpg")
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "infer", "-q", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        for _ in range(3):  # the header, its rule and a first row: it is working through the folder
            assert proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "fer-edge: interrupted" and "Traceback" not in err
    assert len(out.splitlines()) < 2000  # it stopped before the end


def test_control_characters_in_file_names_are_escaped_in_rows_and_errors(cnn_model, sample_image, tmp_path, capsys):
    # a newline or a terminal escape in a name must not split a row or an error line, nor reach the terminal
    good = tmp_path / "bad\nname\x1b[2J.jpg"
    shutil.copyfile(sample_image, good)
    bad = tmp_path / "txt\x1b[31mred.jpg"
    bad.write_text("not an image")
    assert main(["infer", str(good), str(bad), "--model", str(cnn_model)]) == EXIT_PARTIAL
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out + cap.err
    rows = cap.out.strip().splitlines()
    assert len(rows) == 2 + 2 + 1  # header, rule, one row per input, the summary
    assert "name\\x1b[2J.jpg" in rows[2] and "bad\\nname" in rows[2]
    assert cap.err.strip().splitlines()[-2:] == [
        "fer-edge: error: 1 of 2 inputs failed:",
        f"  not an image or unsupported format: {tmp_path}/txt\\x1b[31mred.jpg"]
    assert main(["infer", str(bad), "--model", str(cnn_model)]) == EXIT_INPUT
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"fer-edge: error: not an image or unsupported format: {tmp_path}/txt\\x1b[31mred.jpg")
