"""Errors the CLI turns into one-line messages and meaningful exit codes.

Library code raises these instead of printing, so that the Python API and the CLI
agree on what went wrong; `fer_edge.cli.main` maps each class to its exit code.
"""
from __future__ import annotations

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


EXIT_OK = 0
EXIT_FAILURE = 1  # something failed that is not the user's input (a bug, an unexpected error)
EXIT_USAGE = 2  # bad command line (argparse uses 2 as well)
EXIT_INPUT = 3  # user data is missing, unreadable or malformed (CSV rows, images, videos)
EXIT_MODEL = 4  # model file missing, not a model, or of the wrong shape / architecture
EXIT_DEVICE = 5  # requested device (CUDA, camera, stream) unavailable or lost
EXIT_DEPENDENCY = 6  # an optional dependency (the [train] extra, say) is not installed
EXIT_PARTIAL = 7  # several inputs: the good ones were processed, some failed
EXIT_INTERRUPTED = 130  # Ctrl-C


class FerEdgeError(Exception):
    """Base class: the message is shown to the user as one line."""

    exit_code = EXIT_FAILURE


class InputError(FerEdgeError, ValueError):
    exit_code = EXIT_INPUT


class UsageError(FerEdgeError, ValueError):
    """The command line asks for something it must not do (an output that would overwrite an
    input or a file that existed before the run); raised before anything is written."""

    exit_code = EXIT_USAGE


class ModelError(FerEdgeError):
    exit_code = EXIT_MODEL


class DeviceError(FerEdgeError):
    exit_code = EXIT_DEVICE


class MissingDependencyError(FerEdgeError, ImportError):
    exit_code = EXIT_DEPENDENCY


def require(module: str, extra: str = "train"):
    """Import an optional dependency or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install the [{extra}] extra: pip install 'fer-edge[{extra}]'"
        ) from exc
