"""Microsoft's FER+ relabelling (``fer2013new.csv``): ten annotators' votes for every FER2013 face.

The file is read as Microsoft ships it: ``Usage,Image name,`` then ten vote columns
(:data:`VOTE_COLUMNS`), 35,887 rows, one per row of Kaggle's ``fer2013.csv`` and in the same
order; the faces FER+ found not to be faces have an empty ``Image name``. The two files are
joined by position: the same number of rows and the same ``Usage`` on each row, so a pair
cut to some splits or rows (as long as both were cut alike) works too.

Two label views are made from the votes:

- :func:`majority_labels`, the FER+ majority protocol of its authors (``ferplus.py``,
  ``majority`` mode): votes given by a single annotator are dropped as outliers, and a face
  has a label when one column holds **more than half** of the remaining votes. A face whose
  majority is ``unknown`` or ``NF`` (not a face), or that has no such majority, is left out.
  Ties cannot occur: two columns cannot each hold more than half.
- :func:`vote_distribution`, the training target of the paper's best mode (soft-label
  cross-entropy): the remaining votes over the eight emotions, normalised; a face whose
  largest column is ``unknown`` or ``NF`` is left out.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import InputError
from ..labels import FERPLUS_CLASSES
from .dataset import SPLIT_DTYPE, USAGE_TO_SPLIT

VOTE_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                 "contempt", "unknown", "NF")
# Column of the votes -> index in FERPLUS_CLASSES (FER2013's order, then contempt); unknown / NF: none.
_CLASS_OF_COLUMN: tuple[int, ...] = tuple(
    FERPLUS_CLASSES.index(c) for c in ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
)
EMOTION_COLUMNS = len(_CLASS_OF_COLUMN)  # the first 8; then unknown, NF
MAX_VOTES = 255  # a vote count beyond this is not FER+ (its faces have ten annotators)
FERPLUS_ROWS = 35_887  # rows of Microsoft's file, as of fer2013.csv
EXCLUDED = -1  # label of a face the protocol leaves out

PathLike = Union[str, "Path"]


@dataclass(frozen=True)
class FerPlusVotes:
    """The votes of a ``fer2013new.csv``: ``votes`` (N, 10) in :data:`VOTE_COLUMNS` order, the split of
    each row, and whether the row names an image (False: FER+ found no face)."""

    votes: np.ndarray  # (N, 10) int16
    splits: np.ndarray  # (N,) "train" / "validation" / "test"
    has_image: np.ndarray  # (N,) bool
    source: str

    def __len__(self) -> int:
        return len(self.votes)


def read_ferplus_csv(path: PathLike) -> FerPlusVotes:
    """Parse Microsoft's ``fer2013new.csv``; InputError with the file and line for anything else."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file (the FER+ labels: fer2013new.csv from Microsoft's FERPlus repository)")
    if not p.is_file():
        raise InputError(f"{p}: not a file (the FER+ labels: fer2013new.csv)")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\0" in raw[:4096]:
        raise InputError(f"{p}: not a CSV text file (binary data); expected FER+'s fer2013new.csv")
    text = raw.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{p}: the file is empty; expected FER+'s fer2013new.csv")
    cols = [c.strip().lower() for c in header]
    want = ["usage", "image name"] + [c.lower() for c in VOTE_COLUMNS]
    if cols != want:
        shown = ",".join(h.strip() for h in header)[:80]
        raise InputError(f"{p} line 1: header {shown!r} is not FER+'s "
                         f"'Usage,Image name,{','.join(VOTE_COLUMNS)}' (is this fer2013new.csv?)")
    votes: list[list[int]] = []
    splits: list[str] = []
    has_image: list[bool] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(want):
            raise InputError(f"{p} line {line}: {len(row)} fields, expected {len(want)}")
        usage = row[0].strip()
        if usage not in USAGE_TO_SPLIT:
            raise InputError(f"{p} line {line}: Usage {usage[:24]!r} is not one of {', '.join(USAGE_TO_SPLIT)}")
        try:
            v = [int(c) for c in row[2:]]
        except ValueError:
            raise InputError(f"{p} line {line}: the vote counts must be whole numbers") from None
        if min(v) < 0 or max(v) > MAX_VOTES:
            raise InputError(f"{p} line {line}: a vote count outside 0..{MAX_VOTES}")
        votes.append(v)
        splits.append(USAGE_TO_SPLIT[usage])
        has_image.append(bool(row[1].strip()))
    if not votes:
        raise InputError(f"{p}: no rows after the header")
    return FerPlusVotes(np.asarray(votes, dtype=np.int16), np.asarray(splits, dtype=SPLIT_DTYPE),
                        np.asarray(has_image, dtype=bool), str(p))


def check_aligned(votes: FerPlusVotes, splits: np.ndarray, source: str) -> None:
    """The FER+ rows must be the FER2013 rows, one for one: same count, same split on every row."""
    if len(votes) != len(splits):
        raise InputError(
            f"{votes.source} has {len(votes):,} rows and {source} {len(splits):,}: the FER+ file does not line up "
            f"with the FER2013 file row for row (use the fer2013new.csv that belongs to this fer2013.csv, "
            f"cut to the same rows)")
    bad = np.flatnonzero(votes.splits != splits)
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"{votes.source} row {i + 2} is {votes.splits[i]} but row {i + 2} of {source} is {splits[i]}: the two "
            f"files do not line up ({len(bad):,} rows differ)")


def _without_outliers(votes: np.ndarray) -> np.ndarray:
    """Votes with every count of one set to zero: a single annotator's vote is an outlier."""
    v = votes.astype(np.int32)
    return np.where(v <= 1, 0, v)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """(N,) int64 FER+ majority label in FERPLUS_CLASSES order, or :data:`EXCLUDED` (see the module doc)."""
    v = _without_outliers(votes)
    total = v.sum(1)
    top = v.argmax(1)
    majority = v[np.arange(len(v)), top] * 2 > total
    emotion = top < EMOTION_COLUMNS
    mapped = np.asarray(_CLASS_OF_COLUMN + (EXCLUDED, EXCLUDED), dtype=np.int64)[top]
    return np.where(majority & emotion & (total > 0), mapped, EXCLUDED)


def vote_distribution(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dist, usable)``: (N, 8) float32 vote shares over FERPLUS_CLASSES, and which faces have one."""
    v = _without_outliers(votes)
    emotions = v[:, :EMOTION_COLUMNS].astype(np.float32)
    usable = (emotions.sum(1) > 0) & (v.argmax(1) < EMOTION_COLUMNS)
    dist = np.zeros((len(v), len(FERPLUS_CLASSES)), dtype=np.float32)
    dist[:, list(_CLASS_OF_COLUMN)] = emotions
    s = dist.sum(1, keepdims=True)
    dist = np.divide(dist, s, out=np.zeros_like(dist), where=s > 0)
    return dist, usable
