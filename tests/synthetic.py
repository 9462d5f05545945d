"""Synthetic FER2013-style data for the tests and benchmarks, without the real faces (not in the wheel).

The images are random (every value 0..255 occurs, so 1-, 2- and 3-digit pixels are all
exercised); the writers produce the file layouts users actually have, so a test can check
a reader against known content: Kaggle's fer2013.csv, the ICML variant, capitalised
headers, no Usage column, CRLF, quoted pixels, blank lines, and train/test image folders.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

from fer_edge.data.dataset import SPLIT_DTYPE, USAGE_TO_SPLIT
from fer_edge.labels import CLASSES, IMAGE_SIZE

PathLike = Union[str, "os.PathLike[str]"]

# Header line of each layout (exactly as written by the tools that make them).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "kaggle": ("emotion", "pixels", "Usage"),
    "icml": ("emotion", " Usage", " pixels"),
    "capitalized": ("Emotion", "Pixels", "Usage"),
    "no_usage": ("emotion", "pixels"),
}
DEFAULT_COUNTS: dict[str, int] = {"Training": 24, "PublicTest": 8, "PrivateTest": 8}
_NUMBERS = [str(i) for i in range(256)]


@dataclass
class SyntheticFer:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64
    usages: list[str]  # Kaggle Usage of each row

    @property
    def splits(self) -> np.ndarray:
        return np.array([USAGE_TO_SPLIT[u] for u in self.usages], dtype=SPLIT_DTYPE)

    def __len__(self) -> int:
        return len(self.images)


def make_synthetic(counts: Mapping[str, int] = DEFAULT_COUNTS, seed: int = 0, side: int = IMAGE_SIZE) -> SyntheticFer:
    """Random faces, labels cycling through all classes, rows grouped by Usage in `counts` order."""
    rng = np.random.default_rng(seed)
    usages = [u for u, n in counts.items() for _ in range(n)]
    n = len(usages)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = (np.arange(n, dtype=np.int64) + rng.integers(0, len(CLASSES))) % len(CLASSES)
    return SyntheticFer(images=images, labels=labels, usages=usages)


def pixels_string(image: np.ndarray, sep: str = " ") -> str:
    return sep.join(map(_NUMBERS.__getitem__, image.ravel().tolist()))


def write_fer_csv(
    path: PathLike,
    data: SyntheticFer,
    layout: str = "kaggle",
    quote_pixels: bool = False,
    newline: str = "\n",
    trailing_newline: bool = True,
    blank_lines: bool = False,
    bom: bool = False,
) -> Path:
    """Write `data` as a FER2013 CSV in one of LAYOUTS; returns the path."""
    header = LAYOUTS[layout]
    keys = [h.strip().lower() for h in header]
    out = Path(path)
    lines = [",".join(header)]
    for i in range(len(data)):
        px = pixels_string(data.images[i])
        values = {"emotion": str(int(data.labels[i])), "pixels": f'"{px}"' if quote_pixels else px, "usage": data.usages[i]}
        lines.append(",".join(values[k] for k in keys))
        if blank_lines and i % 5 == 2:
            lines.append("")
    text = newline.join(lines) + (newline if trailing_newline else "")
    if blank_lines:
        text += newline + newline
    out.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("ascii"))
    return out


def write_image_folder(root: PathLike, data: SyntheticFer, ext: str = ".png", kaggle_names: bool = True) -> Path:
    """The train/test image-folder layout: Training rows in train/, the others in test/.

    With ``kaggle_names`` files are called ``<Usage>_<i><ext>`` like the copy's; without, just
    ``<i><ext>`` (then only the folder tells the split). Use a lossless ``ext`` (.png) to
    compare pixels exactly.
    """
    import cv2

    base = Path(root)
    for i in range(len(data)):
        usage = data.usages[i]
        folder = base / ("train" if usage == "Training" else "test") / CLASSES[int(data.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{usage}_{i}{ext}" if kaggle_names else f"{i:06d}{ext}"
        ok, buf = cv2.imencode(ext, data.images[i])
        if not ok:
            raise RuntimeError(f"cv2 cannot encode {ext}")
        (folder / name).write_bytes(buf.tobytes())
    return base


def write_large_csv(path: PathLike, rows: int, seed: int = 0, usages: Sequence[str] = ("Training", "PublicTest", "PrivateTest")) -> Path:
    """A full-size synthetic fer2013.csv (Kaggle layout, CRLF like csv.writer) written in blocks."""
    rng = np.random.default_rng(seed)
    out = Path(path)
    with open(out, "w", newline="") as f:
        f.write("emotion,pixels,Usage\r\n")
        done = 0
        while done < rows:
            n = min(1024, rows - done)
            block = rng.integers(0, 256, size=(n, IMAGE_SIZE * IMAGE_SIZE), dtype=np.uint8)
            labels = rng.integers(0, len(CLASSES), size=n)
            f.write(
                "".join(
                    f"{labels[i]},{pixels_string(block[i])},{usages[(done + i) * len(usages) // rows]}\r\n"
                    for i in range(n)
                )
            )
            done += n
    return out
