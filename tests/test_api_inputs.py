"""The Python API takes what people have: a path, a BGR numpy array, a PIL image, a list of
these (one model call), and already-cropped faces (predict_emotions)."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

import fer_edge
from fer_edge.errors import InputError
from fer_edge.runtime.api import Predictor
from fer_edge.runtime.results import FaceResult

from fixtures_runtime import SAMPLE_FACE_BOX, sample_bgr, sample_image  # noqa: F401

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(None, detector="haar")


class _CountingModel:
    """Wraps a FerModel and counts its predict_proba calls (the batching promise)."""

    def __init__(self, model):
        self._m, self.calls, self.rows = model, 0, []

    def predict_proba(self, batch):
        self.calls += 1
        self.rows.append(len(batch))
        return self._m.predict_proba(batch)

    def __getattr__(self, name):
        return getattr(self._m, name)


def _same(a: list[FaceResult], b: list[FaceResult], tol: float = 0.0) -> None:
    assert [f.box for f in a] == [f.box for f in b]
    for fa, fb in zip(a, b):
        assert [fa.probabilities[c] for c in fer_edge.CLASSES] == pytest.approx(
            [fb.probabilities[c] for c in fer_edge.CLASSES], abs=tol)


def test_path_bgr_array_and_pil_image_agree(predictor, sample_image, sample_bgr):  # noqa: F811
    by_path = predictor.predict(sample_image)
    assert len(by_path) == 1
    _same(predictor.predict(str(sample_image)), by_path)
    _same(predictor.predict(sample_bgr), by_path)
    _same(predictor.predict(Image.open(sample_image)), by_path)  # RGB, converted to BGR
    _same(predictor.predict(Image.fromarray(sample_bgr[:, :, ::-1].copy())), by_path)


def test_pil_gray_and_rgba_images(predictor, sample_bgr):  # noqa: F811
    import cv2

    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    _same(predictor.predict(Image.fromarray(gray)), predictor.predict(gray))
    rgba = Image.fromarray(sample_bgr[:, :, ::-1].copy()).convert("RGBA")
    _same(predictor.predict(rgba), predictor.predict(sample_bgr))


def test_a_list_is_one_model_call_with_one_face_list_per_image(sample_image, sample_bgr):  # noqa: F811
    p = Predictor(None, detector="haar")
    singles = [p.predict(x) for x in (sample_image, sample_bgr)]
    p.model = _CountingModel(p.model)
    blank = np.full((200, 200, 3), 127, np.uint8)
    out = p.predict([sample_image, blank, sample_bgr, Image.open(sample_image)])
    assert p.model.calls == 1 and p.model.rows == [3]
    assert [len(faces) for faces in out] == [1, 0, 1, 1]
    _same(out[0], singles[0], 1e-5)
    _same(out[2], singles[1], 1e-5)
    assert p.predict([]) == [] and p.model.calls == 1


def test_module_predict_takes_lists_and_the_default_model_by_name(sample_image, sample_bgr):  # noqa: F811
    out = fer_edge.predict([sample_image, sample_bgr], detector="haar")
    assert len(out) == 2 and all(len(faces) == 1 for faces in out)
    _same(fer_edge.predict(sample_image, "default", detector="haar"), out[0], 1e-5)


def test_predict_emotions_on_crops(sample_bgr):  # noqa: F811
    x, y, w, h = SAMPLE_FACE_BOX
    crop = sample_bgr[y:y + h, x:x + w]
    one = fer_edge.predict_emotions(crop)
    assert isinstance(one, FaceResult) and one.box == (0, 0, w, h) and one.label == "happy"
    expected = Predictor(None, detector="none").predict(crop)
    _same([one], expected)

    p = Predictor(None, detector="none")
    p.model = _CountingModel(p.model)
    many = p.classify_crops([crop, Image.fromarray(crop[:, :, ::-1].copy()), np.ascontiguousarray(crop[:, ::-1])])
    assert p.model.calls == 1 and len(many) == 3
    _same(many[:1], expected, 1e-5)
    _same(many[1:2], expected, 1e-5)
    assert [f.box for f in fer_edge.predict_emotions([crop, crop])] == [(0, 0, w, h)] * 2


@pytest.mark.parametrize("bad", [42, {"a": 1}, None])
def test_unsupported_inputs_say_what_is_accepted(predictor, bad):
    with pytest.raises(TypeError, match="a file path or http.s. URL, encoded image bytes, a binary file object, "
                       "a data:image URI, a numpy BGR array or a PIL image"):
        predictor.predict(bad)


def test_16_bit_images_read_as_their_files_do(predictor, sample_bgr, tmp_path):  # noqa: F811
    import cv2

    c16, g16 = tmp_path / "c16.png", tmp_path / "g16.png"
    cv2.imwrite(str(c16), sample_bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(g16), cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    by_file = predictor.predict(c16)
    assert len(by_file) == 1
    array16 = cv2.imread(str(c16), cv2.IMREAD_UNCHANGED)
    assert array16.dtype == np.uint16
    _same(predictor.predict(array16), by_file)  # was clipped to 255: a white frame, no face
    pil16 = Image.open(g16)
    assert pil16.mode.startswith("I;16")
    _same(predictor.predict(pil16), predictor.predict(g16))


def test_float_images_in_0_to_255_work_and_ambiguous_ones_are_refused(predictor, sample_bgr):  # noqa: F811
    _same(predictor.predict(sample_bgr.astype(np.float64)), predictor.predict(sample_bgr))
    with pytest.raises(ValueError, match=re.escape("(0..1 data?)")):
        predictor.predict(sample_bgr.astype(np.float32) / 255)  # read as 0..255 it would be a black frame
    for bad in (np.nan, np.inf):
        img = sample_bgr.astype(np.float32)
        img[10, 10, 0] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            predictor.predict(img)
    with pytest.raises(ValueError, match=re.escape("(0..1 data?)")):
        fer_edge.predict_emotions(np.full((48, 48), 0.5, np.float32))


def test_arrays_that_would_read_as_a_black_or_clipped_frame_are_refused(predictor, sample_bgr):  # noqa: F811
    """Each of these, taken as 0..255, is a black or clipped frame: no face and no error before."""
    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    unit = sample_bgr.astype(np.float32) / 255
    cases = {
        "(0..1 data?)": cv2.resize(unit, (500, 500), interpolation=cv2.INTER_CUBIC),  # overshoots 1
        "16-bit but every value lies in 0..255": gray.astype(np.uint16),
        "int8": sample_bgr.astype(np.int8),
        "negative values": sample_bgr.astype(np.int16) - 128,
        "negative values (down to -128)": sample_bgr.astype(np.float32) - 128,  # mean-subtracted
        "values lie in -1..1": unit * 2 - 1,
    }
    for message, image in cases.items():
        with pytest.raises(InputError, match=re.escape(message)):
            predictor.predict(image)
    # what a resize of 0..255 data overshoots by is not refused
    resized = cv2.resize(sample_bgr.astype(np.float32), (500, 500), interpolation=cv2.INTER_LANCZOS4)
    assert resized.min() < 0
    assert [f.label for f in predictor.predict(resized)] == [f.label for f in predictor.predict(sample_bgr)]


def test_a_boolean_mask_is_black_and_white(predictor, sample_bgr):  # noqa: F811
    from fer_edge.runtime.preprocess import as_bgr_or_gray

    mask = sample_bgr > 128
    assert np.array_equal(as_bgr_or_gray(mask), mask.astype(np.uint8) * 255)


def test_pil_float_int_and_premultiplied_images(predictor, sample_bgr):  # noqa: F811
    gray = cv2.cvtColor(sample_bgr, cv2.COLOR_BGR2GRAY)
    expected = predictor.predict(gray)
    assert len(expected) == 1
    _same(predictor.predict(Image.fromarray(gray.astype(np.float32))), expected)  # mode F, 0..255
    with pytest.raises(InputError, match=re.escape("(0..1 data?)")):
        predictor.predict(Image.fromarray(gray.astype(np.float32) / 255))  # mode F, 0..1: was a black frame
    _same(predictor.predict(Image.fromarray(gray.astype(np.int32))), expected)  # mode I, 0..255
    sixteen = Image.fromarray(gray.astype(np.int32) * 257)  # mode I holding 16-bit values: was clipped white
    assert sixteen.mode == "I"
    _same(predictor.predict(sixteen), expected)
    dark16 = Image.fromarray(gray.astype(np.uint16))  # a 16-bit image using 0..255 of its range: near black
    assert dark16.mode.startswith("I;16")
    assert predictor.predict(dark16) == []  # read as the file would be (cv2.imread), not refused as an array is
    la = Image.fromarray(sample_bgr[:, :, ::-1]).convert("RGBA").convert("La")  # PIL cannot convert La to L
    assert len(predictor.predict(la)) == 1
    with pytest.raises(InputError, match="empty"):
        predictor.predict(Image.new("RGB", (0, 0)))
