"""Face crops -> the model's NCHW float32 batch: align (or crop), gray, resize, normalise.

Each face becomes a ``S x S`` gray crop through one ``cv2.warpAffine`` per face
(:mod:`.align`): faces with landmarks (YuNet) are turned upright and framed like FER2013,
faces with a box only (Haar, ``--detector none``) are cropped from their box. Then
``(v - mean) / std`` with the model contract's statistics.

This used to be one call into a fused C++ kernel (``_native.preprocess_faces``: crop, gray,
area resize, normalise). It was removed: it re-implemented OpenCV's colour
conversion and area resize, was 1.1x *slower* than the plain OpenCV loop, could not
rotate, and the aligned OpenCV path that replaced it is faster per face than it was
(benchmark group 2 and docs/BENCHMARKS.md). The C++ extension keeps what it wins: CSV
parsing, statistics and whole-dataset normalisation (``fer_edge.data``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..contract import ModelContract
from ..errors import InputError
from .align import crop_faces


#: how far below 0 a float image in 0..255 may reach: the overshoot of a cubic or Lanczos resize
#: at a black/white edge (about 13 % of the step); lower, the data is not 0..255 (mean-subtracted)
FLOAT_OVERSHOOT = 64.0


def as_bgr_or_gray(image: np.ndarray) -> np.ndarray:
    """Normalise an input image to contiguous uint8 ``(H, W)`` or ``(H, W, 3)`` BGR.

    Accepts BGRA (drops alpha), single-channel ``(H, W, 1)``, 16-bit images as OpenCV reads
    them with ``IMREAD_UNCHANGED`` (scaled to 8 bits as ``cv2.imread`` does for such a file),
    boolean masks (False 0, True 255), and other integer or float images in 0..255 (rounded and
    clipped). Refused (:class:`~fer_edge.errors.InputError`, a ValueError), because read as 0..255 they would be a black or clipped
    frame and the answer silently wrong: images whose values lie in 0..1 (below 2 at most, so
    the overshoot of a resize of 0..1 data is caught too), a 16-bit image whose values all lie
    in 0..255 (8-bit data in a 16-bit array), int8 images, integer images with negative values,
    float images reaching below ``-FLOAT_OVERSHOOT`` or below -8 on a quarter of their pixels (a
    resize of 0..255 data overshoots a little, mean-subtracted data a lot), and NaN or infinity.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    img = image
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise InputError(f"image must be (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, got shape {image.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.bool_:
        return np.ascontiguousarray(img.astype(np.uint8) * np.uint8(255))
    if img.dtype.kind not in "iuf":
        raise TypeError(f"image must hold numbers, got dtype {img.dtype}")
    if img.dtype == np.int8:
        raise InputError("image is int8, which cannot hold 0..255; pass a uint8 image")
    if img.dtype.kind == "f" and not np.isfinite(img).all():
        raise InputError("image has NaN or infinite values")
    top, low = float(img.max()), float(img.min())  # each a pass over the image: read once
    if img.dtype == np.uint16:
        if 0 < top <= 255:
            raise InputError("image is 16-bit but every value lies in 0..255: 8-bit data in a 16-bit array? "
                             "pass image.astype(np.uint8), or a 16-bit image over its full range")
        return np.ascontiguousarray((img >> 8).astype(np.uint8))
    if 0.0 < top < 2.0:
        raise InputError(f"image values lie in {min(0.0, low):.3g}..{top:.3g} (0..1 data?); fer-edge takes 0..255 "
                         "(pass image * 255, or a uint8 image)")
    if img.dtype.kind == "i" and low < 0:
        raise InputError(f"image has negative values (down to {int(low)}); fer-edge takes 0..255")
    if img.dtype.kind == "f" and (low < -FLOAT_OVERSHOOT or np.count_nonzero(img < -8) > img.size // 4):
        raise InputError(f"image has negative values (down to {low:.3g}); fer-edge takes 0..255 "
                         "(not mean-subtracted or -1..1 data)")
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def preprocess_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    contract: ModelContract,
    out: Optional[np.ndarray] = None,
    landmarks: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Batch ``(K, contract.channels, S, S)`` float32 for the faces at ``boxes`` (x, y, w, h).

    ``landmarks`` ``(K, 5, 2)`` (YuNet's order; NaN rows for faces without) makes those
    faces aligned crops; without, each box is cropped as it is. ``image`` is uint8 gray or
    BGR; boxes must lie inside the image (see :func:`clip_boxes`). For a 3-channel model the
    gray crop is replicated into the three channels, which is how such a model is trained
    on FER2013's gray faces. ``out``: a preallocated batch to fill (a stream can reuse one).
    """
    return faces_to_batch(as_bgr_or_gray(image), boxes, contract, out=out, landmarks=landmarks)


def faces_to_batch(
    img: np.ndarray,
    boxes: np.ndarray,
    contract: ModelContract,
    out: Optional[np.ndarray] = None,
    landmarks: Optional[np.ndarray] = None,
) -> np.ndarray:
    """:func:`preprocess_faces` of an image already converted by :func:`as_bgr_or_gray` (the
    pipeline converts a frame once, where it enters; this is what it runs after that)."""
    b = np.asarray(boxes).reshape(-1, 4)
    size = int(contract.input_size)
    crops = crop_faces(img, b, landmarks, size)
    shape = (len(b), int(contract.channels), size, size)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
    # float32 arithmetic: per frame, numpy is cheaper than a call into the C++ normaliser
    np.subtract(crops[:, None], np.float32(contract.mean), out=out[:, :1], dtype=np.float32)
    np.divide(out[:, :1], np.float32(contract.std), out=out[:, :1])
    if contract.channels > 1:
        out[:, 1:] = out[:, :1]
    return out
