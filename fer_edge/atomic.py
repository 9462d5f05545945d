"""Files written whole or not at all, and never through a link planted where they go.

A write that fails half way (a full disk, a quota, a killed process) must not leave a
truncated file under the name the user asked for, where it blocks the next run or passes for
a result; and a name in an output folder that is a symbolic link must not send our bytes to
the file it points to. So every output is written to a private temporary file in the same
folder (same file system: the rename is atomic), flushed to disk, and only then given its name:

- :func:`write_bytes` ``(replace=True)`` renames over the name: an old file (or a link) of
  that name is replaced as a directory entry; what a link pointed to is never touched.
- ``replace=False`` links the finished file to its name, which fails when the name exists, so
  a file that appeared during the run (even a moment before) is never replaced.

The frame-by-frame outputs (``--jsonl``, ``--csv``) must keep every processed frame through a
crash, so they are written in place instead: :class:`LineFile` replaces a link rather than
following it, and cuts the file back to its last whole line when a write fails.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def open_atomic(path: PathLike, replace: bool = True) -> Iterator[BinaryIO]:
    """A binary file to fill that becomes ``path`` only when the block ends without an error
    (see the module doc): a private temporary file in the same folder, with the mode a plain
    ``open(path, "w")`` would give (not mkstemp's owner-only 0600), flushed to disk, then
    named by :func:`finish`. On any error nothing is left; FileExistsError when ``replace`` is
    False and ``path`` exists."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:80]}.", suffix=".tmp", dir=p.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows mkstemp's mode is not owner-only anyway
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        finish(tmp, p, replace)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_bytes(path: PathLike, data: bytes, replace: bool = True) -> None:
    """Give ``path`` the content ``data`` atomically (:func:`open_atomic`)."""
    with open_atomic(path, replace) as f:
        f.write(data)


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux's
    /proc/self/status); elsewhere set and restored at once, as Python has no getter."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_beside(path: PathLike) -> Path:
    """A hidden, unpredictable name in ``path``'s folder with ``path``'s suffix (writers that pick
    the format by the suffix, OpenCV's and matplotlib's, write the same file there)."""
    p = Path(path)
    return p.with_name(f".{p.stem[:60]}.{os.urandom(6).hex()}.partial{p.suffix}")


#: The file types a plot is written as, by the name's suffix (matplotlib writes each).
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def use_suffix(suffixes) -> str:
    """``use a .png or .pdf file name``: what every check of an output's suffix tells the user."""
    return f"use a {' or '.join(suffixes)} file name"


def figure_format(path: PathLike) -> str:
    """The image format a plot named ``path`` is written in: its suffix, one of
    :data:`FIGURE_SUFFIXES`; else an :class:`~fer_edge.errors.InputError` (exit 3) naming the file,
    before anything is drawn."""
    from .errors import InputError

    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise InputError(f"cannot write the plot {path}: {use_suffix(FIGURE_SUFFIXES)}")
    return suffix.lstrip(".")


def save_figure(fig, path: PathLike, **savefig_kwargs) -> None:
    """``fig.savefig(path)`` whole or not at all: drawn to :func:`temp_beside`, then renamed. The
    format is the user's suffix (:func:`figure_format`), never read from the temporary name, and
    a failed write is one :func:`cannot_write` error naming ``path``, not the temporary file."""
    fmt = figure_format(path)
    tmp = temp_beside(path)
    try:
        fig.savefig(tmp, format=fmt, **savefig_kwargs)
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc.strerror or str(exc)) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


