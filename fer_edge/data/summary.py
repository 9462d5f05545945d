"""What ``fer-edge data stats`` reports: rows per split and class, statistics, timings."""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ..labels import CLASSES, FERPLUS_CLASSES
from .csv_reader import read_fer_csv
from .dataset import SPLIT_TO_USAGE, FerDataset, compute_stats
from .image_folder import read_image_folder
from .loading import dataset_kind

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class SplitSummary:
    split: str
    usage: str  # Kaggle's name for it
    rows: int
    per_class: dict[str, int]
    mean: float
    std: float


@dataclass
class DataSummary:
    path: str
    format: str  # "csv" or "image_folder"
    size_bytes: int
    rows: int
    parse_seconds: float  # file -> arrays: mapping and parsing the CSV (C++), or decoding the images
    stats_seconds: float  # mean/std of every split
    splits: list[SplitSummary] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    mean: float = 0.0
    std: float = 0.0
    # With --ferplus: per split, the FER+ majority protocol's label counts (FERPLUS_CLASSES),
    # the faces it labels and those it leaves out (fer_edge.data.ferplus.majority_labels).
    ferplus: Optional[dict[str, dict[str, Any]]] = None
    ferplus_path: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(CLASSES)
        d["splits"] = {s.split: {k: v for k, v in asdict(s).items() if k != "split"} for s in self.splits}
        return d

    def format_table(self) -> str:
        name_w = max([len("split")] + [len(s.split) for s in self.splits] + [len("all")])
        cols = [c[:8] for c in CLASSES]
        head = f"{'split':<{name_w}}  {'usage':<11} {'rows':>7}  " + " ".join(f"{c:>8}" for c in cols)
        head += f"  {'mean':>8} {'std':>8}"
        lines = [
            f"{self.path}: {self.format}, {_human_size(self.size_bytes)}, {self.rows:,} rows",
            f"parsed in {self.parse_seconds:.3f} s ({self.size_bytes / 1e6 / max(self.parse_seconds, 1e-9):,.0f} MB/s), "
            f"statistics in {self.stats_seconds:.3f} s",
            "",
            head,
        ]
        for s in self.splits:
            lines.append(
                f"{s.split:<{name_w}}  {s.usage:<11} {s.rows:>7,}  "
                + " ".join(f"{s.per_class[c]:>8,}" for c in CLASSES)
                + f"  {s.mean:>8.3f} {s.std:>8.3f}"
            )
        lines.append(
            f"{'all':<{name_w}}  {'':<11} {self.rows:>7,}  "
            + " ".join(f"{self.per_class[c]:>8,}" for c in CLASSES)
            + f"  {self.mean:>8.3f} {self.std:>8.3f}"
        )
        if self.ferplus:
            lines += self._ferplus_table(name_w)
        return "\n".join(lines)

    def _ferplus_table(self, name_w: int) -> list[str]:
        cols = [c[:8] for c in FERPLUS_CLASSES]
        lines = ["", f"FER+ majority labels ({self.ferplus_path}; faces without a majority, or whose majority is "
                 "unknown or not a face, are left out):", "",
                 f"{'split':<{name_w}}  {'labelled':>8} {'left out':>8}  " + " ".join(f"{c:>8}" for c in cols)]
        for split, f in self.ferplus.items():
            lines.append(f"{split:<{name_w}}  {f['labelled']:>8,} {f['excluded']:>8,}  "
                         + " ".join(f"{f['per_class'][c]:>8,}" for c in FERPLUS_CLASSES))
        return lines


def _ferplus_summary(ds: FerDataset) -> dict[str, dict[str, Any]]:
    import numpy as np

    from .ferplus import majority_labels

    out = {}
    for name in ds.split_names():
        y = majority_labels(ds.subset(name).votes)
        counts = np.bincount(y[y >= 0], minlength=len(FERPLUS_CLASSES))
        out[name] = {"labelled": int((y >= 0).sum()), "excluded": int((y < 0).sum()),
                     "per_class": {c: int(counts[i]) for i, c in enumerate(FERPLUS_CLASSES)}}
    return out


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _folder_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def summarize_dataset(ds: FerDataset) -> tuple[list[SplitSummary], dict[str, int], float, float]:
    splits = []
    for name in ds.split_names():
        sub = ds.subset(name)
        st = compute_stats(sub.images, scope=f"per_split:{name}")
        splits.append(SplitSummary(name, SPLIT_TO_USAGE[name], len(sub), sub.class_counts(), st.mean, st.std))
    overall = compute_stats(ds.images, scope="all")
    return splits, ds.class_counts(), overall.mean, overall.std


def summarize(path: PathLike, progress: bool = False, name: Optional[str] = None,
              ferplus: Optional[PathLike] = None) -> DataSummary:
    """Load the dataset at ``path`` (and FER+'s votes for it) and describe it; InputError for
    missing, malformed or misaligned data."""
    from dataclasses import replace

    from .ferplus import check_aligned, read_ferplus_csv

    votes = read_ferplus_csv(ferplus) if ferplus is not None else None
    p = Path(path)
    kind = dataset_kind(p)
    if votes is not None and kind != "csv":
        from ..errors import InputError

        raise InputError(f"{path}: --ferplus joins fer2013new.csv to Kaggle's fer2013.csv row by row; "
                         "an image folder has no rows to join")
    label = name if name is not None else str(path)
    t0 = time.perf_counter()
    if kind == "csv":
        ds = read_fer_csv(p, name=label)
        parse_s = time.perf_counter() - t0
        size = p.stat().st_size
    else:
        ds = read_image_folder(p, progress=progress)
        parse_s = time.perf_counter() - t0
        size = _folder_size(p)
    if votes is not None:
        check_aligned(votes, ds.splits, label)
        ds = replace(ds, votes=votes.votes)
    t3 = time.perf_counter()
    splits, per_class, mean, std = summarize_dataset(ds)
    stats_s = time.perf_counter() - t3
    return DataSummary(
        path=label,
        format=kind,
        size_bytes=size,
        rows=len(ds),
        parse_seconds=parse_s,
        stats_seconds=stats_s,
        splits=splits,
        per_class=per_class,
        mean=mean,
        std=std,
        ferplus=_ferplus_summary(ds) if votes is not None else None,
        ferplus_path=str(ferplus) if ferplus is not None else None,
    )
