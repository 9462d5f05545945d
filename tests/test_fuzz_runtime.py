"""Fuzz: random file names (bytes), truncated and hostile media, hostile model metadata.

Seeded and bounded by count (not by time, so every run checks the same cases): whatever comes
in, ``infer`` and ``analyze_video`` give results or one documented error, never a crash, a
traceback or a non-JSON document; a model's metadata is either refused as a model error or
gives finite probabilities.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from conftest import cli_env
from fer_edge.errors import FerEdgeError, ModelError
from fixtures_runtime import make_face_video, sample_bgr, sample_image, write_model  # noqa: F401

SEED = 20261203
EXPECTED_INFER_EXITS = {0, 3, 7}  # all processed, all failed, some failed


def _random_name(rng: np.random.Generator, suffix: bytes) -> bytes:
    """A file name of random bytes: anything but NUL and '/', with invalid UTF-8, controls and
    spaces likely, at most 200 bytes."""
    alphabet = np.array([b for b in range(1, 256) if b != ord("/")], dtype=np.uint8)
    n = int(rng.integers(1, 40))
    name = bytes(rng.choice(alphabet, n))
    if name in (b".", b".."):
        name = b"x" + name
    return name[:200] + suffix


def _png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def _contents(rng: np.random.Generator, face: np.ndarray, video: bytes) -> list[tuple[bytes, bytes]]:
    """(content, suffix) pairs: good, truncated, bit-flipped and hostile images and videos."""
    jpg = cv2.imencode(".jpg", face)[1].tobytes()
    png = cv2.imencode(".png", face)[1].tobytes()
    flipped = bytearray(jpg)
    for i in rng.integers(0, len(flipped), 40):
        flipped[i] ^= 0xFF
    return [
        (jpg, b".jpg"), (png, b".png"), (jpg[: len(jpg) // 3], b".jpg"), (png[:100], b".png"),
        (bytes(flipped), b".jpg"), (b"", b".jpg"), (bytes(rng.integers(0, 256, 3000, dtype=np.uint8)), b".png"),
        (_png_bomb(), b".png"), (video, b".mp4"), (video[: len(video) // 2], b".mp4"), (video[:64], b".avi"),
        (jpg, b""),  # no extension
    ]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory, sample_bgr):  # noqa: F811
    rng = np.random.default_rng(SEED)
    root = tmp_path_factory.mktemp("fuzz")
    clip = root / "clip-source.mp4"
    make_face_video(clip, sample_bgr, frames=6, size=(320, 240))
    video = clip.read_bytes()
    clip.unlink()
    made = []
    for _ in range(2):
        for content, suffix in _contents(rng, sample_bgr, video):
            name = _random_name(rng, suffix)
            path = os.path.join(os.fsencode(root), name)
            if os.path.lexists(path):
                continue
            with open(path, "wb") as f:
                f.write(content)
            made.append(path)
    return root, made


def test_infer_over_random_names_and_broken_media_never_crashes(fuzz_dir):
    root, made = fuzz_dir
    # every file named on the command line (bytes, as a shell passes them): videos and names
    # without an extension included, which a folder scan would leave out
    r = subprocess.run([sys.executable.encode(), b"-m", b"fer_edge", b"infer", b"-q", b"--json", *made],
                       capture_output=True, env=cli_env(), timeout=600)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode in EXPECTED_INFER_EXITS, err
    assert "Traceback" not in err
    # only our lines (decoder libraries print nothing of their own), each name printed escaped
    assert all(line.startswith(("fer-edge: ", "  ")) for line in err.splitlines()), err
    doc = json.loads(r.stdout)  # one strict JSON document, whatever the names
    assert doc["summary"]["inputs"] == len(made)
    assert doc["summary"]["failed"] >= 8 and len(doc["images"]) + len(doc["videos"]) >= 8
    r = subprocess.run([sys.executable, "-m", "fer_edge", "infer", "-q", "--json", str(root)],  # the folder
                       capture_output=True, env=cli_env(), timeout=600)
    assert r.returncode in EXPECTED_INFER_EXITS and json.loads(r.stdout)["summary"]["inputs"] >= 12


def test_the_api_over_each_fuzzed_file_gives_results_or_one_error(fuzz_dir):
    import fer_edge

    _, made = fuzz_dir
    outcomes = {"ok": 0, "error": 0}
    for path in made:
        name = os.fsdecode(path)
        try:
            if name.endswith((".mp4", ".avi")):
                continue  # videos: below, in a child process
            fer_edge.predict(name)
            outcomes["ok"] += 1
        except FerEdgeError:  # the message holds the name as it is; the CLI prints it escaped
            outcomes["error"] += 1
    assert outcomes["ok"] >= 2 and outcomes["error"] >= 4


def test_analyze_video_over_fuzzed_videos_never_crashes(fuzz_dir):
    _, made = fuzz_dir
    videos = [p for p in made if p.endswith((b".mp4", b".avi"))]
    code = (
        "import os, sys, fer_edge\n"
        "from fer_edge.errors import FerEdgeError\n"
        "ok = err = 0\n"
        "for h in sys.stdin.read().split():\n"
        "    try:\n"
        "        fer_edge.analyze_video(os.fsdecode(bytes.fromhex(h)), detector='haar'); ok += 1\n"
        "    except FerEdgeError:\n"
        "        err += 1\n"
        "print(ok, err)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], input=" ".join(v.hex() for v in videos), capture_output=True,
                       text=True, env=cli_env(), timeout=600)
    assert r.returncode == 0, r.stderr  # a segfault would be -11, a stray exception 1
    ok, err = map(int, r.stdout.split())
    assert ok + err == len(videos) and ok >= 1 and err >= 1


HOSTILE_VALUES = [float("nan"), float("inf"), -1, 0, 1e308, 10 ** 30, "", "x" * 5000, "\x1b]0;pwn\x07", [], {},
                  None, True, -0.0, 1e-320, [1, 2], "48"]
FIELDS = ["mean", "std", "input_size", "channels", "classes", "temperature", "model", "label_set",
          "normalization", "format_version", "input_name", "output_name"]


def test_hostile_model_metadata_is_a_model_error_or_gives_finite_scores(tmp_path):
    from fer_edge.contract import METADATA_KEY, ModelContract
    from fer_edge.runtime.model import FerModel

    rng = np.random.default_rng(SEED)
    base = json.loads(ModelContract(input_size=48).to_json())
    refused = loaded = 0
    for i in range(60):
        meta = dict(base)
        for field in rng.choice(FIELDS, int(rng.integers(1, 3)), replace=False):
            meta[str(field)] = HOSTILE_VALUES[int(rng.integers(len(HOSTILE_VALUES)))]
        path = write_model(tmp_path / f"m{i}.onnx", kind="linear", metadata=json.dumps(meta))
        try:
            m = FerModel.load(path, device="cpu")
        except ModelError as exc:
            assert "\n" not in str(exc) and "\x1b" not in str(exc)
            refused += 1
            continue
        p = m.predict_proba(np.zeros((1, m.channels, m.input_size, m.input_size), np.float32))
        assert np.isfinite(p).all() and abs(float(p.sum()) - 1) < 1e-4
        loaded += 1
    assert refused >= 30 and METADATA_KEY == "fer_edge"
