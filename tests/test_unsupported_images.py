"""An image OpenCV cannot read for a known reason says that reason, in one line of ours.

A TIFF of 32-bit float samples was called "truncated or damaged", and OpenCV's own
``[ WARN:0@0.02] ... can not handle images with 32-bit samples`` reached stderr, ``-q`` or not.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import run_cli
from fer_edge.errors import InputError


@pytest.fixture
def float_tiff(tmp_path):
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), np.random.default_rng(0).random((20, 30)).astype(np.float32))
    return path


def test_a_float_tiff_is_unsupported_not_damaged(float_tiff):
    from fer_edge.runtime.sources import read_image

    with pytest.raises(InputError, match="unsupported image .*floating-point samples; save it with 8 or 16 bits"):
        read_image(float_tiff)


def test_under_q_stderr_is_our_one_line(float_tiff):
    r = run_cli("infer", "-q", "--no-detect", str(float_tiff))
    assert r.returncode == 3
    assert r.stderr.strip().splitlines() == [f"fer-edge: error: unsupported image {float_tiff}: a TIFF of "
                                             "floating-point samples; save it with 8 or 16 bits per sample"]


def test_an_8_bit_tiff_still_reads(tmp_path):
    from fer_edge.runtime.sources import read_image

    path = tmp_path / "gray.tiff"
    cv2.imwrite(str(path), np.full((20, 30), 77, np.uint8))
    assert read_image(path).shape == (20, 30, 3)


def test_the_quiet_block_restores_opencvs_level_after_nested_and_threaded_use():
    import threading

    from fer_edge.runtime.quiet import QuietOpenCV

    before = cv2.utils.logging.getLogLevel()

    def work():
        for _ in range(200):
            with QuietOpenCV():
                with QuietOpenCV():
                    assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cv2.utils.logging.getLogLevel() == before
