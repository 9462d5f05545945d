"""argparse ``type=`` functions: every option value is checked where it is parsed.

A bad value then ends the way every command-line mistake ends: argparse's usage line,
``fer-edge <verb>: error: argument --x: ...`` and exit code 2, before any model, camera
or dataset is opened (and without a traceback). Where the library checks a value itself
(``Predictor(max_faces=...)``, ``margin``), the ``type=`` function calls that
check (:func:`library_checked`), so the rule is written once; these only make the CLI say it
first and say it as a usage error.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Optional

from ..atomic import use_suffix
from ..errors import excerpt, printable


def _quoted(text: str) -> str:
    """``text`` as a message quotes it: a short printable excerpt (no newline or terminal escape
    reaches the user's terminal, a pasted 100,000-character value is not repeated)."""
    return f"'{excerpt(text)}'"


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} expected, "
                                         f"got {_quoted(text)}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number expected, got {_quoted(text)}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """``type=`` for an integer >= ``low`` (``int_at_least(1)``: a count that must not be 0)."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # argparse shows the name in some messages
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)

#: The most ONNX Runtime threads --threads takes: a thread pool of 10,000 never lets the process
#: exit (measured), and more threads than cores only slow a 48x48 model down.
MAX_THREADS = 256


def thread_count(text: str) -> int:
    """``type=`` for ``--threads``: 1 to :data:`MAX_THREADS`."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_THREADS} (more threads than cores only slow "
                                         f"ONNX Runtime down), got {value}")
    return value


def float_range(low: float, high: Optional[float] = None, *, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """``type=`` for a float in ``[low, high]`` (either end open on request; ``high`` None: no limit)."""
    lo_s = "(" if low_open else "["
    hi_s = ")" if high_open else "]"
    where = f"in {lo_s}{low:g}, {high:g}{hi_s}" if high is not None else (
        f"greater than {low:g}" if low_open else f"at least {low:g}")

    def parse(text: str) -> float:
        value = float(_number(text, float))
        bad_low = value <= low if low_open else value < low
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            raise argparse.ArgumentTypeError(f"must be {where}, got {excerpt(text.strip())}")
        return value

    parse.__name__ = f"number {where}"
    return parse


positive_float = float_range(0.0, low_open=True)


def library_checked(kind: type, module: str, check: str) -> Callable[[str], Any]:
    """``type=`` for a number whose rule the library defines: ``module.check(value, name="")``
    returns the value or raises ValueError (the message argparse shows after the option's name).
    The rule is written once, in the library, and the CLI says it first, as a usage error."""

    def parse(text: str) -> Any:
        import importlib

        value = _number(text, kind)
        try:
            return getattr(importlib.import_module(module), check)(kind(value), name="")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(printable(str(exc))) from None

    parse.__name__ = check.replace("check_", "")
    return parse


max_faces = library_checked(int, "fer_edge.runtime.api", "check_max_faces")  # --max-faces
margin = library_checked(float, "fer_edge.runtime.api", "check_margin")  # --margin
max_pixels = library_checked(int, "fer_edge.runtime.api", "check_max_pixels")  # --max-pixels


def onnx_device(text: str) -> str:
    """``--device`` of the runtime verbs: syntax checked by :func:`fer_edge.runtime.providers.parse_device`.

    Whether the device is *present* is a device question (exit 5) answered when the model
    loads; a name that is no device at all is a usage error.
    """
    from ..errors import DeviceError
    from ..runtime.providers import parse_device

    try:
        parse_device(text)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(printable(str(exc))) from None
    return text


def detector_name(text: str) -> str:
    """``--detector``: one of the names :mod:`fer_edge.runtime.detect` builds (checked there, not copied here)."""
    from ..runtime.detect import check_detector_name

    try:
        return check_detector_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(printable(str(exc))) from None


def non_empty(text: str) -> str:
    """``type=`` for a path (or a source): an empty or blank value is a usage error. The verbs test
    ``if args.csv:`` and the path functions read ``""`` as the current folder, so ``--csv ''`` was
    silently no CSV and ``--save-annotated ''`` wrote into the current folder."""
    if not text.strip():
        blank = f" ({_quoted(text)})" if text else ""
        raise argparse.ArgumentTypeError(f"an empty path{blank}; name a file or folder")
    return text


non_empty.__name__ = "non-empty path"


def file_with_suffix(*suffixes: str) -> Callable[[str], str]:
    """``type=`` for an output file name that must end in one of ``suffixes`` (``.onnx``, ``.mp4``)."""
    wanted = tuple(x.lower() for x in suffixes)

    def parse(text: str) -> str:
        non_empty(text)
        if not text.lower().endswith(wanted):
            raise argparse.ArgumentTypeError(f"{_quoted(text)}: {use_suffix(wanted)}")
        return text

    parse.__name__ = f"{'/'.join(wanted)} file"
    return parse
