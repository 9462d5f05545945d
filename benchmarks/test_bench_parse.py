"""Group 1: a FER2013 CSV -> uint8 faces and labels, mean/std, normalised float32 faces.

Every path below does the same work on the same file and must give the same arrays (each
result is checked against the C++ one, outside the timing):

``seed-style`` (baseline)
    the reference design's loader as it was written: ``pandas.read_csv``,
    ``df.pixels.apply(lambda s: np.array(s.split(), dtype=np.uint8))``, mean and std over a
    Python list of every pixel, one normalised array per face. It needs minutes for the full
    file, so it runs once on the first ``FER_BENCH_SEED_ROWS`` rows (default 3,000); the
    comparison is per row (its cost is linear in rows: one Python call per row and per pixel).
``pandas + numpy``
    ``pandas.read_csv(usecols=["pixels"])``, every pixels string joined and parsed by a
    single ``np.fromstring(sep=" ")``.
``plain numpy``
    the same without pandas: one ``bytes.split`` per line, one ``np.fromstring``. Both numpy
    paths take mean/std from a 256-bin histogram and normalise through a 256-entry lookup
    table, and both validate far less than the C++ parser (only the total count is checked).
``C++ extension``
    the package's path: ``fer_edge.data.read_fer_csv`` (strict C++ parser, GIL released, all
    cores), ``_native.mean_std`` (exact) and ``_native.normalize``.
``C++ from bytes``
    the same on bytes already in memory (no file read): the parser's own cost.
``raw read`` (floor)
    ``Path.read_bytes()`` of the file: no parser can beat reading its input.

Targets set for the C++ core: at least 100x faster than seed-style, within 2x of the raw read.

The file: the real FER2013 CSV when one is found (``FER_BENCH_CSV``, or ``../data/fer2013.csv``
next to the repository), else a synthetic one of the same layout and size (35,887 rows,
random pixels) generated once and cached in ``$TMPDIR/fer-edge-bench``.
``FER_BENCH_ROWS`` sets the rows (smoke mode: 2,000).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from bench_settings import FULL_FER2013_ROWS, BenchSettings

GROUP = "1 parse"
SIDE = 48


@dataclass
class Parsed:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int
    mean: float
    std: float
    normalized: np.ndarray  # (N, 1, 48, 48) float32


@dataclass
class CsvInput:
    path: Path
    rows: int
    description: str  # for the group title, e.g. "32,298 rows, real FER2013 file"


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip()) - 1


def _head(src: Path, dst: Path, rows: int) -> Path:
    """The header and the first ``rows`` rows of ``src``."""
    if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
        tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            for i, line in enumerate(fin):
                if i > rows:
                    break
                fout.write(line)
        tmp.replace(dst)
    return dst


@pytest.fixture(scope="session")
def fer_csv(bench_settings: BenchSettings, bench_cache: Path) -> CsvInput:
    s = bench_settings
    if s.csv is not None:
        total = _count_rows(s.csv)
        if s.rows is None or s.rows >= total:
            return CsvInput(s.csv, total, f"{total:,} rows, real FER2013 file")
        head = _head(s.csv, bench_cache / f"{s.csv.stem}-first-{s.rows}.csv", s.rows)
        return CsvInput(head, s.rows, f"first {s.rows:,} rows of the real FER2013 file")
    from synthetic import write_large_csv  # tests/synthetic.py, on the path via benchmarks/conftest.py

    rows = s.rows or FULL_FER2013_ROWS
    path = bench_cache / f"synthetic-fer2013-{rows}.csv"
    if not path.is_file():  # about a minute at full size, then reused by every run
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        write_large_csv(tmp, rows, seed=2013)
        tmp.replace(path)
    return CsvInput(path, rows, f"{rows:,} rows, synthetic: random pixels, no real FER2013 CSV found")


@pytest.fixture(scope="session")
def seed_csv(fer_csv: CsvInput, bench_settings: BenchSettings, bench_cache: Path) -> CsvInput:
    """The rows the seed-style loader is timed on (the first FER_BENCH_SEED_ROWS)."""
    n = min(fer_csv.rows, bench_settings.seed_rows)
    if n >= fer_csv.rows:
        return fer_csv
    head = _head(fer_csv.path, bench_cache / f"{fer_csv.path.stem}-first-{n}.csv", n)
    return CsvInput(head, n, f"first {n:,} rows")


# ---------------------------------------------------------------------------- the paths
def seed_style_stats(path: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The seed pipeline up to what the issue-2 target names: pandas + str.split + Python-list mean/std."""
    import pandas as pd

    df = pd.read_csv(path)
    faces = df["pixels"].apply(lambda s: np.array(s.split(), dtype=np.uint8))
    pixels = [int(v) for face in faces for v in face]
    mean = sum(pixels) / len(pixels)
    std = (sum((v - mean) ** 2 for v in pixels) / len(pixels)) ** 0.5
    return np.stack(faces.tolist()).reshape(-1, SIDE, SIDE), df["emotion"].to_numpy(), mean, std


