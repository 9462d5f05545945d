"""Aligned crops (fer_edge/runtime/align.py): the geometry, rotation invariance, FER2013's own framing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_edge.runtime.align import FER2013_FRAMING, alignment_matrix, crop_faces
from fer_edge.runtime.detect import YuNetDetector

from conftest import SHARED_FER2013
from fixtures_runtime import sample_bgr, sample_image  # noqa: F401


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.c_[pts, np.ones(len(pts))] @ np.asarray(m).T


@pytest.mark.parametrize("angle", [-30, -8, 0, 12, 40])
@pytest.mark.parametrize("size", [48, 64])
def test_eyes_land_level_where_fer2013_puts_them(angle, size):
    rng = np.random.default_rng(angle + 100)
    g = FER2013_FRAMING.scaled(size)
    # a face with FER2013's proportions, tilted, scaled and moved
    k = float(rng.uniform(1.5, 6))
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    canon = np.array([[-g.eye_distance / 2, 0], [g.eye_distance / 2, 0], [0, 0.6 * g.eye_mouth],
                      [-0.4 * g.eye_distance, g.eye_mouth], [0.4 * g.eye_distance, g.eye_mouth]])
    lm = canon @ rot.T * k + rng.uniform(100, 300, size=2)
    out = _apply(alignment_matrix(lm, size), lm)
    np.testing.assert_allclose(out[:2, 1], [g.eye_y, g.eye_y], atol=1e-6)  # level
    np.testing.assert_allclose((out[0] + out[1]) / 2, [g.eye_x, g.eye_y], atol=1e-6)
    np.testing.assert_allclose(out[1, 0] - out[0, 0], g.eye_distance, rtol=1e-6)  # FER2013's scale
    np.testing.assert_allclose(out[:, 0], canon[:, 0] + g.eye_x, atol=1e-6)  # the whole face, not only the eyes


@pytest.mark.parametrize("angle", [-25, 15, 30])
def test_a_tilted_face_gives_the_upright_crop(sample_bgr, angle):
    """Rotating the photo and its landmarks together leaves the aligned crop (almost) unchanged."""
    import cv2

    found = YuNetDetector().detect_faces(sample_bgr)
    upright = crop_faces(sample_bgr, found.boxes, found.landmarks, 48)[0].astype(np.float64)
    r = cv2.getRotationMatrix2D((160.0, 160.0), angle, 1.0)
    turned = cv2.warpAffine(sample_bgr, r, (320, 320), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lm = _apply(r, found.landmarks[0])[None]
    got = crop_faces(turned, found.boxes, lm, 48)[0].astype(np.float64)
    assert np.abs(got - upright).mean() < 4.0
    # and it is not just a blurry average: the crop of the turned photo *without* alignment differs a lot
    boxed = crop_faces(turned, found.boxes, None, 48)[0].astype(np.float64)
    assert np.abs(boxed - upright).mean() > 3 * np.abs(got - upright).mean()


def test_faces_without_landmarks_are_cropped_from_their_box(sample_bgr):
    import cv2

    boxes = np.array([[100, 40, 96, 96], [10, 10, 48, 48]], np.int32)
    lm = np.full((2, 5, 2), np.nan, np.float32)
    got = crop_faces(sample_bgr, boxes, lm, 48)
    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(got[0], cv2.resize(gray[40:136, 100:196], (48, 48), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(got[1], gray[10:58, 10:58])


def test_a_face_at_the_border_repeats_edge_pixels(sample_bgr):
    found = YuNetDetector().detect_faces(sample_bgr)
    lm = found.landmarks[0] - found.landmarks[0][0] + 2.0  # right eye 2 px from the corner
    crop = crop_faces(sample_bgr, found.boxes, lm[None], 48)[0]
    assert crop.shape == (48, 48) and crop.dtype == np.uint8


@pytest.mark.real_data
def test_fer2013_framing_reproduces_fer2013_crops():
    """The geometry is FER2013's: PublicTest faces enlarged 4x into a canvas, found by YuNet and
    aligned back to 48x48, average to the same mean face as the originals (faces 600-679, not
    the ones the geometry was measured on); a framing 3 px lower or 20% tighter does clearly worse."""
    import dataclasses

    import cv2

    import real_fer2013

    path = SHARED_FER2013 / real_fer2013.NPZ_NAME
    if not path.is_file():
        pytest.skip(f"FER2013 PublicTest not available at {path} (../shared/data/fer2013)")
    public, _ = real_fer2013.faces(SHARED_FER2013, "validation", limit=80, start=600)
    det = YuNetDetector()
    geometries = {
        "fer2013": FER2013_FRAMING,
        "lower": dataclasses.replace(FER2013_FRAMING, eye_y=FER2013_FRAMING.eye_y + 3),
        "tighter": dataclasses.replace(FER2013_FRAMING, eye_distance=FER2013_FRAMING.eye_distance * 1.2,
                                       eye_mouth=FER2013_FRAMING.eye_mouth * 1.2),
    }
    originals, crops = [], {k: [] for k in geometries}
    for face in public:
        up = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.cvtColor(cv2.copyMakeBorder(up, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=128), cv2.COLOR_GRAY2BGR)
        found = det.detect_faces(canvas)
        if not len(found):
            continue
        originals.append(face)
        for k, g in geometries.items():
            crops[k].append(crop_faces(canvas, found.boxes[:1], found.landmarks[:1], 48, g)[0])
    assert len(originals) >= 60

    def mean_face_corr(faces) -> float:
        a = np.mean(originals, axis=0)[4:44, 4:44].ravel()
        b = np.mean(faces, axis=0)[4:44, 4:44].ravel()
        return float(np.corrcoef(a, b)[0, 1])

    corr = {k: mean_face_corr(v) for k, v in crops.items()}
    assert corr["fer2013"] > 0.9, corr
    assert corr["fer2013"] > corr["lower"] + 0.05 and corr["fer2013"] > corr["tighter"] + 0.05, corr
