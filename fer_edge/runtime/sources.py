"""Turning command-line sources into image files, and image files into pixels.

``fer-edge infer`` takes any mix of image paths, folders (searched recursively for common
image extensions) and glob patterns. Problems with one source are recorded next to it
instead of raised, so the good inputs of a batch are still processed and the bad ones
listed at the end.
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from ..errors import InputError

log = logging.getLogger("fer_edge")

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    """One input image path, or the reason a command-line source yielded nothing."""

    path: str
    error: Optional[str] = None


def is_image_file(path: Union[str, Path]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_file(path: Union[str, Path]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _folder_images(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and is_image_file(name):
                found.append(os.path.join(root, name))
    return sorted(found)


def expand_sources(sources: Iterable[Union[str, Path]]) -> list[Source]:
    """Image files for paths, folders and globs, in command-line order, without duplicates.

    A named file is always kept (even with an unusual extension: decoding decides), a
    folder or glob contributes only files with image extensions. A source that matches
    nothing becomes a :class:`Source` with ``error`` set.
    """
    out: list[Source] = []
    seen: set[str] = set()

    def add(path: str, error: Optional[str] = None) -> None:
        key = os.path.normpath(os.path.abspath(path)) if error is None else f"{path}\0{error}"
        if key not in seen:
            seen.add(key)
            out.append(Source(path, error))

    for raw in sources:
        src = os.path.expanduser(str(raw))
        p = Path(src)
        if p.is_dir():
            files = _folder_images(p)
            if not files:
                add(src, f"no images found in folder: {src}")
            for f in files:
                add(f)
        elif p.exists():
            if is_video_file(p):
                add(src, f"{src} is a video; use `fer-edge webcam --source {src}`")
            else:
                add(src)
        elif _GLOB_CHARS & set(src):
            matches = sorted(m for m in glob.glob(src, recursive=True) if os.path.isfile(m) and is_image_file(m))
            if not matches:
                add(src, f"no images match: {src}")
            for m in matches:
                add(m)
        else:
            add(src, f"image not found: {src}")
    return out


def read_image(path: Union[str, Path]) -> np.ndarray:
    """Decode an image file to uint8 BGR ``(H, W, 3)``; :class:`InputError` if it is not one.

    Reads the bytes first and decodes with ``cv2.imdecode``: unlike ``cv2.imread`` this
    handles non-ASCII paths on Windows and tells "cannot read" from "not an image".
    EXIF orientation is applied, as phone photos need.
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"image not found: {p}")
    if p.is_dir():
        raise InputError(f"is a folder, not an image: {p}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {exc.strerror or exc}") from exc
    if not data:
        raise InputError(f"not an image (empty file): {p}")
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    fmt = image_format(data)
    if (img is None or img.size == 0) and fmt is not None:
        # imdecode refuses a JPEG that ends early; imread decodes what is there (the missing
        # rows are grey), as image viewers do. Say so instead of calling it "not an image".
        img = _imread_quietly(p)
        if img is not None and img.size:
            log.warning("fer-edge: %s: the %s data is truncated or damaged; using the part that decodes", p, fmt)
    if img is None or img.size == 0:
        if fmt is not None:
            raise InputError(f"cannot decode image {p}: the {fmt} data is truncated or damaged")
        raise InputError(f"not an image or unsupported format: {p}")
    return img


# File signatures of the formats OpenCV reads: a file that starts like one is an image,
# even when it cannot be decoded.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF8", "GIF"),
)


def image_format(data: bytes) -> Optional[str]:
    """"JPEG", "PNG", ... when ``data`` starts with that format's signature, else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def _imread_quietly(path: Path) -> Optional[np.ndarray]:
    import cv2

    from .capture import _QuietOpenCV

    try:
        with _QuietOpenCV():
            return cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
