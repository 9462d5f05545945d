"""Inputs at the edges of what the command line takes: a named pipe or a socket where a video is
expected, Netpbm images over --max-pixels, empty option values and sources, control characters in
option values, GIF files in a folder, and sources of the wrong kind for a verb. Each is one line on
stderr and a documented exit code: never a hang, a traceback or a silent default."""
from __future__ import annotations

import os
import shutil
import socket
import sys

import cv2
import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.cli.exitcodes import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from fer_edge.errors import InputError, UsageError

from conftest import run_cli
from fixtures_runtime import cnn_model, model_dir, sample_image  # noqa: F401

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes (os.mkfifo) are POSIX only")


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# ------------------------------------------------------------------ 1. named pipes and sockets
@needs_fifo
@pytest.mark.parametrize("verb", ["webcam", "infer"])
def test_a_named_pipe_given_as_a_video_is_one_line_not_a_hang(verb, tmp_path, cnn_model):  # noqa: F811
    # OpenCV's open of a FIFO waited for a writer for ever, deaf to Ctrl-C and SIGTERM; the
    # subprocess's timeout keeps a regression from hanging the suite
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    argv = ["webcam", "--no-display", "--source", str(fifo)] if verb == "webcam" else ["infer", str(fifo)]
    done = run_cli(*argv, "--model", str(cnn_model), timeout=60)
    assert done.returncode == EXIT_INPUT, done.stderr
    assert _last_line(done.stderr) == f"fer-edge: error: is a named pipe (FIFO), not a video file: {fifo}"
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets")
def test_a_socket_is_named_as_one_before_opencv_sees_it(tmp_path):
    from fer_edge.runtime.capture import open_capture
    from fer_edge.runtime.sources import VIDEO, read_image, resolve_source

    with socket.socket(socket.AF_UNIX) as video, socket.socket(socket.AF_UNIX) as image:
        video.bind(str(tmp_path / "s.mp4"))
        image.bind(str(tmp_path / "s.png"))
        with pytest.raises(InputError, match=r"^is a socket, not a video file: .*s\.mp4$"):
            open_capture(resolve_source(str(tmp_path / "s.mp4"), default=VIDEO))
        with pytest.raises(InputError, match=r"^is a socket, not an image file: .*s\.png$"):
            read_image(tmp_path / "s.png")


# ------------------------------------------------------------------ 2. Netpbm and --max-pixels
SAMPLE = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)  # odd sides: w and h not swapped


@pytest.mark.parametrize("ext", [".pgm", ".ppm", ".pbm", ".pnm", ".pam", ".pfm"])
@pytest.mark.parametrize("ascii_", [False, True], ids=["raw", "plain"])
def test_netpbm_headers_give_the_size_opencv_decodes(ext, ascii_):
    from fer_edge.runtime.imagesize import image_size

    pixels = SAMPLE[..., 0] if ext in (".pgm", ".pbm") else SAMPLE
    if ext == ".pfm":
        pixels = pixels.astype(np.float32) / 255
    data = cv2.imencode(ext, pixels, [cv2.IMWRITE_PXM_BINARY, 0] if ascii_ and ext != ".pam" else [])[1].tobytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image_size(data) == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def test_netpbm_comments_leading_zeros_and_cut_headers():
    from fer_edge.runtime.imagesize import image_size

    # comments run to the end of their line and hide the numbers in them; either end-of-line byte
    assert image_size(b"P5\n# 9 9 a comment\n#\r 12000 \t# 5\n00012000\n255\n") == (12000, 12000)
    assert image_size(b"P1 3 2 010101") == (3, 2)
    pam = b"P7\nWIDTH 40\n# HEIGHT 1\nHEIGHT 30\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n"
    assert image_size(pam) == (40, 30)
    assert image_size(b"P7\n" + b"# long header\n" * 5000 + b"WIDTH 12000\nHEIGHT 12000\nENDHDR\n") == (12000, 12000)
    assert image_size(b"P5\n" + b"9" * 10_000 + b" 3\n255\n")[0] >= 10 ** 15  # huge: refused, in a short line
    for cut in (b"P5", b"P5\n12000", b"P5 # no end", b"P5\n12 x", b"P7\nWIDTH 3\nHEIGHT 4\n", b"P7 332\n", b"P9 1 1"):
        assert image_size(cut) is None, cut


@pytest.mark.parametrize("header", [
    b"P5\n12000 12000\n255\n",
    b"P6\n# made by hand\n12000 12000\n255\n",
    b"P4\n12000 12000\n",
    b"P7\nWIDTH 12000\nHEIGHT 12000\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n",
], ids=["P5", "P6", "P4", "P7"])
def test_a_netpbm_bomb_is_refused_before_decoding(header, tmp_path, cnn_model, capsys):  # noqa: F811
    from fer_edge.runtime.sources import read_image

    bomb = tmp_path / "bomb.pgm"
    bomb.write_bytes(header + b"\0" * 64)  # a 1 GB image's header in 100 bytes
    with pytest.raises(InputError, match=r"12000x12000 \(144,000,000 pixels\), over the limit of 100,000,000"):
        read_image(bomb)
    assert main(["infer", str(bomb), "--model", str(cnn_model), "--no-detect", "-q"]) == EXIT_INPUT
    assert "--max-pixels" in capsys.readouterr().out


