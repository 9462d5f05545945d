"""What the Python API accepts as an image, turned into the one form the pipeline uses.

People hand over what they have: a file path, a numpy array from OpenCV (BGR), a PIL image
(RGB, from Pillow or a web framework), or a list of those. Everything becomes a uint8 BGR
``(H, W, 3)`` or gray ``(H, W)`` array here, so the rest of the runtime has one convention.
PIL is never imported: an object is recognised as a PIL image by its class's module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from .preprocess import as_bgr_or_gray
from .sources import read_image

#: A path (str or os.PathLike), a numpy array in OpenCV's BGR order, or a PIL.Image.Image.
ImageInput = Union[str, "os.PathLike[str]", np.ndarray, Any]


def is_pil_image(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "PIL" and hasattr(obj, "convert") and hasattr(obj, "mode")


def is_batch(obj: Any) -> bool:
    """A list or tuple of images (one image is never a list: arrays and paths are not)."""
    return isinstance(obj, (list, tuple))


def to_image(image: ImageInput) -> np.ndarray:
    """uint8 BGR ``(H, W, 3)`` or gray ``(H, W)`` from a path, a BGR numpy array or a PIL image.

    numpy arrays are taken as OpenCV gives them (BGR, BGRA or gray); convert an RGB array
    with ``rgb[:, :, ::-1]``. PIL images are RGB by definition and are converted; their EXIF
    orientation is applied, as it is for files.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))
    if isinstance(image, np.ndarray):
        return as_bgr_or_gray(image)
    if is_pil_image(image):
        return _from_pil(image)
    raise TypeError(
        f"image must be a file path, a numpy BGR array or a PIL image (or a list of them), got {type(image).__name__}"
    )


def to_images(images: Sequence[ImageInput]) -> list[np.ndarray]:
    return [to_image(im) for im in images]


def _from_pil(image: Any) -> np.ndarray:
    try:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(image)
    except Exception:  # no EXIF, or an image type exif_transpose does not handle
        pass
    if image.mode.startswith("I;16"):  # 16-bit gray PNG / TIFF: scaled to 8 bits, as for the file itself
        return as_bgr_or_gray(np.asarray(image).astype(np.uint16))
    if image.mode in ("L", "1", "I", "F"):
        return np.ascontiguousarray(np.asarray(image.convert("L"), dtype=np.uint8))
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])
