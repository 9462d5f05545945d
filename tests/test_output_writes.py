"""How outputs are written: whole or not at all, never through a planted link, and a batch that
keeps what it did.

Each was reproduced before the fix: ``--save-annotated DIR --overwrite`` followed a symbolic
link planted in DIR and replaced the file it pointed to; a write that failed half way (a full
disk) left a truncated file that blocked the next run; a file that appeared in DIR during a run
aborted the whole batch; Ctrl-C during ``infer --json`` printed nothing of what was done; and
checking N outputs against N inputs was quadratic.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env
from fer_edge.cli.outputs import check_derived_outputs, write_new_file
from fer_edge.errors import InputError, UsageError
from fixtures_runtime import sample_bgr, sample_image  # noqa: F401


def _infer(*args: str, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_edge", "infer", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout, preexec_fn=preexec)


def test_overwrite_replaces_a_planted_link_never_what_it_points_to(tmp_path, sample_image):  # noqa: F811
    shutil.copyfile(sample_image, tmp_path / "a.jpg")
    out = tmp_path / "ann"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "a.jpg").symlink_to(victim)
    r = _infer("-q", str(tmp_path / "a.jpg"), "--save-annotated", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious"
    assert not (out / "a.jpg").is_symlink() and (out / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_without_overwrite_a_planted_link_is_refused_and_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "x.png"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="appeared during this run"):
        write_new_file(link, b"ours")
    assert link.is_symlink() and victim.read_text() == "precious"
    dangling = tmp_path / "y.png"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(UsageError):
        write_new_file(dangling, b"ours")
    assert not (tmp_path / "nowhere.txt").exists()


def _small_file_limit():  # in the child: writes past 2,000 bytes fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))


def test_a_write_that_fails_half_way_leaves_nothing_and_names_the_file(tmp_path, sample_image):  # noqa: F811
    shutil.copyfile(sample_image, tmp_path / "a.jpg")
    out = tmp_path / "ann"
    out.mkdir()
    r = _infer("-q", "--json", str(tmp_path / "a.jpg"), "--save-annotated", str(out), preexec=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert f"cannot write {out / 'a.jpg'}: File too large" in r.stderr.strip().splitlines()[-1]
    assert list(out.iterdir()) == []  # no truncated a.jpg, and no temporary file
    doc = json.loads(r.stdout)  # the result is still reported
    assert doc["images"][0]["faces"] and doc["errors"][0]["path"] == str(tmp_path / "a.jpg")
    r = _infer("-q", str(tmp_path / "a.jpg"), "--save-annotated", str(out))  # the next run is not blocked
    assert r.returncode == 0, r.stderr


def test_write_new_file_cleans_up_on_failure(tmp_path, monkeypatch):
    import fer_edge.atomic as atomic

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(InputError, match="No space left on device; nothing was left under that name"):
        write_new_file(tmp_path / "x.png", b"data" * 100)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_appears_mid_run_is_skipped_with_a_warning_and_the_batch_goes_on(tmp_path, sample_image, monkeypatch, capsys):  # noqa: F811,E501
    from fer_edge.cli import main
    import fer_edge.cli.outputs as outputs

    for name in ("a", "b", "c"):
        shutil.copyfile(sample_image, tmp_path / f"{name}.jpg")
    out = tmp_path / "ann"
    real = outputs.write_new_file

    def racing(target, data, overwrite=False):
        if Path(target).name == "b.jpg":
            Path(target).write_bytes(b"another run's file")
        return real(target, data, overwrite)

    monkeypatch.setattr(outputs, "write_new_file", racing)
    code = main(["infer", "-q", *(str(tmp_path / f"{n}.jpg") for n in "abc"), "--save-annotated", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "the file appeared during this run; nothing was replaced; skipped" in err
    assert (out / "b.jpg").read_bytes() == b"another run's file"
    assert (out / "a.jpg").stat().st_size > 1000 and (out / "c.jpg").stat().st_size > 1000


def test_ctrl_c_during_infer_json_still_prints_what_was_done(tmp_path, sample_image, monkeypatch, capsys):  # noqa: F811
    from fer_edge.cli import main
    from fer_edge.cli.exitcodes import EXIT_INTERRUPTED
    import fer_edge.runtime.sources as sources

    for name in ("a", "b", "c"):
        shutil.copyfile(sample_image, tmp_path / f"{name}.jpg")
    real = sources.read_image

    def interrupted_at_c(path, *a, **k):
        if str(path).endswith("c.jpg"):
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(sources, "read_image", interrupted_at_c)
    code = main(["infer", "-q", "--json", *(str(tmp_path / f"{n}.jpg") for n in "abc")])
    captured = capsys.readouterr()
    assert code == EXIT_INTERRUPTED
    doc = json.loads(captured.out)
    assert [Path(i["path"]).name for i in doc["images"]] == ["a.jpg", "b.jpg"]
    assert doc["summary"]["interrupted"] is True and doc["summary"]["processed"] == 2
    assert captured.err.strip().splitlines()[-2:] == [
        "fer-edge: stopped after 2 of 3 inputs; the results above are theirs", "fer-edge: interrupted"]


def test_checking_outputs_against_inputs_is_linear(tmp_path, monkeypatch):
    inputs = []
    for i in range(300):
        p = tmp_path / "in" / f"{i}.jpg"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
        inputs.append(p)
    targets = [tmp_path / "out" / f"{i}.jpg" for i in range(300)]
    calls = {"n": 0}
    real = Path.resolve

    def counting(self, *a, **k):
        calls["n"] += 1
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "resolve", counting)
    check_derived_outputs("--save-annotated", targets, inputs)
    assert calls["n"] <= 2 * 300 + 10  # once per input and once per output, not 300 x 300
    os.link(inputs[5], tmp_path / "out5.jpg")  # and it still finds an input under another name
    with pytest.raises(UsageError, match="would overwrite the input"):
        check_derived_outputs("--save-annotated", [tmp_path / "out5.jpg"], inputs)


def test_eval_on_a_full_disk_names_the_report_and_leaves_no_empty_one(fer_csv, tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "fer_edge", "eval", "--model", "default", "--data", str(fer_csv),
                        "--split", "PublicTest", "--out", str(out)], capture_output=True, text=True,
                       env=cli_env(), timeout=300, preexec_fn=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"fer-edge: error: cannot write {out / 'report.json'}: File too large; nothing was left under that name")
    assert [p.name for p in out.iterdir()] == []


@pytest.mark.parametrize("option", ["output", "csv"])
def test_analyze_video_refuses_to_write_over_its_own_input(tmp_path, sample_bgr, option):  # noqa: F811
    import hashlib

    import fer_edge
    from fixtures_runtime import make_face_video

    clip = tmp_path / "a.mp4"
    make_face_video(clip, sample_bgr, frames=4)
    before = hashlib.sha256(clip.read_bytes()).hexdigest()
    with pytest.raises(InputError, match=f"{option}=.* is the input .*a.mp4; writing it would destroy it"):
        fer_edge.analyze_video(clip, **{option: str(tmp_path / "." / "a.mp4")})
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == before
    with pytest.raises(InputError, match="csv and output both name"):
        fer_edge.analyze_video(clip, output=tmp_path / "o.mp4", csv=tmp_path / "o.mp4")


def test_webcams_written_to_lines_escape_control_characters(tmp_path, sample_bgr, capsys):  # noqa: F811
    from fer_edge.cli import main
    from fixtures_runtime import make_face_video

    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=4)
    events = tmp_path / "ev\x1b[2J\rts.jsonl"
    assert main(["webcam", "-q", "--source", str(clip), "--no-display", "--jsonl", str(events)]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    assert f"events written to {tmp_path}/ev\\x1b[2J\\rts.jsonl" in err
    assert events.exists()


@pytest.mark.parametrize("verb", ["webcam", "infer"])
def test_a_video_that_cannot_be_finished_is_an_error_and_leaves_nothing(tmp_path, sample_bgr, verb):  # noqa: F811
    from fixtures_runtime import make_face_video

    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    make_face_video(clip, sample_bgr, frames=30)
    out = tmp_path / "out"
    out.mkdir()
    args = (["webcam", "-q", "--source", str(clip), "--no-display", "--output", str(out / "o.mp4")] if verb == "webcam"
            else ["infer", "-q", str(clip), "--save-annotated", str(out)])
    r = subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True, env=cli_env(),
                       timeout=300, preexec_fn=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert "has no readable frame (a full disk?); nothing was left under that name" in r.stderr
    assert "written to" not in r.stderr
    assert list(out.iterdir()) == []


def test_a_finished_video_gets_its_name_and_replaces_a_planted_link_not_its_target(tmp_path, sample_bgr):  # noqa: F811
    import cv2

    from fer_edge.cli import main
    from fixtures_runtime import make_face_video

    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=6)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "o.mp4"
    out.symlink_to(victim)
    assert main(["webcam", "-q", "--source", str(clip), "--no-display", "--output", str(out)]) == 0
    assert victim.read_text() == "precious" and not out.is_symlink()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_on_a_full_disk_is_an_output_error_exit_3_not_a_model_error(tmp_path):
    pytest.importorskip("torch")
    from test_broken_models import _checkpoint

    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "fer_edge", "export", "--checkpoint", str(ckpt), "--out",
                        str(out / "m.onnx")], capture_output=True, text=True, env=cli_env(), timeout=300,
                       preexec_fn=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"fer-edge: error: cannot write {out / 'm.onnx'}: File too large; nothing was left under that name")
    assert list(out.iterdir()) == []


def test_train_on_a_full_disk_is_one_line_exit_3_naming_the_checkpoint(fer_csv, tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))  # the log fits, a checkpoint does not

    r = subprocess.run([sys.executable, "-m", "fer_edge", "train", "--quiet", "--data", str(fer_csv), "--model",
                        "fernet_s", "--epochs", "1", "--amp", "off", "--out", str(run)], capture_output=True,
                       text=True, env=cli_env(), timeout=300, preexec_fn=limit)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"fer-edge: error: cannot write {run}/")
    assert "File too large; nothing was left under that name" in r.stderr
    assert not [p for p in run.iterdir() if p.suffix == ".pt" or p.name.endswith(".tmp")]


def test_ctrl_c_while_the_verbs_are_still_loading_is_one_line_exit_130(monkeypatch, capsys):
    import fer_edge.cli as cli
    from fer_edge.cli.exitcodes import EXIT_INTERRUPTED

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["infer", "x.jpg"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "fer-edge: interrupted\n"


def test_an_annotated_video_whose_name_appears_during_the_run_is_kept(tmp_path, sample_bgr):  # noqa: F811
    from fer_edge.runtime.sinks import VideoSink

    target = tmp_path / "clip.mp4"
    sink = VideoSink(target, 15.0, replace=False)
    for _ in range(3):
        sink.write(sample_bgr)
    target.write_bytes(b"another run's video")
    with pytest.raises(InputError, match="appeared during this run; nothing was replaced"):
        sink.close()
    assert target.read_bytes() == b"another run's video"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_sigterm_while_a_silent_stream_is_opening_ends_at_once(tmp_path):
    """A stream that accepts the connection and never sends a byte: FFmpeg's open blocks for its
    10 s timeout, and the signal used to wait for it (9.9 s); the open now runs on its own thread."""
    import socket
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "webcam", "-q", "--no-display", "--source",
                             f"http://127.0.0.1:{srv.getsockname()[1]}/live.mjpg"],
                            stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        conn, _ = srv.accept()  # FFmpeg is connected and waiting for an answer
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=5)[1]  # well before the 10 s open timeout
    finally:
        proc.kill()
        srv.close()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "fer-edge: interrupted"


def test_csv_and_jsonl_replace_a_planted_link_never_what_it_points_to(tmp_path, sample_image):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    for name in ("faces.csv", "faces.jsonl"):
        (tmp_path / f"precious-{name}").write_text("keep me\n")
        (out / name).symlink_to(tmp_path / f"precious-{name}")
    r = _infer("-q", str(sample_image), "--csv", str(out / "faces.csv"), "--jsonl", str(out / "faces.jsonl"))
    assert r.returncode == 0, r.stderr
    for name in ("faces.csv", "faces.jsonl"):
        assert (tmp_path / f"precious-{name}").read_text() == "keep me\n"
        assert not (out / name).is_symlink()
    assert (out / "faces.csv").read_text().startswith("path,frame,time,track_id,x,y,w,h,label,score,")
    assert json.loads((out / "faces.jsonl").read_text())["faces"]


def test_csv_and_jsonl_on_a_full_disk_keep_whole_lines_only(tmp_path, sample_image):  # noqa: F811
    """Each is written and flushed a frame at a time (a killed run keeps what it did), so on a full
    disk it is cut back to its last whole line, not left ending in half a record."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(40):
        shutil.copyfile(sample_image, images / f"{i:02d}.jpg")
    for option, name in (("--csv", "f.csv"), ("--jsonl", "f.jsonl")):
        target = tmp_path / name
        r = _infer("-q", str(images), option, str(target), preexec=_small_file_limit)
        assert r.returncode == 3, r.stderr
        assert r.stderr.strip().splitlines()[-1].endswith(f"{target}: File too large")
        text = target.read_text()
        assert 0 < len(text) <= 2000 and text.endswith("\n")
        if name.endswith(".jsonl"):
            assert all(json.loads(line)["faces"] for line in text.splitlines())
        else:
            widths = {len(line.split(",")) for line in text.splitlines()}
            assert len(widths) == 1  # the header and every row whole


