"""Calibration: ECE and NLL as defined (oracles written out here), a fitted temperature that recovers the
one the labels were drawn with, and a runtime that applies the contract's temperature."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_edge.training.calibration import ece, fit_temperature, nll


def softmax_oracle(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_ece_by_hand():
    # confidences 0.9 (right), 0.9 (wrong), 0.55 (right), 0.35 (wrong): bins (0.8667, 0.9333], (0.5333, 0.6],
    # (0.3333, 0.4]: |0.9 - 0.5| * 2/4 + |0.55 - 1| * 1/4 + |0.35 - 0| * 1/4
    probs = np.array([[0.9, 0.1, 0.0], [0.9, 0.05, 0.05], [0.55, 0.45, 0.0], [0.35, 0.33, 0.32]])
    labels = np.array([0, 1, 0, 1])
    assert ece(probs, labels) == pytest.approx(0.2 + 0.1125 + 0.0875)


def test_nll_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 0])
    p = softmax_oracle(logits / 2.0)
    assert nll(logits, labels, 2.0) == pytest.approx(-np.mean(np.log(p[[0, 1], [0, 0]])))


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fitted_temperature_recovers_the_one_the_labels_follow(true_t):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 7))
    p = softmax_oracle(logits / true_t)
    labels = np.array([rng.choice(7, p=row) for row in p])
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    assert ece(softmax_oracle(logits / t), labels) < 0.02 < ece(softmax_oracle(logits), labels)


def test_the_runtime_applies_the_contracts_temperature(tmp_path):
    import onnx

    from fer_edge.contract import METADATA_KEY, ModelContract
    from fer_edge.runtime.model import FerModel
    from fixtures_runtime import write_model

    path = write_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    c = ModelContract.from_json(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))
    m1 = FerModel.load(str(path))
    x = np.random.default_rng(1).normal(0, 1, (4, c.channels, c.input_size, c.input_size)).astype(np.float32)
    logits = m1.run(x)
    for p in proto.metadata_props:
        if p.key == METADATA_KEY:
            p.value = ModelContract(**{**c.__dict__, "temperature": 2.0}).to_json()
    onnx.save(proto, str(tmp_path / "t2.onnx"))
    m2 = FerModel.load(str(tmp_path / "t2.onnx"))
    assert m2.temperature == 2.0 and m2.summary()["temperature"] == 2.0
    np.testing.assert_allclose(m2.predict_proba(x), softmax_oracle(logits / 2.0), atol=1e-6)
    np.testing.assert_allclose(m1.predict_proba(x), softmax_oracle(logits), atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), 1e9])
def test_a_contract_with_an_impossible_temperature_is_refused(bad):
    from fer_edge.contract import ModelContract

    text = ModelContract().to_json().replace('"temperature": 1.0', f'"temperature": {json.dumps(bad)}')
    with pytest.raises(ValueError, match="temperature"):
        ModelContract.from_json(text)


@pytest.mark.parametrize("field,value,why", [
    ("mean", float("nan"), "finite"), ("std", float("inf"), "finite"), ("input_size", 0, "input_size"),
    ("input_size", 30000, "input_size"), ("classes", ["angry", "\x1b]0;pwned\x07"], "class names"),
    ("classes", ["a", "a"], "class names"), ("classes", ["line\nbreak"], "class names"),
])
def test_a_contract_with_impossible_values_is_refused(field, value, why):
    from fer_edge.contract import ModelContract

    d = json.loads(ModelContract().to_json())
    d[field] = value
    with pytest.raises(ValueError, match=why):
        ModelContract.from_json(json.dumps(d))


def test_a_model_with_an_invalid_contract_is_one_line_and_exit_4(tmp_path):
    from conftest import run_cli
    from fer_edge.contract import ModelContract
    from fixtures_runtime import sample_image as _unused  # noqa: F401
    from fixtures_runtime import write_model

    bad = ModelContract(input_size=48, classes=("angry", "evil\x1b[2J"))
    path = write_model(tmp_path / "m.onnx", contract=bad)
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.full((48, 48), 128, np.uint8))
    r = run_cli("infer", "--model", str(path), "--no-detect", str(img))
    assert r.returncode == 4 and len(r.stderr.strip().splitlines()) == 1 and "\x1b" not in r.stderr
