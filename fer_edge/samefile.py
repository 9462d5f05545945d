"""Whether two paths are one file, and the library's refusal to write over its own inputs."""
from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Union

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


class InputIndex:
    """The inputs by resolved path and by inode, built once: finding whether a path is one of
    them is then a lookup, so checking N outputs against N inputs is linear (it was N x N
    ``resolve`` calls: 66 s for 1,000 inputs)."""

    def __init__(self, inputs: Iterable[object]):
        self.by_path: dict[Path, PathLike] = {}
        self.by_inode: dict[tuple[int, int], PathLike] = {}
        for inp in inputs:
            if not isinstance(inp, (str, os.PathLike)) or str(inp) == "":  # camera indices, URLs as ints
                continue
            p = Path(inp).expanduser()
            try:
                self.by_path.setdefault(p.resolve(), inp)
            except (OSError, RuntimeError):
                pass
            try:
                st = p.stat()
                self.by_inode.setdefault((st.st_dev, st.st_ino), inp)
            except OSError:
                pass

    def find(self, path: PathLike) -> Optional[PathLike]:
        """The input ``path`` is (the same path once resolved, or the same inode), or None."""
        p = Path(path).expanduser()
        try:
            hit = self.by_path.get(p.resolve())
            if hit is not None:
                return hit
        except (OSError, RuntimeError):
            pass
        try:
            st = p.stat()
        except OSError:
            return None
        return self.by_inode.get((st.st_dev, st.st_ino))


@dataclass(frozen=True)
class Clash:
    """Why an output may not be written: it is an ``input``, the same file as an ``other`` output,
    or a ``folder``. ``name`` names the output the way its caller does (a keyword, a flag)."""

    kind: str
    name: str
    path: PathLike
    other: Optional[object] = None  # the input, or the other output's name


def first_clash(outputs: Mapping[str, Optional[PathLike]], inputs: Iterable[object],
                folders: bool = False) -> Optional[Clash]:
    """The first of ``outputs`` (``{name: path}``; None = not asked for) that is one of ``inputs``
    (camera indices and URLs are skipped), names the same file as another output, or (with
    ``folders``) is a folder; None when every output may be written."""
    index = InputIndex(inputs)
    seen: dict[Path, str] = {}
    for name, path in outputs.items():
        if path is None or str(path) == "":
            continue
        p = Path(path).expanduser()
        hit = index.find(p)
        if hit is not None:
            return Clash("input", name, path, hit)
        if folders and p.is_dir():
            return Clash("folder", name, path)
        for other, other_name in seen.items():
            if same_file(p, other):
                return Clash("other", name, path, other_name)
        seen[p] = name
    return None


def refuse_overwriting_inputs(outputs: Mapping[str, Optional[PathLike]], inputs: Sequence[object]) -> None:
    """InputError when one of ``outputs`` (``{"output": path, "csv": path}``; None = not asked
    for) is one of ``inputs`` (paths; camera indices and URLs are skipped) or the same file as
    another output: the API refuses what the CLI refuses (:func:`first_clash`, worded with the
    API's keywords), before anything is opened."""
    clash = first_clash(outputs, inputs)
    if clash is None:
        return
    if clash.kind == "input":
        raise InputError(f"{clash.name}={str(clash.path)!r} is the input {clash.other}; writing it would destroy it: "
                         "choose another file")
    raise InputError(f"{clash.name} and {clash.other} both name {clash.path}; give each output its own file")
