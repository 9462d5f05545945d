"""The exit codes of every `fer-edge` verb: defined once, here.

The README's table and each verb's ``--help`` line are made from :data:`EXIT_CODES`
(``python scripts/doc_tables.py`` rewrites the README's; a test fails when it is stale). Which
error class and which ending of a stream mean which code is decided here too, so the library
(``fer_edge.runtime``) only says *what* happened.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..errors import DeviceError, InputError, MissingDependencyError, ModelError, UsageError
from ..runtime.imagesize import MAX_PIXELS


class Exit(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INPUT = 3
    MODEL = 4
    DEVICE = 5
    DEPENDENCY = 6
    PARTIAL = 7
    INTERRUPTED = 130


@dataclass(frozen=True)
class ExitCode:
    code: Exit
    short: str  # a few words, for a verb's --help line
    meaning: str  # the README's row


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(Exit.OK, "ok", "success (an image without a face is a result, not an error)"),
    ExitCode(Exit.FAILURE, "unexpected failure", "unexpected failure"),
    ExitCode(Exit.USAGE, "bad command line",
             "bad command line, including an output that would overwrite an input or a file that existed before the "
             "run (nothing is written; see `--save-annotated`, `--overwrite`)"),
    ExitCode(Exit.INPUT, "no readable input",
             "input missing, unreadable or malformed (CSV row, image, video), an image over `--max-pixels` "
             f"({MAX_PIXELS / 1e6:g} million by default), or an output that cannot be written (a missing folder, no permission, a full "
             "disk: nothing half-written is left)"),
    ExitCode(Exit.MODEL, "model problem",
             "model or checkpoint missing, invalid, of another architecture, or unable to run (a test face is run "
             "at load)"),
    ExitCode(Exit.DEVICE, "device problem",
             "device unavailable: CUDA asked for but absent, camera or stream cannot be opened or was lost, "
             "`--display` without a display"),
    ExitCode(Exit.DEPENDENCY, "optional dependency missing",
             "optional dependency missing (e.g. `fer-edge train` without the `[train]` extra)"),
    ExitCode(Exit.PARTIAL, "some inputs failed (the others were processed)",
             "several inputs: the good ones were processed, the others failed (listed)"),
    ExitCode(Exit.INTERRUPTED, "interrupted",
             "interrupted (Ctrl-C / SIGTERM); outputs are closed and complete, and `infer` still prints what it did"),
)

# Most specific first: UsageError and InputError are both ValueErrors.
_FOR_ERROR: tuple[tuple[type, Exit], ...] = (
    (UsageError, Exit.USAGE),
    (InputError, Exit.INPUT),
    (ModelError, Exit.MODEL),
    (DeviceError, Exit.DEVICE),
    (MissingDependencyError, Exit.DEPENDENCY),
)


def for_error(exc: BaseException) -> Exit:
    """The exit code of a command that ended with ``exc``."""
    for cls, code in _FOR_ERROR:
        if isinstance(exc, cls):
            return code
    return Exit.FAILURE


def for_ending(end: str) -> Exit:
    """The exit code of a stream that ended this way (one of ``fer_edge.runtime.capture.END_*``)."""
    from ..runtime.capture import END_EOF, END_INTERRUPTED, END_LOST, END_MAX_FRAMES, END_QUIT, END_TRUNCATED

    return {END_EOF: Exit.OK, END_MAX_FRAMES: Exit.OK, END_QUIT: Exit.OK, END_INTERRUPTED: Exit.INTERRUPTED,
            END_LOST: Exit.DEVICE, END_TRUNCATED: Exit.INPUT}.get(end, Exit.FAILURE)


def help_line(*codes: Exit) -> str:
    """``Exit codes: 0 ok, 3 no readable input, ...`` for a verb's description."""
    by_code = {e.code: e for e in EXIT_CODES}
    return "Exit codes: " + ", ".join(f"{int(c)} {by_code[c].short}" for c in codes) + "."


def markdown_table() -> str:
    """The README's table."""
    rows = ["| code | meaning |", "|---|---|"] + [f"| {int(e.code)} | {e.meaning} |" for e in EXIT_CODES]
    return "\n".join(rows) + "\n"


# The names the verbs and tests use (aliases of the one definition above).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INPUT = Exit.OK, Exit.FAILURE, Exit.USAGE, Exit.INPUT
EXIT_MODEL, EXIT_DEVICE, EXIT_DEPENDENCY, EXIT_PARTIAL, EXIT_INTERRUPTED = (
    Exit.MODEL, Exit.DEVICE, Exit.DEPENDENCY, Exit.PARTIAL, Exit.INTERRUPTED)
