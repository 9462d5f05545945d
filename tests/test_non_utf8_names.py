"""Video files whose names are not valid UTF-8: OpenCV's binding crashed the whole process on them
(exit 139). Inputs are read as any other video; an output is refused in one line (exit 3)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env
from fixtures_runtime import make_face_video, sample_bgr, sample_image  # noqa: F401

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names as raw bytes: Linux")


def _cli(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    # bytes arguments reach the CLI as os.fsencode would write them; a crash shows as a negative code
    return subprocess.run([os.fsencode(sys.executable), b"-m", b"fer_edge", *args], capture_output=True,
                          cwd=tmp_path, env=cli_env(), timeout=120)


@pytest.fixture
def clips(tmp_path, sample_bgr):  # noqa: F811
    good = tmp_path / "good.mp4"
    make_face_video(good, sample_bgr, frames=12)
    odd = os.path.join(os.fsencode(tmp_path), b"v\xfe.mp4")
    shutil.copyfile(good, odd)
    return good, odd


def test_a_video_with_a_non_utf8_name_is_read_like_any_other(clips, tmp_path):
    good, odd = clips
    a = _cli(tmp_path, b"infer", os.fsencode(good), b"--json", b"-q")
    b = _cli(tmp_path, b"infer", odd, b"--json", b"-q")
    assert a.returncode == 0 and b.returncode == 0, b.stderr[-300:]
    fa, fb = json.loads(a.stdout)["videos"][0]["frames"], json.loads(b.stdout)["videos"][0]["frames"]
    assert len(fb) == 12 and [f["faces"] for f in fb] == [f["faces"] for f in fa]
    assert not [p for p in Path("/tmp").glob("fer-edge-video-*")]  # the private link is gone


def test_analyze_video_reads_a_non_utf8_name(clips, tmp_path):
    good, odd = clips
    code = ("import os, sys, fer_edge; a, b = map(os.fsdecode, sys.argv[1:]); "
            "print(len(fer_edge.analyze_video(a).rows), len(fer_edge.analyze_video(b).rows))")
    r = subprocess.run([os.fsencode(sys.executable), b"-c", code.encode(), os.fsencode(good), odd],
                       capture_output=True, cwd=tmp_path, env=cli_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-300:]  # in this process a crash would take pytest with it
    n_good, n_odd = r.stdout.split()
    assert n_good == n_odd


def test_a_non_utf8_output_video_name_is_one_line_and_exit_3(clips, tmp_path):
    good, _ = clips
    out = os.path.join(os.fsencode(tmp_path), b"o\xfe.mp4")
    r = _cli(tmp_path, b"webcam", b"--source", os.fsencode(good), b"--no-display", b"--output", out, b"-q")
    assert r.returncode == 3, r.stderr[-300:]
    assert len(r.stderr.strip().splitlines()) == 1 and b"not valid UTF-8" in r.stderr
    assert not os.path.exists(out)