def test_no_output_may_replace_a_file_fer_edge_ships(tmp_path, sample_image):  # noqa: F811
    """`--model default` and the YuNet detector are read from the package, not named on the
    command line; an output naming them was written over them."""
    from fer_edge.runtime.default_model import default_model_path
    from fer_edge.runtime.detect.yunet import yunet_model_path

    for option, target in (("--csv", default_model_path()), ("--jsonl", yunet_model_path())):
        before = target.read_bytes()
        r = _infer("-q", str(sample_image), option, str(target))
        assert r.returncode == 2, r.stderr
        assert f"{option} {target} is a file fer-edge ships" in r.stderr
        assert target.read_bytes() == before


def test_ctrl_c_during_a_video_reports_the_frames_it_got(tmp_path, sample_image, sample_bgr):  # noqa: F811
    """The video in hand when Ctrl-C comes is in the JSON with the frames processed (its CSV and
    JSONL rows were already written), and counts as processed; the inputs after it do not."""
    import time

    from fixtures_runtime import make_face_video

    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=400, size=(320, 240))
    after = tmp_path / "after.jpg"
    shutil.copyfile(sample_image, after)
    events = tmp_path / "f.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "infer", "-q", "--json", "--jsonl", str(events),
                             str(sample_image), str(clip), str(after)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if events.exists() and sum('"frame"' in line for line in events.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    frame_lines = [json.loads(line) for line in events.read_text().splitlines() if '"frame"' in line]
    assert len(doc["videos"]) == 1 and 5 <= len(doc["videos"][0]["frames"]) == len(frame_lines) < 400
    assert doc["summary"]["interrupted"] is True and doc["summary"]["processed"] == 2
    assert "fer-edge: stopped after 2 of 3 inputs; the results above are theirs" in err


def test_jsonl_has_a_line_for_a_video_that_cannot_be_read(tmp_path, sample_image):  # noqa: F811
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    events = tmp_path / "f.jsonl"
    r = _infer("-q", str(sample_image), str(bad), "--jsonl", str(events))
    assert r.returncode == 7, r.stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [Path(x["path"]).name for x in lines] == [Path(sample_image).name, "bad.mp4"]
    assert lines[0]["faces"] and lines[1]["faces"] == [] and "bad.mp4" in lines[1]["error"]


def test_a_full_disk_stops_the_annotated_video_at_once(tmp_path, sample_bgr, monkeypatch, capsys):  # noqa: F811
    """OpenCV's writer only logs each failed frame; the free space is checked after every frame, so
    the run stops at the first one (it used to print a warning per frame to the end of the clip)."""
    from types import SimpleNamespace

    import fer_edge.runtime.sinks as sinks
    from fer_edge.cli import main
    from fixtures_runtime import make_face_video

    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=40, size=(320, 240))
    out = tmp_path / "out"
    out.mkdir()
    real = os.statvfs
    calls = []

    def filling(path):
        calls.append(path)
        st = real(path)
        full = len(calls) >= 5
        return SimpleNamespace(f_bavail=0 if full else st.f_bavail, f_bfree=0 if full else st.f_bfree)

    monkeypatch.setattr(sinks.os, "statvfs", filling)
    code = main(["webcam", "-q", "--source", str(clip), "--no-display", "--output", str(out / "o.mp4")])
    assert code == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"fer-edge: error: cannot write video {out / 'o.mp4'}: No space left on device; nothing was left under that name")
    assert len(calls) == 5 and list(out.iterdir()) == []


