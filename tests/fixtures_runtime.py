"""Shared fixtures for the runtime tests: small real ONNX models built with onnx.helper.

The runtime never needs torch, and neither do its tests: the models here are genuine
ONNX graphs (a small strided CNN, like the real ones, and a linear one) with the
``fer_edge`` metadata that ``fer-edge export`` writes, plus deliberately broken variants.
Import the fixtures you use explicitly in a test module::

    from fixtures_runtime import cnn_model, sample_image  # noqa: F401
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest

from fer_edge.contract import METADATA_KEY, ModelContract
from fer_edge.labels import CLASSES

REPO = Path(__file__).resolve().parent.parent
# The known location of the astronaut's face in the packaged sample (x, y, w, h), checked
# by eye on the image and matching what the Haar cascade reports.
SAMPLE_FACE_BOX = (108, 51, 79, 79)


def reference_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, written out here: the oracle for the runtime's own."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def subprocess_env() -> dict[str, str]:
    """Environment for `python -m fer_edge` subprocesses (conftest's cli_env: the same fer_edge
    as this test process). Imported lazily: this module is also used outside pytest."""
    from conftest import cli_env

    return cli_env()


def _onnx():
    return pytest.importorskip("onnx", reason="building test models needs the onnx package ([train] extra)")


def make_model(
    kind: str = "cnn",
    classes: Sequence[str] = CLASSES,
    channels: int = 1,
    size: int = 48,
    batch: object = "N",
    contract: Optional[ModelContract] = None,
    metadata: Optional[str] = "auto",
    input_name: str = "input",
    output_name: str = "logits",
    out_classes: Optional[int] = None,
    input_shape: Optional[list] = None,
    seed: int = 0,
) -> bytes:
    """Serialized ONNX model. ``metadata="auto"`` writes a ModelContract matching the graph;
    None writes no fer_edge metadata; any other string is written verbatim.

    ``kind="cnn"``: 3 strided 3x3 conv + ReLU layers (16, 32, 64 channels), global average
    pooling and a linear layer, i.e. the shape of a real small FER network.
    ``kind="linear"``: Flatten + Gemm, cheap and exactly computable with numpy.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    k = out_classes if out_classes is not None else len(classes)
    nodes, inits = [], []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    if kind == "cnn":
        prev, cin = input_name, channels
        for i, cout in enumerate((16, 32, 64)):
            w = init(f"w{i}", rng.normal(0, np.sqrt(2.0 / (9 * cin)), (cout, cin, 3, 3)))
            b = init(f"b{i}", rng.normal(0, 0.05, (cout,)))
            nodes.append(helper.make_node("Conv", [prev, w, b], [f"c{i}"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
            prev, cin = f"r{i}", cout
        nodes.append(helper.make_node("GlobalAveragePool", [prev], ["gap"]))
        nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
        feat = cin
    elif kind in ("linear", "nan"):
        nodes.append(helper.make_node("Flatten", [input_name], ["flat"], axis=1))
        feat = channels * size * size
    elif kind == "fails_at_run":  # loads and validates; a reshape that no real batch fits fails when run
        nodes.append(helper.make_node("Flatten", [input_name], ["flat0"], axis=1))
        shape5 = "shape5"
        inits.append(numpy_helper.from_array(np.array([-1, 5], np.int64), shape5))
        nodes.append(helper.make_node("Reshape", ["flat0", shape5], ["flat"]))
        feat = 5
    else:
        raise ValueError(kind)
    w = init("fc_w", rng.normal(0, 1.0 / np.sqrt(feat), (k, feat)) * 4)
    b = init("fc_b", rng.normal(0, 0.1, (k,)))
    if kind == "nan":  # runs, and every score it gives is NaN
        nodes.append(helper.make_node("Gemm", ["flat", w, b], ["pre"], transB=1))
        nodes.append(helper.make_node("Mul", ["pre", init("nan", np.array([np.nan]))], [output_name]))
    else:
        nodes.append(helper.make_node("Gemm", ["flat", w, b], [output_name], transB=1))

    shape = input_shape if input_shape is not None else [batch, channels, size, size]
    graph = helper.make_graph(
        nodes,
        "fer_test",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fer-edge-tests")
    model.ir_version = 8  # loadable by every onnxruntime fer-edge supports (>= 1.16)
    if metadata == "auto":
        c = contract or ModelContract(
            classes=tuple(classes), input_size=size, channels=channels, mean=128.0, std=64.0,
            model=f"test-{kind}", input_name=input_name, output_name=output_name,
        )
        metadata = c.to_json()
    if metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: metadata})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_model(path: Path, **kwargs) -> Path:
    path.write_bytes(make_model(**kwargs))
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def cnn_model(model_dir) -> Path:
    """A valid fer-edge model: small CNN, 1x48x48 input, 7 classes, mean 128 / std 64."""
    return write_model(model_dir / "cnn.onnx", kind="cnn")


@pytest.fixture(scope="session")
def linear_model(model_dir) -> Path:
    return write_model(model_dir / "linear.onnx", kind="linear")


@pytest.fixture(scope="session")
def bad_models(model_dir) -> dict[str, Path]:
    """Invalid models by what is wrong with them."""
    d = model_dir
    garbage = d / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\x01\x02" * 20)
    empty = d / "empty.onnx"
    empty.write_bytes(b"")
    bad_json = ModelContract().to_json()[:-5]  # truncated JSON
    return {
        "garbage": garbage,
        "empty": empty,
        "no_metadata": write_model(d / "nometa.onnx", kind="linear", metadata=None),
        "bad_metadata": write_model(d / "badmeta.onnx", kind="linear", metadata=bad_json),
        "wrong_classes": write_model(d / "wrongk.onnx", kind="linear", out_classes=5),
        "wrong_input": write_model(
            d / "wrongin.onnx", kind="linear", size=32,
            contract=ModelContract(input_size=48, model="lies-about-size"),
        ),
        "rank3_input": write_model(d / "rank3.onnx", kind="linear", input_shape=["N", 48, 48]),
    }


@pytest.fixture(scope="session")
def sample_image() -> Path:
    """The packaged public-domain sample face (assets/sample_face.jpg)."""
    from fer_edge.runtime.default_model import sample_image_path

    return sample_image_path()


@pytest.fixture(scope="session")
def sample_bgr(sample_image) -> np.ndarray:
    import cv2

    return cv2.imread(str(sample_image), cv2.IMREAD_COLOR)


def face_patch(sample_bgr: np.ndarray, pad: float = 0.6, scale: float = 1.0) -> np.ndarray:
    """The sample face with some context around it, to paste into synthetic frames."""
    import cv2

    x, y, w, h = SAMPLE_FACE_BOX
    px, py = int(w * pad), int(h * pad)
    H, W = sample_bgr.shape[:2]
    patch = sample_bgr[max(0, y - py): min(H, y + h + py), max(0, x - px): min(W, x + w + px)].copy()
    if scale != 1.0:
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return patch


def synthetic_background(size: tuple[int, int]) -> np.ndarray:
    """A smooth room-like BGR background: gradients and a few soft shapes, no faces."""
    import cv2

    W, H = size
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.stack([90 + 60 * xx / W, 110 + 40 * yy / H, 140 - 50 * xx / W], axis=2)
    cv2.rectangle(bg, (int(0.05 * W), int(0.1 * H)), (int(0.25 * W), int(0.6 * H)), (70, 60, 50), -1)
    cv2.circle(bg, (int(0.8 * W), int(0.25 * H)), int(0.08 * W), (200, 210, 220), -1)
    return cv2.GaussianBlur(np.clip(bg, 0, 255).astype(np.uint8), (0, 0), 3)


def make_face_video(
    path: Path,
    sample_bgr: np.ndarray,
    frames: int = 24,
    size: tuple[int, int] = (640, 480),
    fps: float = 15.0,
    fourcc: str = "mp4v",
    face_scale: float = 1.5,
) -> list[tuple[int, int, int, int]]:
    """Write a video of the sample face moving across a background; returns the true face boxes.

    ``face_scale`` 1.5 makes the face about 120 px wide in a 640x480 frame, as a person
    sitting in front of a laptop camera appears.
    """
    import cv2

    patch = face_patch(sample_bgr, scale=face_scale)
    ph, pw = patch.shape[:2]
    W, H = size
    pad = int(SAMPLE_FACE_BOX[2] * 0.6)
    face_off = (int(min(SAMPLE_FACE_BOX[0], pad) * face_scale), int(min(SAMPLE_FACE_BOX[1], pad) * face_scale))
    face_side = int(round(SAMPLE_FACE_BOX[2] * face_scale))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened(), f"cannot write {path}"
    background = synthetic_background(size)
    boxes = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        ox = int(10 + t * (W - pw - 20))
        oy = int(max(0, (H - ph) / 2 + 20 * np.sin(2 * np.pi * t)))
        frame = background.copy()
        frame[oy: oy + ph, ox: ox + pw] = patch[: H - oy, : W - ox]
        writer.write(frame)
        boxes.append((ox + face_off[0], oy + face_off[1], face_side, face_side))
    writer.release()
    return boxes


def copy_sample(dst: Path, sample_image: Path) -> Path:
    shutil.copyfile(sample_image, dst)
    return dst
