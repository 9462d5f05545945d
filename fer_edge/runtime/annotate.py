"""Drawing boxes, labels and the frame rate onto images (``--save-annotated``, webcam output)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .results import FaceResult

# BGR, one colour per FER2013 class; other class names get a stable colour from the palette.
CLASS_COLORS = {
    "angry": (40, 40, 220),
    "disgust": (40, 160, 40),
    "fear": (160, 60, 160),
    "happy": (0, 210, 255),
    "sad": (200, 120, 30),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
}
_PALETTE = [(255, 128, 0), (0, 200, 120), (200, 0, 200), (0, 128, 255), (128, 255, 0), (255, 0, 128)]


def color_for(label: str) -> tuple[int, int, int]:
    if label in CLASS_COLORS:
        return CLASS_COLORS[label]
    return _PALETTE[sum(label.encode()) % len(_PALETTE)]


def _text_box(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color, thickness: int) -> None:
    """Text on a filled background so it stays readable on any image."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    x, y = org
    y = max(y, th + base + 2)
    x = min(max(0, x), max(0, img.shape[1] - tw - 4))
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y + 2), color, -1)
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, y - base + 1), font, scale, ink, thickness, cv2.LINE_AA)


def draw_faces(
    image: np.ndarray,
    faces: Sequence[FaceResult],
    fps: Optional[float] = None,
    show_track_ids: bool = False,
    copy: bool = True,
) -> np.ndarray:
    """BGR image with each face's box and ``label score`` (and the FPS, when given)."""
    import cv2

    img = image.copy() if copy else image
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    side = min(h, w)
    for f in faces:
        x, y, bw, bh = f.box
        color = color_for(f.label)
        thick = max(1, int(round(side / 320)))  # 2 px at 640x480, 12 px on a 4000x4000 photo
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, thick, cv2.LINE_AA)
        text = f"{f.label} {f.score:.2f}"
        if show_track_ids and f.track_id is not None:
            text = f"#{f.track_id} {text}"
        scale = label_scale(bw, side)
        _text_box(img, text, (x, y - 2), scale, color, max(1, int(round(scale * 1.6))))
    if fps is not None:
        scale = max(0.4, 0.03 * side / _CAP_PX)
        _text_box(img, f"{fps:5.1f} FPS", (6, 6), scale, (30, 30, 30), max(1, int(round(scale * 1.6))))
    return img


_CAP_PX = 22.0  # height of FONT_HERSHEY_SIMPLEX capitals at scale 1


def label_scale(face_width: int, image_side: int) -> float:
    """OpenCV font scale of a face's label: letters about a sixth of the face wide, kept between
    2 % and 6 % of the image's shorter side, so labels scale with the photo (readable on a
    4000x4000 picture as on a 320x240 frame) and never dwarf a small face in a crowd."""
    target_px = min(max(0.16 * face_width, 0.02 * image_side), 0.06 * image_side)
    return max(0.4, target_px / _CAP_PX)
