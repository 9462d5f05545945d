"""One pipeline for every source and output (fer_edge/runtime/pipeline.py): a folder of images and
a video are frames through the same stages into the same sinks. What users see of it: a small
face found in a photo is found in that frame of a video file, `infer photos/ --csv` works, nested
folders keep their layout in --save-annotated, the frame rate is drawn only where asked."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.cli.exitcodes import EXIT_OK
from fer_edge.labels import CLASSES
from fer_edge.runtime.api import Predictor
from fer_edge.runtime.frames import ImageFrames, open_source
from fer_edge.runtime.pipeline import IMAGES, LIVE, VIDEO_FILE, Stages, run, stages_for
from fer_edge.runtime.timeline import FrameRows

from fixtures_clips import place_face
from fixtures_runtime import sample_bgr, sample_image, synthetic_background  # noqa: F401

SMALL = 20  # px: found at full scale, lost when the frame is halved first


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory, sample_bgr):
    """A 960x540 frame with a 220 px face and a 20 px one: as a PNG, and as a 10-frame video of it."""
    import cv2

    d = tmp_path_factory.mktemp("two")
    frame = synthetic_background((960, 540))
    place_face(frame, sample_bgr, (300, 270), 220)
    small = place_face(frame, sample_bgr, (760, 200), SMALL)
    cv2.imwrite(str(d / "two.png"), frame)
    w = cv2.VideoWriter(str(d / "two.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (960, 540))
    for _ in range(10):
        w.write(frame)
    w.release()
    return d, small


def _json(capsys, *args):
    assert main(["infer", "-q", "--json", *args]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def _has(faces, box) -> bool:
    x, y, w, h = box
    return any(abs(f["box"][0] + f["box"][2] / 2 - (x + w / 2)) < w and f["box"][2] < 3 * w for f in faces)


def test_a_small_face_found_in_a_photo_is_found_in_that_frame_of_the_video(two_faces, capsys):
    d, small = two_faces
    photo = _json(capsys, str(d / "two.png"))["images"][0]["faces"]
    assert len(photo) == 2 and _has(photo, small)
    (video,) = _json(capsys, str(d / "two.avi"))["videos"]
    confirmed = video["frames"][VIDEO_FILE.min_hits * VIDEO_FILE.detect_every:]  # once confirmed by the tracker
    assert confirmed and all(len(f["faces"]) == 2 and _has(f["faces"], small) for f in confirmed)
    # the live setting (half-scale detection) is what used to lose it
    (halved,) = _json(capsys, str(d / "two.avi"), "--detect-scale", str(LIVE.detect_scale))["videos"]
    assert not any(_has(f["faces"], small) for f in halved["frames"])


def test_infer_on_a_folder_writes_csv_and_jsonl(tmp_path, sample_image, capsys):  # noqa: F811
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copyfile(sample_image, photos / "a.jpg")
    shutil.copyfile(sample_image, photos / "sub" / "b.jpg")
    (photos / "broken.png").write_bytes(b"not a png")
    out_csv, out_jsonl = tmp_path / "faces.csv", tmp_path / "faces.jsonl"
    code = main(["infer", str(photos), "--csv", str(out_csv), "--jsonl", str(out_jsonl), "-q"])
    capsys.readouterr()
    assert code == 7  # the broken file failed, the others were read
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["path"] for r in rows] == [str(photos / "a.jpg"), str(photos / "sub" / "b.jpg")]
    assert list(rows[0])[:4] == ["path", "frame", "time", "track_id"] and list(rows[0])[-len(CLASSES):] == list(CLASSES)
    assert rows[0]["frame"] == "" and rows[0]["label"] == "happy"
    assert abs(sum(float(rows[0][c]) for c in CLASSES) - 1) < 1e-4
    lines = [json.loads(x) for x in out_jsonl.read_text().splitlines()]
    assert [line["path"] for line in lines] == sorted(str(p) for p in (photos / "a.jpg", photos / "broken.png",
                                                                    photos / "sub" / "b.jpg"))
    assert "error" in lines[1] and lines[1]["faces"] == [] and len(lines[0]["faces"]) == 1
    assert "frame" not in lines[0]  # an image has no frame index or time


def test_annotated_copies_keep_the_folder_layout_and_say_which_got_another_name(tmp_path, sample_image, capsys):  # noqa: F811,E501
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        shutil.copyfile(sample_image, tmp_path / d / "a.jpg")
    out = tmp_path / "ann"
    assert main(["infer", str(tmp_path / "x" / "a.jpg"), str(tmp_path / "y" / "a.jpg"), "--json",
                 "--save-annotated", str(out)]) == EXIT_OK
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert [i["annotated"] for i in doc["images"]] == [str(out / "a.jpg"), str(out / "a-2.jpg")]
    assert f"{tmp_path / 'y' / 'a.jpg'} is drawn into {out / 'a-2.jpg'} (a.jpg was taken by {tmp_path / 'x' / 'a.jpg'})" \
        in cap.err


def test_images_and_a_video_are_frames_of_one_loop(two_faces):
    d, _ = two_faces
    predictor = Predictor(None)
    images = open_source(str(d / "two.png"))
    assert isinstance(images, ImageFrames) and stages_for(images) == IMAGES
    rows = FrameRows()
    s = run(predictor, images, sinks=[rows])
    assert (s.frames, s.faces, s.end) == (1, 2, "eof") and {r.track_id for r in rows.rows} == {None}
    video = open_source(str(d / "two.avi"))
    assert stages_for(video) == VIDEO_FILE and not video.live
    rows = FrameRows()
    s = run(predictor, video, sinks=[rows])
    assert s.frames == 10 and {r.track_id for r in rows.rows} == {1, 2}


def test_stage_settings_are_checked_once_where_they_are_defined():
    with pytest.raises(ValueError, match="detect_scale must be in"):
        Stages(detect_scale=0.01).check()
    with pytest.raises(ValueError, match="needs track=True"):
        Stages(detect_every=2).check()
    assert LIVE.replace(detect_scale=None) == LIVE and LIVE.replace(detect_scale=1.0).detect_scale == 1.0


def test_the_frame_rate_is_drawn_only_where_asked(tmp_path, sample_bgr):  # noqa: F811
    import cv2

    from fer_edge.runtime.stream import StreamOptions, run_stream

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, sample_bgr.shape[1::-1])
    for _ in range(6):
        w.write(sample_bgr)
    w.release()
    predictor = Predictor(None)
    outs = {}
    for draw_fps in (True, False):
        out = tmp_path / f"out_{draw_fps}.avi"
        run_stream(predictor, str(video), StreamOptions(output=out, draw_fps=draw_fps))
        cap = cv2.VideoCapture(str(out))
        frames = [cap.read()[1] for _ in range(6)]
        cap.release()
        outs[draw_fps] = frames[-1]
    corner = (slice(0, 30), slice(0, 120))  # where the FPS text goes
    assert np.abs(outs[True][corner].astype(int) - outs[False][corner].astype(int)).max() > 60


def test_analyze_images_gives_a_table_of_a_folder(tmp_path, sample_image):  # noqa: F811
    import fer_edge

    pd = pytest.importorskip("pandas")
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copyfile(sample_image, photos / "a.jpg")
    shutil.copyfile(sample_image, photos / "sub" / "b.jpg")
    (photos / "c.png").write_bytes(b"not a png")
    out = tmp_path / "faces.csv"
    result = fer_edge.analyze_images(photos, csv=out)
    assert [r.ok for r in result.results] == [True, False, True] and len(result.failed) == 1
    df = result.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df["path"]) == [str(photos / "a.jpg"), str(photos / "sub" / "b.jpg")]
    assert list(df.columns) == ["path", "face", "x", "y", "w", "h", "label", "score", *CLASSES]
    assert (df["label"] == "happy").all() and np.allclose(df[list(CLASSES)].sum(axis=1), 1, atol=1e-4)
    assert [r["path"] for r in csv.DictReader(out.open())] == list(df["path"])
    (missing,) = fer_edge.analyze_images(tmp_path / "nothing.jpg").results  # a result, as in infer
    assert not missing.ok and missing.error == f"image not found: {tmp_path / 'nothing.jpg'}"