class LineFile:
    """A text file written line by line and flushed, for the outputs that must keep every processed
    frame through a crash or a ``kill -9`` (``--jsonl``, ``--csv``), so they cannot be renamed into
    place at the end. Two guarantees instead:

    - a symbolic link at ``path`` to a regular file (or to nothing) is replaced (removed, then the
      file created with ``O_NOFOLLOW``), never written through; a link to a pipe or a terminal
      (``/dev/stdout``, ``>(jq .)``) is written to, as it is meant to be;
    - a regular file only ever holds whole lines: when a write fails (a full disk), it is cut back
      to the end of the last line written whole. The error is one
      :class:`~fer_edge.errors.OutputError` naming ``path`` (``what``: "CSV", "JSONL"), which stops
      the run: the file serves every input.
    """

    def __init__(self, path: PathLike, what: str, newline: Optional[str] = None):
        self.path = Path(path)
        self.what = what
        self._good = 0  # bytes on disk that end with a whole line
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            if self.path.is_symlink() and (not self.path.exists() or self.path.is_file()):
                self.path.unlink()
            if not self.path.is_symlink():
                flags |= getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags, 0o666)
            self._regular = stat.S_ISREG(os.fstat(fd).st_mode)  # a pipe or a terminal cannot be cut back
        except OSError as exc:
            raise self._error(exc) from None
        self.file = os.fdopen(fd, "w", encoding="utf-8", newline=newline)

    def _error(self, exc: Union[OSError, str]):
        from .errors import OutputError

        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        return OutputError(f"cannot write {self.what} {self.path}: {reason}")

    def write(self, text: str) -> None:
        """Append ``text`` (whole lines) and flush it to the file; on failure, cut the file back to
        the lines written before and raise the one-line error (the file is closed then)."""
        if self.file.closed:
            raise self._error("an earlier write failed")
        try:
            self.file.write(text)
            self.file.flush()
        except OSError as exc:
            self._abandon()
            raise self._error(exc) from None
        self._good += len(text.encode("utf-8"))

    def _abandon(self) -> None:
        """Close without the unwritten rest (its buffer may hold half a line), then cut back."""
        with contextlib.suppress(OSError, ValueError):
            self.file.close()
        if self._regular:
            with contextlib.suppress(OSError, ValueError):
                os.truncate(self.path, self._good)

    def close(self) -> None:
        if self.file.closed:
            return
        try:
            self.file.close()
        except OSError as exc:
            self._abandon()
            raise self._error(exc) from None


def write_text(path: PathLike, text: str, replace: bool = True) -> None:
    """:func:`write_bytes` of ``text`` in UTF-8."""
    write_bytes(path, text.encode("utf-8"), replace)


def cannot_write(path: PathLike, reason: str):
    """The :class:`~fer_edge.errors.InputError` (exit 3) of an output that could not be written
    whole, of which nothing was left (what every writer here guarantees)."""
    from .errors import InputError

    return InputError(f"cannot write {path}: {reason}; nothing was left under that name")


def output_text(path: PathLike, text: str) -> None:
    """:func:`write_text` of a report the user asked for: a failure is one
    :class:`~fer_edge.errors.InputError` naming the file (exit 3), and nothing is left under its name."""
    try:
        write_text(path, text)
    except OSError as exc:
        raise cannot_write(path, exc.strerror or str(exc)) from None


#: What file systems say when a write cannot go on (some writers, torch's and protobuf's, wrap the
#: OSError in another exception and keep only its text).
_WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EIO)


#: What file systems say when the output's folder is missing or cannot hold files (/proc, a folder removed
#: during the run): a write failure only when said of the output itself or of a temporary file beside it,
#: since the same words about another file name an input that is missing (the caller's error to report).
_NO_PLACE = (errno.ENOENT, errno.ENOTDIR)


def write_failure(exc: BaseException, path: PathLike):
    """An :class:`~fer_edge.errors.InputError` (exit 3) naming ``path`` when ``exc`` is the file
    system refusing a write (full disk, quota, file size limit, read-only, permission, no such folder),
    else None: such a failure is the output's, not the model's."""
    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, OSError) and (e.errno in _WRITE_FAILURES or (e.errno in _NO_PLACE and _said_of(e, path))):
            return cannot_write(path, e.strerror or str(e))
    text = str(exc)
    for code in _WRITE_FAILURES:
        if os.strerror(code) in text:
            return cannot_write(path, os.strerror(code))
    return None


def _said_of(exc: OSError, path: PathLike) -> bool:
    """Whether ``exc`` is about ``path`` or a hidden temporary file beside it (the writers here name theirs
    ``.STEM...``: :func:`open_atomic`, :func:`temp_beside`)."""
    p = Path(path)
    for name in (exc.filename, exc.filename2):
        if not isinstance(name, (str, bytes, os.PathLike)):
            continue
        f = Path(os.fsdecode(name))
        if f == p or (f.parent == p.parent and f.name.startswith(".") and p.stem[:60] in f.name):
            return True
    return False


def finish(tmp: PathLike, path: PathLike, replace: bool = True) -> None:
    """Give the complete file ``tmp`` the name ``path`` (same folder), as :func:`write_bytes` does."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path, follow_symlinks=False)  # fails with EEXIST, atomically, if path exists
    except OSError as exc:
        if exc.errno in (errno.EEXIST,):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        # a file system without hard links (FAT, some network shares): create exclusively, copy
        with open(tmp, "rb") as src, open(path, "xb") as dst:
            dst.write(src.read())
    os.unlink(tmp)


__all__ = ["cannot_write", "LineFile", "open_atomic", "write_bytes", "current_umask", "write_text", "temp_beside", "FIGURE_SUFFIXES", "use_suffix", "figure_format", "save_figure", "output_text", "write_failure", "finish"]
