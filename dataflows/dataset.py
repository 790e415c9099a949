"""Training data from recordings: the flow's keyed steps replayed in this process, each
instrument's best bid/offer events with their model inputs and, per horizon, the move that
labels them (NaN where the recording ends before the horizon does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from models.stream import BboEvents, BboStream, EventData
from operators.instrument import Derived
from operators.labels import LabelMaker, Matured
from quantumflow.horizons import Horizon


def build_dataset(
    paths: Sequence[str | Path],
    horizons: list[Horizon],
    feed: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[EventData]:
    """One ``EventData`` per instrument with at least one event, in order of first appearance."""
    return dataset_of(derive_offline(paths, feed, on_progress=on_progress), horizons)


def dataset_of(derived: Iterable, horizons: list[Horizon]) -> list[EventData]:
    """``build_dataset`` from the flow's keyed steps' output, already replayed (e.g. kept in memory)."""
    streams: dict[str, BboStream] = {}
    makers: dict[str, LabelMaker] = {}
    parts: dict[str, list[BboEvents]] = {}
    matured: dict[str, list[tuple[int, Matured]]] = {}
    for batch in derived:
        if type(batch) is not Derived:
            continue
        name = batch.instrument
        if name not in streams:
            streams[name], makers[name], parts[name], matured[name] = BboStream(), LabelMaker(horizons), [], []
        events = streams[name](batch.frame, batch.features)
        ts_list = events.ts.tolist()
        at, horizon, event, moves = makers[name].push_many(ts_list, events.mid.tolist())
        matured[name] += [(ts_list[j], Matured(h, i, r)) for j, h, i, r in zip(at, horizon, event, moves, strict=True)]
        parts[name].append(events)
    data = []
    for name, chunks in parts.items():
        events = BboEvents(*(np.concatenate(column) for column in zip(*chunks, strict=True)))
        if not len(events):
            continue
        returns = np.full((len(events), len(horizons)), np.nan)
        known = np.full((len(events), len(horizons)), -1, dtype=np.int64)
        for ts, (h, i, r) in matured[name]:
            returns[i, h], known[i, h] = r, ts
        data.append(EventData(name, events, returns, known))
    return data
