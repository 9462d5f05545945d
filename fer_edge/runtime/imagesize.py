"""An encoded image's width and height from its header, before any pixel is decoded.

A 2.7 MB PNG can declare 30000 x 30000 pixels: decoding it takes 2.7 GB for the BGR array
alone (5.4 GB at the peak) and half a minute. OpenCV has no header-only call, so the formats
it reads are parsed here (a few bytes each) and an image over the pixel limit is refused
before ``cv2.imdecode`` allocates anything. OpenCV's own process-wide limit is left alone.
"""
from __future__ import annotations

import re
import struct
from typing import Optional

from ..errors import InputError
from ..remedy import ANY, Remedy

#: Images with more pixels than this are refused unless the caller raises the limit: 100 MP is
#: above every phone and camera sensor that writes JPEG at full resolution for most users
#: (a 108 MP phone photo needs ``max_pixels`` raised), and is 300 MB once decoded to BGR.
MAX_PIXELS = 100_000_000

# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> Optional[tuple[int, int]]:
    """``(width, height)`` that ``data``'s header declares, or None when the format is not one
    parsed here or the header is cut short (the decoder then says what is wrong)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"GIF8"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"BM"):
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)  # a negative height is a top-down bitmap
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in _NETPBM_MAGIC and data[2:3].isspace():
            return _pam_size(data) if data[1:2] == b"7" else _netpbm_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def check_pixels(data: bytes, shown: str, max_pixels: Optional[int] = MAX_PIXELS) -> None:
    """InputError when ``data`` declares more than ``max_pixels`` pixels (None or 0: no limit)."""
    if not max_pixels:
        return
    size = image_size(data)
    if size is None:
        return
    w, h = size
    if w * h > max_pixels:
        raise InputError(f"image {shown} is {w}x{h} ({w * h:,} pixels), over the limit of {max_pixels:,}",
                         remedies=[Remedy("max_pixels", ANY, "a higher limit, if the image is genuine")])


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan starts before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def _webp_size(data: bytes) -> Optional[tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: after the 3-byte frame tag and the 3-byte start code
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14 bits each, minus one, after the 0x2F signature
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, 24 bits each, minus one
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


# Netpbm: P1-P6 (PBM, PGM, PPM, plain and raw), P7 (PAM); PF/Pf: the PFM float maps OpenCV also reads.
_NETPBM_MAGIC = frozenset(bytes([c]) for c in b"1234567Ff")
# What separates a Netpbm header's numbers: whitespace and '#' comments to the end of their line. The
# pattern ends in its loop, so matching never backtracks (a run of 1 MB of comments is one pass).
_NETPBM_GAP = re.compile(rb"(?:[ \t\n\v\f\r]+|#[^\r\n]*)*")
_DIGITS = re.compile(rb"\d+")
#: Digits beyond this many (after leading zeros) only say "huge": the number is saturated, so a
#: size of 5,000 digits is refused in a short message instead of tripping Python's int() limit.
_MAX_DIGITS = 15


def _decimal(digits: bytes) -> int:
    """The value of a run of ASCII digits, as C's ``atoi`` reads it (leading zeros and all), saturated
    at 10**_MAX_DIGITS."""
    digits = digits.lstrip(b"0")
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** _MAX_DIGITS


def _netpbm_size(data: bytes) -> Optional[tuple[int, int]]:
    """P1-P6 and PF: the magic, then width and height as decimal numbers, separated by whitespace
    and ``#`` comments that run to the end of their line (a comment hides the numbers in it)."""
    pos, found = 2, []
    while len(found) < 2:
        number = _DIGITS.match(data, _NETPBM_GAP.match(data, pos).end())
        if number is None:  # cut short, or not a number where one must be
            return None
        found.append(_decimal(number.group()))
        pos = number.end()
    return found[0], found[1]


_PAM_SIZE = re.compile(rb"^[ \t]*(WIDTH|HEIGHT)[ \t]+\+?(\d+)", re.MULTILINE | re.IGNORECASE)


def _pam_size(data: bytes) -> Optional[tuple[int, int]]:
    """P7 (PAM): ``KEYWORD value`` lines (``WIDTH``, ``HEIGHT``, ``DEPTH`` ...; ``#`` comment lines)
    up to ``ENDHDR``. A value is read as ``atoi`` reads it (``WIDTH 12000x`` is 12000), the last
    of a repeated keyword wins, as in OpenCV's reader; however many lines the header has."""
    end = 2
    while True:  # the first ENDHDR that starts a line (bytes.find: a 64 MB file without one takes ms)
        end = data.find(b"ENDHDR", end + 1)
        if end < 0:
            return None
        if not data[data.rfind(b"\n", 0, end) + 1:end].strip(b" \t"):
            break
    size = {key.upper(): _decimal(value) for key, value in _PAM_SIZE.findall(data, 3, end)}
    if b"WIDTH" in size and b"HEIGHT" in size:
        return size[b"WIDTH"], size[b"HEIGHT"]
    return None


def _tiff_size(data: bytes) -> Optional[tuple[int, int]]:
    found = tiff_fields(data, (256, 257))  # ImageWidth, ImageLength
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


#: TIFF's SampleFormat tag and its value for IEEE floating-point samples.
TIFF_SAMPLE_FORMAT, TIFF_FLOAT = 339, 3


def tiff_fields(data: bytes, tags: tuple[int, ...]) -> dict[int, int]:
    """The first value of each of ``tags`` (SHORT or LONG) in a TIFF's first directory; the tags
    absent or the header cut short are left out."""
    found: dict[int, int] = {}
    try:
        end = "<" if data[:2] == b"II" else ">"
        (ifd,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[ifd:ifd + 2])
        for k in range(min(count, 4096)):
            e = ifd + 2 + 12 * k
            tag, typ = struct.unpack(end + "HH", data[e:e + 4])
            if tag in tags:  # the value sits in the entry itself
                fmt = end + ("H" if typ == 3 else "I")
                (found[tag],) = struct.unpack(fmt, data[e + 8:e + 8 + struct.calcsize(fmt)])
    except struct.error:
        pass
    return found
