"""Generated clips and scenes with real face pixels: the packaged sample photo moved, scaled and rotated.

Used by the detection tests (faces "found in the wild"). Every face is the
astronaut's face from ``fer_edge/assets/sample_face.jpg`` (public domain), pasted whole
(with her hair, suit and the photo's background) by one affine warp per frame, so the
detector sees real face texture at the size and angle asked for.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from fixtures_runtime import SAMPLE_FACE_BOX, synthetic_background

FACE_CENTRE = (SAMPLE_FACE_BOX[0] + SAMPLE_FACE_BOX[2] / 2, SAMPLE_FACE_BOX[1] + SAMPLE_FACE_BOX[3] / 2)


def place_face(frame: np.ndarray, sample_bgr: np.ndarray, centre: tuple[float, float], side: float,
               angle_deg: float = 0.0, brightness: float = 1.0) -> tuple[int, int, int, int]:
    """Paste the sample photo into ``frame`` (in place) so its face is ``side`` px wide, centred
    at ``centre`` and rotated by ``angle_deg`` (counter-clockwise); returns the face's true box."""
    import cv2

    s = side / SAMPLE_FACE_BOX[2]
    m = cv2.getRotationMatrix2D(FACE_CENTRE, angle_deg, s)
    m[:, 2] += np.array(centre) - np.array(FACE_CENTRE)
    src = sample_bgr if brightness == 1.0 else np.clip(sample_bgr * brightness, 0, 255).astype(np.uint8)
    cv2.warpAffine(src, m, (frame.shape[1], frame.shape[0]), dst=frame, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)
    half = side / 2
    return (int(round(centre[0] - half)), int(round(centre[1] - half)), int(round(side)), int(round(side)))


def make_wild_clip(path: Path, sample_bgr: np.ndarray, frames: int = 120, size: tuple[int, int] = (640, 480),
                   sides: tuple[float, float] = (40, 120), max_angle: float = 20.0, fps: float = 30.0,
                   fourcc: str = "mp4v", seed: Optional[int] = None) -> list[tuple[int, int, int, int]]:
    """A video of the sample face moving across the frame while its size swings between
    ``sides`` (px) and it tilts up to ``max_angle`` degrees either way; returns the true boxes."""
    import cv2

    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened(), f"cannot write {path}"
    background = synthetic_background(size)
    boxes = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        side = sides[0] + (sides[1] - sides[0]) * (0.5 - 0.5 * math.cos(2 * math.pi * t))
        angle = max_angle * math.sin(4 * math.pi * t)
        cx = 80 + t * (W - 160)
        cy = H / 2 + 0.2 * H * math.sin(2 * math.pi * t)
        frame = background.copy()
        boxes.append(place_face(frame, sample_bgr, (cx, cy), side, angle))
        writer.write(frame)
    writer.release()
    return boxes


def gray_scene(sample_bgr: np.ndarray, side: int = 72, size: tuple[int, int] = (320, 240), level: int = 128) -> tuple[np.ndarray, tuple]:
    """One frontal face of ``side`` px on a flat gray background (only the face region pasted)."""
    import cv2

    x, y, w, h = SAMPLE_FACE_BOX
    pad = int(0.25 * w)
    patch = sample_bgr[y - pad: y + h + pad, x - pad: x + w + pad]
    k = side / w
    patch = cv2.resize(patch, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    W, H = size
    frame = np.full((H, W, 3), level, np.uint8)
    ox, oy = (W - patch.shape[1]) // 2, (H - patch.shape[0]) // 2
    frame[oy: oy + patch.shape[0], ox: ox + patch.shape[1]] = patch
    p = int(round(pad * k))
    return frame, (ox + p, oy + p, side, side)


def crowd_scene(sample_bgr: np.ndarray, sides=(40, 56, 72, 96, 120, 150), size: tuple[int, int] = (960, 600)) -> tuple[np.ndarray, list]:
    """Copies of the face at several sizes side by side on a background; returns the true boxes."""
    frame = synthetic_background(size)
    W, H = size
    boxes = []
    cols = 3
    for i, side in enumerate(sides):
        cx = (i % cols + 0.5) * W / cols
        cy = (i // cols + 0.5) * H / 2
        boxes.append(place_face(frame, sample_bgr, (cx, cy), side))
    return frame, boxes
