"""One entry point for "a FER2013 dataset at this path", CSV file or image folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from ..errors import InputError
from .csv_reader import read_fer_csv
from .dataset import FerDataset
from .image_folder import read_image_folder

PathLike = Union[str, "os.PathLike[str]"]


def dataset_kind(path: PathLike) -> str:
    """'csv' or 'image_folder'; InputError for a missing path or anything else."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        return "image_folder"
    if p.is_file():
        return "csv"
    raise InputError(f"{p}: neither a CSV file nor an image folder")


def load_dataset(path: PathLike, progress: bool = False) -> FerDataset:
    """A FER2013 CSV (any of the layouts read_fer_csv accepts) or a train/test image folder."""
    if dataset_kind(path) == "image_folder":
        return read_image_folder(path, progress=progress)
    return read_fer_csv(path)
