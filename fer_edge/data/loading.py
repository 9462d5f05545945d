"""One entry point for "a FER2013 dataset at this path", CSV file or image folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

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


def load_dataset(path: PathLike, progress: bool = False, ferplus: Optional[PathLike] = None) -> FerDataset:
    """A FER2013 CSV (any of the layouts read_fer_csv accepts) or a train/test image folder.

    ``ferplus``: Microsoft's ``fer2013new.csv`` for the same rows; its votes are joined to the
    faces by position (fer_edge.data.ferplus.check_aligned says why a pair does not fit)."""
    from dataclasses import replace

    from .ferplus import check_aligned, read_ferplus_csv

    votes = read_ferplus_csv(ferplus) if ferplus is not None else None  # a bad FER+ file fails before the faces load
    if dataset_kind(path) == "image_folder":
        if votes is not None:
            raise InputError(f"{path}: --ferplus joins fer2013new.csv to Kaggle's fer2013.csv row by row; "
                             "an image folder has no rows to join")
        return read_image_folder(path, progress=progress)
    ds = read_fer_csv(path)
    if votes is None:
        return ds
    check_aligned(votes, ds.splits, str(path))
    return replace(ds, votes=votes.votes)
