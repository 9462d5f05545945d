"""Output files of the CLI verbs: never one of the inputs, never a file the user did not name.

Two kinds of output, two rules:

- **Named outputs** (``webcam --output``, ``--jsonl``, ``--csv``, ``--plot``): the user names
  the file, so an existing file of that name is replaced, and the option's ``--help`` says
  so (:func:`replaces_help`). What is refused (:func:`check_named_outputs`, before any camera,
  video or model is opened): an output that is one of the command's inputs (the source video,
  the model, the detector model), two outputs naming the same file, a folder.
- **Derived outputs** (``infer --save-annotated DIR``): the names come from the inputs, so
  the user never saw them. Such a file may never replace an input, and replaces a file that
  existed before the run only with ``--overwrite``; otherwise the command stops before it
  processes anything, with one line naming the file (:func:`check_derived_outputs`), and the
  files are created with ``open(..., "xb")`` (:func:`write_new_file`) so that even a file that
  appears during the run is never replaced.

Both raise :class:`~fer_edge.errors.UsageError` (exit code 2: the command line asks for
something it must not do; nothing has been written).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from ..errors import UsageError
from ..atomic import cannot_write
from ..samefile import InputIndex, first_clash

PathLike = Union[str, Path]

#: appended to the help of every option that names a file to write
REPLACES = "; an existing file of that name is replaced (it may not be one of the inputs)"


def replaces_help(text: str) -> str:
    """``--help`` text of a named output: says that the file is replaced."""
    return text + REPLACES


def check_named_outputs(outputs: Mapping[str, Optional[PathLike]], inputs: Iterable[Optional[PathLike]]) -> None:
    """Refuse named outputs (``{"--output": path, "--jsonl": path}``; None = not asked for)
    that are one of ``inputs``, that name the same file as another output, or are folders
    (:func:`fer_edge.samefile.first_clash`, worded with the flags)."""
    from ..runtime.default_model import packaged_files

    shipped = packaged_files()  # never replaced either, whether or not the command reads them
    clash = first_clash(outputs, [*inputs, *map(str, shipped)], folders=True)
    if clash is None:
        return
    if clash.kind == "input":
        what = "a file fer-edge ships" if Path(str(clash.other)) in shipped else "one of the inputs"
        raise UsageError(f"{clash.name} {clash.path} is {what} ({clash.other}); writing it would destroy it: "
                         "choose another file")
    if clash.kind == "folder":
        raise UsageError(f"{clash.name} {clash.path} is a folder; it must name a file")
    raise UsageError(f"{clash.name} and {clash.other} both name {clash.path}; give each output its own file")


#: What a derived output's refusal adds for a verb that has ``--overwrite``.
OVERWRITE_HINT = "pass --overwrite to replace files from an earlier run"


def check_derived_outputs(option: str, targets: Sequence[PathLike], inputs: Iterable[PathLike],
                          overwrite: bool = False, remedy: str = "choose an empty folder",
                          overwrite_hint: Optional[str] = OVERWRITE_HINT) -> None:
    """Refuse, before anything is written, derived output files that are an input, or that
    existed before the run (unless ``overwrite``). The message names the first such file and
    counts the others; ``remedy`` is what to do instead (where ``option`` names a file, not a
    folder: "choose another file"), then ``overwrite_hint`` (None for a verb without ``--overwrite``)."""
    from ..runtime.default_model import packaged_files

    index = InputIndex([*inputs, *packaged_files()])  # the files fer-edge ships are never replaced either
    clash = [(t, hit) for t in targets if (hit := index.find(t)) is not None]
    if clash:
        t, hit = clash[0]
        more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
        raise UsageError(f"{option} would overwrite the input {hit} with {t}{more}; write the outputs into another folder")
    if overwrite:
        return
    existing = [t for t in targets if os.path.lexists(Path(t))]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UsageError(f"{option} would overwrite {existing[0]}, which existed before this run{more}; "
                         f"{remedy}" + (f", or {overwrite_hint}" if overwrite_hint else ""))


class AppearedDuringRun(UsageError):
    """A derived output's name was taken by another file while the run went on."""


def write_new_file(path: PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (:func:`fer_edge.atomic.write_bytes`): a file
    that exists (even one created a moment ago by someone else) is never replaced unless
    ``overwrite``, and a symbolic link of that name is replaced as a link, never followed."""
    from ..atomic import write_bytes

    p = Path(path)
    try:
        write_bytes(p, data, replace=overwrite)
    except FileExistsError as exc:
        raise AppearedDuringRun(f"not writing {p}: the file appeared during this run; nothing was replaced") from exc
    except OSError as exc:
        raise cannot_write(p, exc.strerror or str(exc)) from exc


#: ``argparse`` destinations of the named outputs a verb may have (those it lacks are skipped)
NAMED_OUTPUTS = ("output", "jsonl", "csv", "plot")
#: ``argparse`` destinations of the files a verb reads
NAMED_INPUTS = ("model", "detector_model", "source", "sources")


def named_outputs(args: object) -> dict[str, Optional[str]]:
    """``{"--output": path, "--jsonl": path, ...}`` for the named outputs set on ``args``."""
    return {f"--{d}": getattr(args, d) for d in NAMED_OUTPUTS if getattr(args, d, None)}


def named_inputs(args: object) -> list[str]:
    """The files ``args`` reads: model, detector model, and sources that are existing files
    (a camera index or a URL is not a file). The files fer-edge ships (the packaged model
    ``--model default`` names, the face detector it uses without ``--detector-model``) are added
    by :func:`check_named_outputs` itself."""
    found: list[str] = []
    for d in NAMED_INPUTS:
        value = getattr(args, d, None)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and str(v) and _is_file(Path(str(v)).expanduser()):
                found.append(str(v))
    return found


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the name itself is unusable (too long): whoever opens it says why."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def check_verb_outputs(args: object) -> None:
    """:func:`check_named_outputs` for a parsed command line: call it before opening anything."""
    check_named_outputs(named_outputs(args), named_inputs(args))
