"""Images that arrive encoded rather than as a file on disk, decoded to the pipeline's pixels.

What web services, notebooks and the other expression libraries (deepface, fer, hsemotion)
hand over besides a path or an array:

- the bytes of an image file (``bytes``, ``bytearray``, ``memoryview``): a request body, a
  database blob, ``Path.read_bytes()``;
- a binary file object (``open(p, "rb")``, ``io.BytesIO``, a web framework's upload): read
  from where it stands, at most :data:`MAX_ENCODED_BYTES`;
- a ``data:image/...;base64,`` URI, as browsers and canvases give them;
- an ``http(s)://`` URL, fetched with urllib within :data:`FETCH_TIMEOUT_S` and
  :data:`MAX_ENCODED_BYTES`.

Every error is one :class:`~fer_edge.errors.InputError` line naming the input by a short
excerpt (:func:`~fer_edge.errors.excerpt`), never the whole of it. A video handed to the
image API (by its bytes or its name) says to use :func:`fer_edge.analyze_video`.
"""
from __future__ import annotations

import base64
import binascii
import re
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote_to_bytes

import numpy as np

from ..errors import InputError, excerpt
from .imagesize import MAX_PIXELS

#: The most bytes read from a file object or a URL for one image (a 50-megapixel JPEG is ~20 MB).
MAX_ENCODED_BYTES = 64 << 20
#: How long fetching one image URL may take in all (connecting, waiting and reading).
FETCH_TIMEOUT_S = 10.0
#: The longest string taken for a file path (Linux's PATH_MAX); longer ones are data, not names.
MAX_PATH_CHARS = 4096

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DATA_URI = re.compile(r"^data:([^,]*),", re.IGNORECASE)
# base64 starts of the formats people paste without the "data:" prefix: JPEG, PNG, GIF, WebP
_BASE64_IMAGE_STARTS = ("/9j/", "iVBORw0KGgo", "R0lGOD", "UklGR")


def is_encoded(obj: Any) -> bool:
    """Bytes-like or a file object: what :func:`decode_encoded` takes (a str never is)."""
    return isinstance(obj, (bytes, bytearray, memoryview)) or (
        not isinstance(obj, (str, np.ndarray)) and callable(getattr(obj, "read", None)))


