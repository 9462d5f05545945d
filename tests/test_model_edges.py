"""Models that are wrong at their edges: a contract field of the wrong type, class names that are
columns of fer-edge's own CSV, a model path the file system refuses, a detector model that loads
but cannot run. Each is refused when the model loads, as one ModelError line (exit 4 in the CLI),
before any input is read or output created; each was a traceback, a corrupt CSV, exit 3 or a
failure at the first image.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import run_cli
from fer_edge.contract import ModelContract, reserved_class_names
from fer_edge.errors import ModelError
from fer_edge.runtime.model import FerModel
from fixtures_runtime import sample_image, write_model  # noqa: F401

from test_broken_models import EXIT_MODEL, _one_line, face_png  # noqa: F401  (the same face and one-line check)


def _metadata(**changes) -> str:
    """The fer_edge metadata of a valid 7-class linear test model, with ``changes``."""
    d = json.loads(ModelContract(input_size=48, channels=1, mean=128.0, std=64.0, model="test-linear").to_json())
    d.update(changes)
    return json.dumps(d)


# ---------------------------------------------------------------- 1. every contract field type-checked
MALFORMED = {
    "extra": 5,
    "classes": "angry",  # was seven... five one-letter classes
    "model": 5,
    "label_set": None,
    "normalization": ["train"],
    "input_name": 3,
    "output_name": {"a": 1},
    "val_accuracy": "high",
    "channels": True,  # JSON's true == 1 to Python
    "temperature": True,
}


@pytest.mark.parametrize("field", sorted(MALFORMED))
def test_a_contract_field_of_the_wrong_type_is_refused_naming_it(field):
    with pytest.raises(ValueError, match=field):
        ModelContract.from_json(_metadata(**{field: MALFORMED[field]}))


@pytest.mark.parametrize("value", [[], ["a", ""], ["a", 3], "ab"])
def test_classes_must_be_a_non_empty_list_of_distinct_names(value):
    with pytest.raises(ValueError, match="class"):
        ModelContract.from_json(_metadata(classes=value))


def test_a_valid_contract_still_reads_back():
    c = ModelContract(classes=("a", "b"), input_size=32, val_accuracy=0.5, extra={"accuracy_publictest": 0.6})
    assert ModelContract.from_json(c.to_json()) == c


def test_infer_json_with_a_non_dict_extra_is_one_line_and_exit_4(tmp_path, face_png):
    path = write_model(tmp_path / "extra5.onnx", kind="linear", metadata=_metadata(extra=5))
    with pytest.raises(ModelError, match="extra"):
        FerModel.load(path, device="cpu")
    r = run_cli("infer", "--model", str(path), "--no-detect", "--json", str(face_png))
    assert r.returncode == EXIT_MODEL, r.stderr
    assert "extra" in _one_line(r) and r.stdout == ""


def test_a_contract_given_in_python_is_checked_too(tmp_path):
    path = write_model(tmp_path / "nometa.onnx", kind="linear", metadata=None)
    with pytest.raises(ModelError, match="extra"):
        FerModel.load(path, device="cpu", contract=ModelContract(extra=5))  # type: ignore[arg-type]
    assert FerModel.load(path, device="cpu", contract=ModelContract()).summary()["publictest_accuracy"] is None


# ---------------------------------------------------------------- 2. class names that are CSV columns
def test_the_reserved_names_are_every_column_the_csv_writes_besides_the_classes(tmp_path):
    from fer_edge.runtime.images import image_columns
    from fer_edge.runtime.timeline import CsvSink

    sink = CsvSink(tmp_path / "h.csv", ("zz_class",), paths=True)  # infer --csv's layout
    sink.open()
    sink.close()
    header = next(csv.reader((tmp_path / "h.csv").open(encoding="utf-8")))
    assert header[-1] == "zz_class"
    assert set(header[:-1]) <= reserved_class_names()
    assert set(image_columns(())) <= reserved_class_names()  # analyze_images' table


@pytest.mark.parametrize("name", sorted(reserved_class_names()))
def test_a_class_named_like_a_csv_column_is_refused(name):
    with pytest.raises(ValueError, match=f"class named '{name}'"):
        ModelContract.from_json(_metadata(classes=["happy", name]))


def test_infer_csv_with_column_named_classes_is_one_line_and_exit_4(tmp_path, face_png):
    classes = ["frame", "path", "label", "x", "score", "w", "h"]
    path = write_model(tmp_path / "cols.onnx", kind="linear", classes=classes)
    with pytest.raises(ModelError, match="class named 'frame'"):
        FerModel.load(path, device="cpu")
    out = tmp_path / "out.csv"
    r = run_cli("infer", "--model", str(path), "--no-detect", "--csv", str(out), str(face_png))
    assert r.returncode == EXIT_MODEL, r.stderr
    assert "'frame'" in _one_line(r)
    assert not out.exists()


# ---------------------------------------------------------------- 3. a path the file system refuses
def test_a_model_path_too_long_is_a_short_model_error():
    name = "a" * 300 + ".onnx"
    with pytest.raises(ModelError) as info:
        FerModel.load(name, device="cpu")
    text = str(info.value)
    assert "too long" in text and "305 characters" in text
    assert len(text) < 160 and name not in text


# ---------------------------------------------------------------- 4. a detector model that cannot run
def _unrelated_onnx(path):
    """A valid ONNX graph that is no face detector: one convolution of a (1, 3, 224, 224) input."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 222, 222])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_detector_model_that_cannot_run_is_refused_when_created(tmp_path):
    from fer_edge.runtime.detect import YuNetDetector, create_detector

    other = _unrelated_onnx(tmp_path / "other.onnx")
    with pytest.raises(ModelError, match="loads but fails when run") as info:
        create_detector("yunet", other)
    text = str(info.value)
    assert "OpenCV(" not in text and ".cpp" not in text and "in function" not in text, text
    assert "not found" in text  # OpenCV's reason is kept
    YuNetDetector()  # the shipped model passes its own test