def test_demo_that_cannot_write_its_annotated_copy_exits_3(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fer_edge", "demo", "-q", "--save-annotated", str(tmp_path / "ann")],
                       capture_output=True, text=True, env=cli_env(), timeout=120, preexec_fn=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert "File too large" in r.stderr and list((tmp_path / "ann").iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_jsonl_into_a_pipe_or_a_link_to_one_is_written_not_replaced(tmp_path, sample_image):  # noqa: F811
    """`--jsonl /dev/stdout` and `--jsonl >(jq .)` name a pipe (through a link): it is written to."""
    import threading

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    link = tmp_path / "link.jsonl"
    link.symlink_to(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = _infer("-q", str(sample_image), "--jsonl", str(link))
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and json.loads(got[0])["faces"]


def test_a_full_disk_under_jsonl_during_a_video_stops_the_run_in_one_line(tmp_path, sample_bgr):  # noqa: F811
    """The shared --jsonl failing during a video was taken for a bad video, and the next write to the
    closed file was a traceback."""
    from fixtures_runtime import make_face_video

    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=60, size=(320, 240))
    after = tmp_path / "after.jpg"
    import cv2

    cv2.imwrite(str(after), sample_bgr)
    events = tmp_path / "f.jsonl"
    r = _infer("-q", str(clip), str(after), "--jsonl", str(events), preexec=_small_file_limit)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"fer-edge: error: cannot write JSONL {events}: File too large"
    assert events.read_text().endswith("\n")


def test_no_derived_output_may_replace_a_file_fer_edge_ships(tmp_path):
    from fer_edge.cli.outputs import check_derived_outputs
    from fer_edge.runtime.default_model import sample_image_path

    with pytest.raises(UsageError, match="would overwrite the input"):
        check_derived_outputs("--save-annotated", [sample_image_path()], [], overwrite=True)
