"""The C++ CSV / pixel parser against the numpy reference and against known content."""
from __future__ import annotations

import mmap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fer_edge import _native
from native_reference import parse_fer_csv_reference, parse_pixels_reference


KAGGLE = dict(ncols=3, pixels_col=1, label_col=0, usage_col=2)
USAGES = ("Training", "PublicTest", "PrivateTest")


def px(img: np.ndarray, sep: str = " ") -> str:
    return sep.join(str(int(v)) for v in img.ravel())


def kaggle_csv(images, labels, usages, newline="\n", quote=False) -> bytes:
    rows = ["emotion,pixels,Usage"]
    for img, lab, use in zip(images, labels, usages):
        p = px(img)
        rows.append(f'{lab},{chr(34) + p + chr(34) if quote else p},{use}')
    return (newline.join(rows) + newline).encode()


def both(data, **kw):
    """Run C++ and reference; return (cpp_result, None) or (None, message), asserting agreement."""
    cpp_err = ref_err = None
    cpp = ref = None
    try:
        cpp = _native.parse_fer_csv(data, **kw)
    except ValueError as e:
        cpp_err = str(e)
    try:
        ref = parse_fer_csv_reference(data, **kw)
    except ValueError as e:
        ref_err = str(e)
    assert cpp_err == ref_err
    if cpp_err is None:
        for a, b in zip(cpp, ref):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
        return cpp, None
    return None, cpp_err


def test_kaggle_layout_round_trip():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 48, 48), dtype=np.uint8)
    labels = np.arange(9) % 7
    usages = [USAGES[i % 3] for i in range(9)]
    data = kaggle_csv(images, labels, usages)
    (imgs, labs, codes), err = both(data, start=data.index(b"\n") + 1, **KAGGLE)
    assert err is None
    assert imgs.shape == (9, 48, 48) and imgs.dtype == np.uint8 and imgs.flags.c_contiguous
    np.testing.assert_array_equal(imgs, images)
    np.testing.assert_array_equal(labs, labels)
    assert [USAGES[c] for c in codes] == usages


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("quote", [False, True])
@pytest.mark.parametrize("trailing", [True, False])
def test_line_endings_quotes_trailing_newline(newline, quote, trailing):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)
    data = kaggle_csv(images, [1, 2, 3, 4], ["Training"] * 4, newline=newline, quote=quote)
    if not trailing:
        data = data[: -len(newline)]
    (imgs, labs, _), err = both(data, start=data.index(b"\n") + 1, **KAGGLE)
    assert err is None
    np.testing.assert_array_equal(imgs, images)
    np.testing.assert_array_equal(labs, [1, 2, 3, 4])


def test_blank_lines_are_skipped_but_counted():
    img = np.full((48, 48), 7, np.uint8)
    row = f"3,{px(img)},Training"
    bad = f"3,{px(img[:, :47])},Training"
    data = f"emotion,pixels,Usage\n\n{row}\n   \n\r\n{row}\n{bad}\n\n\n".encode()
    _, err = both(data, start=21, **KAGGLE, name="f.csv")
    # header 1, blank 2, row 3, blanks 4-5, row 6, bad row 7
    assert err == "f.csv line 7: pixels has 2256 values, expected 2304"


