"""Face detectors on real photos: the packaged sample, composites, empty scenes."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import InputError, ModelError
from fer_edge.runtime.detect import (
    HaarDetector,
    NoDetector,
    YuNetDetector,
    create_detector,
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


def test_create_detector_errors(tmp_path):
    assert isinstance(create_detector("haar"), HaarDetector)
    assert create_detector("haar:alt2").cascade_path.name == "haarcascade_frontalface_alt2.xml"
    assert isinstance(create_detector("none"), NoDetector)
    with pytest.raises(InputError, match="unknown detector"):
        create_detector("mtcnn")
    assert isinstance(create_detector("yunet"), YuNetDetector)  # the shipped model
    assert isinstance(create_detector(), YuNetDetector)  # the default
    with pytest.raises(ModelError, match="YuNet detector model not found"):
        create_detector("yunet", tmp_path / "face_detection_yunet.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load YuNet"):
        YuNetDetector(junk)
    with pytest.raises(ModelError, match="Haar cascade not found"):
        HaarDetector(cascade="nope")
    for name, content in (("photo.jpg", b"\xff\xd8\xff\xe0 not a cascade"),
                          ("other.xml", b'<?xml version="1.0"?>\n<opencv_storage><x>1</x></opencv_storage>\n')):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ModelError, match="cannot load Haar cascade"):  # not OpenCV's SystemError
            create_detector("haar", bad)


# ---------------------------------------------------------------------------- YuNet, the default
from fixtures_clips import crowd_scene, gray_scene, place_face  # noqa: E402


def test_yunet_is_shipped_and_finds_the_sample_face_with_landmarks(sample_bgr):
    det = create_detector()
    assert isinstance(det, YuNetDetector) and det.model_path.name == "face_detection_yunet_2023mar.onnx"
    assert (det.model_path.parent / "LICENSE").is_file()  # the licence ships beside the model
    found = det.detect_faces(sample_bgr)
    assert len(found) == 1 and found.boxes.dtype == np.int32 and found.has_landmarks.all()
    assert _iou(found.boxes[0], SAMPLE_FACE_BOX) > 0.6
    lm = found.landmarks[0]
    x, y, w, h = found.boxes[0]
    assert ((lm[:, 0] > x) & (lm[:, 0] < x + w) & (lm[:, 1] > y) & (lm[:, 1] < y + h)).all()
    assert lm[0, 0] < lm[1, 0] and max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])  # eyes, nose, mouth
    assert det.detect(sample_bgr).tolist() == found.boxes.tolist()


@pytest.mark.parametrize("angle", [-25, 25, 35])
def test_yunet_finds_tilted_faces_the_haar_cascade_misses(sample_bgr, angle):
    frame = synthetic_background((640, 480))
    truth = place_face(frame, sample_bgr, (320, 240), 100, angle)
    boxes = YuNetDetector().detect(frame)
    assert len(boxes) == 1 and _iou(boxes[0], truth) > 0.5
    assert len(HaarDetector().detect(frame)) == 0  # what the old default reported


def test_small_face_on_flat_gray_needs_no_histogram_equalisation(sample_bgr):
    """The 72 px frontal face on a flat gray background: equalising the histogram (the old
    Haar default) makes the cascade miss it; stock settings and YuNet find it."""
    frame, truth = gray_scene(sample_bgr, side=72)
    assert HaarDetector(equalize=True).detect(frame).shape == (0, 4)
    assert not HaarDetector().equalize
    (haar,) = HaarDetector().detect(frame)
    (yunet,) = YuNetDetector().detect(frame)
    assert _iou(haar, truth) > 0.6 and _iou(yunet, truth) > 0.6


def test_yunet_finds_every_face_of_a_crowd_largest_first(sample_bgr):
    frame, truths = crowd_scene(sample_bgr, sides=(40, 56, 72, 96, 120, 150))
    found = YuNetDetector().detect_faces(frame)
    assert len(found) == 6 and found.has_landmarks.all()
    areas = found.boxes[:, 2] * found.boxes[:, 3]
    assert (np.diff(areas) <= 0).all()
    for t in truths:  # every true face matched by one detection
        assert max(_iou(b, t) for b in found.boxes) > 0.4


def test_yunet_downscales_big_photos_and_maps_back(sample_bgr):
    import cv2

    big = cv2.resize(sample_bgr, (2400, 2400), interpolation=cv2.INTER_CUBIC)
    found = YuNetDetector(max_side=640).detect_faces(big)
    assert len(found) == 1
    assert _iou(found.boxes[0], np.array(SAMPLE_FACE_BOX) * 7.5) > 0.5
    x, y, w, h = found.boxes[0]
    assert (found.landmarks[0][:, 0] > x).all() and (found.landmarks[0][:, 0] < x + w).all()


def test_no_face_in_a_face_free_scene_yunet():
    assert len(YuNetDetector().detect_faces(synthetic_background((640, 480)))) == 0


def test_face_detections_helpers():
    from fer_edge.runtime.detect import FaceDetections

    f = FaceDetections.from_boxes(np.array([[0, 0, 10, 10], [5, 5, 30, 30]]))
    assert not f.has_landmarks.any() and np.isnan(f.scores).all()
    g = f.largest_first()
    assert g.boxes[0].tolist() == [5, 5, 30, 30]
    r = g.rescaled(2.0, 40, 40)  # clipped to the image
    assert r.boxes.tolist() == [[10, 10, 30, 30], [0, 0, 20, 20]]
    assert len(FaceDetections.from_boxes(np.array([[50, 50, 5, 5]])).clipped(40, 40)) == 0


def test_each_thread_gets_its_own_opencv_detector(sample_bgr):
    """OpenCV detectors must not be shared by threads: each thread builds its own, from the same settings."""
    import threading

    for det in (YuNetDetector(), HaarDetector()):
        per = det._states if isinstance(det, YuNetDetector) else det._cascades
        mine = per.get()
        seen, results = [], []

        def work() -> None:
            seen.append(per.get())
            results.append(det.detect(sample_bgr).tolist())

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(x) for x in seen + [mine]}) == 3
        assert results[0] == results[1] == det.detect(sample_bgr).tolist()


def test_yunet_reports_no_phantom_faces_on_inputs_of_32_px_or_less(sample_bgr):
    # On an input 32 px or less on a side, YuNet by itself returns boxes of score 1.0 (or NaN)
    # on nothing at all, and not the same ones from call to call: such inputs are padded first.
    import cv2

    yn = YuNetDetector()
    strips = [np.full((h, w), v, np.uint8) for h in (1, 8, 16, 24, 32) for w in (24, 320, 1280) for v in (0, 128, 255)]
    strips.append(np.zeros((1, 2_000_000), np.uint8))  # 1 px high after the downscale to 1280
    for _ in range(5):
        assert [len(yn.detect_faces(s).boxes) for s in strips] == [0] * len(strips)
    # a face that fills a 34 px crop is still found, inside the crop
    crop = cv2.resize(face_patch(sample_bgr, pad=0.5), (34, 34), interpolation=cv2.INTER_AREA)
    found = yn.detect_faces(crop)
    assert len(found.boxes) == 1
    x, y, w, h = found.boxes[0]
    assert x >= 0 and y >= 0 and x + w <= 34 and y + h <= 34 and w >= 15
