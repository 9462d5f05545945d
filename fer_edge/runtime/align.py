"""Aligned face crops: turn each face upright and frame it the way FER2013 frames its faces.

Why: the model only knows FER2013's 48x48 crops, in which the eyes sit at one height, a
fixed distance apart, roughly level. A detector box is looser than that (YuNet's box runs
from the forehead to the chin and is taller than wide) and a tilted head arrives tilted.
From YuNet's five landmarks we build one affine map per face (rotation that levels the eye
line + scale + translation) and let OpenCV sample the output directly (``cv2.warpAffine``),
so the crop costs a small ROI's gray conversion plus a 48x48 warp.

The framing (:data:`FER2013_FRAMING`) is *measured*, not guessed, by
``scripts/measure_fer_framing.py``: YuNet run on 600 FER2013 PublicTest faces (upscaled 4x
and padded with mid-gray into a 384x384 canvas), medians of where the landmarks fall in
the 48x48 frame. The command and the numbers are in docs/RUNTIME.md ("Aligned crops").

Scale uses both the eye distance and the eye-to-mouth distance (their mean ratio to
FER2013's medians): the eye distance alone shrinks when the head turns (yaw), the
eye-to-mouth distance alone when it nods (pitch).

Faces without landmarks (Haar boxes, ``--detector none``) are cropped from their box with
the same warp (a pure scale + translation): a Haar box already matches FER2013's framing
(see :mod:`.detect`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# YuNet landmark order: the subject's right eye (image left), left eye, nose tip,
# right mouth corner, left mouth corner.
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH_RIGHT, MOUTH_LEFT = range(5)


@dataclass(frozen=True)
class CropGeometry:
    """Where a face sits in a FER2013-style crop, in pixels of a ``side`` x ``side`` frame.

    ``eye_x``, ``eye_y``: the midpoint between the eyes; ``eye_distance``: between the eye
    centres; ``eye_mouth``: from the eye midpoint to the mouth midpoint.
    """

    side: float
    eye_x: float
    eye_y: float
    eye_distance: float
    eye_mouth: float
    measured_on: str = ""

    def scaled(self, size: int) -> "CropGeometry":
        """The same framing in a ``size`` x ``size`` output."""
        k = size / self.side
        return CropGeometry(float(size), self.eye_x * k, self.eye_y * k, self.eye_distance * k,
                            self.eye_mouth * k, self.measured_on)


#: FER2013's framing, measured by ``python scripts/measure_fer_framing.py --data fer2013.csv``
#: (medians over the PublicTest faces YuNet found, original pixels: 589 of the first 600;
#: inter-quartile ranges in docs/RUNTIME.md). The one place this geometry is defined.
FER2013_FRAMING = CropGeometry(
    side=48.0, eye_x=23.42, eye_y=17.93, eye_distance=17.96, eye_mouth=17.95,
    measured_on="FER2013 PublicTest (original pixels), first 600 faces, YuNet 2023mar, 4x upscale, mid-gray padding",
)


def alignment_matrix(landmarks: np.ndarray, size: int, geometry: CropGeometry = FER2013_FRAMING) -> np.ndarray:
    """2x3 affine map from image coordinates to the ``size`` x ``size`` aligned crop.

    ``landmarks``: (5, 2) in YuNet's order. The eye line becomes level, the eye midpoint
    lands on the geometry's eye point and the face's scale matches FER2013's.
    """
    k = size / geometry.side
    (rx, ry), (lx, ly), _, (mrx, mry), (mlx, mly) = (tuple(float(v) for v in p) for p in np.asarray(landmarks).reshape(5, 2))
    ex, ey = (rx + lx) / 2, (ry + ly) / 2
    dx, dy = lx - rx, ly - ry
    eye_dist = math.hypot(dx, dy)
    eye_mouth = math.hypot((mrx + mlx) / 2 - ex, (mry + mly) / 2 - ey)
    ratios = [r for r in (eye_dist / (geometry.eye_distance * k), eye_mouth / (geometry.eye_mouth * k)) if r > 0]
    scale = len(ratios) / sum(ratios) if ratios else 1.0  # output pixels per image pixel
    angle = math.atan2(dy, dx)
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    # rotate by -angle and scale about the eye midpoint, which lands on the geometry's eye point
    return np.array([[c, s, geometry.eye_x * k - (c * ex + s * ey)],
                     [-s, c, geometry.eye_y * k - (-s * ex + c * ey)]])


def box_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """2x3 affine map of an ``x, y, w, h`` box onto the ``size`` x ``size`` output (no rotation)."""
    x, y, w, h = (float(v) for v in np.asarray(box).reshape(4))
    sx, sy = size / max(w, 1e-6), size / max(h, 1e-6)
    # pixel centres, as cv2.resize: output u samples the box at x + (u + 0.5) / sx - 0.5
    return np.array([[sx, 0.0, (0.5 - x) * sx - 0.5], [0.0, sy, (0.5 - y) * sy - 0.5]])


def warp_gray(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` uint8 gray crop that ``matrix`` (image -> crop) describes.

    Reads only the region the crop covers: that ROI is converted to gray and, when the
    face is much larger than the output, first shrunk by an integer factor with
    ``INTER_AREA`` (``warpAffine`` has no area filter; bilinear sampling at 4x reduction
    would alias). Outside the image, edge pixels are repeated. Plain float arithmetic on
    the 2x3 matrix: per face, numpy's call overhead would cost more than the warp.
    """
    import cv2

    (a, b, c), (d, e, f) = (tuple(float(v) for v in row) for row in np.asarray(matrix).reshape(2, 3))
    det = a * e - b * d
    if abs(det) < 1e-12:
        raise ValueError("degenerate face alignment (zero scale)")
    # inverse map, crop -> image, and the image region the crop's corners cover
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    xs, ys = [], []
    for u, v in ((0.0, 0.0), (size, 0.0), (0.0, size), (size, size)):
        du, dv = u - c, v - f
        xs.append(ia * du + ib * dv)
        ys.append(id_ * du + ie * dv)
    H, W = image.shape[:2]
    k = _shrink_factor(1.0 / math.sqrt(abs(det)))
    x0, y0 = math.floor(min(xs)) - 1, math.floor(min(ys)) - 1
    if k >= 2:
        # start the ROI so that the shrunk pixels' centres fall on the output's first sample
        # (an unrotated crop of an integer multiple of the output size is then exactly
        # cv2.resize's INTER_AREA)
        ax, ay = ia * (-c) + ib * (-f) - (k - 1) / 2, id_ * (-c) + ie * (-f) - (k - 1) / 2
        x0 -= (x0 - round(ax)) % k
        y0 -= (y0 - round(ay)) % k
    x0 = min(max(x0, 0), W - 1)
    y0 = min(max(y0, 0), H - 1)
    x1 = min(max(math.ceil(max(xs)) + 2, x0 + 1), W)
    y1 = min(max(math.ceil(max(ys)) + 2, y0 + 1), H)
    roi = image[y0:y1, x0:x1]
    if roi.ndim == 3:
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    c, f = c + a * x0 + b * y0, f + d * x0 + e * y0  # ROI coordinates
    if k >= 2:  # shrink so that the warp itself reduces by less than 2x
        rh, rw = roi.shape[:2]
        sw, sh = max(1, rw // k), max(1, rh // k)
        roi = cv2.resize(roi[: sh * k, : sw * k], (sw, sh), interpolation=cv2.INTER_AREA)
        # small pixel (u, v) averages big [k*u, k*u + k): its centre is big = k * small + (k - 1) / 2
        h = (k - 1) / 2
        c, f = c + (a + b) * h, f + (d + e) * h
        a, b, d, e = a * k, b * k, d * k, e * k
    m = np.array([[a, b, c], [d, e, f]], dtype=np.float64)
    return cv2.warpAffine(roi, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _shrink_factor(src_per_dst: float) -> int:
    """Integer pre-shrink for a warp that reduces by ``src_per_dst``: the floor, so that the
    bilinear warp after it reduces by less than 2x. Among floor / round / ceil it is the
    closest to ``cv2.resize(INTER_AREA)`` (mean 2.8 gray levels over 200 random boxes of the
    sample photo; exact for integer factors); an exact non-integer INTER_AREA pre-shrink
    (1.7 levels) cost 1.5x the time and changed no accuracy (scripts/eval_in_the_wild.py)."""
    return int(src_per_dst)


def crop_faces(image: np.ndarray, boxes: np.ndarray, landmarks: "np.ndarray | None", size: int,
               geometry: CropGeometry = FER2013_FRAMING) -> np.ndarray:
    """uint8 ``(K, size, size)`` gray crops: aligned where a face has landmarks, its box otherwise.

    ``landmarks``: ``(K, 5, 2)`` (rows of NaN for faces without) or None for none at all.
    """
    b = np.asarray(boxes).reshape(-1, 4)
    out = np.empty((len(b), size, size), dtype=np.uint8)
    lm = None if landmarks is None else np.asarray(landmarks, dtype=np.float64).reshape(len(b), 5, 2)
    for i in range(len(b)):
        if lm is not None and np.isfinite(lm[i]).all():
            m = alignment_matrix(lm[i], size, geometry)
        else:
            m = box_matrix(b[i], size)
        out[i] = warp_gray(image, m, size)
    return out
