"""Decompression bombs: an image whose header declares a huge size is refused before decoding.

A 74-byte PNG can declare 30000 x 30000 pixels; decoding one took 5.4 GB and 35 s, and under a
memory cap it was called "truncated or damaged". The size is read from the header
(:mod:`fer_edge.runtime.imagesize`) and checked against ``max_pixels`` / ``--max-pixels``.
"""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from conftest import run_cli
from fer_edge.errors import InputError
from fer_edge.runtime.imagesize import MAX_PIXELS, image_size

SAMPLE = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)  # odd sides: w and h not swapped


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(w: int = 30000, h: int = 30000) -> bytes:
    """A valid PNG header declaring ``w x h`` gray pixels, with one short compressed row."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * (w + 1)))
            + _chunk(b"IEND", b""))


def jpeg_bomb(w: int = 30000, h: int = 30000) -> bytes:
    """A real JPEG whose frame header is rewritten to declare ``w x h``."""
    data = bytearray(cv2.imencode(".jpg", SAMPLE)[1].tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


@pytest.mark.parametrize("ext, params", [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".tiff", []),
])
def test_the_header_gives_the_size_opencv_decodes(ext, params):
    data = cv2.imencode(ext, SAMPLE, params)[1].tobytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image_size(data) == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def test_unknown_or_cut_headers_give_no_size():
    assert image_size(b"hello world") is None
    assert image_size(png_bomb()[:20]) is None
    assert image_size(cv2.imencode(".jpg", SAMPLE)[1].tobytes()[:40]) is None


@pytest.mark.parametrize("make", [png_bomb, jpeg_bomb], ids=["png", "jpeg"])
def test_the_api_refuses_a_bomb_before_decoding_it(make):
    import fer_edge

    assert image_size(make()) == (30000, 30000)
    with pytest.raises(InputError, match=r"30000x30000 \(900,000,000 pixels\), over the limit of 100,000,000"):
        fer_edge.predict(make(), detector="none")


def test_a_bomb_file_in_infer_is_one_failed_input_exit_3(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    r = run_cli("infer", "--json", str(bomb))
    assert r.returncode == 3, r.stderr
    assert "30000x30000" in r.stdout and "--max-pixels" in r.stdout


def test_a_bomb_on_standard_input_is_one_line_exit_3(tmp_path):
    import subprocess
    import sys

    from conftest import cli_env

    r = subprocess.run([sys.executable, "-m", "fer_edge", "infer", "-"], input=png_bomb(), capture_output=True,
                       env=cli_env(), timeout=120)
    err = r.stderr.decode().strip().splitlines()
    assert r.returncode == 3 and err[-1].startswith("fer-edge: error: image standard input is 30000x30000")


def test_the_limit_is_the_users_to_set(tmp_path):
    import fer_edge
    from fer_edge.runtime.api import Predictor

    img = tmp_path / "face.png"
    cv2.imwrite(str(img), SAMPLE)
    with pytest.raises(InputError, match="53x37"):
        fer_edge.predict(img, detector="none", max_pixels=1000)
    assert len(fer_edge.predict(img, detector="none", max_pixels=53 * 37)) == 1  # at the limit: allowed
    assert len(fer_edge.predict(img, detector="none", max_pixels=0)) == 1  # 0: no limit
    assert run_cli("infer", "--max-pixels", "1000", "--no-detect", str(img)).returncode == 3
    assert run_cli("infer", "--max-pixels", "0", "--no-detect", str(img)).returncode == 0
    r = run_cli("infer", "--max-pixels", "-5", str(img))
    assert r.returncode == 2 and "--max-pixels" in r.stderr
    with pytest.raises(ValueError, match="max_pixels"):
        Predictor(detector="none", max_pixels=-1)
    assert MAX_PIXELS == 100_000_000


def test_opencvs_own_limit_is_left_alone():
    import os

    import fer_edge  # noqa: F401  (importing the package must not change the process's OpenCV)

    assert "OPENCV_IO_MAX_IMAGE_PIXELS" not in os.environ
