"""IoU tracker, template following and EMA smoothing."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.runtime.tracking import FaceTracker, greedy_match, iou_matrix

from fixtures_runtime import face_patch, sample_bgr, sample_image, synthetic_background  # noqa: F401


def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10], [100, 100, 10, 10]])
    b = np.array([[5, 0, 10, 10], [0, 0, 10, 10], [50, 50, 1, 1]])
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(50 / 150)
    assert m[0, 1] == pytest.approx(1.0)
    assert m[1].max() == 0.0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_greedy_match_prefers_highest_iou():
    iou = np.array([[0.9, 0.5], [0.8, 0.1]])
    assert sorted(greedy_match(iou, 0.3)) == [(0, 0)]  # row 1 only overlaps col 0 (taken) and col 1 below threshold
    assert sorted(greedy_match(np.array([[0.9, 0.5], [0.8, 0.4]]), 0.3)) == [(0, 0), (1, 1)]


def test_ids_stay_with_moving_faces_and_new_faces_get_new_ids():
    t = FaceTracker(follow=False)
    ids1, _ = t.update(np.array([[10, 10, 50, 50], [200, 10, 50, 50]]))
    ids2, boxes2 = t.update(np.array([[205, 12, 50, 50], [14, 11, 50, 50]]))  # moved, listed in another order
    assert dict(zip(map(tuple, boxes2.tolist()), ids2))[(205, 12, 50, 50)] == ids1[1]
    assert dict(zip(map(tuple, boxes2.tolist()), ids2))[(14, 11, 50, 50)] == ids1[0]
    ids3, _ = t.update(np.array([[14, 11, 50, 50], [205, 12, 50, 50], [400, 300, 60, 60]]))
    assert len(set(ids3)) == 3 and max(ids3) == 3


def test_lost_track_is_kept_for_max_missed_rounds_then_dropped():
    t = FaceTracker(follow=False, max_missed=2)
    (tid,), _ = t.update(np.array([[10, 10, 50, 50]]))
    for _ in range(2):
        ids, boxes = t.update(np.zeros((0, 4)))
        assert ids == [tid] and boxes.tolist() == [[10, 10, 50, 50]]
    assert t.update(np.zeros((0, 4)))[0] == []
    # a face that reappears later is a new track
    assert t.update(np.array([[10, 10, 50, 50]]))[0] == [tid + 1]


def test_ema_smoothing_and_switch_off():
    p_a = np.array([[0.9, 0.1]], np.float32)
    p_b = np.array([[0.1, 0.9]], np.float32)
    t = FaceTracker(alpha=0.25, follow=False)
    ids, _ = t.update(np.array([[0, 0, 10, 10]]))
    np.testing.assert_allclose(t.smooth(ids, p_a), p_a)
    s = t.smooth(ids, p_b)  # one frame of a different answer moves the average by alpha only
    np.testing.assert_allclose(s, 0.25 * p_b + 0.75 * p_a, rtol=1e-6)
    assert s[0].argmax() == 0
    for _ in range(10):
        s = t.smooth(ids, p_b)
    assert s[0].argmax() == 1  # a lasting change takes over
    raw = FaceTracker(smooth=False, follow=False)
    ids, _ = raw.update(np.array([[0, 0, 10, 10]]))
    raw.smooth(ids, p_a)
    np.testing.assert_allclose(raw.smooth(ids, p_b), p_b)


def test_template_following_moves_the_box_with_the_face(sample_bgr):
    import cv2

    patch = cv2.cvtColor(face_patch(sample_bgr, scale=1.2), cv2.COLOR_BGR2GRAY)
    bg = cv2.cvtColor(synthetic_background((640, 480)), cv2.COLOR_BGR2GRAY)

    def frame(ox, oy):
        f = bg.copy()
        f[oy: oy + patch.shape[0], ox: ox + patch.shape[1]] = patch
        return f

    t = FaceTracker()
    box = np.array([[100 + 40, 100 + 40, 95, 95]])  # face region inside the pasted patch
    (tid,), _ = t.update(box, frame(100, 100))
    ids, boxes = t.follow(frame(112, 93))
    assert ids == [tid]
    # matched on a 32-px-wide template, so the position is known to within 95 / 32 ~ 3 px
    x, y, w, h = boxes[0]
    assert abs(x - 152) <= 3 and abs(y - 133) <= 3 and (w, h) == (95, 95)
    # the face leaves: following fails and the track ends
    assert t.follow(bg)[0] == []


def test_new_tracks_are_reported_after_min_hits():
    t = FaceTracker(follow=False, min_hits=2)
    assert t.update(np.array([[10, 10, 50, 50]]))[0] == []  # seen once: not yet
    assert t.follow(None)[0] == []
    assert t.update(np.array([[12, 10, 50, 50]]))[0] == [1]  # confirmed
    # a one-off detection elsewhere is never reported; the confirmed face still is
    assert t.update(np.array([[12, 10, 50, 50], [300, 300, 40, 40]]))[0] == [1]
    assert t.update(np.array([[13, 10, 50, 50]]))[0] == [1]
