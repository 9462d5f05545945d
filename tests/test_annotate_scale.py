"""Boxes and labels drawn on an image scale with it: a 4000x4000 photo gets a label as
readable (relative to the photo) as a 400x400 one, not a 30-pixel line lost in it."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.runtime.annotate import color_for, draw_faces
from fer_edge.runtime.results import FaceResult


def _label_height(side: int, face: int) -> int:
    """Pixel rows of the filled label above the box, for a face ``face`` px wide."""
    img = np.zeros((side, side, 3), np.uint8)
    y0 = side // 2
    f = FaceResult(box=(side // 4, y0, face, face), label="happy", score=0.9, probabilities={"happy": 0.9})
    out = draw_faces(img, [f])
    mask = np.all(out == np.array(color_for("happy"), np.uint8), axis=2)
    rows = np.nonzero(mask[:y0].any(axis=1))[0]
    return int(y0 - rows.min())


@pytest.mark.parametrize("scale", [5, 10])
def test_label_grows_with_the_photo(scale):
    small = _label_height(400, 100)
    big = _label_height(400 * scale, 100 * scale)
    assert small >= 10
    assert big / small == pytest.approx(scale, rel=0.25)


def test_label_on_a_small_face_in_a_big_photo_stays_readable():
    # a 60-px face in a 4000-px photo: the label is at least 2 % of the photo (80 px) tall
    assert _label_height(4000, 60) >= 0.02 * 4000


def test_box_line_thickens_with_the_photo():
    img = np.zeros((4000, 4000, 3), np.uint8)
    f = FaceResult(box=(1000, 1000, 1000, 1000), label="sad", score=0.8, probabilities={"sad": 0.8})
    out = draw_faces(img, [f])
    column = np.all(out[1500, 980:1040] == np.array(color_for("sad"), np.uint8), axis=1)
    assert column.sum() >= 8  # the left edge of the box, about 12 px wide
