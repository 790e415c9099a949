"""Walk-forward evaluation: the mean of the folds' metrics."""

from __future__ import annotations

import numpy as np


def mean_metrics(folds: list[dict]) -> dict[str, dict[str, dict]]:
    """model -> horizon -> metric: the mean over the folds of each number (``n`` summed)."""
    first = folds[0]["metrics"]
    out: dict[str, dict[str, dict]] = {}
    for model, by_horizon in first.items():
        for horizon, metrics in by_horizon.items():
            values = [fold["metrics"][model][horizon] for fold in folds]
            out.setdefault(model, {})[horizon] = {
                name: (sum(v[name] for v in values) if name == "n" else float(np.mean([v[name] for v in values])))
                for name, value in metrics.items()
                if isinstance(value, int | float)
            }
    return out
