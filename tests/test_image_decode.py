"""Image files that are damaged are called damaged, not "not an image"; what OpenCV can
decode of a truncated JPEG is used, as image viewers do."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fer_edge.errors import InputError
from fer_edge.runtime.default_model import sample_image_path
from fer_edge.runtime.sources import image_format, read_image


@pytest.fixture
def jpeg_bytes() -> bytes:
    return sample_image_path().read_bytes()


def test_truncated_jpeg_that_opencv_decodes_is_used_with_a_warning(tmp_path, jpeg_bytes, caplog):
    p = tmp_path / "cut.jpg"
    p.write_bytes(jpeg_bytes[: int(len(jpeg_bytes) * 0.9)])
    full = read_image(sample_image_path())
    with caplog.at_level(logging.WARNING, logger="fer_edge"):
        img = read_image(p)
    assert img.shape == full.shape
    assert "truncated or damaged" in caplog.text


def test_jpeg_cut_before_any_pixel_is_damaged_not_unknown(tmp_path, jpeg_bytes):
    p = tmp_path / "stub.jpg"
    p.write_bytes(jpeg_bytes[:300])
    with pytest.raises(InputError, match=r"^cannot decode image .*stub.jpg: the JPEG data is truncated or damaged$"):
        read_image(p)


def test_a_text_file_is_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello")
    with pytest.raises(InputError, match="not an image or unsupported format"):
        read_image(p)


@pytest.mark.parametrize("head,fmt", [(b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\nxx", "PNG"),
                                      (b"RIFF\0\0\0\0WEBPVP8 ", "WebP"), (b"hello", None)])
def test_image_format(head, fmt):
    assert image_format(head) == fmt


def test_paths_that_are_not_regular_files_end_in_one_line_and_never_hang(tmp_path, monkeypatch):
    import os

    import fer_edge.runtime.sources as sources
    from fer_edge.runtime.sources import resolve_source

    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)  # nobody writes to it: reading must not wait for a writer
    with pytest.raises(InputError, match="empty file"):
        read_image(fifo)
    monkeypatch.setattr(sources, "MAX_SPECIAL_BYTES", 1 << 20)
    with pytest.raises(InputError, match="not a regular file and gives more than 1 MB"):
        read_image("/dev/zero")
    # a pipe with a writer (bash's <(cat face.jpg)) is read as it is
    import threading

    r, w = os.pipe()
    data = Path(sample_image_path()).read_bytes()

    def write() -> None:
        os.write(w, data)
        os.close(w)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read_image(f"/proc/self/fd/{r}").shape == read_image(sample_image_path()).shape
    finally:
        writer.join()
        os.close(r)
    too_long = str(tmp_path / ("y" * 300 + ".jpg"))
    with pytest.raises(InputError, match="cannot read image .*File name too long"):
        read_image(too_long)
    spec = resolve_source(too_long)
    assert spec.paths == () and "File name too long" in spec.error
