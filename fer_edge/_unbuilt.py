"""One clear line instead of a traceback when the C++ extension was never built.

A fresh clone has ``fer_edge/`` but no compiled ``fer_edge._native``: without this,
``python -m fer_edge`` or ``pytest`` in the source tree fail deep inside an import with
``No module named 'fer_edge._native'``. The finder below sits at the very end of
``sys.meta_path``, so it is asked only after every real finder (the installed package,
scikit-build-core's editable redirect) has failed to find the extension.
"""
from __future__ import annotations

import sys

from .errors import FerEdgeError

NATIVE = "fer_edge._native"
MESSAGE = "fer_edge._native is not built: run `pip install -e .` in the source tree"


class NativeNotBuiltError(FerEdgeError, ImportError):
    """The extension is missing: an ImportError (optional fallbacks still catch it; not a
    ModuleNotFoundError, which `from fer_edge import _native` would swallow) that the
    CLI prints as one line (exit 1)."""


class _NativeMissingFinder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname == NATIVE:
            raise NativeNotBuiltError(MESSAGE)
        return None


def install() -> None:
    if not any(isinstance(f, _NativeMissingFinder) for f in sys.meta_path):
        sys.meta_path.append(_NativeMissingFinder())
