"""The one source resolver (fer_edge.runtime.sources.resolve_source): what a typed source is,
for `infer`, `webcam` and the Python video functions alike."""
from __future__ import annotations

import os
import re
import shutil

import pytest

from fer_edge.errors import InputError, UsageError
from fer_edge.runtime.sources import (
    CAMERA, IMAGES, STREAM, VIDEO, Source, infer_inputs, require_kind, resolve_source,
)

from fixtures_runtime import sample_image  # noqa: F401


@pytest.fixture()
def tree(tmp_path, sample_image):
    """photos/a.jpg, photos/sub/b.png, photos/.hidden/c.jpg, photos/notes.txt, clip.mp4, empty/, blob.bin"""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / ".hidden").mkdir()
    shutil.copyfile(sample_image, photos / "a.jpg")
    shutil.copyfile(sample_image, photos / "sub" / "b.png")
    shutil.copyfile(sample_image, photos / ".hidden" / "c.jpg")
    (photos / "notes.txt").write_text("not an image")
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)  # the resolver never opens a video
    (tmp_path / "empty").mkdir()
    (tmp_path / "blob.bin").write_bytes(b"\0" * 16)
    return tmp_path


def test_image_file(tree):
    spec = resolve_source(str(tree / "photos" / "a.jpg"))
    assert (spec.kind, spec.paths, spec.error) == (IMAGES, (str(tree / "photos" / "a.jpg"),), None)
    assert not spec.live and spec.name == str(tree / "photos" / "a.jpg")


def test_folder_is_searched_recursively_for_images(tree):
    spec = resolve_source(tree / "photos")
    assert spec.kind == IMAGES and spec.error is None
    assert [os.path.relpath(p, tree / "photos") for p in spec.paths] == ["a.jpg", os.path.join("sub", "b.png")]


def test_glob(tree):
    spec = resolve_source(str(tree / "photos" / "**" / "*.png"))
    assert spec.kind == IMAGES and [os.path.basename(p) for p in spec.paths] == ["b.png"]


def test_video_file(tree):
    spec = resolve_source(str(tree / "clip.mp4"))
    assert (spec.kind, spec.paths, spec.capture_target) == (VIDEO, (str(tree / "clip.mp4"),), str(tree / "clip.mp4"))
    assert not spec.live
    # a missing file with a video extension is still a video: opening it says "video not found"
    assert resolve_source(str(tree / "gone.mkv")).kind == VIDEO
    # OpenCV's image-sequence pattern is a video source as well
    assert resolve_source(str(tree / "frames" / "img_%04d.png")).kind == VIDEO


@pytest.mark.parametrize("typed", [0, "0", " 2 ", "12"])
def test_camera_index(typed):
    spec = resolve_source(typed)
    assert spec.kind == CAMERA and spec.index == int(str(typed).strip()) and spec.live
    assert spec.capture_target == spec.index and spec.name == f"camera {spec.index}"


@pytest.mark.parametrize("url", ["rtsp://10.0.0.2:554/live", "http://cam.local/video.mjpg"])
def test_stream_url(url):
    spec = resolve_source(url)
    assert (spec.kind, spec.url, spec.capture_target, spec.live) == (STREAM, url, url, True)


def test_unknown_file_type_follows_the_callers_default(tree):
    blob = str(tree / "blob.bin")
    assert resolve_source(blob).kind == IMAGES  # infer: decoding decides
    assert resolve_source(blob, default=VIDEO).kind == VIDEO  # webcam: OpenCV decides
    assert resolve_source(str(tree / "photos" / "a.jpg"), default=VIDEO).kind == IMAGES  # the extension wins


def test_errors_are_recorded_not_raised(tree):
    missing = resolve_source(str(tree / "nope.jpg"))
    assert (missing.kind, missing.paths, missing.error) == (IMAGES, (), f"image not found: {tree / 'nope.jpg'}")
    empty = resolve_source(str(tree / "empty"))
    assert empty.kind == IMAGES and empty.error == f"no images found in folder: {tree / 'empty'}"
    no_match = resolve_source(str(tree / "photos" / "*.gif"))
    assert no_match.kind == IMAGES and no_match.error == f"no images or videos match: {tree / 'photos' / '*.gif'}"


def test_bad_arguments():
    with pytest.raises(ValueError, match="default"):
        resolve_source("x.jpg", default="camera")
    with pytest.raises(ValueError, match="camera index"):
        resolve_source(-1)
    with pytest.raises(TypeError):
        resolve_source(1.5)  # type: ignore[arg-type]


