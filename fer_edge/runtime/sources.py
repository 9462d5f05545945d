"""What the user typed as a source -> a typed :class:`SourceSpec`; image files -> pixels.

:func:`resolve_source` is the one place that decides what a source is, for every verb and
for the Python API's video functions (``fer-edge infer`` takes images and videos,
``fer-edge webcam`` / :func:`~.stream.run_stream` videos, cameras and streams):

- an integer or a string of digits (``0``): a camera index;
- a string with ``://`` (``rtsp://``, ``http://``): a network stream;
- a folder: the image files in it (searched recursively, common image extensions);
- a glob pattern (``'photos/**/*.jpg'``): the image files it matches;
- a file with a video extension (``.mp4``, ``.avi`` ...): a video; one with an image
  extension: an image; any other file is what the caller's ``default`` says (``infer``:
  an image, decoding decides; ``webcam``: a video, OpenCV decides); OpenCV's image-sequence
  pattern (``frames/img_%04d.png``) is a video.

Problems with image sources (a missing file, an empty folder, a glob that matches nothing)
are recorded in :attr:`SourceSpec.error` instead of raised, so the good inputs of a batch
are still processed and the bad ones listed at the end; a video that cannot be opened is
reported when it is opened. :func:`require_kind` turns a source of the wrong kind for a
verb into one line that names the verb that takes it.
"""
from __future__ import annotations

import functools
import glob
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from ..errors import InputError, UsageError, excerpt, printable
from .imagesize import MAX_PIXELS, TIFF_FLOAT, TIFF_SAMPLE_FORMAT, check_pixels, tiff_fields
from .quiet import QuietOpenCV

log = logging.getLogger("fer_edge")

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm",
     ".pam", ".gif"}  # GIF: its first frame, where OpenCV reads GIF (_opencv_reads_gif)
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
_GLOB_CHARS = set("*?[")
IMAGE_SEQUENCE = re.compile(r"%0?\d*d")  # OpenCV's image-sequence pattern: frames/img_%04d.png

# SourceSpec.kind
IMAGES = "images"  # image files (one named file, a folder's or a glob's)
VIDEO = "video"  # a video file
CAMERA = "camera"  # a camera index
STREAM = "stream"  # a network stream URL
KINDS = (IMAGES, VIDEO, CAMERA, STREAM)


@dataclass(frozen=True)
class SourceSpec:
    """One source as the user typed it (:attr:`text`), and what it is.

    ``images``: :attr:`paths` are the image files (command-line order for a named file,
    sorted for a folder or glob), :attr:`error` says why there are none. ``video``:
    :attr:`paths` is the one file (it may not exist: opening it says so). ``camera``:
    :attr:`index`. ``stream``: :attr:`url`.
    """

    kind: str
    text: str
    paths: tuple[str, ...] = ()
    index: Optional[int] = None
    url: Optional[str] = None
    error: Optional[str] = None

    @property
    def name(self) -> str:
        """How messages and summaries name the source."""
        return f"camera {self.index}" if self.kind == CAMERA else self.text

    @property
    def live(self) -> bool:
        """Cameras and streams deliver frames in real time; files are read at their own pace."""
        return self.kind in (CAMERA, STREAM)

    @property
    def capture_target(self) -> Union[int, str]:
        """What ``cv2.VideoCapture`` opens: the camera index, the URL or the video's path."""
        if self.kind == CAMERA:
            return int(self.index)  # type: ignore[arg-type]
        if self.kind == STREAM:
            return str(self.url)
        return self.paths[0]


@dataclass(frozen=True)
class Source:
    """One input of ``fer-edge infer``: an image file (or a video file, ``kind="video"``), or
    the reason a command-line source yielded nothing."""

    path: str
    error: Optional[str] = None
    kind: str = "image"
    #: The path inside the folder (or under the glob's fixed folder) it was found in, or its file
    #: name when it was named itself: what a derived output mirrors (``DIR/sub/b.png``).
    relative: Optional[str] = None


