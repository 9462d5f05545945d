"""The in-memory FER2013 dataset, its splits and its normalisation statistics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..errors import InputError
from ..labels import CLASSES

SPLITS: tuple[str, ...] = ("train", "validation", "test")
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
SPLIT_TO_USAGE: dict[str, str] = {v: k for k, v in USAGE_TO_SPLIT.items()}
SPLIT_DTYPE = "<U10"  # fits "validation"


def split_name(name: str) -> str:
    """'train' / 'validation' / 'test', also accepting Kaggle's Usage names."""
    if name in SPLITS:
        return name
    if name in USAGE_TO_SPLIT:
        return USAGE_TO_SPLIT[name]
    raise InputError(
        f"unknown split {name!r}: use one of {', '.join(SPLITS)} (or Kaggle's {', '.join(USAGE_TO_SPLIT)})"
    )


@dataclass(frozen=True)
class NormStats:
    """Mean and population std (in 0..255 pixel units) used as x_norm = (x - mean) / std.

    ``scope`` records where they came from, so inference can reproduce training: "train"
    (the training split's statistics, used for every split) or "per_split:<split>" (each
    split normalised with its own statistics, as the reference design did).
    """

    mean: float
    std: float
    scope: str = "train"

    def as_dict(self) -> dict[str, Union[float, str]]:
        """Plain floats and a string: what a checkpoint stores under "norm" / "val_norm"
        (``torch.load(weights_only=True)`` reads it back), and what JSON takes."""
        return {"mean": float(self.mean), "std": float(self.std), "scope": self.scope}


def compute_stats(images: np.ndarray, scope: str = "train") -> NormStats:
    """Exact mean/std of uint8 images (any shape) via the C++ kernel."""
    from .. import _native

    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise InputError(f"statistics need uint8 images, got {images.dtype}")
    if images.size == 0:
        raise InputError(f"no images to compute statistics for ({scope})")
    mean, std = _native.mean_std(images)
    return NormStats(mean=mean, std=std, scope=scope)


@dataclass
class FerDataset:
    """Faces, labels and the split of each row, as read from a CSV or an image folder."""

    images: np.ndarray  # (N, 48, 48) uint8, C-contiguous
    labels: np.ndarray  # (N,) int64 in 0..6
    splits: np.ndarray  # (N,) str: "train" / "validation" / "test"
    source: str  # the path it came from
    votes: Optional[np.ndarray] = None  # (N, 10) FER+ votes of each row, when a fer2013new.csv was joined

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.votes is not None and self.votes.shape != (n, 10):
            raise ValueError(f"votes must have shape ({n}, 10), got {self.votes.shape}")
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.splits.shape != (n,):
            raise ValueError(
                f"labels {self.labels.shape} and splits {self.splits.shape} must both have shape ({n},)"
            )

    def __len__(self) -> int:
        return len(self.images)

    def split_names(self) -> list[str]:
        """The splits present, in SPLITS order."""
        present = set(np.unique(self.splits).tolist())
        return [s for s in SPLITS if s in present]

    def subset(self, split: str) -> "FerDataset":
        """Rows of one split ('train'/'validation'/'test' or 'Training'/'PublicTest'/'PrivateTest')."""
        name = split_name(split)
        mask = self.splits == name
        return FerDataset(
            images=np.ascontiguousarray(self.images[mask]),
            labels=self.labels[mask],
            splits=self.splits[mask],
            source=self.source,
            votes=self.votes[mask] if self.votes is not None else None,
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(counts[i]) for i, c in enumerate(CLASSES)}

    def norm_stats(self, mode: str = "train") -> dict[str, NormStats]:
        """Normalisation statistics for each split present.

        mode "train": every split uses the training split's statistics (the default, what a
        deployed model sees); "per_split": each split uses its own (the reference design).
        """
        names = self.split_names()
        if mode == "train":
            if "train" not in names:
                raise InputError(f"{self.source}: no training rows to compute normalisation statistics from")
            stats = compute_stats(self.images[self.splits == "train"], scope="train")
            return {s: stats for s in names}
        if mode == "per_split":
            return {s: compute_stats(self.images[self.splits == s], scope=f"per_split:{s}") for s in names}
        raise InputError(f"unknown normalisation mode {mode!r}: use 'train' or 'per_split'")
