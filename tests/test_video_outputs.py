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


def test_wrong_video_extension_is_a_usage_error(short_video, cnn_model, tmp_path, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exc:
        _webcam(short_video, cnn_model, "--output", str(tmp_path / "out.mkv"))
    assert exc.value.code == 2
    assert "use a .mp4 or .avi file name" in capsys.readouterr().err
    assert not (tmp_path / "out.mkv").exists()


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_has_one_row_per_frame_and_face_matching_the_jsonl(short_video, cnn_model, tmp_path):  # noqa: F811
    import json

    from fer_edge.labels import CLASSES

    frames_csv, events = tmp_path / "frames.csv", tmp_path / "ev.jsonl"
    assert _webcam(short_video, cnn_model, "--csv", str(frames_csv), "--jsonl", str(events), "--min-hits", "1") == 0
    rows = _csv_rows(frames_csv)
    expected = [(rec["frame"], rec["time"], face) for line in events.read_text().splitlines()
                for rec in [json.loads(line)] for face in rec["faces"]]
    assert len(rows) == len(expected) >= 10
    assert list(rows[0]) == ["frame", "time", "track_id", "x", "y", "w", "h", "label", "score", *CLASSES]
    for row, (frame, t, face) in zip(rows, expected):
        assert int(row["frame"]) == frame and float(row["time"]) == pytest.approx(t, abs=1e-4)
        assert [int(row[k]) for k in "xywh"] == face["box"] and int(row["track_id"]) == face["track_id"]
        assert row["label"] == face["label"] == max(CLASSES, key=lambda c: float(row[c]))
        assert sum(float(row[c]) for c in CLASSES) == pytest.approx(1.0, abs=1e-4)


def test_plot_is_a_png_of_the_timeline(short_video, cnn_model, tmp_path, capsys):  # noqa: F811
    pytest.importorskip("matplotlib")
    import cv2

    png = tmp_path / "plots" / "timeline.png"
    assert _webcam(short_video, cnn_model, "--plot", str(png)) == 0
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 900 and img.shape[0] >= 250
    assert "timeline plot written to" in capsys.readouterr().err


def test_plot_of_an_unknown_file_type_is_a_usage_error(short_video, cnn_model, tmp_path, capsys):  # noqa: F811
    for name in ("timeline", "timeline.txt"):
        with pytest.raises(SystemExit) as exc:
            _webcam(short_video, cnn_model, "--plot", str(tmp_path / name))
        assert exc.value.code == 2
        assert "use a .png or .jpg or .jpeg or .pdf or .svg file name" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_analyze_video_plot_checks_its_file_and_creates_its_folder(short_video, cnn_model, tmp_path):  # noqa: F811
    pytest.importorskip("matplotlib")
    import fer_edge
    from fer_edge.errors import InputError

    result = fer_edge.analyze_video(short_video, cnn_model, detector="haar", max_frames=4)
    for bad, message in ((tmp_path / "timeline", "use a .png"), (tmp_path / "t.txt", "use a .png"),
                         (tmp_path, "it is a folder")):
        with pytest.raises(InputError, match=message):
            result.plot(bad)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputError, match="a_file is a file, not a folder"):
        result.plot(tmp_path / "a_file" / "t.png")
    for name in ("new/deeper/t.png", "t.svg", "t.PDF"):
        assert result.plot(tmp_path / name) == tmp_path / name and (tmp_path / name).stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "new", "t.PDF", "t.svg"]  # no temporary file left


@pytest.mark.parametrize("max_frames", [0, -1, 2.5, "3", True])
def test_analyze_video_refuses_a_bad_max_frames_before_writing(short_video, cnn_model, tmp_path, max_frames):  # noqa: F811
    import fer_edge
    from fer_edge.errors import InputError

    with pytest.raises(InputError, match="max_frames must be a whole number of at least 1"):
        fer_edge.analyze_video(short_video, cnn_model, detector="haar", max_frames=max_frames,
                               csv=tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()


def test_plot_without_matplotlib_fails_before_processing(short_video, cnn_model, tmp_path):  # noqa: F811
    import subprocess
    import sys

    from conftest import cli_env

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'matplotlib':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fer_edge.cli import main\n"
        f"sys.exit(main(['webcam', '--source', {str(short_video)!r}, '--model', {str(cnn_model)!r}, '--no-display',"
        f" '--plot', {str(tmp_path / 't.png')!r}, '--csv', {str(tmp_path / 'f.csv')!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert r.returncode == 6
    assert r.stderr.strip().splitlines()[-1] == (
        "fer-edge: error: matplotlib is not installed; --plot needs it: pip install matplotlib "
        "(or the [eval] extra: pip install 'fer-edge[eval]')")
    assert not (tmp_path / "f.csv").exists()  # nothing was processed


def test_analyze_video_returns_the_same_rows_as_the_csv(short_video, cnn_model, tmp_path):  # noqa: F811
    import fer_edge
    from fer_edge.labels import CLASSES

    frames_csv = tmp_path / "frames.csv"
    result = fer_edge.analyze_video(short_video, cnn_model, detector="haar", csv=frames_csv)
    assert result.summary.end == "eof" and result.summary.frames == 12
    assert result.rows and all(isinstance(r, fer_edge.FrameFace) for r in result.rows)
    assert [r.to_dict() for r in result.rows] == [
        {k: (v if k == "label" else (int(v) if k in ("frame", "track_id", "x", "y", "w", "h") else float(v)))
         for k, v in row.items()} for row in _csv_rows(frames_csv)]
    pd = pytest.importorskip("pandas")
    df = result.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(result.rows)
    assert list(df.columns) == ["frame", "time", "track_id", "x", "y", "w", "h", "label", "score", *CLASSES]
    assert df["happy"].tolist() == pytest.approx([r.probabilities["happy"] for r in result.rows], abs=1e-6)


def test_analyze_video_of_a_missing_file_raises_input_error(tmp_path, cnn_model):  # noqa: F811
    import fer_edge
    from fer_edge.errors import InputError

    with pytest.raises(InputError, match="video not found"):
        fer_edge.analyze_video(tmp_path / "none.mp4", cnn_model, csv=tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()


def test_a_video_without_faces_gives_a_header_only_csv_and_no_plot(cnn_model, tmp_path, capsys):  # noqa: F811
    import cv2
    import numpy as np

    from fer_edge.runtime.timeline import columns

    video = tmp_path / "empty.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(5):
        w.write(np.full((120, 160, 3), 90, np.uint8))
    w.release()
    frames_csv, png = tmp_path / "f.csv", tmp_path / "t.png"
    extra = ["--plot", str(png)] if _has_matplotlib() else []
    assert _webcam(video, cnn_model, "--detector", "haar", "--csv", str(frames_csv), *extra) == 0
    assert frames_csv.read_text().splitlines() == [",".join(columns())]
    if extra:
        assert not png.exists() and f"no face was found: {png} not drawn" in capsys.readouterr().err


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
