"""Walk-forward evaluation's pieces: when a period's recordings start and end, and the mean of the
folds' metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dataflows.recordings import open_recording
from dataflows.sources import recording_paths


def receive_span(paths: Sequence[str | Path]) -> tuple[int, int]:
    """The first and last receive time (ns) of the messages in the recordings (read through)."""
    first, last = None, None
    for path in recording_paths(paths):
        for message in open_recording(path):
            ts = message.receive_ts
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
    if first is None or last is None:
        raise ValueError(f"{', '.join(map(str, paths))}: the recordings hold no messages")
    return first, last


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
