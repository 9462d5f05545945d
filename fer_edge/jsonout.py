"""Strict JSON for everything fer-edge writes: a non-finite number becomes ``null``.

Python's ``json`` writes NaN and Infinity as the bare words ``NaN`` / ``Infinity``, which are
not JSON: strict parsers (``jq``, browsers, most languages' standard libraries) reject the
whole document. A score that is not a number has no value to report, and ``null`` says so.
"""
from __future__ import annotations

import json
import math
from typing import Any, TextIO


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (numpy's too) replaced by ``None``, recursively."""
    if isinstance(obj, float):  # numpy.float64 is a float subclass
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return finite(obj.item())  # numpy scalars other than float64 (float32, int64)
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def dump(obj: Any, fp: TextIO, **kwargs: Any) -> None:
    """``json.dump`` that never writes NaN or Infinity."""
    fp.write(dumps(obj, **kwargs))
