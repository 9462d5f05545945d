"""fer_edge.predict / Predictor on real images, end to end (detector + aligned crops + ONNX)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fer_edge
from fer_edge.errors import InputError, ModelError
from fer_edge.labels import CLASSES
from fer_edge.runtime.api import Predictor
from fer_edge.runtime.model import FerModel
from fer_edge.runtime.results import FaceResult, ImageResult
from fer_edge.runtime.tracking import iou_matrix

from fixtures_runtime import (  # noqa: F401
    REPO, SAMPLE_FACE_BOX, cnn_model, reference_softmax, subprocess_env, face_patch, linear_model, model_dir, sample_bgr, sample_image, synthetic_background,
)


def _iou(a, b) -> float:
    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])


def test_predict_on_the_sample_photo(cnn_model, sample_image):
    faces = fer_edge.predict(sample_image, model=cnn_model)
    assert len(faces) == 1
    f = faces[0]
    assert isinstance(f, FaceResult)
    assert _iou(f.box, SAMPLE_FACE_BOX) > 0.7
    assert list(f.probabilities) == list(CLASSES)
    assert sum(f.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert f.label == max(f.probabilities, key=f.probabilities.get)
    assert f.score == pytest.approx(f.probabilities[f.label])
    assert [c for c, _ in f.top_k(3)] == sorted(CLASSES, key=f.probabilities.get, reverse=True)[:3]


def test_prediction_equals_reference_pipeline(linear_model, sample_bgr):
    """Detector landmarks -> aligned crop -> (v - mean) / std in float64 -> the model's own weights in numpy."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from fer_edge.runtime.align import crop_faces

    p = Predictor(linear_model, device="cpu")
    faces = p.predict(sample_bgr)
    found = p.detect_faces(sample_bgr)
    assert found.has_landmarks.all() and faces[0].box == tuple(found.boxes[0])
    w = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(linear_model)).graph.initializer}
    c = p.model.contract
    x = (crop_faces(sample_bgr, found.boxes, found.landmarks, 48).astype(np.float64) - c.mean) / c.std
    expected = reference_softmax(x.reshape(1, -1) @ w["fc_w"].T + w["fc_b"])[0]
    np.testing.assert_allclose([faces[0].probabilities[k] for k in CLASSES], expected, atol=1e-4)


