"""read_fer_csv / load_dataset on the CSV layouts users have, and their failure modes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_edge.data import (
    SPLITS,
    USAGE_TO_SPLIT,
    FerDataset,
    NormStats,
    compute_stats,
    load_dataset,
    read_fer_csv,
)
from fer_edge.errors import InputError
from fer_edge.cli.exitcodes import EXIT_INPUT, for_error
from native_reference import mean_std_reference
from synthetic import make_synthetic


def assert_matches(ds: FerDataset, data, path) -> None:
    assert ds.images.dtype == np.uint8 and ds.images.shape == (len(data), 48, 48) and ds.images.flags.c_contiguous
    np.testing.assert_array_equal(ds.images, data.images)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, data.labels)
    assert ds.splits.tolist() == [USAGE_TO_SPLIT[u] for u in data.usages]
    assert ds.source == str(path)


@pytest.mark.parametrize("layout", ["kaggle", "icml", "capitalized"])
@pytest.mark.parametrize("fmt", [{}, {"newline": "\r\n"}, {"quote_pixels": True}, {"trailing_newline": False},
                                 {"blank_lines": True}, {"bom": True}])
def test_layouts(make_fer_csv, layout, fmt):
    path, data = make_fer_csv(layout=layout, **fmt)
    assert_matches(read_fer_csv(path), data, path)


def test_without_usage_everything_is_train(make_fer_csv):
    path, data = make_fer_csv(layout="no_usage")
    ds = read_fer_csv(path)
    np.testing.assert_array_equal(ds.images, data.images)
    assert set(ds.splits.tolist()) == {"train"} and ds.split_names() == ["train"]


def test_subsets_and_split_names(fer_csv, fer_data):
    ds = read_fer_csv(fer_csv)
    assert ds.split_names() == list(SPLITS)
    assert len(ds) == len(fer_data)
    for usage, split in USAGE_TO_SPLIT.items():
        mask = np.array([u == usage for u in fer_data.usages])
        for key in (usage, split):
            sub = ds.subset(key)
            np.testing.assert_array_equal(sub.images, fer_data.images[mask])
            np.testing.assert_array_equal(sub.labels, fer_data.labels[mask])
            assert set(sub.splits.tolist()) == {split}
    with pytest.raises(InputError, match="unknown split 'dev'"):
        ds.subset("dev")


def test_norm_stats_train_and_per_split(fer_csv, fer_data):
    ds = read_fer_csv(fer_csv)
    train_ref = mean_std_reference(fer_data.images[: 24])
    stats = ds.norm_stats("train")
    assert set(stats) == set(SPLITS)
    assert all(s == NormStats(*train_ref, scope="train") for s in stats.values())
    per = ds.norm_stats("per_split")
    assert per["validation"] == NormStats(*mean_std_reference(fer_data.images[24:32]), scope="per_split:validation")
    assert per["test"].scope == "per_split:test"
    assert compute_stats(ds.images) == NormStats(*mean_std_reference(ds.images), scope="train")
    with pytest.raises(InputError, match="unknown normalisation mode"):
        ds.norm_stats("global")


def test_norm_stats_train_needs_train_rows(make_fer_csv):
    path, _ = make_fer_csv(data=make_synthetic({"PublicTest": 3}))
    with pytest.raises(InputError, match="no training rows"):
        read_fer_csv(path).norm_stats("train")


def write_rows(tmp_path, header: str, rows: list[str], name="bad.csv"):
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


GOOD = " ".join(["17"] * 2304)


@pytest.mark.parametrize(
    "row,message",
    [
        (f"7,{GOOD},Training", "line 3: emotion 7 is not a class label 0..6"),
        (f"-1,{GOOD},Training", "line 3: emotion -1 is not a class label 0..6"),
        ("3,-1 " + " ".join(["17"] * 2303) + ",Training", "line 3: pixels value 1 is -1, outside 0..255"),
        ("3," + " ".join(["17"] * 2303) + ",Training", "line 3: pixels has 2303 values, expected 2304"),
        (f"3,{GOOD} 1,Training", "line 3: pixels has 2305 values, expected 2304"),
        ("3,300 " + " ".join(["17"] * 2303) + ",Training", "line 3: pixels value 1 is 300, outside 0..255"),
        ("3,a " + " ".join(["17"] * 2303) + ",Training", "line 3: pixels value 1 is not an integer: 'a'"),
        ("3,,Training", "line 3: pixels is empty"),
        (f"3,{GOOD},Validation", "line 3: Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
    ],
)
def test_malformed_rows_are_input_errors_naming_file_and_line(tmp_path, row, message):
    path = write_rows(tmp_path, "emotion,pixels,Usage", [f"0,{GOOD},Training", row, f"1,{GOOD},PublicTest"])
    with pytest.raises(InputError) as info:
        read_fer_csv(path)
    assert str(info.value) == f"{path} {message}"
    assert isinstance(info.value, ValueError) and for_error(info.value) == EXIT_INPUT


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"emotion,pixels,Usage\n", "no data rows"),
        (b"emotion,pixels,Usage\r\n\r\n", "no data rows"),
        (b"emotion,Usage\n0,Training\n", "line 1: expected a header with 'emotion' and 'pixels'.*'pixels' missing"),
        (b"pixels\n1 2 3\n", "'emotion' missing"),
        (("0," + GOOD + ",Training\n").encode(), "line 1: a data row .*not a header: add the header line"),
        (b"emotion,pixels,pixels\n", "2 'pixels' columns"),
    ],
)
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_fer_csv(p)


@pytest.mark.parametrize(
    "content",
    [
        ("0," + GOOD + ",Training\n").encode(),  # no header: the first line is a 4,600-character row
        ("x," + GOOD + ",y\n0," + GOOD + ",Training\n").encode(),  # a header that is not one
        ("\u00e9motion\x07," + "p" * 500 + "\n").encode(),  # long and unprintable cells
        bytes(range(256)) * 10,  # binary
        (Path(__file__).resolve().parent.parent / "fer_edge" / "assets" / "sample_face.jpg").read_bytes(),
    ],
    ids=["no-header", "wrong-header", "unprintable", "binary", "jpeg"],
)
def test_header_errors_quote_a_short_printable_excerpt(tmp_path, content):
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_fer_csv(p)
    msg = str(info.value)
    assert len(msg) < 300 and msg.isprintable() and "\ufffd" not in msg, msg
    if content[:1] in (b"\x00", b"\xff"):
        assert "not a CSV text file (binary data)" in msg


def test_missing_paths_and_kinds(tmp_path, fer_csv):
    with pytest.raises(InputError, match="no such file or directory"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no such file"):
        read_fer_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_fer_csv(tmp_path)
    ds = load_dataset(fer_csv)
    assert len(ds) == 40 and ds.source == str(fer_csv)


@pytest.mark.parametrize("extra", [100_000, 62])
def test_a_header_with_more_columns_than_the_parser_reads_names_the_file_and_line(tmp_path, extra):
    """100k columns were 'invalid CSV layout', with no file or line; the limit is the C++ parser's."""
    from fer_edge import _native
    from fer_edge.data.csv_reader import MAX_COLUMNS, read_fer_csv

    path = tmp_path / "wide.csv"
    ncols = 2 + extra
    path.write_text("emotion,pixels" + "".join(f",c{i}" for i in range(extra)) + "\n"
                    + "3," + " ".join(["128"] * 2304) + ",1" * extra + "\n")
    if ncols <= MAX_COLUMNS:  # at the limit: read
        assert len(read_fer_csv(path)) == 1
        return
    with pytest.raises(InputError, match=rf"^{path} line 1: the header has {ncols:,} columns; .* at most {MAX_COLUMNS}$"):
        read_fer_csv(path)
    with pytest.raises(ValueError, match="invalid CSV layout"):  # the native limit is this one
        _native.parse_fer_csv(b"", ncols=MAX_COLUMNS + 1, pixels_col=1)
