"""What the user can change when something fails or finds nothing, named by setting, not by flag.

The runtime says *which setting* to change (``detect_scale`` to 1, another ``detector``); the
front end words it: the CLI as its flag (``--detect-scale 1``, :mod:`fer_edge.cli.wording`),
the Python API as its keyword (``detect_scale=1``, :meth:`Remedy.words`). So ``fer_edge.runtime``
never names a command-line flag, and both front ends give the same advice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional


@dataclass(frozen=True)
class Remedy:
    """One change to try. ``setting``: the Python API's keyword (``detect_scale``, ``detector``,
    ``no_detect``, ``min_hits``, ``max_pixels``, ``model``, ``detector_model``), or None for advice
    about the scene (more light); ``value``: what to set it to (:data:`ANY`: the user's own value);
    ``why``: a few words on what it changes."""

    setting: Optional[str]
    value: Any = None
    why: str = ""

    def words(self, name_of: Optional[Callable[["Remedy"], Optional[str]]] = None) -> str:
        """The remedy in words: ``name_of(remedy)`` names the setting with its value (the CLI's
        flag); by default the API keyword, ``detect_scale=1``."""
        if self.setting is None:
            return self.why
        named = name_of(self) if name_of is not None else None
        if named is None:
            named = self.setting if self.value is ANY else f"{self.setting}={self.value!r}"
        return f"{named} ({self.why})" if self.why else named


#: A :attr:`Remedy.value` that means "a value of the user's choosing".
ANY = type("Any", (), {"__repr__": lambda self: "..."})()


def words(remedies: Iterable[Remedy], name_of: Optional[Callable[[Remedy], Optional[str]]] = None) -> str:
    """Remedies joined into one clause (``a; b; c``)."""
    return "; ".join(r.words(name_of) for r in remedies)