def test_infer_with_a_broken_detector_model_stops_before_reading_or_writing(tmp_path, sample_image):
    import shutil

    other = _unrelated_onnx(tmp_path / "other.onnx")
    jpg, png = tmp_path / "face.jpg", tmp_path / "face.png"
    shutil.copyfile(sample_image, jpg)
    shutil.copyfile(sample_image, png)
    out = tmp_path / "dm.csv"
    r = run_cli("infer", str(jpg), str(png), "--detector-model", str(other), "--json", "--csv", str(out))
    assert r.returncode == EXIT_MODEL, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = [x for x in r.stderr.splitlines() if "error" in x]  # the model loaded first and said its provider
    assert "other.onnx loads but fails when run" in line and ".cpp" not in line
    assert not out.exists() and r.stdout == ""


@pytest.mark.parametrize("raw, said", [
    ("OpenCV(4.14.0) /io/opencv/modules/dnn/src/net_impl.cpp:279: error: (-204:Requested object was not found) "
     "Layer with requested id=-1 not found in function 'getLayerData'\n",
     "Requested object was not found: Layer with requested id=-1 not found"),
    ("OpenCV(4.14.0) /io/opencv/modules/dnn/src/onnx/onnx_importer.cpp:799: error: (-215:Assertion failed) "
     "model_proto.has_graph() in function 'populateNet'\n", "Assertion failed: model_proto.has_graph()"),
    ("OpenCV(4.14.0) :-1: error: (-5:Bad argument) in function 'detect'\n> Overload resolution failed:\n"
     ">  - image is not a numpy array\n", "Bad argument: Overload resolution failed: - image is not a numpy array"),
    ("", "Exception"),
])
def test_opencv_errors_are_worded_without_source_locations(raw, said):
    from fer_edge.runtime.detect.base import cv_message

    assert cv_message(Exception(raw)) == said
