"""FER2013 as a folder of images: ``ROOT/<split>/<class>/<file>``.

A layout some FER2013 image folders use (``train/`` and ``test/``, one folder per class, 48x48
grayscale images). Split of each file:

* the file name, when it carries Kaggle's Usage as a prefix (``Training_<id>.jpg``,
  ``PublicTest_<id>.jpg``, ``PrivateTest_<id>.jpg``): Training -> train, PublicTest ->
  validation, PrivateTest -> test. A ``test/`` folder may mix PublicTest and PrivateTest
  files, so this keeps the two apart exactly as the CSV does;
* otherwise the split folder: ``train``/``training`` -> train, ``val``/``valid``/
  ``validation``/``publictest`` -> validation, ``test``/``privatetest`` -> test.

Class folders are FER2013's class names (any case) or the label digits 0..6.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import InputError
from ..labels import CLASSES, IMAGE_SIZE
from .dataset import SPLIT_DTYPE, SPLITS, USAGE_TO_SPLIT, FerDataset

PathLike = Union[str, "os.PathLike[str]"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "publictest": "validation",
    "test": "test",
    "privatetest": "test",
}


def _class_index(folder: Path) -> int:
    name = folder.name.lower()
    if name in CLASSES:
        return CLASSES.index(name)
    if name.isdigit() and int(name) < len(CLASSES):
        return int(name)
    raise InputError(f"{folder}: unknown class folder {folder.name!r} (expected one of {', '.join(CLASSES)})")


def _split_of_file(path: Path, folder_split: str) -> str:
    prefix = path.name.split("_", 1)[0]
    return USAGE_TO_SPLIT.get(prefix, folder_split)


def _decode(path: Path) -> np.ndarray:
    import cv2

    try:
        buf = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths, unlike imread
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image")
    if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(
            f"{path}: image is {img.shape[1]}x{img.shape[0]}, expected {IMAGE_SIZE}x{IMAGE_SIZE} (FER2013 faces)"
        )
    return img


def list_image_folder(root: PathLike) -> list[tuple[Path, int, str]]:
    """(file, label, split) for every image under root, in split, class, file-name order."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base}: not a directory")
    split_dirs = sorted(d for d in base.iterdir() if d.is_dir() and d.name.lower() in SPLIT_FOLDERS)
    if not split_dirs:
        raise InputError(
            f"{base}: no split folders; expected {base}/train/<class>/*.jpg and {base}/test/<class>/*.jpg"
        )
    entries: list[tuple[Path, int, str]] = []
    for split_dir in split_dirs:
        folder_split = SPLIT_FOLDERS[split_dir.name.lower()]
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            label = _class_index(class_dir)
            for f in sorted(class_dir.iterdir()):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    entries.append((f, label, _split_of_file(f, folder_split)))
    if not entries:
        raise InputError(f"{base}: no images found under {', '.join(d.name for d in split_dirs)}")
    order = {s: i for i, s in enumerate(SPLITS)}
    entries.sort(key=lambda e: (order[e[2]], e[1], e[0].name))
    return entries


def read_image_folder(root: PathLike, progress: bool = False, workers: Optional[int] = None) -> FerDataset:
    """Load ``root/<split>/<class>/*`` into the same structure as :func:`read_fer_csv`."""
    entries = list_image_folder(root)
    images = np.empty((len(entries), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    paths = [e[0] for e in entries]
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(paths), desc="decoding images", unit="img", file=sys.stderr)
        except ImportError:
            bar = None
    # OpenCV releases the GIL while decoding, so threads scale.
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for i, img in enumerate(pool.map(_decode, paths)):
            images[i] = img
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    labels = np.array([e[1] for e in entries], dtype=np.int64)
    splits = np.array([e[2] for e in entries], dtype=SPLIT_DTYPE)
    return FerDataset(images=images, labels=labels, splits=splits, source=str(root))