def test_pixels_only_input_and_str_bytearray_memoryview_mmap(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    text = "\n".join(px(i) for i in images)
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        out = _native.parse_pixels(data)
        np.testing.assert_array_equal(out, images)
        np.testing.assert_array_equal(parse_pixels_reference(data), images)
    f = tmp_path / "p.txt"
    f.write_text(text)
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        np.testing.assert_array_equal(_native.parse_pixels(m), images)


def test_single_seed_style_row_equals_numpy_split():
    rng = np.random.default_rng(3)
    s = px(rng.integers(0, 256, 2304, dtype=np.uint8))
    seed = np.array(s.split(), dtype=np.uint8).reshape(48, 48)
    np.testing.assert_array_equal(_native.parse_pixels(s)[0], seed)


def test_whitespace_variants_and_leading_zeros_are_values(pixels_path):
    vals = np.arange(2304) % 256
    toks = [f"00{v}" if i % 7 == 0 else str(v) for i, v in enumerate(vals)]
    seps = ["\t", "  ", " \x0b ", "\x0c"]
    s = "  " + "".join(t + seps[i % 4] for i, t in enumerate(toks)) + " \t"
    out = _native.parse_pixels(s)
    np.testing.assert_array_equal(out.ravel(), vals)
    np.testing.assert_array_equal(parse_pixels_reference(s).ravel(), vals)


def test_icml_layout_columns_anywhere():
    img = np.arange(2304, dtype=np.int64).reshape(48, 48) % 256
    data = f' emotion, Usage, pixels\n0,PrivateTest,"{px(img)}"\n6 ,  Training , {px(img)}\n'.encode()
    (imgs, labs, codes), err = both(data, ncols=3, label_col=0, usage_col=1, pixels_col=2, start=data.index(b"\n") + 1)
    assert err is None
    np.testing.assert_array_equal(imgs[0], img)
    np.testing.assert_array_equal(imgs[1], img)
    assert labs.tolist() == [0, 6] and codes.tolist() == [2, 0]


def test_no_label_no_usage_columns_give_minus_one():
    data = f"pixels\n{px(np.zeros((48, 48), np.uint8))}\n".encode()
    (imgs, labs, codes), _ = both(data, ncols=1, pixels_col=0, start=7)
    assert labs.tolist() == [-1] and codes.tolist() == [-1]


def test_empty_input_gives_zero_rows():
    (imgs, labs, codes), _ = both(b"emotion,pixels,Usage\n", start=21, **KAGGLE)
    assert imgs.shape == (0, 48, 48) and labs.shape == (0,) and codes.shape == (0,)


GOOD = px(np.arange(2304) % 256)
MALFORMED = [
    (f"1,{GOOD[:-4]},Training", "pixels has 2303 values, expected 2304"),
    (f"1,{GOOD} 9 9,Training", "pixels has 2306 values, expected 2304"),
    (f"1,12 ab {GOOD},Training", "pixels value 2 is not an integer: 'ab'"),
    (f"1,1 2 3.5 {GOOD},Training", "pixels value 3 is not an integer: '3.5'"),
    (f"1,-4 {GOOD},Training", "pixels value 1 is -4, outside 0..255"),  # out of range, not "not an integer"
    (f"1,1 --4 {GOOD},Training", "pixels value 2 is not an integer: '--4'"),
    (f"1,1 - {GOOD},Training", "pixels value 2 is not an integer: '-'"),
    (f"-3,{GOOD},Training", "emotion -3 is not a class label 0..6"),
    (f"1,256 {GOOD[4:]},Training", "pixels value 1 is 256, outside 0..255"),
    (f"1,{GOOD[:-3]} 99999999999999999999999999,Training",
     "pixels value 2304 is 99999999999999999999..., outside 0..255"),
    ("1,,Training", "pixels is empty"),
    ("1,   ,Training", "pixels is empty"),
    (f"1,{GOOD[:10]}\x00{GOOD[10:]},Training", "pixels value 6 is not an integer: '\\x005'"),
    (f"7,{GOOD},Training", "emotion 7 is not a class label 0..6"),
    (f"x,{GOOD},Training", "emotion 'x' is not an integer"),
    (f",{GOOD},Training", "emotion is empty"),
    (f"1,{GOOD},Train", "Usage 'Train' is not one of Training, PublicTest, PrivateTest"),
    (f"1,{GOOD},", "Usage is empty"),
    (f"1,{GOOD}", "has 2 fields, expected 3"),
    (f"1,{GOOD},Training,", "has 4 fields, expected 3"),
    (f'1,"{GOOD},Training', "unterminated quoted field 2"),
    (f'1,"{GOOD}"x,Training', "unexpected character after closing quote in field 2"),
    (f'1,"{GOOD[:20]}""{GOOD[20:]}",Training', "pixels value 11 is not an integer: '\"\"10'"),
]


@pytest.mark.parametrize("row,message", MALFORMED)
def test_malformed_rows_name_line_and_problem(pixels_path, row, message):
    good = f"2,{GOOD},PublicTest"
    data = f"emotion,pixels,Usage\r\n{good}\r\n{good}\r\n{row}\r\n{good}\r\n".encode()
    _, err = both(data, start=22, name="fer2013.csv", **KAGGLE)
    assert err == f"fer2013.csv line 4: {message}"


def test_first_error_wins_across_threads(pixels_path):
    rng = np.random.default_rng(4)
    n = 3000
    images = rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{px(im)},Training" for i, im in enumerate(images)]
    lines[2900] = "1,1 2 3,Training"  # line 2901
    lines[1700] = "9,1 2 3,Training"  # line 1701: reported
    lines[2500] = "1,x,Training"
    data = "\n".join(lines).encode()
    for threads in (1, 2, 3, 8):
        with pytest.raises(ValueError, match=r"^<csv> line 1701: emotion 9 is not a class label 0..6$"):
            _native.parse_fer_csv(data, start=21, side=4, threads=threads, **KAGGLE)
    ok = "\n".join(["emotion,pixels,Usage"] + [f"{i % 7},{px(im)},Training" for i, im in enumerate(images)])
    for threads in (1, 2, 7):
        imgs, labs, _ = _native.parse_fer_csv(ok.encode(), start=21, side=4, threads=threads, **KAGGLE)
        np.testing.assert_array_equal(imgs, images)
        np.testing.assert_array_equal(labs, np.arange(n) % 7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="invalid CSV layout"):
        _native.parse_fer_csv(b"", ncols=2, pixels_col=2)
    with pytest.raises(ValueError, match="outside the 3-byte buffer"):
        _native.parse_fer_csv(b"abc", ncols=1, pixels_col=0, start=4)
    with pytest.raises(TypeError):
        _native.parse_fer_csv(12, ncols=1, pixels_col=0)


# --- property tests -----------------------------------------------------------------------

SIDE = 3  # 9 values per image keeps hypothesis fast; the grammar does not depend on the size


@st.composite
def formatted_csv(draw):
    n = draw(st.integers(0, 6))
    images = draw(st.lists(st.lists(st.integers(0, 255), min_size=SIDE * SIDE, max_size=SIDE * SIDE), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    usages = draw(st.lists(st.sampled_from(USAGES), min_size=n, max_size=n))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["emotion,pixels,Usage"]
    for img, lab, use in zip(images, labels, usages):
        seps = draw(st.lists(st.sampled_from([" ", " ", "  ", "\t", " \t "]), min_size=len(img) - 1, max_size=len(img) - 1))
        toks = [("0" * draw(st.integers(0, 2)) if draw(st.booleans()) else "") + str(v) for v in img]
        p = toks[0] + "".join(s + t for s, t in zip(seps, toks[1:]))
        p = draw(st.sampled_from(["", " ", "\t"])) + p + draw(st.sampled_from(["", " "]))
        if draw(st.booleans()):
            p = f'"{p}"'
        lines.append(f"{draw(st.sampled_from(['', ' ']))}{lab},{p},{use}")
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\t"])))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    expected = np.array(images, dtype=np.uint8).reshape(n, SIDE, SIDE)
    return text.encode(), expected, np.array(labels, dtype=np.int64), [USAGES.index(u) for u in usages]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formatted_csv(), st.integers(1, 4))
def test_property_valid_csv_parses_to_known_content(pixels_path, case, threads):
    data, images, labels, codes = case
    start = data.index(b"\n") + 1 if b"\n" in data else len(data)
    kw = dict(start=start, side=SIDE, threads=threads, **KAGGLE)
    (imgs, labs, cds), err = both(data, **kw)
    assert err is None
    np.testing.assert_array_equal(imgs, images)
    np.testing.assert_array_equal(labs, labels)
    assert cds.tolist() == codes


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(2304))), st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_property_full_size_rows_fast_path(pixels_path, arr, seed, hi):
    # hypothesis' arrays are mostly one fill value; mix in random ones up to `hi`
    # (so rows of only 1- or 2-digit values occur too).
    rng = np.random.default_rng(seed)
    arr = np.where(rng.random(arr.shape) < 0.7, rng.integers(0, hi + 1, arr.shape), arr).astype(np.uint8)
    text = "emotion,pixels,Usage\n" + "".join(f"0,{px(a)},Training\n" for a in arr)
    (imgs, _, _), err = both(text.encode(), start=21, **KAGGLE)
    np.testing.assert_array_equal(imgs, arr.reshape(-1, 48, 48))
