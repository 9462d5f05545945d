"""Probabilities that mean what they say: temperature scaling, ECE and NLL (numpy only, no torch).

A classifier trained with label smoothing, mixup and distillation is underconfident: its
top score reads 0.6 where it is right 70 % of the time. One scalar fixes that without
changing a single prediction (Guo et al., 2017): probabilities are ``softmax(logits / T)``
with ``T`` chosen to minimise the negative log-likelihood on PublicTest. Export fits ``T``
and stores it in the ONNX contract; the runtime applies it; ``eval`` reports the result as
the expected calibration error (ECE: the gap between confidence and accuracy, averaged over
15 equal-width confidence bins, weighted by how many faces fall in each) and the NLL.
"""
from __future__ import annotations

import numpy as np

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)  # the contract refuses anything outside it


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 0.0
    logp = _log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top class, ``bins`` equal-width bins over (0, 1]."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return 0.0
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    # bin b holds confidences in (b/bins, (b+1)/bins]
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / n * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def softmax_t(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` in :data:`TEMPERATURE_RANGE` that minimises the NLL (a 1-D bounded search over log T)."""
    from scipy.optimize import minimize_scalar

    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    res = minimize_scalar(lambda lt: nll(logits, labels, float(np.exp(lt))), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> dict[str, float]:
    """ECE, NLL and mean confidence under ``temperature``: what ``eval`` reports."""
    probs = softmax_t(logits, temperature)
    return {
        "temperature": float(temperature),
        "ece": ece(probs, labels),
        "nll": nll(logits, labels, temperature),
        "mean_confidence": float(probs.max(1).mean()) if len(probs) else 0.0,
        "ece_bins": ECE_BINS,
    }
