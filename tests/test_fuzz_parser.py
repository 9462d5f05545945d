"""Fuzzing the C++ parser: random and mutated inputs give a clean ValueError or the reference's result.

Every input goes through both ``_native.parse_fer_csv`` and the numpy reference: they must
both reject it with the same message, or both accept it with the same arrays. Inputs are
passed as exact-size numpy buffers too, so an AddressSanitizer build (docs/FUZZING.md) sees
any read past the end. FER_FUZZ_EXAMPLES raises the number of examples per test.
"""
from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_edge import _native
from native_reference import parse_fer_csv_reference, parse_pixels_reference


EXAMPLES = int(os.environ.get("FER_FUZZ_EXAMPLES", "120"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

LAYOUTS = [
    dict(ncols=3, pixels_col=1, label_col=0, usage_col=2),
    dict(ncols=3, pixels_col=2, label_col=0, usage_col=1),
    dict(ncols=2, pixels_col=1, label_col=0),
    dict(ncols=1, pixels_col=0),
]


def exact_buffer(data: bytes) -> memoryview:
    """A heap buffer of exactly len(data) bytes (bytes objects carry a trailing NUL)."""
    return memoryview(np.frombuffer(data, np.uint8).copy()) if data else memoryview(b"")


def agree(data: bytes, **kw) -> None:
    outcomes = []
    for source in (data, exact_buffer(data)):
        try:
            outcomes.append(("ok", _native.parse_fer_csv(source, **kw)))
        except ValueError as e:
            outcomes.append(("error", str(e)))
    try:
        ref = ("ok", parse_fer_csv_reference(data, **kw))
    except ValueError as e:
        ref = ("error", str(e))
    for kind, value in outcomes:
        assert kind == ref[0], (kind, value if kind == "error" else None, ref[1] if ref[0] == "error" else None)
        if kind == "error":
            assert value == ref[1]
        else:
            for a, b in zip(value, ref[1]):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a, b)


def valid_csv(rng: np.random.Generator, rows: int, side: int, layout: dict) -> bytes:
    cols = [None] * layout["ncols"]
    cols[layout["pixels_col"]] = "pixels"
    if layout.get("label_col", -1) >= 0:
        cols[layout["label_col"]] = "emotion"
    if layout.get("usage_col", -1) >= 0:
        cols[layout["usage_col"]] = "Usage"
    lines = [",".join(cols)]
    for _ in range(rows):
        vals = {
            "pixels": " ".join(str(v) for v in rng.integers(0, 256, side * side)),
            "emotion": str(rng.integers(0, 7)),
            "Usage": ("Training", "PublicTest", "PrivateTest")[rng.integers(0, 3)],
        }
        lines.append(",".join(vals[c] for c in cols))
    return ("\r\n" if rng.integers(0, 2) else "\n").join(lines).encode() + b"\n"


NASTY = [b"", b"\x00", b'"', b'""', b",", b"\n", b"\r", b"\r\n", b" ", b"\t", b"256", b"-1", b"+1", b"1e3",
         b"9" * 30, b"0" * 40 + b"7", b"\xff\xfe", b"nan", b"  ,  ", b'"\n"', b"\x0b", b"Training", b"7"]


@st.composite
def mutated(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layout = draw(st.sampled_from(LAYOUTS))
    side = draw(st.sampled_from([1, 2, 4, 48]))
    data = bytearray(valid_csv(rng, draw(st.integers(0, 4)), side, layout))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "insert", "delete", "replace", "duplicate", "nasty"]))
        pos = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "duplicate":
            end = min(len(data), pos + draw(st.integers(1, 200)))
            data[end:end] = data[pos:end]
        else:
            data[pos:pos] = draw(st.sampled_from(NASTY))
    header_end = data.find(b"\n")
    start = header_end + 1 if header_end >= 0 and draw(st.booleans()) else draw(st.integers(0, len(data)))
    return bytes(data), dict(layout, side=side, start=start, threads=draw(st.integers(1, 3)))


@SETTINGS
@given(mutated())
def test_mutated_csv(pixels_path, case):
    data, kw = case
    agree(data, **kw)


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from(LAYOUTS), st.sampled_from([1, 2, 3, 48]))
def test_random_bytes(pixels_path, data, layout, side):
    agree(data, side=side, **layout)


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(NASTY), st.binary(max_size=4), st.integers(0, 300).map(lambda v: str(v).encode())), max_size=60))
def test_token_soup_pixels(pixels_path, parts):
    data = b" ".join(parts)
    for side in (1, 2, 3):
        try:
            got = _native.parse_pixels(exact_buffer(data), side=side)
        except ValueError as e:
            try:
                parse_pixels_reference(data, side=side)
            except ValueError as r:
                assert str(e) == str(r)
            else:
                raise AssertionError(f"C++ rejected what the reference accepts: {e}")
        else:
            np.testing.assert_array_equal(got, parse_pixels_reference(data, side=side))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 2304 * 4))
def test_full_size_row_cut_anywhere(pixels_path, seed, cut):
    # The fast path reads 64-byte blocks and looks 3 bytes back: cut a 48x48 row at every
    # possible place, including inside the last block, and never read outside it.
    rng = np.random.default_rng(seed)
    row = " ".join(str(v) for v in rng.integers(0, 256, 2304)).encode()
    piece = row[: cut % (len(row) + 1)]
    agree(piece, ncols=1, pixels_col=0, start=0, first_line=1)
    agree(b"0," + piece, ncols=2, pixels_col=1, label_col=0, start=0, first_line=1)
