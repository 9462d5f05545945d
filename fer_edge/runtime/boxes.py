"""Face boxes as ``(K, 4)`` int32 ``x, y, w, h`` arrays: clipping, growing, squaring, ordering.

Defined once here and used by the detectors, the tracker and the predictor, so that every box
that reaches a crop has been clipped the same way.
"""
from __future__ import annotations

import numpy as np


def clip_boxes_keep(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes clipped to a ``width`` x ``height`` image, every row kept (an empty one becomes 0-sized)."""
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    x0, y0 = np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height)
    x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, width), np.clip(b[:, 1] + b[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32).reshape(-1, 4)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(K, 4)`` x, y, w, h boxes to the image and drop the ones left empty."""
    out = clip_boxes_keep(boxes, width, height)
    keep = (out[:, 2] > 0) & (out[:, 3] > 0)
    return np.ascontiguousarray(out[keep], dtype=np.int32)


def largest_first_order(boxes: np.ndarray) -> np.ndarray:
    """Indices that put the largest box first; equal areas keep left-to-right, top-to-bottom order."""
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(b) < 2:
        return np.arange(len(b))
    return np.lexsort((b[:, 1], b[:, 0], -(b[:, 2] * b[:, 3])))


def sort_largest_first(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    return np.ascontiguousarray(b[largest_first_order(b)])


def expand_boxes(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Grow each box by ``margin`` of its size (split over both sides), clipped to the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if margin == 0 or len(b) == 0:
        return np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    dx, dy = b[:, 2] * margin / 2, b[:, 3] * margin / 2
    grown = np.stack([np.floor(b[:, 0] - dx), np.floor(b[:, 1] - dy),
                      np.ceil(b[:, 0] + b[:, 2] + dx) - np.floor(b[:, 0] - dx),
                      np.ceil(b[:, 1] + b[:, 3] + dy) - np.floor(b[:, 1] - dy)], axis=1)
    return clip_boxes_keep(grown, width, height)


def squarify(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Square boxes of side max(w, h) around the same centres, shifted to stay inside the image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    side = np.minimum(np.maximum(b[:, 2], b[:, 3]), min(width, height))
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    x0 = np.clip(np.round(cx - side / 2), 0, width - side)
    y0 = np.clip(np.round(cy - side / 2), 0, height - side)
    return np.stack([x0, y0, side, side], axis=1).round().astype(np.int32)
