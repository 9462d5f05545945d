"""Errors the CLI turns into one-line messages and meaningful exit codes.

Library code raises these instead of printing, so that the Python API and the CLI agree on
what went wrong. An error may carry :class:`~fer_edge.remedy.Remedy` objects (what to change);
``str(exc)`` words them as the Python API's keywords, the CLI as its flags. Which exit code each
class means is the CLI's business: :mod:`fer_edge.cli.exitcodes`.
"""
from __future__ import annotations

from typing import Iterable

from .remedy import Remedy, words

def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\n``, ``\\x1b``): a file
    name with a newline or a terminal escape must not break a one-line message or a table row,
    nor drive the user's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


#: The most characters of a user's input an error message quotes (:func:`excerpt`).
EXCERPT_CHARS = 60


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """:func:`printable` ``text``, cut to about ``limit`` characters (its start and end, the length
    said): an error about a 130,000-character data URI or a pasted base64 string names the input
    in one short line instead of repeating it."""
    shown = printable(text)
    if len(shown) <= limit:
        return shown
    head = max(1, limit * 2 // 3)
    tail = max(1, limit - head - 1)
    return f"{shown[:head]}...{shown[-tail:]} ({len(text):,} characters)"


class FerEdgeError(Exception):
    """Base class: the message is shown to the user as one line.

    ``remedies``: what the user can change, by setting (:mod:`fer_edge.remedy`); ``message`` is
    the text without them, for a front end that words them its own way."""

    def __init__(self, message: str = "", *args: object, remedies: Iterable[Remedy] = ()):
        self.message = str(message)
        self.remedies = tuple(remedies)
        super().__init__(f"{self.message}; try {words(self.remedies)}" if self.remedies else self.message, *args)


class InputError(FerEdgeError, ValueError):
    """The user's data is missing, unreadable or malformed (CSV rows, images, videos), or an output
    cannot be written."""


class OutputError(InputError):
    """An output that serves the whole run (``--csv``, ``--jsonl``) cannot be written: unlike one
    input's annotated copy, it stops the run (exit 3, as an :class:`InputError`)."""


class UsageError(FerEdgeError, ValueError):
    """The command line asks for something it must not do (an output that would overwrite an
    input or a file that existed before the run); raised before anything is written."""


class ModelError(FerEdgeError):
    """A model or checkpoint is missing, invalid, of another architecture or unable to run."""


class DeviceError(FerEdgeError):
    """A device asked for (CUDA, a camera, a stream, a display) is unavailable or was lost."""


class MissingDependencyError(FerEdgeError, ImportError):
    """An optional dependency (the [train] extra, matplotlib, pandas) is not installed."""


def require(module: str, extra: str = "train"):
    """Import an optional dependency or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install the [{extra}] extra: pip install 'fer-edge[{extra}]'"
        ) from exc
