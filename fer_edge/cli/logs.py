"""Logging for the CLI: fer-edge's own messages on stderr, one plain line each.

Library code only logs to the ``fer_edge`` logger; the CLI verbs call
:func:`setup_cli_logging` so those lines (which provider runs, fallbacks) reach the user
on stderr, leaving stdout to the table or the ``--json`` document.
"""
from __future__ import annotations

import logging
import sys

_HANDLER_NAME = "fer-edge-cli"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest and callers replace it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        """Each line escaped (:func:`fer_edge.errors.printable`): a file name quoted in a message
        may hold a newline, a carriage return or a terminal escape, which must neither break the
        line nor drive the user's terminal."""
        from ..errors import printable

        return "\n".join(printable(line) for line in super().format(record).split("\n"))


def setup_cli_logging(verbose: int = 0, quiet: bool = False) -> logging.Logger:
    logger = logging.getLogger("fer_edge")
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    logger.setLevel(level)
    from ..runtime import quiet

    quiet.silence_native_stderr = level > logging.DEBUG  # the CLI owns this process's stderr
    if not any(getattr(h, "name", None) == _HANDLER_NAME for h in logger.handlers):
        handler = _StderrHandler()
        handler.name = _HANDLER_NAME
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
