"""mean_std and normalize: exact agreement with the numpy reference, argument checking."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fer_edge import _native
from native_reference import mean_std_reference, normalize_reference

u8_arrays = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=40))


@settings(max_examples=200, deadline=None)
@given(u8_arrays)
def test_mean_std_equals_reference_bit_for_bit(a):
    assert _native.mean_std(a) == mean_std_reference(a)
    m, s = _native.mean_std(a)
    assert m == pytest.approx(a.mean(dtype=np.float64), rel=1e-12, abs=1e-12)
    assert s == pytest.approx(a.std(dtype=np.float64), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 65535, 65536 * 16 + 3, 5_000_000])
def test_mean_std_sizes_and_threads(n):
    a = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    ref = mean_std_reference(a)
    for threads in (1, 2, 5):
        assert _native.mean_std(a, threads=threads) == ref


def test_mean_std_extremes_and_layouts():
    assert _native.mean_std(np.full((300, 300), 255, np.uint8)) == (255.0, 0.0)
    assert _native.mean_std(np.zeros(7, np.uint8)) == (0.0, 0.0)
    assert _native.mean_std(np.array([0, 255], np.uint8)) == (127.5, 127.5)
    a = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    view = a[::3, 5:, ::-2]  # non-contiguous: same answer as its copy
    assert _native.mean_std(view) == mean_std_reference(np.ascontiguousarray(view))


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros(3, np.float32), "uint8 array, got float32"),
        (np.zeros(3, np.int8), "uint8 array, got int8"),
        (np.zeros((0, 48, 48), np.uint8), "empty"),
        ([1, 2, 3], "numpy uint8 array, got list"),
    ],
)
def test_mean_std_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        _native.mean_std(bad)
    with pytest.raises(ValueError, match=match):
        mean_std_reference(bad)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=30)),
    st.floats(-300, 300, allow_nan=False),
    st.floats(1e-3, 500, allow_nan=False),
)
def test_normalize_equals_reference(a, mean, std):
    out = _native.normalize(a, mean, std)
    assert out.dtype == np.float32 and out.shape == (a.shape[0], 1) + a.shape[1:] and out.flags.c_contiguous
    np.testing.assert_array_equal(out, normalize_reference(a, mean, std))


def test_normalize_into_caller_buffer_and_threads():
    a = np.random.default_rng(1).integers(0, 256, (700, 48, 48), dtype=np.uint8)
    out = np.full((700, 1, 48, 48), np.nan, np.float32)
    res = _native.normalize(a, 129.4, 65.1, out, threads=3)
    assert res is out or np.shares_memory(res, out)
    np.testing.assert_array_equal(out, normalize_reference(a, 129.4, 65.1))
    np.testing.assert_array_equal(_native.normalize(a[:, ::2, 1::2], 1.0, 2.0), normalize_reference(a[:, ::2, 1::2], 1.0, 2.0))


@pytest.mark.parametrize(
    "out,match",
    [
        (np.zeros((2, 1, 48, 48), np.float64), "out must be float32, got float64"),
        (np.zeros((2, 48, 48), np.float32), r"out has shape \(2, 48, 48\), expected \(2, 1, 48, 48\)"),
        (np.zeros((3, 1, 48, 48), np.float32), "expected"),
        (np.zeros((2, 1, 48, 96), np.float32)[..., ::2], "C-contiguous"),
        ([0.0], "numpy float32 array"),
    ],
)
def test_normalize_rejects_bad_out(out, match):
    with pytest.raises(ValueError, match=match):
        _native.normalize(np.zeros((2, 48, 48), np.uint8), 0.0, 1.0, out)


def test_normalize_rejects_read_only_out_and_bad_args():
    ro = np.zeros((1, 1, 2, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _native.normalize(np.zeros((1, 2, 2), np.uint8), 0.0, 1.0, ro)
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        _native.normalize(np.zeros((2, 2), np.uint8), 0.0, 1.0)
    for std in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="std must be finite and > 0"):
            _native.normalize(np.zeros((1, 2, 2), np.uint8), 0.0, std)
    with pytest.raises(ValueError, match="mean must be finite"):
        _native.normalize(np.zeros((1, 2, 2), np.uint8), float("nan"), 1.0)
