"""FER2013 data layer: CSV layouts and image folders -> FerDataset, splits, statistics.

Rows are parsed by the C++ extension (``fer_edge._native``); nothing here imports torch.
"""
from __future__ import annotations

from .csv_reader import parse_fer_bytes, parse_header, read_fer_csv
from .dataset import (
    SPLIT_TO_USAGE,
    SPLITS,
    USAGE_TO_SPLIT,
    FerDataset,
    NormStats,
    compute_stats,
    split_name,
)
from .image_folder import read_image_folder
from .loading import dataset_kind, load_dataset

__all__ = [
    "SPLITS",
    "USAGE_TO_SPLIT",
    "SPLIT_TO_USAGE",
    "FerDataset",
    "NormStats",
    "compute_stats",
    "dataset_kind",
    "load_dataset",
    "parse_fer_bytes",
    "parse_header",
    "read_fer_csv",
    "read_image_folder",
    "split_name",
]