def test_require_kind_names_what_takes_the_source(tree):
    # The library names the Python function; the CLI's one line (wording.say) names the verb.
    from fer_edge.cli.wording import say

    def refused(spec, *kinds):
        with pytest.raises(UsageError) as info:
            require_kind(spec, *kinds)
        return str(info.value), say(info.value)

    image = resolve_source(str(tree / "photos" / "a.jpg"))
    assert require_kind(image, IMAGES, VIDEO) is image
    api, cli = refused(image, VIDEO, CAMERA, STREAM)
    assert re.search(r"is an image, not a video.*: use fer_edge.predict$", api)
    assert re.search(r"is an image, not a video.*`fer-edge infer ", cli) and "fer_edge." not in cli
    api, cli = refused(resolve_source(str(tree / "photos")), VIDEO, CAMERA, STREAM)
    assert "is a folder of images" in api and "`fer-edge infer " in cli
    api, cli = refused(resolve_source("0"), IMAGES, VIDEO)
    assert api == "0 is a camera index: use fer_edge.analyze_video"
    assert cli == "0 is a camera index: use `fer-edge webcam --source 0`"
    api, cli = refused(resolve_source("rtsp://h/x"), IMAGES, VIDEO)
    assert cli.endswith("is a stream URL: use `fer-edge webcam --source rtsp://h/x`")
    # an image source that found nothing: its own error (exit 3), not a pointer to another verb
    with pytest.raises(InputError, match="image not found"):
        require_kind(resolve_source(str(tree / "nope.jpg")), VIDEO, CAMERA, STREAM)


def test_infer_inputs_keep_order_and_drop_duplicates(tree):
    a, b = str(tree / "photos" / "a.jpg"), str(tree / "photos" / "sub" / "b.png")
    specs = [resolve_source(s) for s in (a, str(tree / "clip.mp4"), str(tree / "photos"), str(tree / "nope.jpg"))]
    # relative: where the input sits in what was named (what --save-annotated mirrors)
    assert infer_inputs(specs) == [
        Source(a, relative="a.jpg"), Source(str(tree / "clip.mp4"), kind="video", relative="clip.mp4"),
        Source(b, relative=os.path.join("sub", "b.png")),
        Source(str(tree / "nope.jpg"), f"image not found: {tree / 'nope.jpg'}", relative="nope.jpg"),
    ]
    globbed = infer_inputs([resolve_source(str(tree / "photos" / "**" / "*.png"))])
    assert [s.relative for s in globbed] == [os.path.join("sub", "b.png")]
    with pytest.raises(ValueError, match="camera"):
        infer_inputs([resolve_source("0")])


def _without_privileges(tmp_path) -> list[str]:
    """A command prefix under which file permissions bite (root reads anything): nothing for a
    normal user, `setpriv` without capabilities for root; skips where neither works."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        import subprocess

        if shutil.which("setpriv") and subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode != 0:
            return prefix
    finally:
        probe.chmod(0o644)
    pytest.skip("running as root without a working setpriv: permissions cannot be tested")


def test_unreadable_folders_and_videos_say_permission_denied(sample_image, tmp_path):  # noqa: F811
    import subprocess
    import sys

    from conftest import cli_env

    prefix = _without_privileges(tmp_path)
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    shutil.copyfile(sample_image, top / "a.jpg")
    shutil.copyfile(sample_image, top / "sub" / "b.jpg")
    closed = tmp_path / "closed"
    closed.mkdir()
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    for p in (top / "sub", closed, video):
        p.chmod(0)

    def cli(*args):
        return subprocess.run([*prefix, sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True,
                              env=cli_env(), timeout=120, cwd=tmp_path)

    try:
        r = cli("infer", "-q", "top")  # a sub-folder it cannot enter is named, not skipped in silence
        assert r.returncode == 0 and "top/a.jpg" in r.stdout and "b.jpg" not in r.stdout
        assert "fer-edge: skipping folder top/sub: Permission denied" in r.stderr
        r = cli("infer", "-q", "closed")
        assert r.returncode == 3 and r.stderr.strip().splitlines()[-1] == "fer-edge: error: cannot read folder closed: Permission denied"
        r = cli("webcam", "-q", "--no-display", "--source", "v.mp4")
        assert r.returncode == 3 and r.stderr.strip().splitlines()[-1] == "fer-edge: error: cannot read video v.mp4: Permission denied"
    finally:
        for p in (top / "sub", closed, video):
            p.chmod(0o755)
