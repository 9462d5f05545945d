"""`fer-edge infer` on video files (the webcam loop's per-frame pipeline), and sources that
belong to the other verb: one line naming it, exit 2, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import cli_env
from fer_edge.cli import main
from fer_edge.cli.exitcodes import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from fer_edge.labels import CLASSES
from fer_edge.runtime.tracking import iou_matrix

from fixtures_runtime import cnn_model, make_face_video, model_dir, sample_bgr, sample_image  # noqa: F401

FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory, sample_bgr):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    boxes = make_face_video(path, sample_bgr, frames=FRAMES, size=(640, 480), fps=15)
    return path, boxes


def _frames_in(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_infer_on_a_video_gives_every_frame_like_webcam(cnn_model, clip, tmp_path, capsys):
    video, truth = clip
    assert main(["infer", str(video), "--model", str(cnn_model), "--json", "--top-k", "2"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["images"] == [] and doc["errors"] == []
    (entry,) = doc["videos"]
    assert entry["path"] == str(video) and entry["error"] is None
    assert entry["summary"]["end"] == "eof" and entry["summary"]["frames"] == FRAMES
    assert [f["frame"] for f in entry["frames"]] == list(range(FRAMES))
    found = 0
    for rec, box in zip(entry["frames"], truth):
        for face in rec["faces"]:
            assert list(face["probabilities"]) == list(CLASSES) and len(face["top_k"]) == 2
            assert face["track_id"] == 1
            found += iou_matrix(np.array([face["box"]]), np.array([box]))[0, 0] > 0.5
    assert found >= FRAMES - 3  # the face is followed in (nearly) every frame
    faces = sum(len(r["faces"]) for r in entry["frames"])
    assert doc["summary"] == {"inputs": 1, "failed": 0, "faces": faces, "warning": None}

    # the same pipeline as `webcam --source FILE`: the same faces in the same frames
    events = tmp_path / "events.jsonl"
    assert main(["webcam", "--source", str(video), "--model", str(cnn_model), "--no-display",
                 "--jsonl", str(events)]) == EXIT_OK
    capsys.readouterr()
    webcam = [json.loads(line) for line in events.read_text().splitlines()]
    strip = [[{k: v for k, v in f.items() if k != "top_k"} for f in r["faces"]] for r in entry["frames"]]
    assert strip == [r["faces"] for r in webcam]


def test_infer_table_and_annotated_video_beside_images(cnn_model, clip, sample_image, tmp_path, capsys):
    video, _ = clip
    out_dir = tmp_path / "annotated"
    code = main(["infer", str(sample_image), str(video), "--model", str(cnn_model), "--save-annotated", str(out_dir)])
    assert code == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    video_rows = [r for r in lines if "clip.mp4#" in r]
    assert video_rows and all(r.split()[1] == "1" and r.split()[3] in CLASSES for r in video_rows)  # track 1
    assert any(sample_image.name in r for r in lines[2:-1])
    assert lines[-1].startswith("1 image(s), 1 video(s) (12 frames), ") and lines[-1].endswith(", 0 failed")
    assert sorted(p.name for p in out_dir.iterdir()) == ["clip.mp4", "sample_face.jpg"]
    assert _frames_in(out_dir / "clip.mp4") == FRAMES
    # a second run refuses to replace the annotated video (nothing written, exit 2)
    assert main(["infer", str(video), "--model", str(cnn_model), "--save-annotated", str(out_dir)]) == EXIT_USAGE
    assert "existed before this run" in capsys.readouterr().err


def test_unreadable_and_missing_videos_are_input_errors(cnn_model, clip, tmp_path, capsys):
    video, _ = clip
    assert main(["infer", str(tmp_path / "none.mp4"), "--model", str(cnn_model)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"fer-edge: error: video not found: {tmp_path / 'none.mp4'}"
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\x00" * 1000)
    assert main(["infer", str(video), str(junk), "--model", str(cnn_model), "--json"]) == EXIT_PARTIAL
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["videos"][1]["summary"] is None and "cannot open video" in doc["videos"][1]["error"]
    assert doc["summary"]["failed"] == 1 and "1 of 2 inputs failed" in cap.err and "Traceback" not in cap.err


@pytest.mark.parametrize("source,hint", [
    ("0", "fer-edge: error: 0 is a camera index: use `fer-edge webcam --source 0`"),
    ("rtsp://127.0.0.1:9/live", "fer-edge: error: rtsp://127.0.0.1:9/live is a stream URL: use "
                                "`fer-edge webcam --source rtsp://127.0.0.1:9/live`"),
])
def test_infer_points_cameras_and_streams_to_webcam(source, hint, sample_image, tmp_path, capsys):
    # before any model is loaded: the model named here does not exist
    assert main(["infer", str(sample_image), source, "--model", str(tmp_path / "none.onnx")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(hint)


def test_webcam_points_images_to_infer(sample_image, tmp_path, capsys):
    assert main(["webcam", "--source", str(sample_image), "--model", str(tmp_path / "none.onnx"),
                 "--no-display"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fer-edge: error: {sample_image} is an image, not a video")
    assert f"`fer-edge infer {sample_image}`" in err[0]
    assert main(["webcam", "--source", str(sample_image.parent), "--no-display"]) == EXIT_USAGE
    assert "is a folder of images" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["infer", "webcam"])
def test_a_broken_video_gives_our_line_and_nothing_from_ffmpeg(command, tmp_path):
    # FFmpeg writes to the process's stderr itself ("[mov,mp4,...] moov atom not found"), past
    # Python: only a separate process shows whether it stays quiet.
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n")
    args = [command, str(bad)] if command == "infer" else [command, "--source", str(bad), "--no-display"]
    env = {k: v for k, v in cli_env().items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    proc = subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == EXIT_INPUT, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "onnxruntime provider" not in line]
    assert errors == [f"fer-edge: error: cannot open video {bad}: not a video, or a codec OpenCV cannot read"]


def test_a_pattern_collects_videos_as_well_as_images(cnn_model, clip, sample_image, tmp_path, capsys):  # noqa: F811
    """`infer 'clips/*.mp4'` said "no images match": a pattern matched image files only."""
    import shutil

    video, _ = clip
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copyfile(video, folder / "b.mp4")
    shutil.copyfile(sample_image, folder / "a.jpg")
    assert main(["infer", str(folder / "*.mp4"), "--model", str(cnn_model), "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert [v["path"] for v in doc["videos"]] == [str(folder / "b.mp4")] and doc["images"] == []
    assert main(["infer", str(folder / "*"), "--model", str(cnn_model), "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert [i["path"] for i in doc["images"]] == [str(folder / "a.jpg")]
    assert [v["path"] for v in doc["videos"]] == [str(folder / "b.mp4")]
