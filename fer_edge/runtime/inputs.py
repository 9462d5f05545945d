"""What the Python API accepts as an image, turned into the one form the pipeline uses.

People hand over what they have: a file path (``str`` or ``pathlib.Path``), a numpy array
from OpenCV (BGR), a PIL image (RGB, from Pillow or a web framework), an encoded image
(``bytes``, a binary file object, a ``data:image/...;base64,`` URI or an ``http(s)://`` URL:
:mod:`.encoded`), or a list of those. Everything becomes a uint8 BGR ``(H, W, 3)`` or gray
``(H, W)`` array here, so the rest of the runtime has one convention. PIL is never imported:
an object is recognised as a PIL image by its class's module. A ``str`` that starts with
``data:`` or ``http(s)://`` is taken for a URI; a file of such a name is reached as a ``Path``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import InputError, excerpt
from .encoded import decode_data_uri, decode_encoded, decode_url, is_encoded, not_an_image_but_a_video, \
    string_kind, video_format
from .preprocess import as_bgr_or_gray
from .imagesize import MAX_PIXELS
from .sources import is_video_file, read_image

#: A path (str or os.PathLike) or an http(s)/data: URI, encoded image bytes (bytes, bytearray,
#: memoryview) or a binary file object, a numpy array in OpenCV's BGR order, or a PIL.Image.Image.
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray, Any]


def is_pil_image(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "PIL" and hasattr(obj, "convert") and hasattr(obj, "mode")


def is_batch(obj: Any) -> bool:
    """A list or tuple of images (one image is never a list: arrays and paths are not)."""
    return isinstance(obj, (list, tuple))


def to_image(image: ImageInput, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """uint8 BGR ``(H, W, 3)`` or gray ``(H, W)`` from any :data:`ImageInput` (see the module doc).

    numpy arrays are taken as OpenCV gives them (BGR, BGRA or gray); convert an RGB array
    with ``rgb[:, :, ::-1]``. PIL images are RGB by definition and are converted; their EXIF
    orientation is applied, as it is for files and encoded images.
    """
    if isinstance(image, str):
        if not image.strip():
            raise InputError("image path is empty")
        kind = string_kind(image)
        if kind == "data":
            return decode_data_uri(image, max_pixels)
        if kind == "url":
            return decode_url(image, max_pixels)
    if is_encoded(image):
        return decode_encoded(image, max_pixels)
    if isinstance(image, (str, os.PathLike)):
        return image_from_path(Path(image), max_pixels)
    if isinstance(image, np.ndarray):
        return as_bgr_or_gray(image)
    if is_pil_image(image):
        return _from_pil(image)
    raise TypeError(
        "image must be a file path or http(s) URL, encoded image bytes, a binary file object, a data:image URI, "
        f"a numpy BGR array or a PIL image (or a list of them), got {type(image).__name__}"
    )


def image_from_path(path: Path, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """:func:`~.sources.read_image`, except that a video (by its extension, or by its first bytes
    when it does not decode) says to use ``fer_edge.analyze_video``."""
    if is_video_file(path):
        raise not_an_image_but_a_video(excerpt(str(path)))
    try:
        return read_image(path, max_pixels)
    except InputError:
        video = _video_in_file(path)
        if video is not None:
            raise not_an_image_but_a_video(excerpt(str(path)), video) from None
        raise


def _video_in_file(path: Path) -> Optional[str]:
    """The video container ``path`` starts like (:func:`~.encoded.video_format`), or None. Only a
    regular file is looked into: opening a named pipe would wait for a writer."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            return video_format(f.read(16))
    except OSError:
        return None


def to_images(images: Sequence[ImageInput], max_pixels: Optional[int] = MAX_PIXELS) -> list[np.ndarray]:
    """:func:`to_image` of each; an input that fails is named by its place in the list (an
    array or bytes have no name of their own)."""
    out = []
    for i, im in enumerate(images):
        try:
            out.append(to_image(im, max_pixels))
        except (InputError, TypeError) as exc:
            if len(images) == 1:
                raise
            where = f"image {i} of {len(images)}"
            if isinstance(exc, InputError):
                raise type(exc)(f"{where}: {exc.message}", remedies=exc.remedies) from None
            raise TypeError(f"{where}: {exc}") from None
    return out


def _from_pil(image: Any) -> np.ndarray:
    try:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(image)
    except Exception:  # no EXIF, or an image type exif_transpose does not handle
        pass
    if image.width == 0 or image.height == 0:
        raise InputError(f"image is empty ({image.width}x{image.height} PIL image)")
    if image.mode.startswith("I;16"):  # 16-bit gray PNG / TIFF: scaled to 8 bits, as cv2.imread does for the file
        return np.ascontiguousarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))
    if image.mode == "I":  # 32-bit integers: how Pillow opens many 16-bit gray files; else 0..255 values
        values = np.asarray(image)
        if values.size and int(values.max()) > 255 and int(values.min()) >= 0 and int(values.max()) <= 65535:
            values = values.astype(np.uint16)
        return as_bgr_or_gray(values)
    if image.mode == "F":  # floats: the array checks (0..1 data, NaN) apply, not PIL's silent clipping
        return as_bgr_or_gray(np.asarray(image))
    if image.mode in ("L", "1"):
        return np.ascontiguousarray(np.asarray(image.convert("L"), dtype=np.uint8))
    if image.mode == "La":  # premultiplied alpha, which PIL does not convert: undone here, alpha dropped
        la = np.asarray(image).astype(np.float32)
        gray = np.where(la[..., 1] > 0, la[..., 0] * 255.0 / np.maximum(la[..., 1], 1.0), 0.0)
        return np.ascontiguousarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])
