"""Whether two paths are one file, and the library's refusal to write over its own inputs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from .errors import InputError

PathLike = Union[str, os.PathLike]


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` are the same file: the same path once resolved (``~``, ``..``,
    symbolic links), or the same inode (hard links, case-insensitive file systems)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):
        pass
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: Mapping[str, Optional[PathLike]], inputs: Sequence[object]) -> None:
    """InputError when one of ``outputs`` (``{"output": path, "csv": path}``; None = not asked
    for) is one of ``inputs`` (paths; camera indices and URLs are skipped) or the same file as
    another output: the API refuses what the CLI refuses, before anything is opened."""
    files = [i for i in inputs if isinstance(i, (str, os.PathLike)) and Path(i).expanduser().is_file()]
    seen: dict[str, PathLike] = {}
    for name, path in outputs.items():
        if path is None or str(path) == "":
            continue
        for inp in files:
            if same_file(path, inp):
                raise InputError(f"{name}={str(path)!r} is the input {inp}; writing it would destroy it: "
                                 "choose another file")
        for other, p in seen.items():
            if same_file(path, p):
                raise InputError(f"{name} and {other} both name {path}; give each output its own file")
        seen[name] = path
