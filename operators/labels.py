"""Direction labels: where the mid goes after an event, and when that becomes known.

An *event* here is a change of the best bid or offer (price or size). The label of event i at
horizon h compares the mean mid over the horizon with the mid of event i, in bps:

- ``k`` events (e.g. ``"50"``): the mean of the mids of events i+1..i+k; known at event i+k.
- ``s`` seconds (e.g. ``"10s"``, ``"500ms"``): the time-weighted mean of the mid over
  (t_i, t_i + s]; known at the first event later than t_i + s (only then is it certain that no
  other change came inside the window).

The class is down / flat / up as the move is below -θ, within ±θ, or above +θ. ``LabelMaker`` is
the one implementation, run event by event in stream order by the flow and by training alike, so
a label can never be seen before the event that makes it known.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from quantumflow.errors import UnfitInput

DOWN, FLAT, UP = 0, 1, 2  # class indices; the store writes them as -1, 0, +1
CLASS_SIGNS = (-1, 0, 1)
DEFAULT_HORIZONS = "10,50,100,1s,10s"
PRICE_SCALE = 10**10  # mids are counted in units of 1e-10
_HORIZON = re.compile(r"(\d+)(ms|s)?\Z")


class Horizon(NamedTuple):
    name: str
    events: int = 0  # > 0 for an event horizon
    ns: int = 0  # > 0 for a time horizon

    @classmethod
    def parse(cls, text: str) -> Horizon:
        """``"50"`` is 50 events, ``"10s"`` ten seconds, ``"500ms"`` half a second."""
        match = _HORIZON.match(text.strip())
        if not match or int(match[1]) <= 0:
            raise ValueError(f"bad horizon {text!r}: give a number of events (50) or a time (10s, 500ms)")
        count, unit = int(match[1]), match[2]
        if unit is None:
            return cls(str(count), events=count)
        return cls(f"{count}{unit}", ns=count * (1_000_000 if unit == "ms" else 1_000_000_000))


def parse_horizons(text: str) -> list[Horizon]:
    horizons = [Horizon.parse(part) for part in text.split(",") if part.strip()]
    names = [h.name for h in horizons]
    if not horizons or len(set(names)) != len(names):
        raise ValueError(f"bad horizons {text!r}: give distinct horizons separated by commas, e.g. 10,50,100,1s")
    return horizons


class Matured(NamedTuple):
    horizon: int  # index into the maker's horizons
    event: int  # the event's number in the maker's stream (0-based)
    return_bps: float  # mean mid over the horizon against the event's mid


class LabelMaker:
    """Streaming labels for one instrument: ``push`` each event's time and mid in order, get the
    labels that event makes known.

    Mids are kept as integers (units of 1e-10) and their running sums and time integrals as
    Python integers, so a window's mean is exact: an unchanged mid gives a move of exactly 0 (a
    float running sum would give rounding noise, which a flat band fitted on the data would then
    mistake for moves), and no value depends on where the stream was cut into batches."""

    __slots__ = ("_count", "_horizons", "_integral", "_mid", "_next", "_start", "_sum", "_ts")

    def __init__(self, horizons: list[Horizon]) -> None:
        self._horizons = horizons
        self._count = 0
        self._ts: list[int] = []  # per event still needed: receive time ns
        self._mid: list[int] = []  # mid in units of 1 / PRICE_SCALE
        self._sum: list[int] = []  # running sum of mids up to and including the event
        self._integral: list[int] = []  # running integral of the mid over time (units x ns) up to the event
        self._next = [0] * len(horizons)  # per horizon: the next event whose label is still to come
        self._start = 0  # event number of the first event kept

    def push(self, ts: int, mid: float) -> list[Matured]:
        units = round(mid * PRICE_SCALE)
        if self._count:
            integral = self._integral[-1] + self._mid[-1] * (ts - self._ts[-1])
            running = self._sum[-1] + units
        else:
            integral, running = 0, units
        self._ts.append(ts)
        self._mid.append(units)
        self._sum.append(running)
        self._integral.append(integral)
        self._count += 1
        out: list[Matured] = []
        for h, horizon in enumerate(self._horizons):
            if horizon.events:
                out += self._matured_by_events(h, horizon.events)
            else:
                out += self._matured_by_time(h, horizon.ns, ts)
        self._forget()
        return out

    def _matured_by_events(self, h: int, k: int) -> list[Matured]:
        i = self._count - 1 - k
        if i < self._next[h]:
            return []
        self._next[h] = i + 1
        j = i - self._start
        mid = self._mid[j]
        return [Matured(h, i, 1e4 * (self._sum[-1] - self._sum[j] - k * mid) / (k * mid))]

    def _matured_by_time(self, h: int, span_ns: int, now: int) -> list[Matured]:
        out = []
        ts, mids, integral = self._ts, self._mid, self._integral
        i = self._next[h]
        while i < self._count - 1 and ts[i - self._start] + span_ns < now:
            j = i - self._start
            end = ts[j] + span_ns
            k = bisect_right(ts, end, j) - 1  # the last event inside the window
            area = integral[k] - integral[j] + mids[k] * (end - ts[k])
            out.append(Matured(h, i, 1e4 * (area - mids[j] * span_ns) / (mids[j] * span_ns)))
            i += 1
        self._next[h] = i
        return out

    def _forget(self) -> None:
        """Drop events no label needs any more (keeping the last one for the running sums)."""
        drop = min(min(self._next), self._count - 1) - self._start
        if drop >= 4096:
            for values in (self._ts, self._mid, self._sum, self._integral):
                del values[:drop]
            self._start += drop


def label_of(return_bps: float, theta_bps: float) -> int:
    """The class index of one move against the flat band ±θ."""
    return UP if return_bps > theta_bps else DOWN if return_bps < -theta_bps else FLAT


def classify(return_bps: np.ndarray | float, theta_bps: float) -> np.ndarray:
    """Class indices (DOWN, FLAT, UP) of moves against the flat band ±θ (``label_of`` for arrays)."""
    r = np.asarray(return_bps, dtype=float)
    return np.where(r > theta_bps, UP, np.where(r < -theta_bps, DOWN, FLAT))


def fit_theta(return_bps: np.ndarray) -> float:
    """The θ that makes the three classes about equal on these (training) moves: a third of the
    moves within ±θ, the rest split by sign."""
    moves = np.abs(np.asarray(return_bps, dtype=float))
    moves = moves[np.isfinite(moves)]
    if len(moves) == 0:
        raise UnfitInput("no matured labels to fit the flat band on: the recording is too short for the horizon")
    return float(np.quantile(moves, 1 / 3))


def bbo_changes(frame_l1: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Which book events change the best bid or offer: ``frame_l1`` is (n, 4) of best bid price,
    bid size, ask price, ask size per event; ``previous`` the last row of the batch before (None
    at the start). A snapshot that leaves the top as it was is no event."""
    if len(frame_l1) == 0:
        return np.zeros(0, dtype=bool)
    before = np.vstack([np.full((1, 4), np.nan) if previous is None else previous[None, :], frame_l1[:-1]])
    return np.any(frame_l1 != before, axis=1)
