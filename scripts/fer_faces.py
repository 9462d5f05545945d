"""Load FER2013 faces for the measurement scripts: the project's fer2013.npz or a user's CSV / image folder.

``load_faces(path, split)`` -> (uint8 (N, 48, 48) faces, int64 (N,) labels). ``path`` is
``../shared/data/fer2013/fer2013.npz`` (the original pixels as lossless WebP, in Kaggle's row order;
its README describes the format) or anything ``fer_edge.data.load_dataset`` reads (Kaggle's
``fer2013.csv``, a train/test image folder), of which ``split`` is kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fer2013"
DEFAULT_PUBLICTEST = SHARED / "fer2013.npz"  # the PublicTest rows of it, by default
NPZ_USAGE = {"Training": 0, "PublicTest": 1}


def load_faces(path: Path, split: str = "PublicTest", limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The faces and labels; a path that is missing or unreadable ends the script with one line."""
    import cv2

    from fer_edge.errors import FerEdgeError

    path = Path(path)
    if not path.exists():
        raise SystemExit(f"error: {path}: no such file or folder; pass --data fer2013.csv (Kaggle's CSV, "
                         "the file Kaggle distributes) or the project's fer2013.npz")
    if path.suffix == ".npz":
        z = np.load(path)
        webp, off, usage = z["webp"], z["offsets"], z["usage"]  # each array read once
        if split not in NPZ_USAGE:
            raise SystemExit(f"error: {path} holds Training and PublicTest only, not {split}")
        rows = np.flatnonzero(usage == NPZ_USAGE[split])
        rows = rows[:limit] if limit else rows
        faces = np.stack([cv2.imdecode(webp[off[i]: off[i + 1]], cv2.IMREAD_GRAYSCALE) for i in rows])
        return faces, z["emotion"][rows].astype(np.int64)
    from fer_edge.data import load_dataset

    try:
        ds = load_dataset(path).subset(split)
    except FerEdgeError as exc:
        raise SystemExit(f"error: {exc}") from None
    n = len(ds) if not limit else min(limit, len(ds))
    return ds.images[:n], ds.labels[:n].astype(np.int64)
