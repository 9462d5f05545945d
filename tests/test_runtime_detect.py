"""Face detectors on real photos: the packaged sample, composites, empty scenes."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import InputError, ModelError
from fer_edge.runtime.detect import (
    HaarDetector,
    NoDetector,
    YuNetDetector,
    build_detector,
    expand_boxes,
    sort_largest_first,
    squarify,
)
from fer_edge.runtime.tracking import iou_matrix

from fixtures_runtime import SAMPLE_FACE_BOX, face_patch, sample_bgr, sample_image, synthetic_background  # noqa: F401


def _iou(a, b) -> float:
    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])


@pytest.mark.parametrize("cascade", ["default", "alt2"])
def test_haar_finds_the_sample_face(sample_bgr, cascade):
    boxes = HaarDetector(cascade=cascade).detect(sample_bgr)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int32
    assert _iou(boxes[0], SAMPLE_FACE_BOX) > 0.7


def test_haar_on_gray_and_large_photo(sample_bgr):
    import cv2

    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    assert _iou(HaarDetector().detect(gray)[0], SAMPLE_FACE_BOX) > 0.7
    # a "12 MP"-like photo is detected on a downscaled copy and mapped back
    big = cv2.resize(sample_bgr, (2400, 2400), interpolation=cv2.INTER_CUBIC)
    boxes = HaarDetector(max_side=640).detect(big)
    assert len(boxes) == 1
    assert _iou(boxes[0], np.array(SAMPLE_FACE_BOX) * 7.5) > 0.6


def test_no_face_in_a_face_free_scene():
    assert HaarDetector().detect(synthetic_background((640, 480))).shape == (0, 4)
    assert HaarDetector().detect(np.zeros((10, 10), np.uint8)).shape == (0, 4)  # smaller than min size


def test_two_faces_largest_first(sample_bgr):
    import cv2

    frame = synthetic_background((640, 480))
    big, small = face_patch(sample_bgr, scale=1.6), face_patch(sample_bgr, scale=1.0)
    frame[20: 20 + big.shape[0], 330: 330 + big.shape[1]] = big
    frame[120: 120 + small.shape[0], 20: 20 + small.shape[1]] = small
    boxes = HaarDetector().detect(frame)
    assert len(boxes) == 2
    assert boxes[0][2] > boxes[1][2]  # largest first
    assert boxes[0][0] > 330 and boxes[1][0] < 330


def test_no_detector_is_the_whole_image():
    assert NoDetector().detect(np.zeros((48, 40), np.uint8)).tolist() == [[0, 0, 40, 48]]


def test_box_helpers():
    assert sort_largest_first(np.array([[0, 0, 5, 5], [10, 0, 9, 9], [3, 3, 5, 5]])).tolist() == [
        [10, 0, 9, 9], [0, 0, 5, 5], [3, 3, 5, 5]]
    assert expand_boxes(np.array([[10, 10, 20, 20]]), 0.5, 100, 100).tolist() == [[5, 5, 30, 30]]
    assert expand_boxes(np.array([[0, 0, 20, 20]]), 0.5, 100, 100).tolist() == [[0, 0, 25, 25]]
    sq = squarify(np.array([[10, 10, 20, 40]]), 100, 100)
    assert sq.tolist() == [[0, 10, 40, 40]]  # centred at x=20, shifted to stay inside


def test_build_detector_errors(tmp_path):
    assert isinstance(build_detector("haar"), HaarDetector)
    assert build_detector("haar:alt2").cascade_path.name == "haarcascade_frontalface_alt2.xml"
    assert isinstance(build_detector("none"), NoDetector)
    with pytest.raises(InputError, match="unknown detector"):
        build_detector("mtcnn")
    assert isinstance(build_detector("yunet"), YuNetDetector)  # the shipped model
    assert isinstance(build_detector(), YuNetDetector)  # the default
    with pytest.raises(ModelError, match="YuNet detector model not found"):
        build_detector("yunet", tmp_path / "face_detection_yunet.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load YuNet"):
        YuNetDetector(junk)
    with pytest.raises(ModelError, match="Haar cascade not found"):
        HaarDetector(cascade="nope")
