"""Face crops -> the model's NCHW float32 batch, through the C++ extension.

The hot path of every prediction (crop each box, grayscale, resize to the model's input
size, normalise with the contract's mean/std) is one call into
``fer_edge._native.preprocess_faces``, which fills the whole batch without intermediate
images. ``fer_edge.reference.preprocess_faces_reference`` is the numpy/OpenCV definition
it is tested against; it is used only when the extension is missing (a broken source
build), with one warning, so that ``fer-edge info`` and the log say so.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import numpy as np

from ..contract import ModelContract

log = logging.getLogger("fer_edge")

_impl: Optional[Callable[..., np.ndarray]] = None
NATIVE: Optional[bool] = None  # set on first use: True when the C++ extension is in use


def _load_impl() -> Callable[..., np.ndarray]:
    global _impl, NATIVE
    if _impl is None:
        try:
            from .. import _native

            _impl, NATIVE = _native.preprocess_faces, True
        except ImportError as exc:
            from ..reference import preprocess_faces_reference

            log.warning("fer-edge: C++ extension not available (%s); using the slower numpy preprocessing", exc)
            _impl, NATIVE = preprocess_faces_reference, False
    return _impl


def native_available() -> bool:
    """Whether the C++ extension imports (for ``fer-edge info``)."""
    _load_impl()
    return bool(NATIVE)


def as_bgr_or_gray(image: np.ndarray) -> np.ndarray:
    """Normalise an input image to contiguous uint8 ``(H, W)`` or ``(H, W, 3)`` BGR.

    Accepts BGRA (drops alpha), single-channel ``(H, W, 1)`` and non-uint8 images in
    0..255 (clipped), which is what callers hand the Python API in practice.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    img = image
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"image must be (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, got shape {image.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(K, 4)`` x, y, w, h boxes to the image and drop the ones left empty."""
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if b.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    x0 = np.clip(b[:, 0], 0, width)
    y0 = np.clip(b[:, 1], 0, height)
    x1 = np.clip(b[:, 0] + b[:, 2], 0, width)
    y1 = np.clip(b[:, 1] + b[:, 3], 0, height)
    out = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    keep = (out[:, 2] > 0) & (out[:, 3] > 0)
    return np.ascontiguousarray(out[keep], dtype=np.int32)


def preprocess_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    contract: ModelContract,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Batch ``(K, contract.channels, S, S)`` float32 for ``boxes`` (x, y, w, h) in ``image``.

    ``image`` is uint8 gray or BGR; boxes must lie inside the image (see :func:`clip_boxes`).
    For a 3-channel model the gray crop is replicated into the three channels, which is
    how such a model is trained on FER2013's gray faces.
    """
    impl = _load_impl()
    img = as_bgr_or_gray(image)
    b = np.ascontiguousarray(np.asarray(boxes).reshape(-1, 4), dtype=np.int32)
    size = int(contract.input_size)
    if contract.channels == 1:
        return impl(img, b, size, float(contract.mean), float(contract.std), out)
    gray = impl(img, b, size, float(contract.mean), float(contract.std))
    if out is not None:
        out[...] = gray  # broadcasts (K,1,S,S) into (K,3,S,S)
        return out
    return np.repeat(gray, contract.channels, axis=1)
