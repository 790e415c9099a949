"""PNG figures for model evaluation: confusion matrices, training curves, ensemble weights over time,
calibration curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from models.metrics import CLASS_NAMES

DPI = 110


def save_figure(fig, path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder made if need be) and close it, even on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def confusion_png(path, confusions: dict[tuple[str, str], list[list[int]]]) -> Path:
    """One heat-map per (model, horizon): models as rows, horizons as columns, in first-seen order."""
    if not confusions:
        raise ValueError("no confusion matrices to plot")
    k = len(CLASS_NAMES)
    matrices = {key: np.asarray(m, dtype=np.int64) for key, m in confusions.items()}
    for (model, horizon), counts in matrices.items():
        if counts.shape != (k, k):
            raise ValueError(f"confusion for {model} · {horizon} must be {k}x{k}, got {counts.shape}")
    models = list(dict.fromkeys(m for m, _ in matrices))
    horizons = list(dict.fromkeys(h for _, h in matrices))
    size = (3.4 * len(horizons), 3.2 * len(models))
    fig, axes = plt.subplots(len(models), len(horizons), figsize=size, squeeze=False, layout="constrained")
    for r, model in enumerate(models):
        for c, horizon in enumerate(horizons):
            ax = axes[r][c]
            if (model, horizon) not in matrices:
                ax.axis("off")
                continue
            counts = matrices[model, horizon]
            rows = counts.sum(axis=1, keepdims=True)
            share = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
            # Colour by the row share so cells compare across classes of different sizes.
            ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
            for i in range(k):
                for j in range(k):
                    colour = "white" if share[i, j] > 0.6 else "black"
                    ax.text(j, i, f"{counts[i, j]}\n{share[i, j]:.0%}", ha="center", va="center", color=colour)
            ax.set_xticks(range(k), CLASS_NAMES)
            ax.set_yticks(range(k), CLASS_NAMES)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{model} · {horizon}")
    return save_figure(fig, path)


def training_curves_png(path, histories: dict[str, list[dict]]) -> Path:
    """Train and validation log-loss per epoch, one subplot per model; the early-stopping epoch as a line."""
    if not histories:
        raise ValueError("no training histories to plot")
    curves = {
        model: ([h["epoch"] for h in hist], [h["train_loss"] for h in hist], [h["val_loss"] for h in hist])
        for model, hist in histories.items()
    }
    fig, axes = plt.subplots(
        1, len(histories), figsize=(4.5 * len(histories), 3.5), squeeze=False, layout="constrained"
    )
    for ax, (model, (epochs, train, val)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(epochs, train, marker=".", label="train")
        ax.plot(epochs, val, marker=".", label="validation")
        for h in histories[model]:
            if h.get("best"):
                ax.axvline(h["epoch"], color="grey", linestyle="--", label=f"best (epoch {h['epoch']})")
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.set_ylabel("log-loss")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def weights_png(path, times_s: np.ndarray, weights: dict[str, dict[str, np.ndarray]]) -> Path:
    """Each model's ensemble weight over time (stacked), one subplot per horizon."""
    if not weights:
        raise ValueError("no ensemble weights to plot")
    t = np.asarray(times_s, dtype=np.float64)
    series = {h: {m: np.asarray(w, dtype=np.float64) for m, w in per_model.items()} for h, per_model in weights.items()}
    for horizon, per_model in series.items():
        for model, w in per_model.items():
            if w.shape != t.shape:
                raise ValueError(f"weights for {model} at {horizon} have shape {w.shape}, times_s has {t.shape}")
    fig, axes = plt.subplots(
        len(weights), 1, figsize=(8, 2.8 * len(weights)), squeeze=False, sharex=True, layout="constrained"
    )
    for ax, (horizon, per_model) in zip(axes[:, 0], series.items(), strict=True):
        ax.stackplot(t, *per_model.values(), labels=list(per_model), alpha=0.85)
        ax.set_title(horizon)
        ax.set_ylabel("weight")
        ax.margins(x=0)
        ax.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("seconds since start")
    return save_figure(fig, path)


def calibration_png(path, curves: dict[str, dict[str, dict[str, list]]]) -> Path:
    """Reliability diagrams, one subplot per horizon, a line per model: the share of right predictions
    against their mean confidence per confidence bin (``models.metrics.reliability``); the diagonal is
    perfect calibration. ``curves`` is model -> horizon -> reliability."""
    if not curves:
        raise ValueError("no calibration curves to plot")
    horizons = list(dict.fromkeys(h for by_horizon in curves.values() for h in by_horizon))
    fig, axes = plt.subplots(1, len(horizons), figsize=(4.2 * len(horizons), 4), squeeze=False, layout="constrained")
    for ax, horizon in zip(axes[0], horizons, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
        for model, by_horizon in curves.items():
            if horizon in by_horizon:
                curve = by_horizon[horizon]
                ax.plot(curve["confidence"], curve["accuracy"], marker=".", label=model)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(horizon)
        ax.set_xlabel("confidence (mean of the bin)")
        ax.set_ylabel("share right")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_figure(fig, path)
