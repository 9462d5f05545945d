"""Load FER2013 faces for the measurement scripts: the shared npz files or a user's CSV / image folder.

``load_faces(path, split)`` -> (uint8 (N, 48, 48) faces, int64 (N,) labels). ``path`` is
``../shared/data/fer2013/fer2013_publictest.npz`` (the JPEG-bytes npz format described in
that folder's README) or anything ``fer_edge.data.load_dataset`` reads (Kaggle's
``fer2013.csv``, the image-folder copy), of which ``split`` is kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fer2013"
DEFAULT_PUBLICTEST = SHARED / "fer2013_publictest.npz"


def load_faces(path: Path, split: str = "PublicTest", limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The faces and labels; a path that is missing or unreadable ends the script with one line."""
    import cv2

    from fer_edge.errors import FerEdgeError

    path = Path(path)
    if not path.exists():
        raise SystemExit(f"error: {path}: no such file or folder; pass --data fer2013.csv (Kaggle's CSV, "
                         "which ../shared/data/fer2013/to_csv.py writes) or that folder's fer2013_publictest.npz")
    if path.suffix == ".npz":
        z = np.load(path)
        jpeg, off, labels = z["jpeg"], z["offsets"], z["emotion"].astype(np.int64)
        n = len(off) - 1 if not limit else min(limit, len(off) - 1)
        faces = np.stack([cv2.imdecode(jpeg[off[i]: off[i + 1]], cv2.IMREAD_GRAYSCALE) for i in range(n)])
        return faces, labels[:n]
    from fer_edge.data import load_dataset

    try:
        ds = load_dataset(path).subset(split)
    except FerEdgeError as exc:
        raise SystemExit(f"error: {exc}") from None
    n = len(ds) if not limit else min(limit, len(ds))
    return ds.images[:n], ds.labels[:n].astype(np.int64)
