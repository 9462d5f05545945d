"""TEMPORARY: minimal Kaggle-CSV reader used only until fer_edge.data lands."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fer_edge.errors import InputError

_USAGE = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}


@dataclass
class _DS:
    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray

    def subset(self, split: str) -> "_DS":
        m = self.splits == split
        return _DS(self.images[m], self.labels[m], self.splits[m])


@dataclass
class _Stats:
    mean: float
    std: float
    scope: str = "train"


def load_dataset(path: str) -> _DS:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    import pandas as pd

    df = pd.read_csv(path)
    imgs = np.stack([np.fromstring(p, sep=" ", dtype=np.uint8) for p in df["pixels"]]).reshape(-1, 48, 48)
    splits = np.array([_USAGE.get(u, "train") for u in df.get("Usage", ["Training"] * len(df))])
    return _DS(imgs, df["emotion"].to_numpy(np.int64), splits)


def compute_stats(images: np.ndarray) -> _Stats:
    x = images.astype(np.float64)
    return _Stats(float(x.mean()), float(x.std()))
