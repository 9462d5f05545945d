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
from fer_edge.labels import CLASSES, LABEL_SETS

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
    classes: tuple[str, ...] = CLASSES
    label_set: str = "fer2013"
    # Soft training targets (N, len(classes)), rows summing to 1: FER+'s vote shares. None: hard labels.
    train_targets: Optional[np.ndarray] = None

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train_labels, minlength=len(self.classes))


FERPLUS_TARGETS = ("votes", "majority")  # what a FER+ run trains on; validation is always the majority protocol


def load(path: str, ferplus: Optional[str] = None):
    """Load a dataset through fer_edge.data (CSV in Kaggle layout or an image folder), FER+ votes joined."""
    from fer_edge.data import load_dataset

    return load_dataset(path, ferplus=ferplus)


def labelled(ds, ferplus_target: Optional[str] = None) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``(images, labels, soft targets or None)`` of a dataset (or one split of it).

    FER2013 (no votes joined): every face, its emotion label. FER+: the majority protocol's
    label (fer_edge.data.ferplus), with the faces it leaves out dropped; ``ferplus_target``
    "votes" also gives the vote shares (and keeps every face that has them)."""
    from fer_edge.data.ferplus import majority_labels, vote_distribution

    images = np.ascontiguousarray(ds.images)
    if ds.votes is None:
        return images, np.asarray(ds.labels, dtype=np.int64), None
    if ferplus_target in (None, "majority"):
        y = majority_labels(ds.votes)
        keep = y >= 0
        return np.ascontiguousarray(images[keep]), y[keep], None
    if ferplus_target != "votes":
        raise InputError(f"unknown FER+ target {ferplus_target!r}; use {' or '.join(FERPLUS_TARGETS)}")
    dist, usable = vote_distribution(ds.votes)
    return np.ascontiguousarray(images[usable]), dist[usable].argmax(1).astype(np.int64), dist[usable]


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
    ferplus: Optional[str] = None,
    ferplus_target: str = "votes",
) -> PreparedData:
    """Read ``path`` and return training and validation faces plus statistics.

    ``limit`` keeps a seeded random subset of that many training faces (quick runs).
    ``ferplus`` (fer2013new.csv) switches to FER+'s 8 classes: training on ``ferplus_target``
    ("votes": the vote shares as soft targets; "majority": the majority label), validation on
    the FER+ majority protocol.
    """
    ds = load(path, ferplus)
    label_set = "ferplus" if ferplus else "fer2013"
    train = ds.subset("train")
    if len(train.labels) == 0:
        raise InputError(f"{path}: no training faces (no rows with Usage 'Training' / no train/ folder)")
    x, y, t = labelled(train, ferplus_target if ferplus else None)
    val = ds.subset("validation")
    if len(val.labels) > 0:
        vx, vy, _ = labelled(val)
        source = "validation"
    else:
        mask = stratified_holdout(y, val_fraction, seed)
        if not mask.any():
            raise InputError(f"{path}: no validation faces and too few training faces to hold some out")
        vx, vy, source = x[mask], y[mask], "holdout"
        x, y = x[~mask], y[~mask]
        t = t[~mask] if t is not None else None
    if len(y) == 0:
        raise InputError(f"{path}: no training faces with a FER+ label")
    if limit is not None and limit < len(y):
        keep = np.sort(np.random.default_rng(seed + 1).choice(len(y), size=limit, replace=False))
        x, y = x[keep], y[keep]
        t = t[keep] if t is not None else None
    if norm not in ("train", "per_split"):
        raise InputError(f"--norm must be 'train' or 'per_split', got {norm!r}")
    stats = compute(x, "train")
    val_stats = compute(vx, "validation") if norm == "per_split" else None
    return PreparedData(x, y, vx, vy, stats, val_stats, source, LABEL_SETS[label_set], label_set, t)
