"""The `fer-edge` command: one verb per task.

Each verb lives in its own module exposing ``register(subparsers)``; the module sets
``func`` on its parser and keeps heavy imports (onnxruntime, torch) inside that
function, so ``fer-edge --help`` is instant and never imports torch.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from typing import Iterator, Optional, Sequence

from .. import __version__
from ..errors import FerEdgeError, excerpt, printable
from .exitcodes import EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED, for_error
from .wording import say

# Order here is the order in `fer-edge --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "fer_edge.cli.infer_cmd",
    "fer_edge.cli.webcam_cmd",
    "fer_edge.cli.demo_cmd",
    "fer_edge.training.commands",
    "fer_edge.cli.data_cmd",
    "fer_edge.cli.info_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge",
        description="Facial expression recognition for the edge: train on FER2013, export to ONNX, "
        "and run on images, folders, videos and webcams with ONNX Runtime.",
    )
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside an existing module: show it
                raise
            continue  # verb not built yet in this checkout
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one verb; its exit code. Ctrl-C at any point, even while the verbs' modules are still
    importing (the first fraction of a second), is one line and exit 130, not a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("fer-edge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Optional[Sequence[str]]) -> int:
    try:  # a source tree without the compiled extension: one line that says what to run
        from .. import _native  # noqa: F401
    except FerEdgeError as exc:
        print(f"fer-edge: error: {say(exc)}", file=sys.stderr)
        return for_error(exc)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # as parse_args would, but with the verb's usage line, not the top level's
        verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (verbs.choices.get(args.command) or parser).error(f"unrecognized arguments: {excerpt(' '.join(extra))}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _sigterm_as_ctrl_c():
            code = args.func(args)
        sys.stdout.flush()  # a full disk under `> out.txt` shows here, while we can still say so
    except FerEdgeError as exc:
        print(f"fer-edge: error: {say(exc)}", file=sys.stderr)
        return for_error(exc)
    except KeyboardInterrupt:
        print("fer-edge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `fer-edge infer ... | head`
        return 0
    except OSError as exc:  # the system refused an output: a full disk, a folder we may not write to
        what = printable(str(exc.filename)) if exc.filename is not None else "an output (standard output or a file)"
        print(f"fer-edge: error: cannot write {what}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError:
        print("fer-edge: error: out of memory", file=sys.stderr)
        return EXIT_FAILURE
    return int(code or 0)


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, ``docker stop``, systemd) ends a command as Ctrl-C does: exit 130 with
    its outputs closed. (The webcam loop installs its own handler, which finishes the frame first.)"""
    term = getattr(signal, "SIGTERM", None)
    if term is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(term)

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(term, interrupt)
    try:
        yield
    finally:
        signal.signal(term, old if old is not None else signal.SIG_DFL)


def run() -> None:
    sys.exit(main())
