"""The Python API takes images as users of deepface, fer and hsemotion pass them: encoded bytes,
binary file objects, data: URIs, pathlib paths and http(s) URLs (fetched from a server on
127.0.0.1 started here); a video is sent to analyze_video; every error is one short line."""
from __future__ import annotations

import base64
import http.server
import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fer_edge
from fer_edge.errors import InputError
from fer_edge.runtime.api import Predictor
from fer_edge.runtime.results import FaceResult

from fixtures_runtime import SAMPLE_FACE_BOX, make_face_video, sample_bgr, sample_image  # noqa: F401

#: The longest error message these inputs may give (one short line, whatever the input's size).
SHORT = 240


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(None)


@pytest.fixture(scope="module")
def jpeg(sample_image) -> bytes:  # noqa: F811
    return Path(sample_image).read_bytes()


def _same(a: list[FaceResult], b: list[FaceResult]) -> None:
    assert len(a) == len(b) == 1
    assert a[0].box == b[0].box
    assert [a[0].probabilities[c] for c in fer_edge.CLASSES] == pytest.approx(
        [b[0].probabilities[c] for c in fer_edge.CLASSES], abs=1e-6)


def _short_error(call, *args, exc=InputError) -> str:
    with pytest.raises(exc) as info:
        call(*args)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) <= SHORT, msg
    return msg


def test_bytes_file_objects_data_uris_and_paths_give_the_file_s_faces(predictor, sample_image, jpeg):  # noqa: F811
    by_path = predictor.predict(str(sample_image))
    _same(predictor.predict(Path(sample_image)), by_path)
    _same(predictor.predict(jpeg), by_path)
    _same(predictor.predict(bytearray(jpeg)), by_path)
    _same(predictor.predict(memoryview(jpeg)), by_path)
    _same(predictor.predict(io.BytesIO(jpeg)), by_path)
    with open(sample_image, "rb") as f:
        _same(predictor.predict(f), by_path)
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    _same(predictor.predict(uri), by_path)
    _same(fer_edge.predict(uri), by_path)
    batch = predictor.predict([jpeg, io.BytesIO(jpeg), uri, Path(sample_image)])
    assert [len(faces) for faces in batch] == [1, 1, 1, 1]


def test_predict_emotions_takes_the_bytes_of_a_crop(sample_bgr):  # noqa: F811
    import cv2

    x, y, w, h = SAMPLE_FACE_BOX
    crop = np.ascontiguousarray(sample_bgr[y:y + h, x:x + w])
    png = cv2.imencode(".png", crop)[1].tobytes()
    by_array = fer_edge.predict_emotions(crop)
    by_bytes = fer_edge.predict_emotions(png)
    assert by_bytes.box == (0, 0, w, h) and by_bytes.label == by_array.label
    assert by_bytes.score == pytest.approx(by_array.score, abs=1e-6)
    assert len(fer_edge.predict_emotions([png, io.BytesIO(png)])) == 2


def test_a_text_mode_file_says_to_open_it_in_binary_mode(predictor, sample_image, tmp_path):  # noqa: F811
    txt = tmp_path / "face.jpg"
    shutil.copyfile(sample_image, txt)
    with open(txt, encoding="latin-1") as f:
        assert "open(path, 'rb')" in _short_error(predictor.predict, f, exc=TypeError)


def test_bytes_that_are_not_an_image_say_so_in_one_line(predictor, jpeg):
    assert "not an image" in _short_error(predictor.predict, b"<!doctype html>" + b"x" * 100_000)
    assert "empty" in _short_error(predictor.predict, b"")
    assert "truncated or damaged" in _short_error(predictor.predict, jpeg[:200])


def test_a_malformed_data_uri_is_one_short_line(predictor, jpeg):
    payload = base64.b64encode(jpeg * 4).decode("ascii")
    msg = _short_error(predictor.predict, "data:image/jpeg;base64," + payload[:-4] + "!!!!")
    assert msg.startswith("malformed data: URI") and "base64" in msg and payload[100:140] not in msg
    assert "not an image" in _short_error(predictor.predict, "data:text/plain;base64,aGVsbG8=")
    assert "malformed" in _short_error(predictor.predict, "data:image/png;base64" + payload)  # no comma
    assert "not an image" in _short_error(predictor.predict, "data:image/png;base64,aGVsbG8=")


