"""Turn a FER2013 dataset on disk into the train / validation arrays a run uses.

Training uses the ``train`` split (Kaggle ``Training``); validation uses ``validation``
(``PublicTest``) and, when a dataset has none, a stratified, seeded hold-out of the
training faces. Normalisation statistics come from the training faces only, so a
model never sees statistics of the data it is judged on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from fer_edge.data.dataset import SPLITS, USAGE_TO_SPLIT, NormStats
from fer_edge.errors import InputError
from fer_edge.labels import CLASSES

# The spellings --split accepts (compared in lower case): the split names, Kaggle's Usage names
# (both from fer_edge.data.dataset, where they are defined) and "val".
SPLIT_ALIASES: dict[str, str] = {
    **{split: split for split in SPLITS},
    **{usage.lower(): split for usage, split in USAGE_TO_SPLIT.items()},
    "val": "validation",
}


def canonical_split(name: str) -> str:
    """Accept Kaggle Usage names (PublicTest ...) and split names (validation ...)."""
    try:
        return SPLIT_ALIASES[name.strip().lower()]
    except KeyError:
        *first, last = USAGE_TO_SPLIT
        raise InputError(
            f"unknown split {name!r}; use {', '.join(first)} or {last} (or {', '.join(SPLITS)})"
        ) from None


@dataclass
class PreparedData:
    train_images: np.ndarray  # (N, 48, 48) uint8
    train_labels: np.ndarray  # (N,) int64
    val_images: np.ndarray
    val_labels: np.ndarray
    stats: NormStats  # applied to training faces (and to validation unless val_stats is set)
    val_stats: Optional[NormStats]  # per-split normalisation: the validation split's own statistics
    val_source: str  # "validation" or "holdout"

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train_labels, minlength=len(CLASSES))


def load(path: str):
    """Load a dataset through fer_edge.data (CSV in Kaggle layout or an image folder)."""
    from fer_edge.data import load_dataset

    return load_dataset(path)


def compute(images: np.ndarray, scope: str) -> NormStats:
    """Exact mean/std of uint8 faces (fer_edge.data.compute_stats: the C++ kernel)."""
    from fer_edge.data import compute_stats

    return compute_stats(images, scope=scope)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded, per-class ``fraction`` of rows (at least one per class with 2+ rows)."""
    if not 0.0 < fraction < 1.0:
        raise InputError(f"--val-fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = max(1, int(round(len(idx) * fraction)))
        mask[rng.choice(idx, size=k, replace=False)] = True
    return mask


def prepare(
    path: str,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    norm: str = "train",
    limit: Optional[int] = None,
) -> PreparedData:
    """Read ``path`` and return training and validation faces plus statistics.

    ``limit`` keeps a seeded random subset of that many training faces (quick runs).
    """
    ds = load(path)
    train = ds.subset("train")
    if len(train.labels) == 0:
        raise InputError(f"{path}: no training faces (no rows with Usage 'Training' / no train/ folder)")
    x, y = np.ascontiguousarray(train.images), np.asarray(train.labels, dtype=np.int64)
    val = ds.subset("validation")
    if len(val.labels) > 0:
        vx, vy, source = np.ascontiguousarray(val.images), np.asarray(val.labels, dtype=np.int64), "validation"
    else:
        mask = stratified_holdout(y, val_fraction, seed)
        if not mask.any():
            raise InputError(f"{path}: no validation faces and too few training faces to hold some out")
        vx, vy, source = x[mask], y[mask], "holdout"
        x, y = x[~mask], y[~mask]
    if limit is not None and limit < len(y):
        keep = np.sort(np.random.default_rng(seed + 1).choice(len(y), size=limit, replace=False))
        x, y = x[keep], y[keep]
    if norm not in ("train", "per_split"):
        raise InputError(f"--norm must be 'train' or 'per_split', got {norm!r}")
    stats = compute(x, "train")
    val_stats = compute(vx, "validation") if norm == "per_split" else None
    return PreparedData(x, y, vx, vy, stats, val_stats, source)
