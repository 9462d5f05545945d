"""Pure-numpy reference implementations of the :mod:`fer_edge._native` functions (the test oracle).

They are slow on purpose: each is the plain, obviously-correct way (the pixel parser is the
seed-style ``np.array(s.split(), dtype=np.uint8)`` plus the checks that make it strict), and
the tests require the C++ kernels to return the same arrays and raise the same messages.
Keep the two in step: a change of grammar or wording goes into both. The runtime never
imports this module: it lives with the tests.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

from fer_edge.data.dataset import USAGE_TO_SPLIT

USAGES: tuple[str, ...] = tuple(USAGE_TO_SPLIT)
_DISPLAY_LIMIT = 20
_BLANKS = b" \t"

BytesLike = Union[bytes, bytearray, memoryview, str]


def _as_bytes(data: BytesLike) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def _display(tok: bytes) -> str:
    """A token for an error message: quoted, Python-repr-like, at most 20 bytes."""
    parts = []
    for c in tok[:_DISPLAY_LIMIT]:
        if c == 0x27:
            parts.append("\\'")
        elif c == 0x5C:
            parts.append("\\\\")
        elif 0x20 <= c < 0x7F:
            parts.append(chr(c))
        else:
            parts.append(f"\\x{c:02x}")
    return "'" + "".join(parts) + "'" + ("..." if len(tok) > _DISPLAY_LIMIT else "")


def _digits(tok: bytes) -> str:
    return tok[:_DISPLAY_LIMIT].decode("ascii") + ("..." if len(tok) > _DISPLAY_LIMIT else "")


def _negative(tok: bytes) -> bool:
    """``-12``: an integer out of range, which messages must not call "not an integer"."""
    return len(tok) > 1 and tok[:1] == b"-" and tok[1:].isdigit()


def _int_of_digits(tok: bytes) -> int:
    # int() refuses strings over 4300 digits; anything over 3 significant digits is > 255 anyway.
    significant = tok.lstrip(b"0")
    return int(significant) if 0 < len(significant) <= 4 else (0 if not significant else 10_000)


def parse_pixels_field_reference(field: BytesLike, side: int = 48) -> np.ndarray:
    """One pixels string -> uint8 (side, side); ValueError naming the problem."""
    tokens = _as_bytes(field).split()
    if not tokens:
        raise ValueError("pixels is empty")
    for i, tok in enumerate(tokens, 1):
        if _negative(tok):
            raise ValueError(f"pixels value {i} is -{_digits(tok[1:])}, outside 0..255")
        if not tok.isdigit():
            raise ValueError(f"pixels value {i} is not an integer: {_display(tok)}")
        if _int_of_digits(tok) > 255:
            raise ValueError(f"pixels value {i} is {_digits(tok)}, outside 0..255")
    if len(tokens) != side * side:
        raise ValueError(f"pixels has {len(tokens)} values, expected {side * side}")
    # The seed's own line, now that the values are known to fit.
    return np.array([t.decode("ascii") for t in tokens], dtype=np.uint8).reshape(side, side)


def _split_fields(line: bytes) -> list[bytes]:
    fields: list[bytes] = []
    p, n, j = 0, len(line), 0
    while True:
        j += 1
        q = p
        while q < n and line[q] in _BLANKS:
            q += 1
        if q < n and line[q] == 0x22:  # '"'
            k = q + 1
            while True:
                k = line.find(b'"', k)
                if k < 0:
                    raise ValueError(f"unterminated quoted field {j}")
                if k + 1 < n and line[k + 1] == 0x22:
                    k += 2
                    continue
                break
            fields.append(line[q + 1 : k])
            k += 1
            while k < n and line[k] in _BLANKS:
                k += 1
            if k == n:
                return fields
            if line[k] != 0x2C:
                raise ValueError(f"unexpected character after closing quote in field {j}")
            p = k + 1
        else:
            c = line.find(b",", p)
            if c < 0:
                fields.append(line[p:])
                return fields
            fields.append(line[p:c])
            p = c + 1


def _parse_label(field: bytes, num_classes: int) -> int:
    tok = field.strip()
    if not tok:
        raise ValueError("emotion is empty")
    if _negative(tok):
        raise ValueError(f"emotion -{_digits(tok[1:])} is not a class label 0..{num_classes - 1}")
    if not tok.isdigit():
        raise ValueError(f"emotion {_display(tok)} is not an integer")
    value = _int_of_digits(tok)
    if value >= num_classes:
        raise ValueError(f"emotion {_digits(tok)} is not a class label 0..{num_classes - 1}")
    return value


def _parse_usage(field: bytes, usages: Sequence[str]) -> int:
    tok = field.strip()
    if not tok:
        raise ValueError("Usage is empty")
    names = [u.encode("utf-8") for u in usages]
    if tok not in names:
        raise ValueError(f"Usage {_display(tok)} is not one of {', '.join(usages)}")
    return names.index(tok)


def parse_fer_csv_reference(
    data: BytesLike,
    *,
    ncols: int,
    pixels_col: int,
    label_col: int = -1,
    usage_col: int = -1,
    usages: Sequence[str] = USAGES,
    num_classes: int = 7,
    start: int = 0,
    first_line: int = 2,
    name: str = "<csv>",
    side: int = 48,
    threads: int = 0,  # accepted for signature parity with the C++ version
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of ``_native.parse_fer_csv``: same arguments, results and error messages."""
    del threads
    buf = _as_bytes(data)
    if not (
        1 <= ncols <= 64
        and 0 <= pixels_col < ncols
        and label_col < ncols
        and usage_col < ncols
        and 1 <= side <= 4096
        and num_classes >= 1
        and len(usages) <= 127
    ):
        raise ValueError("invalid CSV layout")
    if not 0 <= start <= len(buf):
        raise ValueError(f"start={start} is outside the {len(buf)}-byte buffer")
    images, labels, usage_codes = [], [], []
    for k, line in enumerate(buf[start:].split(b"\n")):
        lineno = first_line + k
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue
        try:
            fields = _split_fields(line)
            if len(fields) != ncols:
                raise ValueError(f"has {len(fields)} fields, expected {ncols}")
            label, code, image = -1, -1, None
            for c in range(ncols):
                if c == pixels_col:
                    image = parse_pixels_field_reference(fields[c], side)
                elif c == label_col:
                    label = _parse_label(fields[c], num_classes)
                elif c == usage_col:
                    code = _parse_usage(fields[c], usages)
        except ValueError as exc:
            raise ValueError(f"{name} line {lineno}: {exc}") from None
        images.append(image)
        labels.append(label)
        usage_codes.append(code)
    out = np.stack(images) if images else np.empty((0, side, side), np.uint8)
    return out, np.array(labels, dtype=np.int64), np.array(usage_codes, dtype=np.int8)


