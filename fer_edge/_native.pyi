"""Type stub for the C++ extension (csrc/). Pure-numpy references the tests compare with: tests/native_reference.py."""
from typing import Optional, Sequence, Union

import numpy as np

_Bytes = Union[bytes, bytearray, memoryview, str]

USAGES: tuple[str, str, str]
SIMD: str

def parse_fer_csv(
    data: _Bytes,
    *,
    ncols: int,
    pixels_col: int,
    label_col: int = -1,
    usage_col: int = -1,
    usages: Sequence[str] = ...,
    num_classes: int = 7,
    start: int = 0,
    first_line: int = 2,
    name: str = "<csv>",
    side: int = 48,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def parse_pixels(
    data: _Bytes, *, first_line: int = 1, name: str = "<pixels>", side: int = 48, threads: int = 0
) -> np.ndarray: ...
def mean_std(images: np.ndarray, *, threads: int = 0) -> tuple[float, float]: ...
def normalize(
    images: np.ndarray, mean: float, std: float, out: Optional[np.ndarray] = None, *, threads: int = 0
) -> np.ndarray: ...
def _set_pixels_path(name: str) -> None:
    """Testing hook: 'simd' (default: the fast path, SIMD kernel), 'scalar' (the fast path,
    portable kernel) or 'slow' (the simple path only); results are identical on each."""
