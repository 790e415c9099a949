"""An instrument's book events turned into the events the models speak about: changes of the
best bid or offer, with their mids and model inputs. The flow, training and evaluation all go
through ``BboStream``, so they see the same events."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from models.inputs import raw_inputs
from operators.features.frame import BookFrame
from operators.labels import bbo_changes
from quantumflow.features import FEATURE_INDEX

_MID = FEATURE_INDEX["mid"]


class BboEvents(NamedTuple):
    ts: np.ndarray  # int64 receive time ns
    seq: np.ndarray  # int64 the event's number in the instrument's stream
    exchange_ts: np.ndarray  # int64, NO_ID where the venue gives none
    mid: np.ndarray
    inputs: np.ndarray  # (n, len(INPUT_NAMES)) before standardization

    def __len__(self) -> int:
        return len(self.ts)


class BboStream:
    """Keeps the last best bid/offer seen, so a batch's first event is compared with the previous
    batch's last."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: np.ndarray | None = None

    def __call__(self, frame: BookFrame, features: np.ndarray) -> BboEvents:
        l1 = np.column_stack(
            [frame.bid_prices[:, 0], frame.bid_sizes[:, 0], frame.ask_prices[:, 0], frame.ask_sizes[:, 0]]
        )
        changed = bbo_changes(l1, self._last)
        if len(l1):
            self._last = l1[-1]
        rows = features[changed]
        return BboEvents(
            frame.ts[changed], frame.seq[changed], frame.exchange_ts[changed], rows[:, _MID], raw_inputs(rows)
        )


class EventData(NamedTuple):
    """An instrument's events over a recording with, per horizon, the move that labels each."""

    instrument: str
    events: BboEvents
    returns_bps: np.ndarray  # (n, horizons), NaN where the recording ends first
    matured_ts: np.ndarray  # (n, horizons) int64: receive time of the event that made it known, -1 if none

    def __len__(self) -> int:
        return len(self.events)
