"""How the CLI words what the library says: a :class:`~fer_edge.remedy.Remedy` as its flag.

The library names settings by their Python keyword (``detect_scale``); :data:`FLAGS` maps each to
the flag that sets it, once. :func:`say` is the one line an error becomes on stderr.
"""
from __future__ import annotations

from typing import Iterable, Optional

from ..errors import FerEdgeError, printable
from ..remedy import ANY, Remedy, words

#: The flag of each setting a remedy can name, and the metavar of its value (None: a switch).
FLAGS: dict[str, tuple[str, Optional[str]]] = {
    "detector": ("--detector", "NAME"),
    "detector_model": ("--detector-model", "PATH"),
    "detect_scale": ("--detect-scale", "F"),
    "detect_every": ("--detect-every", "N"),
    "no_detect": ("--no-detect", None),
    "min_hits": ("--min-hits", "N"),
    "max_pixels": ("--max-pixels", "N"),
    "model": ("--model", "PATH"),
}


def flag_words(remedy: Remedy) -> Optional[str]:
    """``--detect-scale 1``, ``--no-detect``, ``--max-pixels N``, ``leaving out --detector-model``."""
    known = FLAGS.get(remedy.setting or "")
    if known is None:
        return None
    flag, metavar = known
    if remedy.value is None:
        return f"leaving out {flag}"
    if metavar is None:
        return flag
    return f"{flag} {metavar if remedy.value is ANY else remedy.value}"


def remedies(items: Iterable[Remedy]) -> str:
    """Remedies in the CLI's words, joined (``--detect-scale 1 (...); --no-detect (...)``)."""
    return words(items, flag_words)


#: The command that takes a source of each kind (:class:`fer_edge.runtime.sources.WrongSourceKind`).
VERB_FOR = {"images": "fer-edge infer {}", "streams": "fer-edge webcam --source {}"}


def message(exc: BaseException) -> str:
    """An error's text in the CLI's words: flags for its remedies, verbs for a source of another kind."""
    from ..runtime.sources import WrongSourceKind

    if isinstance(exc, WrongSourceKind):
        return f"{exc.text} is {exc.what}: use `{VERB_FOR[exc.goes_to].format(exc.text)}`"
    if isinstance(exc, FerEdgeError) and exc.remedies:
        return f"{exc.message}; try {remedies(exc.remedies)}"
    return str(exc)


def say(exc: BaseException) -> str:
    """The one line an error is on stderr (after ``fer-edge: error: ``), escaped."""
    return printable(message(exc))
