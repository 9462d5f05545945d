"""No command destroys a user's file.

``--save-annotated DIR`` names its files after the inputs, so it may never write over an input
or over a file that was in DIR before the run (``--overwrite`` allows the latter only): the
command stops before it writes anything, exit 2, one line naming the file. Outputs the user
names (``webcam --output``, ``--jsonl``, ``--csv``, ``--plot``) are replaced
when they exist, their ``--help`` says so, and none may be one of the inputs.
Every test checks the files' bytes afterwards, not just the exit code.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import build_parser, main
from fer_edge.errors import UsageError
from fer_edge.cli.exitcodes import EXIT_OK, EXIT_USAGE

from fixtures_runtime import make_face_video, sample_bgr, sample_image, synthetic_background  # noqa: F401


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def photos(tmp_path, sample_image, sample_bgr):  # noqa: F811
    """photos/a.jpg (the sample), photos/sub/a.jpg (mirrored: same name), photos/b.png."""
    import cv2

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shutil.copyfile(sample_image, root / "a.jpg")
    cv2.imwrite(str(root / "sub" / "a.jpg"), cv2.flip(sample_bgr, 1))
    canvas = synthetic_background((480, 400))
    canvas[40:360, 80:400] = sample_bgr
    cv2.imwrite(str(root / "b.png"), canvas)
    return root


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("fer-edge: error:")]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    return lines[0]


# ---------------------------------------------------------------------------- --save-annotated
def test_annotated_into_the_input_folder_is_refused(photos, capsys):
    before = _snapshot(photos)
    code = main(["infer", str(photos), "--save-annotated", str(photos), "-q"])
    assert code == EXIT_USAGE
    line = _one_line_error(capsys.readouterr().err)
    assert "would overwrite the input" in line and str(photos) in line
    assert _snapshot(photos) == before, "an input file was changed or a file was added"


def test_overwrite_never_applies_to_inputs(photos, capsys):
    before = _snapshot(photos)
    assert main(["infer", str(photos / "a.jpg"), "--save-annotated", str(photos), "--overwrite", "-q"]) == EXIT_USAGE
    assert str(photos / "a.jpg") in _one_line_error(capsys.readouterr().err)
    assert _snapshot(photos) == before


def test_annotated_through_a_symlinked_folder_is_refused(photos, tmp_path, capsys):
    link = tmp_path / "link-to-photos"
    os.symlink(photos, link, target_is_directory=True)
    before = _snapshot(photos)
    assert main(["infer", str(photos / "b.png"), "--save-annotated", str(link), "-q"]) == EXIT_USAGE
    assert _snapshot(photos) == before


def test_hard_linked_input_is_not_overwritten(photos, tmp_path, capsys):
    """out/b.png is another name of the input file photos/b.png: writing it would change the input."""
    out = tmp_path / "out"
    out.mkdir()
    os.link(photos / "b.png", out / "b.png")
    before = _snapshot(photos)
    assert main(["infer", str(photos / "b.png"), "--save-annotated", str(out), "--overwrite", "-q"]) == EXIT_USAGE
    assert "would overwrite the input" in _one_line_error(capsys.readouterr().err)
    assert _snapshot(photos) == before


def test_fresh_folder_gets_every_image_under_its_own_name(photos, tmp_path, sample_bgr, capsys):  # noqa: F811
    import cv2

    out = tmp_path / "annotated"
    before = _snapshot(photos)
    assert main(["infer", str(photos), "--save-annotated", str(out), "-q"]) == EXIT_OK
    assert _snapshot(photos) == before
    # the folder's layout is kept: photos/sub/a.jpg is drawn into annotated/sub/a.jpg
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["a.jpg", "b.png", "sub/a.jpg"]
    ann = cv2.imread(str(out / "a.jpg"))
    assert ann.shape == sample_bgr.shape
    assert np.abs(ann.astype(int) - sample_bgr.astype(int)).max() > 100, "no box drawn on the sample face"


def test_second_run_into_the_same_folder_is_refused_then_overwrite_replaces(photos, tmp_path, capsys):
    out = tmp_path / "annotated"
    assert main(["infer", str(photos), "--save-annotated", str(out), "-q"]) == EXIT_OK
    capsys.readouterr()
    (out / "b.png").write_bytes(b"the user's own file, not ours")
    before = _snapshot(out)
    assert main(["infer", str(photos), "--save-annotated", str(out), "-q"]) == EXIT_USAGE
    cap = capsys.readouterr()
    line = _one_line_error(cap.err)
    assert "existed before this run" in line and "--overwrite" in line and "(and 2 more)" in line
    assert cap.out == "", "nothing may be processed or printed before the refusal"
    assert _snapshot(out) == before

    assert main(["infer", str(photos), "--save-annotated", str(out), "--overwrite", "-q"]) == EXIT_OK
    assert (out / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "--overwrite must replace the file"


def test_demo_refuses_to_replace_its_earlier_copy(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--save-annotated", str(out), "-q"]) == EXIT_OK
    first = _snapshot(out)
    assert list(first) == ["sample_face.jpg"]
    assert main(["demo", "--save-annotated", str(out), "-q"]) == EXIT_USAGE
    assert _snapshot(out) == first
    assert main(["demo", "--save-annotated", str(out), "--overwrite", "-q"]) == EXIT_OK


def test_write_new_file_never_replaces_a_file_that_appeared(tmp_path):
    from fer_edge.cli.outputs import write_new_file

    target = tmp_path / "x.png"
    target.write_bytes(b"appeared meanwhile")
    with pytest.raises(UsageError, match="appeared during this run"):
        write_new_file(target, b"ours")
    assert target.read_bytes() == b"appeared meanwhile"
    write_new_file(target, b"ours", overwrite=True)
    assert target.read_bytes() == b"ours"


# ---------------------------------------------------------------------------- webcam named outputs
@pytest.fixture()
def clip(tmp_path, sample_bgr) -> Path:  # noqa: F811
    path = tmp_path / "clip.mp4"
    make_face_video(path, sample_bgr, frames=6, size=(320, 240), face_scale=0.8)
    return path


def _webcam(clip: Path, *extra: str) -> int:
    return main(["webcam", "--source", str(clip), "--no-display", "-q", *extra])


WEBCAM_OUTPUTS = ["--output", "--jsonl", "--csv", "--plot"]


@pytest.mark.parametrize("option", WEBCAM_OUTPUTS)
def test_webcam_output_may_not_be_the_source(clip, option, capsys):
    before = clip.read_bytes()
    target = clip
    if option == "--plot":  # a plot must be named .png, .pdf, ...: the clip under such a name (a hard link)
        target = clip.with_name(f"{clip.stem}-link.png")
        if not target.exists():
            os.link(clip, target)
    assert _webcam(clip, option, str(target)) == EXIT_USAGE
    line = _one_line_error(capsys.readouterr().err)
    assert option in line and "one of the inputs" in line
    assert clip.read_bytes() == before


def test_webcam_output_may_not_be_the_model(clip, tmp_path, capsys):
    from fer_edge.runtime.default_model import default_model_path

    model = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), model)
    before = model.read_bytes()
    assert _webcam(clip, "--model", str(model), "--jsonl", str(model)) == EXIT_USAGE
    assert model.read_bytes() == before


@pytest.mark.parametrize("second", WEBCAM_OUTPUTS[1:])
def test_webcam_two_outputs_may_not_share_a_file(clip, tmp_path, second, capsys):
    first, name = ("--csv", "both.png") if second == "--plot" else ("--output", "both.avi")  # names each may take
    same = tmp_path / name
    assert _webcam(clip, first, str(same), second, str(tmp_path / "." / name)) == EXIT_USAGE
    assert "both name" in _one_line_error(capsys.readouterr().err)
    assert not same.exists()


def test_webcam_replaces_an_existing_named_output(clip, tmp_path, capsys):
    """Named outputs are documented to be replaced: an old events file is rewritten, not appended to."""
    events = tmp_path / "events.jsonl"
    events.write_text("old line\n")
    assert _webcam(clip, "--jsonl", str(events)) == EXIT_OK
    lines = events.read_text().splitlines()
    assert len(lines) == 6 and "old line" not in lines


def test_every_named_output_says_it_replaces_in_help():
    """Every named output of every verb (webcam --output, --jsonl, --csv, --plot): --help says the file is replaced."""
    from fer_edge.cli.outputs import NAMED_OUTPUTS, REPLACES

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    checked = []
    for verb, p in sub.choices.items():
        for action in p._actions:
            if action.dest in NAMED_OUTPUTS and action.option_strings:
                checked.append(f"{verb} {action.option_strings[0]}")
                assert action.help and action.help.endswith(REPLACES), f"{verb} {action.option_strings[0]}: {action.help!r}"
    assert {f"webcam {o}" for o in WEBCAM_OUTPUTS} <= set(checked)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_full_disk_under_stdout_is_one_line_exit_3(extra, sample_image):
    import subprocess
    import sys

    from conftest import cli_env

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "fer_edge", "infer", "-q", str(sample_image), *extra],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "fer-edge: error: cannot write an output (standard output or a file): No space left on device"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_under_the_webcam_csv_names_the_file(sample_bgr, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=6)
    assert main(["webcam", "-q", "--source", str(clip), "--no-display", "--csv", "/dev/full"]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == "fer-edge: error: cannot write CSV /dev/full: No space left on device"


def test_a_rerun_into_the_same_folder_says_how_to_write_next_to_or_over_it_before_the_model_loads(
        tmp_path, sample_image):  # noqa: F811
    from conftest import run_cli

    shutil.copyfile(sample_image, tmp_path / "a.jpg")
    out = tmp_path / "ann"
    first = run_cli("infer", str(tmp_path / "a.jpg"), "--save-annotated", str(out), "-q")
    assert first.returncode == 0, first.stderr
    before = (out / "a.jpg").read_bytes()
    again = run_cli("infer", str(tmp_path / "a.jpg"), "--save-annotated", str(out), "-v")
    assert again.returncode == EXIT_USAGE
    last = again.stderr.strip().splitlines()[-1]
    assert f"--save-annotated {out}-2" in last and "--overwrite" in last
    assert "loaded" not in again.stderr  # stopped before the model loaded
    assert (out / "a.jpg").read_bytes() == before