def seed_style(path: Path) -> Parsed:
    """The reference design's loader (pandas, a lambda per row, statistics over Python lists)."""
    images, labels, mean, std = seed_style_stats(path)
    normalized = np.array([((f - mean) / std).reshape(1, SIDE, SIDE) for f in images], dtype=np.float32)
    return Parsed(images, labels, mean, std, normalized)


def cpp_stats(path: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The package's parse + exact statistics, without normalisation (the issue-2 target)."""
    from fer_edge import _native
    from fer_edge.data import read_fer_csv

    ds = read_fer_csv(path)
    mean, std = _native.mean_std(ds.images)
    return ds.images, ds.labels, mean, std


def _stats_and_lut(images: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Exact mean/std from a 256-bin histogram, and the float32 lookup table that normalises."""
    hist = np.bincount(images.ravel(), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64)
    n = hist.sum()
    mean = float((hist * values).sum() / n)
    std = float(np.sqrt((hist * (values - mean) ** 2).sum() / n))
    return mean, std, ((values - mean) / std).astype(np.float32)


def _fromstring(text, n: int, path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        flat = np.fromstring(text, dtype=np.int16, sep=" ")
    if flat.size != n * SIDE * SIDE:
        raise ValueError(f"{path}: {flat.size} pixel values for {n} rows")
    return flat.astype(np.uint8).reshape(n, SIDE, SIDE)


def pandas_numpy(path: Path) -> Parsed:
    """pandas reads the columns, numpy parses all pixels strings in one call."""
    import pandas as pd

    df = pd.read_csv(path, usecols=["emotion", "pixels"], dtype={"pixels": str}, engine="c")
    images = _fromstring(" ".join(df["pixels"].tolist()), len(df), path)
    mean, std, lut = _stats_and_lut(images)
    return Parsed(images, df["emotion"].to_numpy(), mean, std, lut[images][:, None])


def plain_numpy(path: Path) -> Parsed:
    """The same without pandas: split lines and fields in Python, parse pixels in one numpy call."""
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    cols = [c.strip().lower() for c in header.decode("utf-8").strip().split(",")]
    ie, ip = cols.index("emotion"), cols.index("pixels")
    fields = [line.split(b",") for line in body.splitlines() if line.strip()]
    images = _fromstring(b" ".join(f[ip] for f in fields), len(fields), path)
    mean, std, lut = _stats_and_lut(images)
    return Parsed(images, np.array([int(f[ie]) for f in fields], dtype=np.int64), mean, std, lut[images][:, None])


def cpp_extension(path: Path) -> Parsed:
    """The package's path: C++ parser, exact C++ statistics, C++ normalisation."""
    from fer_edge import _native

    images, labels, mean, std = cpp_stats(path)
    return Parsed(images, labels, mean, std, _native.normalize(images, mean, std))


def cpp_from_bytes(data: bytes) -> Parsed:
    from fer_edge import _native
    from fer_edge.data import parse_fer_bytes

    ds = parse_fer_bytes(data, "<bench>")
    mean, std = _native.mean_std(ds.images)
    return Parsed(ds.images, ds.labels, mean, std, _native.normalize(ds.images, mean, std))


def raw_read(path: Path) -> bytes:
    return path.read_bytes()


CASES: dict[str, tuple[str, str]] = {
    "seed-style": ("seed-style (pandas apply + Python lists)", "baseline"),
    "pandas-numpy": ("pandas + numpy (read_csv + fromstring)", ""),
    "plain-numpy": ("plain numpy (bytes.split + fromstring)", ""),
    "cpp": ("C++ (read_fer_csv + mean_std + normalize)", ""),
    "cpp-from-bytes": ("C++ from bytes in memory (no file read)", ""),
    "raw-read": ("raw read (Path.read_bytes)", "floor"),
}


@pytest.fixture(scope="session")
def expected(fer_csv: CsvInput) -> Parsed:
    """The reference every path must reproduce, computed once untimed: the plain-numpy parse and
    exact histogram statistics, independent of the C++ code the cpp cases time."""
    return plain_numpy(fer_csv.path)


def _expected_stats(want: Parsed, n: int) -> tuple[float, float]:
    """Mean/std of the first ``n`` reference rows (a seed-style path is timed on fewer rows)."""
    return (want.mean, want.std) if n == len(want.images) else _stats_and_lut(np.ascontiguousarray(want.images[:n]))[:2]


def _check(got: Parsed, want: Parsed, label: str) -> None:
    """Same faces, labels and statistics as the reference (on the rows ``got`` covers)."""
    n = len(got.images)
    assert got.images.shape == (n, SIDE, SIDE) and n <= len(want.images), f"{label}: shape {got.images.shape}"
    assert np.array_equal(got.images, want.images[:n]), f"{label}: faces differ from the reference's"
    assert np.array_equal(got.labels, want.labels[:n]), f"{label}: labels differ from the reference's"
    mean, std = _expected_stats(want, n)
    assert got.mean == pytest.approx(mean, rel=1e-9) and got.std == pytest.approx(std, rel=1e-9), (
        f"{label}: mean/std {got.mean}/{got.std} != {mean}/{std}"
    )
    assert got.normalized.dtype == np.float32 and got.normalized.shape == (n, 1, SIDE, SIDE)
    for i in range(0, n, 4096):  # in chunks: the full file is 330 MB of float32 per copy
        ref = (want.images[i : min(n, i + 4096), None].astype(np.float64) - mean) / std
        diff = float(np.abs(got.normalized[i : i + 4096] - ref).max())
        assert diff <= 1e-5, f"{label}: normalised faces differ by {diff} (rows {i}..)"


@pytest.mark.parametrize("case", list(CASES))
def test_parse(benchmark, describe: Callable, bench_settings: BenchSettings, fer_csv: CsvInput, seed_csv: CsvInput,
               expected: Parsed, case: str) -> None:
    label, role = CASES[case]
    if case in ("seed-style", "pandas-numpy"):
        pytest.importorskip("pandas", reason="the seed-style and pandas paths need pandas (the [bench] extra)")
    title = f"{GROUP}: FER2013 CSV -> normalised float32 faces ({fer_csv.description})"
    size = fer_csv.path.stat().st_size
    common = dict(role=role, item="row", family="parse", csv_bytes=size, rows_in_file=fer_csv.rows)
    if case == "seed-style":
        describe(title, label, items=seed_csv.rows, note=f"1 round on {seed_csv.description}" if seed_csv is not fer_csv else "1 round",
                 **common)
        _check(benchmark.pedantic(seed_style, args=(seed_csv.path,), rounds=1, iterations=1), expected, label)
        return
    describe(title, label, items=fer_csv.rows, **common)
    if case == "raw-read":
        assert len(benchmark(raw_read, fer_csv.path)) == size
    elif case == "cpp-from-bytes":
        _check(benchmark(cpp_from_bytes, fer_csv.path.read_bytes()), expected, label)
    else:
        fn = {"pandas-numpy": pandas_numpy, "plain-numpy": plain_numpy, "cpp": cpp_extension}[case]
        _check(benchmark(fn, fer_csv.path), expected, label)


STATS_CASES: dict[str, tuple[str, str]] = {
    "seed-style": ("seed-style (pandas + str.split + Python-list mean/std)", "baseline"),
    "cpp": ("C++ (read_fer_csv + mean_std)", ""),
    "raw-read": ("raw read (Path.read_bytes)", "floor"),
}


@pytest.mark.parametrize("case", list(STATS_CASES))
def test_parse_stats(benchmark, describe: Callable, fer_csv: CsvInput, seed_csv: CsvInput, expected: Parsed,
                     case: str) -> None:
    """The parse target: parse + mean/std at least 100x the seed pipeline, within 2x of reading the bytes."""
    label, role = STATS_CASES[case]
    if case == "seed-style":
        pytest.importorskip("pandas", reason="the seed-style path needs pandas (the [bench] extra)")
    title = f"{GROUP}: FER2013 CSV -> uint8 faces + mean/std ({fer_csv.description})"
    common = dict(role=role, item="row", family="parse", csv_bytes=fer_csv.path.stat().st_size, rows_in_file=fer_csv.rows)
    if case == "raw-read":
        describe(title, label, items=fer_csv.rows, **common)
        assert len(benchmark(raw_read, fer_csv.path)) == fer_csv.path.stat().st_size
        return
    if case == "seed-style":
        describe(title, label, items=seed_csv.rows,
                 note=f"1 round on {seed_csv.description}" if seed_csv is not fer_csv else "1 round", **common)
        images, labels, mean, std = benchmark.pedantic(seed_style_stats, args=(seed_csv.path,), rounds=1, iterations=1)
    else:
        describe(title, label, items=fer_csv.rows, targets={"speedup": 100.0, "vs_floor": 2.0}, **common)
        images, labels, mean, std = benchmark(cpp_stats, fer_csv.path)
    n = len(images)
    assert np.array_equal(images, expected.images[:n]) and np.array_equal(labels, expected.labels[:n]), label
    want_mean, want_std = _expected_stats(expected, n)
    assert mean == pytest.approx(want_mean, rel=1e-9) and std == pytest.approx(want_std, rel=1e-9), label