# ------------------------------------------------------------------ 3. empty option values and sources
EMPTY = [
    (["infer", "x.jpg", "--csv", ""], "--csv"),
    (["infer", "x.jpg", "--jsonl", ""], "--jsonl"),
    (["infer", "x.jpg", "--save-annotated", ""], "--save-annotated"),
    (["infer", "x.jpg", "--save-annotated", "  "], "--save-annotated"),
    (["infer", "x.jpg", "--model", ""], "--model"),
    (["infer", "x.jpg", "--detector-model", ""], "--detector-model"),
    (["webcam", "--csv", ""], "--csv"),
    (["webcam", "--jsonl", " "], "--jsonl"),
    (["webcam", "--plot", ""], "--plot"),
    (["webcam", "--output", ""], "--output"),
]


@pytest.mark.parametrize("argv,option", EMPTY, ids=[" ".join(a) for a, _ in EMPTY])
def test_an_empty_option_value_is_a_usage_error(argv, option, capsys, tmp_path, monkeypatch):
    from test_cli_validation import option_error

    monkeypatch.chdir(tmp_path)
    last = option_error(argv, option, capsys)
    assert "an empty path" in last, last
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder


@pytest.mark.parametrize("argv", [["infer", ""], ["infer", "  "], ["webcam", "--no-display", "--source", ""]],
                         ids=["infer ''", "infer blank", "webcam --source ''"])
def test_an_empty_source_is_a_usage_error_not_the_current_folder(argv, tmp_path, monkeypatch, capsys,
                                                                  sample_image, cnn_model):  # noqa: F811
    shutil.copyfile(sample_image, tmp_path / "face.jpg")  # `infer ''` used to search the current folder
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:  # argparse's usage error, as for any empty path
        main([*argv, "--model", str(cnn_model), "--no-detect"])
    assert exc.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    option = "--source/-s" if argv[0] == "webcam" else "SOURCE"
    assert out == "" and _last_line(err).startswith(f"fer-edge {argv[0]}: error: argument {option}: an empty path"), err
    assert "face.jpg" not in err


def test_the_api_refuses_an_empty_source_too():
    from fer_edge.runtime.sources import resolve_source

    for text in ("", " \t"):
        with pytest.raises(UsageError, match="an empty source"):
            resolve_source(text)


# ------------------------------------------------------------------ 4. control characters in messages
HOSTILE = [
    (["webcam", "--output", "a\nb\x1b[31m.mkv"], "--output", "a\\nb\\x1b[31m.mkv"),
    (["webcam", "--plot", "t\x1b]0;owned\x07.txt"], "--plot", "t\\x1b]0;owned\\x07.txt"),
    (["webcam", "--detect-scale", "\n5"], "--detect-scale", "got 5"),  # float() takes the newline
]


@pytest.mark.parametrize("argv,option,shown", HOSTILE, ids=[a[-2] for a, _, _ in HOSTILE])
def test_option_values_are_quoted_printable_in_errors(argv, option, shown, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert err.endswith(f"\n{last}\n"), err  # one line: no newline of the value's own before it
    assert last.startswith(f"fer-edge {argv[0]}: error: argument {option}") and shown in last, err
    assert not any(c in err for c in "\x1b\x07\r")


def test_a_long_option_value_is_quoted_as_a_short_excerpt(capsys):
    with pytest.raises(SystemExit):
        main(["infer", "x.jpg", "--threads", "9" * 100_000])
    last = _last_line(capsys.readouterr().err)
    assert last.startswith("fer-edge infer: error: argument --threads: an integer expected") and len(last) < 200


# ------------------------------------------------------------------ 5. GIF files
def test_a_folder_of_gif_files_is_a_folder_of_images(tmp_path, sample_image, cnn_model, capsys):  # noqa: F811
    import json

    from fer_edge.runtime.sources import resolve_source

    folder = tmp_path / "gifs"
    folder.mkdir()
    try:
        written = cv2.imwrite(str(folder / "face.gif"), cv2.imread(str(sample_image)))
    except cv2.error:
        written = False
    if not written or cv2.imread(str(folder / "face.gif")) is None:
        pytest.skip(f"this OpenCV ({cv2.__version__}) does not read or write GIF")
    assert resolve_source(str(folder)).paths == (str(folder / "face.gif"),)
    assert main(["infer", str(folder), "--model", str(cnn_model), "--no-detect", "--json", "-q"]) == EXIT_OK
    images = json.loads(capsys.readouterr().out)["images"]
    assert [(i["path"], i["error"], len(i["faces"])) for i in images] == [(str(folder / "face.gif"), None, 1)]


def test_a_gif_where_opencv_reads_no_gif_is_unsupported_not_damaged(tmp_path, sample_image, monkeypatch):  # noqa: F811
    # opencv-python >= 4.8 is allowed and older builds read no GIF: say so, not "truncated or damaged"
    import fer_edge.runtime.sources as sources

    gif = tmp_path / "face.gif"
    gif.write_bytes(sources._TINY_GIF[:-8])  # one this OpenCV cannot decode either
    monkeypatch.setattr(sources, "_opencv_reads_gif", lambda: False)
    with pytest.raises(InputError, match=r"^unsupported image .*face\.gif: this OpenCV \(.*\) does not read GIF"):
        sources.read_image(gif)


# ------------------------------------------------------------------ 6. a source of the wrong kind
def test_a_folder_given_to_webcam_is_not_a_video_even_when_empty(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["webcam", "--no-display", "--source", str(empty)]) == EXIT_USAGE
    assert _last_line(capsys.readouterr().err) == (
        f"fer-edge: error: {empty} is a folder, not a video, camera or stream: use `fer-edge infer {empty}`")


@pytest.mark.parametrize("pattern", ["nomatch/*.mp4", "clips/*.mp4"])
def test_a_pattern_given_to_webcam_speaks_of_videos(pattern, tmp_path, monkeypatch, capsys):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"\0" * 16)
    monkeypatch.chdir(tmp_path)
    assert main(["webcam", "--no-display", "--source", pattern]) == EXIT_USAGE
    last = _last_line(capsys.readouterr().err)
    assert last.startswith(f"fer-edge: error: {pattern} is a file-name pattern: a video source is one video file"), last
    assert "no images" not in last


