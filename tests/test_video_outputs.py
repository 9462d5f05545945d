"""What `fer-edge webcam` writes: the annotated video, JSONL, per-frame CSV and the timeline
plot; where they may go and what is said when they cannot."""
from __future__ import annotations

import os

import pytest

from fer_edge.cli import main

from fixtures_runtime import cnn_model, make_face_video, model_dir, sample_bgr, sample_image  # noqa: F401


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, sample_bgr):  # noqa: F811
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    make_face_video(path, sample_bgr, frames=12, size=(320, 240), fps=10, face_scale=0.9)
    return path


def _webcam(video, model, *extra) -> int:
    return main(["webcam", "--source", str(video), "--model", str(model), "--no-display", "-q", *extra])


def test_output_into_a_missing_folder_creates_it(short_video, cnn_model, tmp_path):  # noqa: F811
    out = tmp_path / "new" / "deeper" / "out.mp4"
    events = tmp_path / "other" / "ev.jsonl"
    assert _webcam(short_video, cnn_model, "--output", str(out), "--jsonl", str(events)) == 0
    assert out.stat().st_size > 0 and len(events.read_text().splitlines()) == 12


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_unwritable_output_names_the_os_reason_not_the_extension(short_video, cnn_model, capsys):  # noqa: F811
    assert _webcam(short_video, cnn_model, "--output", "/proc/nope.mp4") == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("fer-edge: error: cannot write video /proc/nope.mp4: ")
    assert ".avi" not in err and "No such file or directory" in err


def test_wrong_video_extension_is_named_before_anything_runs(short_video, cnn_model, tmp_path, capsys):  # noqa: F811
    assert _webcam(short_video, cnn_model, "--output", str(tmp_path / "out.mkv")) == 3
    assert "use a .mp4 or .avi file name" in capsys.readouterr().err
    assert not (tmp_path / "out.mkv").exists()