def decode_encoded(obj: Any, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """uint8 BGR pixels of encoded image bytes or of what a binary file object reads."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return decode_image(bytes(obj), bytes_name(obj), max_pixels)
    return decode_image(*read_binary(obj), max_pixels)


def bytes_name(data: Any) -> str:
    """How messages name an image given as bytes: ``<22,795 bytes>``."""
    return f"<{len(data):,} bytes>"


def read_binary(f: Any, shown: Optional[str] = None) -> tuple[bytes, str]:
    """``(bytes, name for messages)`` from a binary file object, read from its position on;
    a text-mode file is a TypeError that says to open it with ``"rb"``."""
    name = getattr(f, "name", None)
    shown = shown or (excerpt(str(name)) if isinstance(name, str) and name else f"<{type(f).__name__}>")
    try:
        data = f.read(MAX_ENCODED_BYTES + 1)
    except TypeError:  # a read() without a size argument
        data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read image {shown}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # io's "I/O operation on closed file" / "read of closed file"
        raise InputError(f"cannot read image {shown}: {exc}") from exc
    if isinstance(data, str):
        raise TypeError(f"{shown} is open in text mode; open image files in binary mode: open(path, 'rb')")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{shown}: read() gave {type(data).__name__}, not bytes")
    if len(data) > MAX_ENCODED_BYTES:
        raise InputError(f"not an image: {shown} gives more than {MAX_ENCODED_BYTES >> 20} MB")
    return bytes(data), shown


def decode_image(data: bytes, shown: str, max_pixels: Optional[int] = MAX_PIXELS,
                 video_advice: Optional[str] = None) -> np.ndarray:
    """uint8 BGR ``(H, W, 3)`` pixels of an encoded image (EXIF orientation applied, as for
    files); a JPEG cut short decodes as far as it goes, with a warning, as a file does.
    ``video_advice``: what to do instead when ``data`` is a video (:func:`not_an_image_but_a_video`)."""
    from .sources import decode_known_image

    if not data:
        raise InputError(f"not an image (empty): {shown}")
    img = decode_known_image(data, shown, max_pixels=max_pixels)
    if img is not None:
        return img
    video = video_format(data)
    if video is not None:
        raise not_an_image_but_a_video(shown, video, video_advice)
    raise InputError(f"not an image or unsupported format: {shown} (starting {data[:16]!r})")


# Video container signatures: (offset, magic, name)
_VIDEO_SIGNATURES = (
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"FLV", "FLV"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
    (0, b"\x00\x00\x01\xba", "MPEG"),
)
# ISO base media brands that are still images (HEIF, AVIF), not videos
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


#: What the Python API says to do with a video given where an image is expected.
API_VIDEO_ADVICE = "fer_edge.predict takes images; use fer_edge.analyze_video(path) for a video's frames"


def not_an_image_but_a_video(shown: str, video: str = "", advice: Optional[str] = None) -> InputError:
    """The error for a video given where an image is expected. ``advice`` names what takes it:
    :data:`API_VIDEO_ADVICE` unless the caller has its own words (the CLI names its verbs, as
    ``fer-edge infer -`` must: the Python function means nothing on a command line)."""
    what = f"a video ({video})" if video else "a video"
    return InputError(f"{shown} is {what}, not an image: {advice or API_VIDEO_ADVICE}")


def video_format(data: bytes) -> Optional[str]:
    """"MP4/MOV", "AVI", "Matroska/WebM" ... when ``data`` starts like a video container, else None."""
    if data[4:8] == b"ftyp" and data[8:12] not in _IMAGE_BRANDS:
        return "MP4/MOV"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "AVI"
    for offset, magic, name in _VIDEO_SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return name
    return None


# ------------------------------------------------------------------------------- strings


def string_kind(text: str) -> str:
    """What a str image input is: ``"data"`` (a data: URI), ``"url"`` (http/https), or ``"path"``.

    Any other ``scheme://`` and a string too long to be a path are refused here, in one line."""
    if text[:5].lower() == "data:":
        return "data"
    scheme = _URL_SCHEME.match(text)
    if scheme and scheme.group(1).lower() in ("http", "https"):
        return "url"
    if scheme:
        raise InputError(f"not an image path or an http(s) URL: {excerpt(text)}; for a video stream or a "
                         "camera use fer_edge.analyze_video; for a file pass its path, for other data its bytes")
    if len(text) > MAX_PATH_CHARS:
        hint = ""
        if text.lstrip().startswith(_BASE64_IMAGE_STARTS):
            hint = ("; it looks like base64: pass base64.b64decode(text), or 'data:image/jpeg;base64,' + text")
        raise InputError(f"not a file path: {excerpt(text, 40)}{hint}")
    return "path"


def decode_data_uri(uri: str, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """The image in a ``data:image/...[;base64],...`` URI."""
    m = _DATA_URI.match(uri)
    shown = f"data: URI {excerpt(uri, 40)}"
    if m is None:
        raise InputError(f"malformed {shown}: no ',' after the media type (data:image/png;base64,...)")
    params = [p.strip().lower() for p in m.group(1).split(";")]
    media = params[0]
    if media and not media.startswith("image/"):
        raise InputError(f"{shown} holds {excerpt(media, 30)}, not an image (data:image/...)")
    payload = uri[m.end():]
    if "base64" in params[1:]:
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"malformed {shown}: its base64 does not decode ({exc})") from None
    else:
        data = unquote_to_bytes(payload)
    return decode_image(data, shown, max_pixels)


def fetch_url(url: str, timeout: Optional[float] = None, max_bytes: Optional[int] = None) -> bytes:
    """The body of an ``http(s)://`` URL: at most ``max_bytes``, within ``timeout`` seconds in
    all (default :data:`FETCH_TIMEOUT_S`); any failure is one InputError line."""
    import http.client
    import socket
    import urllib.error
    import urllib.request

    from .. import __version__

    timeout = FETCH_TIMEOUT_S if timeout is None else float(timeout)
    max_bytes = MAX_ENCODED_BYTES if max_bytes is None else int(max_bytes)
    shown = excerpt(url)
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": f"fer-edge/{__version__}", "Accept": "image/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise InputError(f"cannot fetch {shown}: {int(length):,} bytes, more than the "
                                 f"{max_bytes:,} an image may have")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise socket.timeout
                chunk = resp.read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(f"cannot fetch {shown}: more than the {max_bytes:,} bytes an image may have")
    except InputError:
        raise
    except urllib.error.HTTPError as exc:
        raise InputError(f"cannot fetch {shown}: HTTP {exc.code} {excerpt(str(exc.reason), 40)}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise InputError(f"cannot fetch {shown}: no answer within {timeout:g} s") from None
        why = getattr(exc.reason, "strerror", None) or exc.reason  # "Connection refused", not "[Errno 111] ..."
        raise InputError(f"cannot fetch {shown}: {excerpt(str(why), 60)}") from None
    except (socket.timeout, TimeoutError):
        raise InputError(f"cannot fetch {shown}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # reset connections, bad URLs, bad replies
        raise InputError(f"cannot fetch {shown}: {excerpt(str(exc) or type(exc).__name__, 60)}") from None


def decode_url(url: str, max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """The image at an ``http(s)://`` URL (:func:`fetch_url`, then :func:`decode_image`)."""
    return decode_image(fetch_url(url), excerpt(url), max_pixels)