MP4_START = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64


def test_a_video_given_as_image_bytes_names_what_takes_it():
    # the API names its function; a caller with its own words (the CLI's `infer -`) passes them
    from fer_edge.runtime.encoded import decode_image

    with pytest.raises(InputError, match=r"^<\d+ bytes> is a video \(MP4/MOV\), not an image: fer_edge.predict "
                       r"takes images; use fer_edge.analyze_video\(path\)"):
        decode_image(MP4_START, "<88 bytes>")
    with pytest.raises(InputError) as info:
        decode_image(MP4_START, "standard input", video_advice="save it to a file: `fer-edge infer FILE`")
    assert str(info.value) == ("standard input is a video (MP4/MOV), not an image: "
                               "save it to a file: `fer-edge infer FILE`")


def test_a_video_piped_to_infer_dash_names_the_verbs_not_the_api(cnn_model):  # noqa: F811
    import subprocess

    from conftest import cli_env

    done = subprocess.run([sys.executable, "-m", "fer_edge", "infer", "-", "--model", str(cnn_model)],
                          input=MP4_START, capture_output=True, env=cli_env(), timeout=60)
    last = _last_line(done.stderr.decode())
    assert done.returncode == EXIT_INPUT
    assert last.startswith("fer-edge: error: standard input is a video (MP4/MOV), not an image"), last
    assert "fer_edge." not in last and "fer-edge webcam --source FILE" in last


def test_a_file_url_is_the_local_file_not_a_stream(tmp_path):
    from fer_edge.runtime.sources import IMAGES as IMAGE_SOURCE, VIDEO, resolve_source

    (tmp_path / "a b.mp4").write_bytes(b"")
    (tmp_path / "c.jpg").write_bytes(b"")
    spec = resolve_source(f"file://{tmp_path}/a%20b.mp4", default=VIDEO)
    assert spec.kind == VIDEO and spec.capture_target == str(tmp_path / "a b.mp4")  # was a live stream dropping frames
    assert resolve_source(f"FILE://{tmp_path}/c.jpg").kind == IMAGE_SOURCE


@pytest.mark.parametrize("url", ["file://", "file://photo.jpg", "file://host/x.jpg"])
def test_a_file_url_without_a_local_path_is_refused(url):
    from fer_edge.runtime.sources import resolve_source

    with pytest.raises(UsageError, match="names no local file"):
        resolve_source(url)  # `file://` decoded to "": the current folder was searched


def test_analyze_images_leaves_out_the_videos_a_pattern_matches(tmp_path, sample_image, cnn_model):  # noqa: F811
    import fer_edge

    shutil.copyfile(sample_image, tmp_path / "a.jpg")
    (tmp_path / "b.mp4").write_bytes(b"\0" * 64)
    result = fer_edge.analyze_images(str(tmp_path / "*"), cnn_model, detector="none")
    assert [os.path.basename(r.path) for r in result.results] == ["a.jpg"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_process_path_of_a_named_pipe_does_not_wait_for_a_writer(tmp_path, cnn_model):  # noqa: F811
    import subprocess

    from conftest import cli_env

    fifo = tmp_path / "f.jpg"
    os.mkfifo(fifo)
    code = ("import sys, fer_edge; r = fer_edge.Predictor(sys.argv[1]).process_path(sys.argv[2]); "
            "print(r.error)")
    done = subprocess.run([sys.executable, "-c", code, str(cnn_model), str(fifo)], capture_output=True, text=True,
                          env=cli_env(), timeout=60)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
