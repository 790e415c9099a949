"""Probabilities from scores, and temperature scaling (Guo et al. 2017): one scalar per horizon,
fitted on validation data, that softens (or sharpens) a model's scores until their log-loss is
lowest there."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The T minimizing the log-loss of softmax(scores / T) on (n, 3) scores and their labels
    (golden-section search on log T in [0.05, 200]; the loss is unimodal in T)."""
    if len(labels) == 0:
        return 1.0
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        p = softmax(scores / np.exp(log_t))
        return float(-np.mean(np.log(np.maximum(p[rows, labels], 1e-12))))

    low, high = np.log(0.05), np.log(200.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))