def parse_pixels_reference(
    data: BytesLike, *, first_line: int = 1, name: str = "<pixels>", side: int = 48, threads: int = 0
) -> np.ndarray:
    """Reference of ``_native.parse_pixels``: one pixels string per line -> uint8 (N, side, side)."""
    return parse_fer_csv_reference(
        data, ncols=1, pixels_col=0, first_line=first_line, name=name, side=side, threads=threads
    )[0]


def _require_u8(images: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{what} must be a numpy uint8 array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"{what} must be a uint8 array, got {images.dtype}")
    return images


def mean_std_reference(images: np.ndarray) -> tuple[float, float]:
    """Reference of ``_native.mean_std``: exact integer sums, the same two float roundings."""
    images = _require_u8(images, "images")
    if images.size == 0:
        raise ValueError("mean_std of an empty array")
    n = int(images.size)
    s = int(images.sum(dtype=np.uint64))
    q = int(np.square(images, dtype=np.uint64).sum(dtype=np.uint64))
    var = float(n * q - s * s) / (float(n) * float(n))
    return float(s) / float(n), math.sqrt(var)


def _check_mean_std(mean: float, std: float) -> None:
    if not math.isfinite(mean):
        raise ValueError(f"mean must be finite, got {mean}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be finite and > 0, got {std}")


def normalize_reference(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Reference of ``_native.normalize``: (x - mean) / std in float64, rounded to float32, NCHW."""
    images = _require_u8(images, "images")
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    _check_mean_std(mean, std)
    return ((images.astype(np.float64) - mean) / std).astype(np.float32)[:, None]
