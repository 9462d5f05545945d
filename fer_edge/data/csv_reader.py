"""FER2013 CSV files in the layouts people actually have.

* Kaggle's ``fer2013.csv``: ``emotion,pixels,Usage``
* the ICML 2013 variant ``icml_face_data.csv``: ``emotion, Usage, pixels`` (blanks in the header)
* capitalised headers (``Emotion,Pixels,Usage``), a UTF-8 byte-order mark, CRLF line ends,
  quoted or unquoted fields, and files without a Usage column (then every row is "train").

The header is read here; the rows are parsed by the C++ kernel (``_native.parse_fer_csv``),
which releases the GIL and reports the first malformed row with its line number.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from ..errors import InputError
from ..labels import NUM_CLASSES
from .dataset import SPLIT_DTYPE, USAGE_TO_SPLIT, FerDataset

PathLike = Union[str, "os.PathLike[str]"]
USAGES: tuple[str, ...] = tuple(USAGE_TO_SPLIT)
_SPLIT_OF_CODE = np.array([USAGE_TO_SPLIT[u] for u in USAGES], dtype=SPLIT_DTYPE)
_BOM = b"\xef\xbb\xbf"
#: The most columns a row may have: the C++ parser's fixed field table (``kMaxCols`` in csrc/parse.cpp).
MAX_COLUMNS = 64


@dataclass(frozen=True)
class CsvHeader:
    columns: tuple[str, ...]  # as written, trimmed of blanks and quotes
    label_col: int
    pixels_col: int
    usage_col: int  # -1: no Usage column
    data_start: int  # byte offset of line 2


def parse_header(data, name: str) -> CsvHeader:
    """Find the emotion / pixels / Usage columns in the first line (case and blanks ignored).

    ``data`` is the file's content: bytes or an mmap (only the first line is copied).
    """
    nl = data.find(b"\n")
    first = bytes(data[: nl if nl >= 0 else len(data)])
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    if not first.strip():
        if len(data) < (1 << 20) and not bytes(data).strip():
            raise InputError(f"{name}: the file is empty")
        raise InputError(f"{name} line 1: blank, expected a header with 'emotion' and 'pixels' columns")
    if _looks_binary(first[:4096]):
        raise InputError(f"{name}: not a CSV text file (binary data); expected FER2013 CSV with an "
                         "'emotion,pixels,Usage' header")
    text = first.rstrip(b"\r").decode("utf-8", errors="replace")
    columns = tuple(c.strip().strip('"').strip() for c in text.split(","))
    lowered = [c.lower() for c in columns]
    where: dict[str, int] = {}
    for wanted in ("emotion", "pixels", "usage"):
        hits = [i for i, c in enumerate(lowered) if c == wanted]
        if len(hits) > 1:
            raise InputError(f"{name} line 1: the header has {len(hits)} {wanted!r} columns")
        if hits:
            where[wanted] = hits[0]
    shown = ", ".join(_excerpt(c) for c in columns[:4]) + (", ..." if len(columns) > 4 else "")
    if "pixels" not in where and "emotion" not in where and columns[0].isdigit() and any(
            len(c.split()) > 100 for c in columns):
        raise InputError(f"{name} line 1: a data row ({_excerpt(columns[0])}, {len(columns)} columns), not a "
                         "header: add the header line 'emotion,pixels,Usage' (or 'emotion,pixels') at the top")
    if len(columns) > MAX_COLUMNS and "pixels" in where and "emotion" in where:
        raise InputError(f"{name} line 1: the header has {len(columns):,} columns; a FER2013 CSV has 2 or 3 "
                         f"(emotion, pixels, Usage) and fer-edge reads at most {MAX_COLUMNS}")
    if "pixels" not in where or "emotion" not in where:
        missing = " and ".join(repr(w) for w in ("emotion", "pixels") if w not in where)
        raise InputError(
            f"{name} line 1: expected a header with 'emotion' and 'pixels' columns (and optionally "
            f"'Usage'), found {shown}; {missing} missing"
        )
    return CsvHeader(
        columns=columns,
        label_col=where["emotion"],
        pixels_col=where["pixels"],
        usage_col=where.get("usage", -1),
        data_start=nl + 1 if nl >= 0 else len(data),
    )


def _looks_binary(head: bytes) -> bool:
    """NUL bytes or mostly non-text bytes: an image, an archive, a model, not a CSV."""
    if b"\0" in head:
        return True
    if not head:
        return False
    text = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 0x80 for b in head)
    return text / len(head) < 0.9 or not _valid_utf8(head)


def _valid_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the excerpt
    return True


def _excerpt(value: str, limit: int = 24) -> str:
    """A short, printable quote of a header cell for messages (a pixels row has 9,000 characters)."""
    clean = "".join(c if c.isprintable() else "?" for c in value)
    return repr(clean if len(clean) <= limit else clean[:limit] + "...")


@contextlib.contextmanager
def file_content(path: Path) -> Iterator[Union[bytes, mmap.mmap]]:
    """The file's bytes, memory-mapped when possible (no copy: the parser reads the page
    cache directly), else read. InputError for the usual ways this fails."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            mapped = None
            if size > 0 and stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                try:
                    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    mapped = None
            if mapped is None:
                content: Union[bytes, mmap.mmap] = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if mapped is None:
        yield content
        return
    try:
        yield mapped
    finally:
        mapped.close()


def parse_fer_bytes(data, name: str, threads: int = 0) -> FerDataset:
    """Parse a FER2013 CSV held in memory (bytes, bytearray, memoryview or mmap); ``name`` is
    used in messages and as the source."""
    from .. import _native

    header = parse_header(data, name)
    try:
        images, labels, usage = _native.parse_fer_csv(
            data,
            ncols=len(header.columns),
            pixels_col=header.pixels_col,
            label_col=header.label_col,
            usage_col=header.usage_col,
            usages=USAGES,
            num_classes=NUM_CLASSES,
            start=header.data_start,
            first_line=2,
            name=name,
            threads=threads,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if len(images) == 0:
        raise InputError(f"{name}: no data rows after the header")
    if header.usage_col < 0:
        splits = np.full(len(images), "train", dtype=_SPLIT_OF_CODE.dtype)
    else:
        splits = _SPLIT_OF_CODE[usage]
    return FerDataset(images=images, labels=labels, splits=splits, source=name)


def read_fer_csv(path: PathLike, threads: int = 0, name: Optional[str] = None) -> FerDataset:
    """Read a FER2013 CSV file: images (N, 48, 48) uint8, labels int64, the split of each row.

    Malformed files raise :class:`fer_edge.errors.InputError` naming file, line and problem,
    e.g. ``fer2013.csv line 17: pixels has 2303 values, expected 2304``.
    """
    with file_content(Path(path)) as data:
        return parse_fer_bytes(data, name if name is not None else str(path), threads=threads)