def is_image_file(path: Union[str, Path]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_file(path: Union[str, Path]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _folder_images(folder: Path) -> list[str]:
    """The image files under ``folder``, sorted; a sub-folder that cannot be read is named in a
    warning (not skipped in silence), the folder itself in an InputError."""
    found = []

    def unreadable(exc: OSError) -> None:
        if os.path.normpath(exc.filename or "") == os.path.normpath(folder):
            raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}")
        log.warning("fer-edge: skipping folder %s: %s", exc.filename, exc.strerror or exc)

    for root, dirs, files in os.walk(folder, followlinks=False, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and is_image_file(name):
                found.append(os.path.join(root, name))
            else:  # named under -v: "why is my photo not in the table?"
                log.debug("fer-edge: skipped %s: %s", os.path.join(root, name),
                          "a hidden file" if name.startswith(".") else "not an image file name (.jpg, .png, ...)")
    return sorted(found)


def resolve_source(source: Union[str, Path, int], default: str = IMAGES) -> SourceSpec:
    """What ``source`` is (see the module doc); ``default`` (``"images"`` or ``"video"``) is the
    kind of a file whose extension is neither an image's nor a video's.

    Never raises for a source that does not exist: an image source gets :attr:`~SourceSpec.error`,
    a video is reported missing when it is opened.
    """
    if default not in (IMAGES, VIDEO):
        raise ValueError(f"default must be {IMAGES!r} or {VIDEO!r}, got {default!r}")
    if isinstance(source, bool) or not isinstance(source, (str, os.PathLike, int)):
        raise TypeError(f"a source is a path, a camera index or a URL, got {type(source).__name__}")
    if isinstance(source, int):
        if source < 0:
            raise ValueError(f"a camera index is 0 or more, got {source}")
        return SourceSpec(CAMERA, str(source), index=source)
    typed = str(source)
    bare = typed.strip()
    if not bare:  # "" is the current folder to the path functions: `infer ''` searched all of it
        blank = f" ('{printable(typed)}')" if typed else ""
        raise UsageError(f"an empty source{blank}: name an image, a folder, a glob pattern, a video, a camera index "
                         "or a stream URL")
    if bare.isdigit():
        return SourceSpec(CAMERA, bare, index=int(bare))
    if bare.lower().startswith("file://"):  # a local file named as a URL (a browser's copy): the file itself,
        from urllib.parse import unquote, urlparse  # not a live stream (which would drop frames to keep up)

        url = urlparse(bare)
        typed = unquote(url.path)
        if url.netloc not in ("", "localhost") or not typed.strip():
            raise UsageError(f"{excerpt(bare)} names no local file: write file:///path/to/file (or the path itself)")
    elif "://" in bare:
        return SourceSpec(STREAM, bare, url=bare)
    src = os.path.expanduser(typed)
    p = Path(src)
    try:
        is_dir, exists = p.is_dir(), p.exists()
    except OSError as exc:  # a name too long, a folder we may not enter
        return SourceSpec(IMAGES, typed, (), error=f"cannot access {src}: {exc.strerror or exc}")
    if is_dir:
        try:
            files = _folder_images(p)
        except InputError as exc:  # the folder itself cannot be read
            return SourceSpec(IMAGES, typed, (), error=str(exc))
        return SourceSpec(IMAGES, typed, tuple(files), error=None if files else f"no images found in folder: {src}")
    if exists:
        kind = VIDEO if is_video_file(p) else IMAGES if is_image_file(p) else default
        return SourceSpec(kind, typed, (src,))
    if _GLOB_CHARS & set(src):
        # a pattern collects images and videos alike (`infer 'clips/*.mp4'`); infer_inputs tells them apart
        matches = sorted(m for m in glob.glob(src, recursive=True)
                         if os.path.isfile(m) and (is_image_file(m) or is_video_file(m)))
        return SourceSpec(IMAGES, typed, tuple(matches), error=None if matches else f"no images or videos match: {src}")
    if is_video_file(p) or IMAGE_SEQUENCE.search(p.name) or (default == VIDEO and not is_image_file(p)):
        return SourceSpec(VIDEO, typed, (src,))
    return SourceSpec(IMAGES, typed, (), error=f"image not found: {src}")


# What to run instead, for a source of a kind a verb does not take.
_WHAT = {IMAGES: "an image source", VIDEO: "a video", CAMERA: "a camera index", STREAM: "a stream URL"}


class WrongSourceKind(UsageError):
    """A source of a kind the caller does not take (an image given to the video loop, a camera given
    to the image path). ``goes_to``: what takes it, ``"images"`` or ``"streams"``; the message names
    the Python function, and the CLI names its verb instead (:func:`fer_edge.cli.wording.say`)."""

    FUNCTIONS = {"images": "fer_edge.predict", "streams": "fer_edge.analyze_video"}

    def __init__(self, text: str, what: str, goes_to: str):
        self.text, self.what, self.goes_to = text, what, goes_to
        super().__init__(f"{text} is {what}: use {self.FUNCTIONS[goes_to]}")


def require_kind(spec: SourceSpec, *kinds: str) -> SourceSpec:
    """``spec`` when its kind is one of ``kinds``; otherwise :class:`WrongSourceKind` (exit 2), or
    the image source's own error (a missing image: exit 3)."""
    if spec.kind in kinds:
        return spec
    if spec.kind == IMAGES:
        # a folder or a pattern is never a video, whether or not it holds images: say so (exit 2), not
        # "no images found", which reads as if a video source had been searched for images
        typed = os.path.expanduser(spec.text)
        if os.path.isdir(typed):
            what = "a folder of images" if spec.paths else "a folder"
        elif os.path.exists(typed) and spec.error is None:
            what = "an image"
        elif _GLOB_CHARS & set(typed):  # matched or not: a pattern is for fer-edge infer, which takes many files
            raise UsageError(f"{spec.text} is a file-name pattern: a video source is one video file, a camera index "
                             f"or a stream URL (patterns are for `fer-edge infer`)")
        else:
            raise InputError(spec.error or f"image not found: {typed}")
        raise WrongSourceKind(spec.text, f"{what}, not a video, camera or stream", "images")
    raise WrongSourceKind(spec.text, _WHAT[spec.kind], "streams")


def infer_inputs(specs: Iterable[SourceSpec]) -> list[Source]:
    """The inputs of ``fer-edge infer``: image files and videos in command-line order, each
    file once, and a :class:`Source` with ``error`` for an image source that found nothing."""
    out: list[Source] = []
    seen: set[str] = set()

    def add(path: str, error: Optional[str] = None, kind: str = "image", root: Optional[str] = None) -> None:
        key = os.path.normpath(os.path.abspath(path)) if error is None else f"{path}\0{error}"
        if key not in seen:
            seen.add(key)
            relative = os.path.relpath(path, root) if root is not None else os.path.basename(path)
            out.append(Source(path, error, kind, relative))

    for spec in specs:
        if spec.kind == VIDEO:
            add(spec.paths[0], kind="video")
        elif spec.kind == IMAGES:
            if spec.error is not None:
                add(spec.text, spec.error)
            root = _root_of(spec)
            for f in spec.paths:
                add(f, kind="video" if is_video_file(f) else "image", root=root)  # a pattern may match videos
        else:
            raise ValueError(f"infer takes images and videos, not {_WHAT[spec.kind]} ({spec.text})")
    return out


def _root_of(spec: SourceSpec) -> Optional[str]:
    """The folder an image source searched (a folder, or a glob's fixed leading folders); None for
    a file named itself."""
    typed = os.path.expanduser(spec.text)
    if os.path.isdir(typed):
        return typed
    if _GLOB_CHARS & set(typed):
        fixed = []
        for part in Path(typed).parts:
            if _GLOB_CHARS & set(part):
                break
            fixed.append(part)
        return str(Path(*fixed)) if fixed else "."
    return None


def read_image(path: Union[str, Path], max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 BGR ``(H, W, 3)``; :class:`InputError` if it is not one.

    Reads the bytes first and decodes with ``cv2.imdecode``: unlike ``cv2.imread`` this
    handles non-ASCII paths on Windows and tells "cannot read" from "not an image".
    EXIF orientation is applied, as phone photos need. An image whose header declares more than
    ``max_pixels`` pixels is refused before it is decoded (:mod:`.imagesize`; None or 0: no limit).
    """
    p = Path(path)
    mode = input_file_mode(p, "image")
    try:
        data = p.read_bytes() if stat.S_ISREG(mode) else _read_special(p)
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {exc.strerror or exc}") from exc
    if not data:
        raise InputError(f"not an image (empty file): {p}")
    img = decode_known_image(data, str(p), p, max_pixels)
    if img is None:
        raise InputError(f"not an image or unsupported format: {p}")
    return img


def decode_known_image(data: bytes, shown: str, file: Optional[Path] = None,
                       max_pixels: Optional[int] = MAX_PIXELS) -> Optional[np.ndarray]:
    """uint8 BGR pixels of encoded ``data`` (a file's bytes, or bytes handed to the API); None when
    it is in no image format we know, InputError when it is in one but cannot be decoded.

    ``cv2.imdecode`` refuses a JPEG that ends early where ``cv2.imread`` decodes what is there
    (the missing rows grey), as image viewers do: such data is read from ``file`` (or a private
    temporary copy) and used with a warning instead of being called "not an image"."""
    import tempfile

    import cv2

    check_pixels(data, shown, max_pixels)
    try:
        with QuietOpenCV():  # libpng's and libtiff's warnings: what matters is said in one line below
            img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is not None and img.size:
        return img
    fmt = image_format(data)
    if fmt is None:
        return None
    if fmt == "GIF" and not _opencv_reads_gif():
        raise InputError(f"unsupported image {shown}: this OpenCV ({cv2.__version__}) does not read GIF; "
                         "upgrade it (pip install -U opencv-python) or convert the image to PNG")
    if fmt == "TIFF" and tiff_fields(data, (TIFF_SAMPLE_FORMAT,)).get(TIFF_SAMPLE_FORMAT) == TIFF_FLOAT:
        raise InputError(f"unsupported image {shown}: a TIFF of floating-point samples; "
                         "save it with 8 or 16 bits per sample")
    if file is not None and str(file).isascii():
        img = _imread_quietly(file)
    else:  # OpenCV crashes (SIGSEGV) on a name that is not valid UTF-8: read a copy with a plain name
        with tempfile.TemporaryDirectory(prefix="fer-edge-") as tmp:
            (Path(tmp) / "image").write_bytes(data)
            img = _imread_quietly(Path(tmp) / "image")
    if img is None or img.size == 0:
        raise InputError(f"cannot decode image {shown}: the {fmt} data is truncated or damaged")
    log.warning("fer-edge: %s: the %s data is truncated or damaged; using the part that decodes", shown, fmt)
    return img


def input_file_mode(path: Path, noun: str, shown: Optional[str] = None, opencv_opens: bool = False) -> int:
    """``path``'s stat mode, for an input file of kind ``noun`` ("image", "video"): one InputError
    line, in the system's words, when it is missing, cannot be reached (a name too long, a folder
    we may not enter, a link loop), is a folder or a socket (nothing to read). ``shown``: how the
    message names it.

    ``opencv_opens``: the file goes to ``cv2.VideoCapture``, which takes regular files and character
    devices (``/dev/video0``) only: its open of a named pipe (FIFO) blocks in C until a writer comes,
    deaf to Ctrl-C and SIGTERM, so a pipe or a block device is refused before anything opens it.
    An image is read by :func:`read_image` itself, which reads a pipe without waiting
    (``fer-edge infer <(curl -s URL)``)."""
    shown = str(path) if shown is None else shown
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{noun} not found: {shown}") from None
    except OSError as exc:
        raise InputError(f"cannot read {noun} {shown}: {exc.strerror or exc}") from None
    article = "an" if noun[0] in "aeiou" else "a"
    if stat.S_ISDIR(mode):
        raise InputError(f"is a folder, not {article} {noun}: {shown}")
    if stat.S_ISSOCK(mode) or (opencv_opens and not (stat.S_ISREG(mode) or stat.S_ISCHR(mode))):
        what = ("a socket" if stat.S_ISSOCK(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a special file")
        raise InputError(f"is {what}, not {article} {noun} file: {shown}")
    return mode


#: The most read from a path that is not a regular file (a pipe, a device) before giving up.
MAX_SPECIAL_BYTES = 256 << 20


def _read_special(p: Path) -> bytes:
    """The bytes of a pipe or device, never waiting for a writer that is not there (a named pipe
    nobody writes to reads as empty) and never more than :data:`MAX_SPECIAL_BYTES` (``/dev/zero``)."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)  # open() did not wait for a writer; reads now wait for data
        chunks, size = [], 0
        while size <= MAX_SPECIAL_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    raise InputError(f"not an image: {p} is not a regular file and gives more than {MAX_SPECIAL_BYTES >> 20} MB")


# File signatures of the formats OpenCV reads: a file that starts like one is an image,
# even when it cannot be decoded.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF8", "GIF"),
)


def image_format(data: bytes) -> Optional[str]:
    """"JPEG", "PNG", ... when ``data`` starts with that format's signature, else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


#: A 1x1 GIF: whether OpenCV decodes it says whether this build reads GIF (older ones do not).
_TINY_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
             b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


@functools.lru_cache(maxsize=None)
def _opencv_reads_gif() -> bool:
    """Whether this OpenCV decodes GIF: without it a GIF that cannot be read would be called
    "truncated or damaged" instead of unsupported."""
    import cv2

    try:
        with QuietOpenCV():
            return cv2.imdecode(np.frombuffer(_TINY_GIF, np.uint8), cv2.IMREAD_COLOR) is not None
    except cv2.error:
        return False


def _imread_quietly(path: Path) -> Optional[np.ndarray]:
    import cv2

    try:
        with QuietOpenCV():
            return cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
