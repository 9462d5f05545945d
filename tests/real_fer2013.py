"""Read ../shared/data/fer2013/fer2013.npz directly (its README's recipe), independently of fer_edge's
readers: the real-data tests compare what fer_edge reads from the CSVs users have with this."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

NPZ_NAME = "fer2013.npz"
USAGE_CODE = {"train": 0, "validation": 1}  # the npz's `usage`: 0 Training, 1 PublicTest


@lru_cache(maxsize=4)
def _arrays(folder: str) -> dict[str, np.ndarray]:
    z = np.load(Path(folder) / NPZ_NAME)
    return {k: z[k] for k in ("webp", "offsets", "emotion", "usage", "ferplus")}  # each read once


def split_rows(folder: Path, split: str) -> np.ndarray:
    """Indices of one split's faces, in Kaggle's row order."""
    return np.flatnonzero(_arrays(str(folder))["usage"] == USAGE_CODE[split])


def faces(folder: Path, split: str, limit: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (N, 48, 48) faces, int64 FER2013 labels) of ``split``, rows ``start`` .. ``start + limit``."""
    import cv2

    a = _arrays(str(folder))
    rows = split_rows(folder, split)[start:]
    if limit:
        rows = rows[:limit]
    webp, off = a["webp"], a["offsets"]
    imgs = np.stack([cv2.imdecode(webp[off[i]: off[i + 1]], cv2.IMREAD_GRAYSCALE) for i in rows])
    return imgs, a["emotion"][rows].astype(np.int64)


def votes(folder: Path, split: str, limit: int = 0) -> np.ndarray:
    """(N, 10) FER+ votes of ``split`` (columns as in fer2013new.csv)."""
    rows = split_rows(folder, split)
    return _arrays(str(folder))["ferplus"][rows[:limit] if limit else rows].astype(np.int64)


def counts(folder: Path, split: str) -> list[int]:
    emotion = _arrays(str(folder))["emotion"][split_rows(folder, split)].astype(np.int64)
    return np.bincount(emotion, minlength=7).tolist()
