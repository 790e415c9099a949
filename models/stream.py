"""An instrument's book events turned into the events the models speak about: changes of the
best bid or offer, with their mids and model inputs. The flow, training, evaluation and the
snapshot API all go through ``BboStream``, so they see the same events."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from models.inputs import raw_inputs
from operators.features.compute import REBASE_EVERY
from operators.features.formulas import order_flow_increments
from operators.features.frame import BookFrame
from operators.labels import bbo_changes
from quantumflow.features import FEATURE_INDEX, LEVELS

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
    batch's last, and the order flow since the last event."""

    __slots__ = ("_flow", "_last")

    def __init__(self) -> None:
        self._last: np.ndarray | None = None
        self._flow = EventOrderFlow()

    def __call__(self, frame: BookFrame, features: np.ndarray, last_is_event: bool = False) -> BboEvents:
        """The events of a batch; ``last_is_event`` makes its last row one even if the best bid and
        offer did not change (a client's snapshots, where the last is the one asked about)."""
        l1 = np.column_stack(
            [frame.bid_prices[:, 0], frame.bid_sizes[:, 0], frame.ask_prices[:, 0], frame.ask_sizes[:, 0]]
        )
        changed = bbo_changes(l1, self._last)
        if len(l1):
            self._last = l1[-1]
            changed[-1] |= last_is_event
        rows = features[changed]
        return BboEvents(
            frame.ts[changed],
            frame.seq[changed],
            frame.exchange_ts[changed],
            rows[:, _MID],
            raw_inputs(rows, self._flow(frame, changed)),
        )


class EventOrderFlow:
    """Multi-level order flow (the increments e_k of ``order_flow_increments`` at levels 1..10)
    summed over the book events since the previous model event, this one included.

    The increments are summed as running totals in stream order that restart every
    ``REBASE_EVERY`` rows, as the features' windows are, so the sums do not depend on how the
    stream is cut into batches and one huge size spoils only the events around it."""

    __slots__ = ("_at_event", "_levels", "_rows", "_total")

    def __init__(self) -> None:
        self._levels: tuple[np.ndarray, ...] | None = None
        self._total = np.zeros(LEVELS)
        self._at_event = np.zeros(LEVELS)  # the running total at the previous event
        self._rows = 0

    def __call__(self, frame: BookFrame, events: np.ndarray) -> np.ndarray:
        """(events.sum(), LEVELS): the flow of each event (``events``: a mask over the frame's rows)."""
        n = len(frame)
        rebase_at = (self._rows // REBASE_EVERY + 1) * REBASE_EVERY
        if self._rows + n > rebase_at:
            cut = rebase_at - self._rows
            head = self(frame.rows(slice(0, cut)), events[:cut])
            return np.vstack([head, self(frame.rows(slice(cut, None)), events[cut:])])
        if n == 0:
            return np.zeros((0, LEVELS))
        if self._rows and self._rows % REBASE_EVERY == 0:
            self._at_event, self._total = self._at_event - self._total, np.zeros(LEVELS)
        current = (frame.bid_prices, frame.bid_sizes, frame.ask_prices, frame.ask_sizes)
        previous = self._levels or tuple(c[0] for c in current)
        increments = order_flow_increments(
            *(np.concatenate([p[None], c[:-1]]) for p, c in zip(previous, current, strict=True)), *current
        )
        increments[frame.reset] = 0.0
        totals = np.cumsum(np.concatenate([self._total[None], increments]), axis=0)[1:]
        at = totals[events]
        flow = at - np.concatenate([self._at_event[None], at[:-1]])
        if len(at):
            self._at_event = at[-1]
        self._total = totals[-1]
        self._levels = tuple(c[-1] for c in current)
        self._rows += n
        return flow


class EventData(NamedTuple):
    """An instrument's events over a recording with, per horizon, the move that labels each."""

    instrument: str
    events: BboEvents
    returns_bps: np.ndarray  # (n, horizons), NaN where the recording ends first
    matured_ts: np.ndarray  # (n, horizons) int64: receive time of the event that made it known, -1 if none

    def __len__(self) -> int:
        return len(self.events)
