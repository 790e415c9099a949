"""Scores for 3-class direction predictions (0 = down, 1 = flat, 2 = up), in pure numpy."""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("down", "flat", "up")
K = len(CLASS_NAMES)
EPS = 1e-12


def _validate(y_true, probs, bins: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty: no predictions to score")
    if p.shape != (y.size, K):
        raise ValueError(f"probs must have shape ({y.size}, {K}) to match y_true, got {p.shape}")
    if not np.isin(y, np.arange(K)).all():
        bad = np.unique(y[~np.isin(y, np.arange(K))])[:5].tolist()
        raise ValueError(f"labels must be in {{0, 1, 2}}, got {bad}")
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or infinite values")
    if (p < 0).any():
        raise ValueError("probs contain negative values")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return y.astype(np.int64), p


def report(y_true: np.ndarray, probs: np.ndarray, bins: int = 15, predicted: np.ndarray | None = None) -> dict:
    """Accuracy, per-class precision/recall, macro-F1, log-loss, ECE and the confusion matrix.

    Rows of `probs` are assumed to sum to 1; the predicted class is `predicted` when given (a model's own
    decision rule), else the argmax (first index wins ties). The ECE is the top-label calibration of
    `probs` either way.
    As sklearn's zero_division=0 with labels=[0, 1, 2]: a class never predicted has precision 0, a class
    never present has recall 0, and all three classes always count in the macro-F1 average.
    """
    y, p = _validate(y_true, probs, bins)
    n = y.size
    pred = p.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    if pred.shape != y.shape or not np.isin(pred, np.arange(K)).all():
        raise ValueError("predicted must hold one class in {0, 1, 2} per label")
    confusion = np.bincount(y * K + pred, minlength=K * K).reshape(K, K)
    tp = np.diag(confusion)
    predicted, present = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(K), where=predicted > 0)
    recall = np.divide(tp, present, out=np.zeros(K), where=present > 0)
    f1_den = predicted + present  # 2tp + fp + fn
    f1 = np.divide(2 * tp, f1_den, out=np.zeros(K), where=f1_den > 0)

    clipped = np.clip(p, EPS, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    log_loss = -np.log(clipped[np.arange(n), y]).mean()

    top = p.argmax(axis=1)
    conf = p[np.arange(n), top]
    # Bins are (i/bins, (i+1)/bins]; a confidence of exactly 0 (only for rows not summing to 1) joins the first.
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.bincount(idx, weights=(top == y) - conf, minlength=bins)
    ece = np.abs(gap).sum() / n  # sum over bins of (count/n) * |mean(correct) - mean(conf)|

    out: dict = {"n": int(n), "accuracy": float(tp.sum() / n), "macro_f1": float(f1.mean())}
    out |= {f"precision_{c}": float(v) for c, v in zip(CLASS_NAMES, precision, strict=True)}
    out |= {f"recall_{c}": float(v) for c, v in zip(CLASS_NAMES, recall, strict=True)}
    out |= {"log_loss": float(log_loss), "ece": float(ece), "confusion": confusion.tolist()}
    return out


def reliability(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict[str, list]:
    """The calibration curve behind the ECE: per confidence bin ((i/bins, (i+1)/bins], as in ``report``)
    that holds predictions, the number of them, their mean confidence and the share that was right."""
    y, p = _validate(y_true, probs, bins)
    pred = p.argmax(axis=1)
    conf = p[np.arange(y.size), pred]
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    held = count > 0
    mean_conf = np.bincount(idx, weights=conf, minlength=bins)[held] / count[held]
    accuracy = np.bincount(idx, weights=pred == y, minlength=bins)[held] / count[held]
    return {"count": count[held].tolist(), "confidence": mean_conf.tolist(), "accuracy": accuracy.tolist()}
