"""FerModel and provider selection: loading, validation, running, device choice."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from fer_edge.contract import ModelContract
from fer_edge.errors import DeviceError, ModelError, UsageError
from fer_edge.labels import CLASSES
from fer_edge.runtime import providers as prov
from fer_edge.runtime.model import FerModel

from fixtures_runtime import bad_models, cnn_model, linear_model, model_dir, reference_softmax, write_model  # noqa: F401


def _linear_weights(path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    return inits["fc_w"], inits["fc_b"]


def test_load_reads_contract_and_runs(cnn_model):
    m = FerModel.load(cnn_model, device="cpu")
    assert m.contract.classes == CLASSES
    assert (m.contract.input_size, m.contract.channels, m.contract.mean, m.contract.std) == (48, 1, 128.0, 64.0)
    assert m.providers == ["CPUExecutionProvider"]
    assert m.path == cnn_model
    x = np.random.default_rng(0).normal(size=(5, 1, 48, 48)).astype(np.float32)
    logits = m.run(x)
    assert logits.shape == (5, 7) and logits.dtype == np.float32
    p = m.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p, reference_softmax(logits), rtol=1e-6)
    # batch results equal one-at-a-time results
    one = np.concatenate([m.run(x[i: i + 1]) for i in range(5)])
    np.testing.assert_allclose(logits, one, rtol=1e-5, atol=1e-5)


def test_linear_model_matches_numpy(linear_model):
    m = FerModel.load(linear_model, device="cpu", threads=1)
    w, b = _linear_weights(linear_model)
    x = np.random.default_rng(1).normal(size=(3, 1, 48, 48)).astype(np.float32)
    np.testing.assert_allclose(m.run(x), x.reshape(3, -1) @ w.T + b, rtol=1e-4, atol=1e-4)


def test_empty_batch_and_bad_batches(cnn_model):
    m = FerModel.load(cnn_model, device="cpu")
    assert m.run(np.zeros((0, 1, 48, 48), np.float32)).shape == (0, 7)
    with pytest.raises(ValueError, match=r"\(N, 1, 48, 48\)"):
        m.run(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError):
        m.run(np.zeros((1, 48, 48), np.float32))
    # float64 input is converted, not rejected
    assert m.run(np.zeros((1, 1, 48, 48), np.float64)).dtype == np.float32


def test_fixed_batch_model_runs_in_slices(model_dir):
    path = write_model(model_dir / "fixed1.onnx", kind="linear", batch=1)
    m = FerModel.load(path, device="cpu")
    assert m.max_batch == 1
    w, b = _linear_weights(path)
    x = np.random.default_rng(2).normal(size=(4, 1, 48, 48)).astype(np.float32)
    np.testing.assert_allclose(m.run(x), x.reshape(4, -1) @ w.T + b, rtol=1e-4, atol=1e-4)


def test_three_channel_and_custom_classes(model_dir):
    classes = ("calm", "joy", "anger")
    path = write_model(model_dir / "rgb3.onnx", kind="cnn", channels=3, classes=classes, size=64)
    m = FerModel.load(path, device="cpu")
    assert m.classes == classes and m.channels == 3 and m.input_size == 64
    assert m.run(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 3)


@pytest.mark.parametrize(
    "which, message",
    [
        ("garbage", "not a valid ONNX model"),
        ("empty", "model file is empty"),
        ("no_metadata", "not exported by `fer-edge export`"),
        ("bad_metadata", "invalid 'fer_edge' metadata"),
        ("wrong_classes", r"expected \(N, 7\)"),
        ("wrong_input", r"needs \(N, 1, 48, 48\)"),
        ("rank3_input", r"needs \(N, 1, 48, 48\)"),
    ],
)
def test_invalid_models_give_one_clear_model_error(bad_models, which, message):
    with pytest.raises(ModelError, match=message) as info:
        FerModel.load(bad_models[which], device="cpu")
    assert "\n" not in str(info.value)


def test_missing_model_and_directory(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        FerModel.load(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match="directory"):
        FerModel.load(tmp_path)


def test_foreign_model_with_explicit_contract(bad_models):
    m = FerModel.load(bad_models["no_metadata"], device="cpu", contract=ModelContract(model="foreign"))
    assert m.contract.model == "foreign"
    assert m.run(np.zeros((1, 1, 48, 48), np.float32)).shape == (1, 7)


def test_default_model_missing_or_present():
    from fer_edge.runtime.default_model import default_model_path

    path = default_model_path(must_exist=False)
    if path.is_file():
        m = FerModel.load(None, device="cpu")
        assert m.path == path and len(m.classes) == 7
    else:
        with pytest.raises(ModelError, match="default model is not installed"):
            FerModel.load(None)


# ---------------------------------------------------------------------------- providers
CPU, CUDA, TRT = prov.CPU, prov.CUDA, prov.TENSORRT


@pytest.mark.parametrize(
    "device, available, primary, device_id",
    [
        ("auto", [CPU], CPU, None),
        ("auto", [CUDA, CPU], CUDA, 0),
        ("auto", [TRT, CUDA, CPU], CUDA, 0),  # CUDA preferred over TensorRT
        ("auto", [TRT, CPU], TRT, 0),
        ("cpu", [TRT, CUDA, CPU], CPU, None),
        ("cuda", [CUDA, CPU], CUDA, 0),
        ("cuda:1", [CUDA, CPU], CUDA, 1),
        ("GPU:2", [CUDA, CPU], CUDA, 2),
        ("tensorrt", [TRT, CUDA, CPU], TRT, 0),
    ],
)
def test_plan_providers(device, available, primary, device_id):
    plan = prov.plan_providers(device, available)
    assert plan.primary == primary
    assert plan.device_id == device_id
    names = [p if isinstance(p, str) else p[0] for p in plan.providers]
    assert names[-1] == CPU  # CPU is always the fallback
    if device_id is not None:
        assert dict(plan.providers[0][1])["device_id"] == device_id


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tensorrt"])
def test_forced_gpu_without_gpu_build_fails_clearly(device):
    with pytest.raises(DeviceError, match="onnxruntime"):
        prov.plan_providers(device, [CPU])


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:1", ""])
def test_bad_device_strings(device):
    if device == "":
        assert prov.plan_providers(device, [CPU]).primary == CPU  # empty means auto
        return
    with pytest.raises(DeviceError):
        prov.plan_providers(device, [CPU])


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_cuda_listed_but_not_working_falls_back_or_fails(cnn_model, monkeypatch, caplog):
    """onnxruntime silently drops a provider it cannot start; we notice.

    Pretend the build offers CUDA: the real (CPU-only) onnxruntime then creates a CPU
    session, which `auto` must report as a fallback and a forced `cuda` must refuse.
    """
    monkeypatch.setattr(prov, "available_providers", lambda: [CUDA, CPU])
    with caplog.at_level(logging.INFO, logger="fer_edge"):
        m = FerModel.load(cnn_model, device="auto")
    assert m.providers == [CPU]
    assert any("falling back to CPU" in r.getMessage() for r in caplog.records)
    with pytest.raises(DeviceError, match="failed to initialise"):
        FerModel.load(cnn_model, device="cuda")


def test_one_log_line_names_the_provider(cnn_model, caplog):
    with caplog.at_level(logging.INFO, logger="fer_edge"):
        FerModel.load(cnn_model)
    lines = [r.getMessage() for r in caplog.records if "provider" in r.getMessage()]
    assert lines == ["fer-edge: onnxruntime provider: CPUExecutionProvider"]


def test_threads_validation(cnn_model):
    for bad in (0, -2, 1.5):
        with pytest.raises(UsageError, match="threads must be a whole number of at least 1"):
            FerModel.load(cnn_model, threads=bad)
    assert FerModel.load(cnn_model, threads=1).run(np.zeros((1, 1, 48, 48), np.float32)).shape == (1, 7)
