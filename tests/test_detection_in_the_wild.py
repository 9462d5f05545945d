"""End to end: with no options, infer and webcam find moved, scaled, tilted and several
faces (generated from the real sample photo), and a run that finds no face says so."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fer_edge.runtime.tracking import iou_matrix

from conftest import cli_env
from fixtures_clips import crowd_scene, make_wild_clip, place_face
from fixtures_runtime import sample_bgr, sample_image, synthetic_background  # noqa: F401


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)


def _matched(found_boxes, truth, threshold: float = 0.3) -> bool:
    b = np.asarray(found_boxes, dtype=np.float64).reshape(-1, 4)
    return bool(len(b)) and float(iou_matrix(b, np.array([truth])).max()) >= threshold


@pytest.fixture(scope="module")
def wild_clip(tmp_path_factory, sample_bgr):
    """120 frames, 640x480: the face moves across, its size swings 40..120 px, it tilts +-20 degrees."""
    path = tmp_path_factory.mktemp("clips") / "wild.mp4"
    return path, make_wild_clip(path, sample_bgr, frames=120, sides=(40, 120), max_angle=20)


@pytest.mark.slow
def test_webcam_defaults_find_a_moving_40px_and_up_face_in_95_percent_of_frames(wild_clip, tmp_path):
    """`fer-edge webcam` with default settings (only the outputs named), on the generated clip."""
    path, truths = wild_clip
    events = tmp_path / "events.jsonl"
    r = _cli("webcam", "--source", str(path), "--no-display", "--jsonl", str(events), "--json", "-q")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["warning"] is None
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert len(lines) == len(truths) == 120
    hits = sum(_matched([f["box"] for f in rec["faces"]], truths[rec["frame"]]) for rec in lines)
    assert hits >= 0.95 * len(truths), f"the face was found in {hits} of {len(truths)} frames"
    wrong = sum(len(rec["faces"]) > 1 for rec in lines)
    assert wrong <= 2, f"{wrong} frames report more than the one face"


def test_infer_with_no_options_finds_tilted_small_and_several_faces(tmp_path, sample_bgr):
    import cv2

    tilted = synthetic_background((640, 480))
    t_box = place_face(tilted, sample_bgr, (320, 240), 100, 25)
    small = synthetic_background((640, 480))
    s_box = place_face(small, sample_bgr, (400, 200), 40, 0)
    crowd, c_boxes = crowd_scene(sample_bgr)
    for name, img in (("tilted", tilted), ("small", small), ("crowd", crowd)):
        cv2.imwrite(str(tmp_path / f"{name}.png"), img)
    r = _cli("infer", str(tmp_path / "tilted.png"), str(tmp_path / "small.png"), str(tmp_path / "crowd.png"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["detector"] == "yunet" and doc["summary"]["warning"] is None
    by_name = {p["path"].rsplit("/", 1)[-1]: [f["box"] for f in p["faces"]] for p in doc["images"]}
    assert len(by_name["tilted.png"]) == 1 and _matched(by_name["tilted.png"], t_box)
    assert len(by_name["small.png"]) == 1 and _matched(by_name["small.png"], s_box)
    assert len(by_name["crowd.png"]) == 6 and all(_matched(by_name["crowd.png"], b) for b in c_boxes)
    # the Haar cascade (the old default) misses the tilted face
    r = _cli("infer", str(tmp_path / "tilted.png"), "--detector", "haar", "--json", "-q")
    assert json.loads(r.stdout)["images"][0]["faces"] == []


def test_infer_without_any_face_warns_and_says_what_to_change(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "wall.png"), synthetic_background((320, 240)))
    r = _cli("infer", str(tmp_path / "wall.png"))
    assert r.returncode == 0  # an image without a face is a result (README: exit codes)
    assert "no face found" in r.stdout
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("fer-edge: warning:")]
    assert len(warning) == 1 and "YuNet" in warning[0] and "--no-detect" in warning[0]
    r = _cli("infer", str(tmp_path / "wall.png"), "--detector", "haar", "--json", "-q")
    assert "--detector yunet" in json.loads(r.stdout)["summary"]["warning"]


def test_a_stream_without_any_face_warns(tmp_path):
    import cv2

    path = tmp_path / "wall.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    bg = synthetic_background((640, 480))
    for _ in range(20):
        w.write(bg)
    w.release()
    r = _cli("webcam", "--source", str(path), "--no-display", "--json", "--detect-scale", "0.5")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == 20 and summary["frames_with_faces"] == 0
    assert "no face found in any of the 20 frames" in summary["warning"]
    assert "--detect-scale 1" in summary["warning"]  # what to change
    assert "fer-edge: warning: no face found" in r.stderr
    # a video file is detected at full scale by default: then the scale is not what to change
    full = json.loads(_cli("webcam", "--source", str(path), "--no-display", "--json").stdout)
    assert "no face found in any of the 20 frames" in full["warning"] and "--detect-scale" not in full["warning"]


@pytest.mark.slow
def test_webcam_defaults_keep_a_40px_tilting_face_in_95_percent_of_frames(tmp_path, sample_bgr):
    """The smallest face the runtime promises to find, all the time: 40 px in 640x480, moving, tilting +-20 degrees."""
    from fer_edge.cli import build_parser
    from fer_edge.cli.options import build_predictor
    from fer_edge.runtime.pipeline import LIVE
    from fer_edge.runtime.stream import StreamOptions, run_stream

    path = tmp_path / "small.mp4"
    truths = make_wild_clip(path, sample_bgr, frames=120, sides=(40, 40), max_angle=20)
    args = build_parser().parse_args(["webcam", "--source", str(path), "--no-display", "-q"])
    events = tmp_path / "events.jsonl"
    # the clip stands for a camera: the live settings (half-scale detection), not a file's
    opts = StreamOptions(detect_every=args.detect_every, detect_scale=args.detect_scale or LIVE.detect_scale,
                         min_hits=args.min_hits, jsonl=events)
    summary = run_stream(build_predictor(args, stream=True), str(path), opts)
    assert summary.frames == 120 and summary.warning is None
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    hits = sum(_matched([f["box"] for f in rec["faces"]], truths[rec["frame"]]) for rec in lines)
    assert hits >= 0.95 * len(truths), f"the 40 px face was found in {hits} of {len(truths)} frames"


@pytest.mark.parametrize("content", [None, "a,b\n"])
def test_the_in_the_wild_script_says_what_is_wrong_with_its_data_in_one_line(content, tmp_path):
    # scripts/eval_in_the_wild.py reads ../shared by default; elsewhere (or with a bad --data) it
    # must say so in one line, not a FileNotFoundError traceback
    from conftest import REPO_ROOT

    data = tmp_path / "faces.csv"
    if content is not None:
        data.write_text(content)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "eval_in_the_wild.py"), "--data", str(data)],
                          capture_output=True, text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {data}"), proc.stderr