def test_base64_without_its_data_prefix_says_how_to_pass_it(predictor, jpeg):
    msg = _short_error(predictor.predict, base64.b64encode(jpeg).decode("ascii"))
    assert msg.startswith("not a file path") and "data:image/jpeg;base64," in msg


def test_errors_quote_a_printable_excerpt_of_the_input(predictor):
    msg = _short_error(predictor.predict, "rtsp://cam/\x1b[31mred" + "x" * 5000)
    assert "\x1b" not in msg and "\\x1b" in msg and "analyze_video" in msg
    assert "\x1b" not in _short_error(predictor.predict, "data:\x1b[2J/evil;base64,AAAA")


def test_a_video_says_to_use_analyze_video(predictor, sample_bgr, tmp_path):  # noqa: F811
    clip = tmp_path / "clip.mp4"
    make_face_video(clip, sample_bgr, frames=3)
    assert "fer_edge.analyze_video" in _short_error(predictor.predict, clip)
    assert "fer_edge.analyze_video" in _short_error(fer_edge.predict, str(clip))
    disguised = tmp_path / "still.jpg"  # a video under an image's name: told by its first bytes
    shutil.copyfile(clip, disguised)
    assert "is a video (MP4/MOV)" in _short_error(predictor.predict, disguised)
    assert "fer_edge.analyze_video" in _short_error(predictor.predict, clip.read_bytes())


def test_unsupported_objects_list_what_is_accepted(predictor):
    msg = _short_error(predictor.predict, {"a": 1}, exc=TypeError)
    assert "encoded image bytes" in msg and "binary file object" in msg and "URL" in msg


# --------------------------------------------------------------------------- http(s) URLs


class _Handler(http.server.BaseHTTPRequestHandler):
    jpeg = b""

    def do_GET(self) -> None:  # noqa: N802
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, size cap): as it should
            pass

    def _answer(self) -> None:
        if self.path == "/face.jpg":
            self._reply(200, self.jpeg, "image/jpeg")
        elif self.path == "/page":
            self._reply(200, b"<!doctype html><html>not here</html>", "text/html")
        elif self.path == "/slow.jpg":
            time.sleep(1.5)
            self._reply(200, self.jpeg, "image/jpeg")
        elif self.path == "/endless.jpg":  # no Content-Length, more bytes than the cap
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"\xff" * 4096)
        else:
            self._reply(404, b"no", "text/plain")

    def _reply(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(jpeg):
    _Handler.jpeg = jpeg
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The local server is reached directly, whatever proxy the environment names."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_an_image_url_is_fetched(predictor, server, sample_image):  # noqa: F811
    _same(predictor.predict(f"{server}/face.jpg"), predictor.predict(sample_image))
    assert len(fer_edge.predict([f"{server}/face.jpg"])[0]) == 1


def test_a_url_that_fails_is_one_clear_line(predictor, server, monkeypatch):
    assert "HTTP 404" in _short_error(predictor.predict, f"{server}/missing.jpg")
    assert "not an image" in _short_error(predictor.predict, f"{server}/page")
    monkeypatch.setattr("fer_edge.runtime.encoded.FETCH_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    assert "no answer within 0.3 s" in _short_error(predictor.predict, f"{server}/slow.jpg")
    assert time.monotonic() - t0 < 1.4
    monkeypatch.setattr("fer_edge.runtime.encoded.MAX_ENCODED_BYTES", 10_000)
    assert "more than the 10,000 bytes" in _short_error(predictor.predict, f"{server}/endless.jpg")
    assert "22,795 bytes, more than the 10,000" in _short_error(predictor.predict, f"{server}/face.jpg")


def test_a_url_nobody_answers_is_one_line(predictor):
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    msg = _short_error(predictor.predict, f"http://127.0.0.1:{port}/x.jpg")
    assert msg.startswith(f"cannot fetch http://127.0.0.1:{port}/x.jpg: ") and "refused" in msg.lower()