def test_batch_of_faces_equals_one_by_one(cnn_model, sample_bgr):
    p = Predictor(cnn_model, device="cpu")
    frame = synthetic_background((800, 400))
    for i, scale in enumerate((1.0, 1.3, 0.9)):
        patch = face_patch(sample_bgr, scale=scale)
        frame[20: 20 + patch.shape[0], 20 + 260 * i: 20 + 260 * i + patch.shape[1]] = patch
    boxes = p.detect(frame)
    assert len(boxes) == 3
    together = p.classify(frame, boxes)
    apart = np.concatenate([p.classify(frame, boxes[i: i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, apart, rtol=1e-5, atol=1e-6)
    assert len(Predictor(p.model, max_faces=1).predict(frame)) == 1
    largest = Predictor(p.model, max_faces=1).predict(frame)[0]
    assert largest.box == tuple(boxes[0])


def test_inputs_array_gray_and_no_face(cnn_model, sample_bgr):
    import cv2

    p = Predictor(cnn_model, device="cpu")
    from_path = p.predict(sample_bgr)
    gray = p.predict(cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1 and _iou(gray[0].box, from_path[0].box) > 0.9  # YuNet sees gray as BGR
    assert p.predict(synthetic_background((320, 240))) == []
    res = p.predict_image(synthetic_background((320, 240)), path="empty.png")
    assert res.ok and res.faces == [] and (res.width, res.height) == (320, 240)


def test_no_detect_treats_the_input_as_a_face(cnn_model, sample_bgr):
    x, y, w, h = SAMPLE_FACE_BOX
    crop = sample_bgr[y: y + h, x: x + w]
    p = Predictor(cnn_model, detector="none", device="cpu")
    (f,) = p.predict(crop)
    assert f.box == (0, 0, w, h)
    # the same face through a box detector on the full photo gives (nearly) the same answer
    full = Predictor(p.model, detector="haar").predict(sample_bgr)[0]  # the Haar box is SAMPLE_FACE_BOX
    assert max(abs(f.probabilities[k] - full.probabilities[k]) for k in CLASSES) < 0.05


def test_margin_grows_boxes(cnn_model, sample_bgr):
    p0 = Predictor(cnn_model).predict(sample_bgr)[0]
    p1 = Predictor(cnn_model, margin=0.4).predict(sample_bgr)[0]
    assert p1.box[2] > p0.box[2] and p1.box[0] < p0.box[0]


def test_errors(cnn_model, tmp_path):
    p = Predictor(cnn_model)
    with pytest.raises(InputError, match="image not found"):
        p.predict(tmp_path / "missing.jpg")
    txt = tmp_path / "notes.jpg"
    txt.write_text("hello")
    with pytest.raises(InputError, match="not an image"):
        p.predict(txt)
    res = p.process_path(txt)
    assert isinstance(res, ImageResult) and not res.ok and "not an image" in res.error
    with pytest.raises(ModelError):
        fer_edge.predict(np.zeros((10, 10), np.uint8), model=tmp_path / "nope.onnx")


def test_error_messages_name_what_was_wrong(cnn_model, sample_bgr, sample_image, tmp_path, monkeypatch):
    p = Predictor(cnn_model)
    with pytest.raises(InputError, match="^image path is empty$"):
        p.predict("")
    with pytest.raises(InputError, match="^image 1 of 3: not an image"):
        p.predict([sample_bgr, b"xx", sample_bgr])  # which item of a list failed
    with pytest.raises(TypeError, match="^image 1 of 2: image must be"):
        p.predict([sample_bgr, 5])
    with open(sample_image, "rb") as f:
        pass
    with pytest.raises(InputError, match="cannot read image .*closed file"):
        p.predict(f)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    assert "fer_edge.analyze_video" in p.process_path(clip).error  # a video named as one, as predict() does
    with pytest.raises(InputError, match=r"scale must be in \[0.05, 1\], got 0"):
        p.detect(sample_bgr, scale=0)  # was a ZeroDivisionError; -1 gave no face silently
    with pytest.raises(InputError, match="scale must be in"):
        p.detect(sample_bgr, scale=-1)
    with pytest.raises(ValueError, match=r"landmarks must be \(K, 5, 2\) for the K = 1 boxes"):
        p.classify(sample_bgr, np.array([SAMPLE_FACE_BOX]), np.zeros((3, 5, 2)))
    with pytest.raises(TypeError, match="^detector must be a detector name"):
        Predictor(cnn_model, detector=123)
    with pytest.raises(TypeError, match="^model must be a packaged model name"):
        fer_edge.predict(sample_bgr, model=123)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"^model file not found: FERPLUS \(the packaged models are default, "):
        fer_edge.predict(sample_bgr, model="FERPLUS")
    for bad in (None, 5):
        with pytest.raises(TypeError, match="^sources must be an image file, a folder"):
            fer_edge.analyze_images(bad, cnn_model)


def test_result_json_shape(cnn_model, sample_image):
    res = Predictor(cnn_model).process_path(sample_image)
    d = res.to_dict(top_k=2)
    assert set(d) == {"path", "width", "height", "faces", "error"}
    face = d["faces"][0]
    assert set(face) == {"box", "label", "score", "probabilities", "face_confidence", "top_k"}
    assert len(face["top_k"]) == 2 and face["top_k"][0]["label"] == face["label"]


def test_face_confidence_is_the_detectors_score_and_none_without_one(cnn_model, sample_bgr):
    yunet = Predictor(cnn_model)
    face = yunet.predict(sample_bgr)[0]
    assert face.face_confidence == pytest.approx(float(yunet.detect_faces(sample_bgr).scores[0]))
    assert 0.5 < face.face_confidence <= 1
    assert face.to_dict()["face_confidence"] == pytest.approx(face.face_confidence, abs=1e-6)
    assert yunet.predict([sample_bgr])[0][0].face_confidence == pytest.approx(face.face_confidence)
    haar = Predictor(cnn_model, detector="haar").predict(sample_bgr)
    assert len(haar) == 1 and haar[0].face_confidence is None  # the cascades give no score
    assert Predictor(cnn_model, detector="none").predict(sample_bgr)[0].face_confidence is None
    crop = fer_edge.predict_emotions(sample_bgr, model=cnn_model)
    assert crop.face_confidence is None and crop.to_dict()["face_confidence"] is None


def test_lazy_exports():
    assert fer_edge.FerModel is FerModel
    from fer_edge.runtime.api import predict

    assert fer_edge.predict is predict


def test_dir_lists_the_lazy_exports_without_loading_them():
    """dir() and tab completion show predict, Predictor, analyze_video ... before their first use,
    and asking for the list loads neither onnxruntime nor OpenCV."""
    code = textwrap.dedent("""
        import sys
        import fer_edge
        names = dir(fer_edge)
        print(",".join(n for n in fer_edge.__all__ if n not in names) or "ALL",
              "onnxruntime" in sys.modules or "cv2" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(REPO), env=subprocess_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ALL", "False"]
    assert {"predict", "predict_emotions", "Predictor", "analyze_video", "FaceResult"} <= set(dir(fer_edge))


def test_prediction_never_imports_torch(cnn_model, sample_image):
    code = textwrap.dedent(f"""
        import sys
        import fer_edge
        faces = fer_edge.predict({str(sample_image)!r}, model={str(cnn_model)!r})
        assert len(faces) == 1, faces
        import fer_edge.cli
        fer_edge.cli.build_parser()
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print("TORCH" if bad else "CLEAN", bad[:3])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(REPO), env=subprocess_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CLEAN"), out.stdout


def test_a_frame_is_converted_once_and_its_boxes_clipped_once(cnn_model, sample_bgr, monkeypatch):
    """read -> convert -> detect -> crop -> classify: one as_bgr_or_gray per image and one clip of
    the detector's boxes, whichever public entry point it comes through."""
    import fer_edge.runtime.api as api
    import fer_edge.runtime.boxes as boxes
    import fer_edge.runtime.detect as detect
    import fer_edge.runtime.inputs as inputs
    import fer_edge.runtime.preprocess as preprocess

    calls = {"convert": 0, "clip": 0}

    def counted(fn, what):
        def wrapper(*a, **k):
            calls[what] += 1
            return fn(*a, **k)
        return wrapper

    for module in (api, inputs, preprocess):
        monkeypatch.setattr(module, "as_bgr_or_gray", counted(preprocess.as_bgr_or_gray, "convert"))
    monkeypatch.setattr(api, "clip_boxes", counted(boxes.clip_boxes, "clip"))
    monkeypatch.setattr(detect.FaceDetections, "clipped", counted(detect.FaceDetections.clipped, "clip"))

    class Boxes:  # a detector of one's own: its boxes reach outside the image
        name = "mine"

        def detect(self, image):
            return np.array([[-20, -10, 200, 200]], dtype=np.int32)

    bgra = np.dstack([sample_bgr, np.full(sample_bgr.shape[:2], 255, np.uint8)])
    for detector in ("yunet", Boxes()):
        p = Predictor(cnn_model, detector=detector, device="cpu")
        for entry in (p.predict, lambda img: p.predict_image(img).faces, lambda img: p.predict_batch([img])[0]):
            calls.update(convert=0, clip=0)
            faces = entry(bgra)
            assert len(faces) == 1 and calls == {"convert": 1, "clip": 1}, (detector, calls)
        if not isinstance(detector, str):
            assert faces[0].box == (0, 0, 180, 190)

    # the public building blocks still take raw images and any boxes (converted and clipped there)
    p = Predictor(cnn_model, device="cpu")
    calls.update(convert=0, clip=0)
    probs = p.classify(bgra, np.array([[-5, -5, 120, 120]]))
    assert probs.shape == (1, len(CLASSES)) and calls == {"convert": 1, "clip": 1}
    with pytest.raises(ValueError, match="every box must overlap"):
        p.classify(bgra, np.array([[1000, 1000, 10, 10]]))


def test_value_checks_live_in_the_library():
    """Predictor's checks are the ones `fer-edge --max-faces / --margin` run
    (tests/test_cli_validation.py: the CLI side)."""
    from fer_edge.runtime.api import check_margin, check_max_faces

    assert check_max_faces(None) is None and check_max_faces(2) == 2 and check_margin(0.25) == 0.25
    with pytest.raises(ValueError, match=r"^max_faces must be at least 1, got 0$"):
        check_max_faces(0)
    with pytest.raises(ValueError, match=r"^must be in \[0, 2\], got nan$"):
        check_margin(float("nan"), name="")
    with pytest.raises(ValueError, match="margin must be in"):
        Predictor(FerModel.__new__(FerModel), detector="none", margin=3)
