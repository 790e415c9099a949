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

from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from quantumflow.errors import UnfitInput
from quantumflow.horizons import Horizon

DOWN, FLAT, UP = 0, 1, 2  # class indices; the store writes them as -1, 0, +1
CLASS_SIGNS = (-1, 0, 1)
DEFAULT_HORIZONS = "10,50,100,1s,10s"
PRICE_SCALE = 10**10  # mids are counted in units of 1e-10


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
        _, horizon, event, moves = self.push_many([ts], [mid])
        return list(map(Matured._make, zip(horizon, event, moves, strict=True)))

    def push_many(self, ts_list: list[int], mids: list[float]) -> tuple[list[int], list[int], list[int], list[float]]:
        """``push`` each event in turn; the labels they make known as columns: the position in ``ts_list``
        of the event that made each known, its horizon, the event it labels and the move. One loop for
        the lot, the state in local names (the flow pushes every event of a batch)."""
        at: list[int] = []
        horizon_of: list[int] = []
        event_of: list[int] = []
        moves: list[float] = []
        stamps, units_of, sums, integrals, following = self._ts, self._mid, self._sum, self._integral, self._next
        kinds = [(h, horizon.events, horizon.ns) for h, horizon in enumerate(self._horizons)]
        count, start = self._count, self._start
        for j, (ts, mid) in enumerate(zip(ts_list, mids, strict=True)):
            units = round(mid * PRICE_SCALE)
            if count:
                integral = integrals[-1] + units_of[-1] * (ts - stamps[-1])
                running = sums[-1] + units
            else:
                integral, running = 0, units
            stamps.append(ts)
            units_of.append(units)
            sums.append(running)
            integrals.append(integral)
            count += 1
            for h, k, span in kinds:
                if k:  # the mean of the mids of events i+1..i+k, known at event i+k
                    i = count - 1 - k
                    if i < following[h]:
                        continue
                    following[h] = i + 1
                    mid_i = units_of[i - start]
                    at.append(j)
                    horizon_of.append(h)
                    event_of.append(i)
                    moves.append(1e4 * (running - sums[i - start] - k * mid_i) / (k * mid_i))
                    continue
                i = following[h]  # the time-weighted mean over (t_i, t_i + span], known after it
                while i < count - 1 and stamps[i - start] + span < ts:
                    first = i - start
                    end = stamps[first] + span
                    last = bisect_right(stamps, end, first) - 1  # the last event inside the window
                    area = integrals[last] - integrals[first] + units_of[last] * (end - stamps[last])
                    at.append(j)
                    horizon_of.append(h)
                    event_of.append(i)
                    moves.append(1e4 * (area - units_of[first] * span) / (units_of[first] * span))
                    i += 1
                following[h] = i
            drop = min(min(following), count - 1) - start  # events no label needs any more (the last kept)
            if drop >= 4096:
                for values in (stamps, units_of, sums, integrals):
                    del values[:drop]
                start += drop
        self._count, self._start = count, start
        return at, horizon_of, event_of, moves


def label_of(return_bps: float, theta_bps: float) -> int:
    """The class index of one move against the flat band ±θ."""
    return UP if return_bps > theta_bps else DOWN if return_bps < -theta_bps else FLAT


def classify(return_bps: np.ndarray | list[float] | float, theta_bps: np.ndarray | float) -> np.ndarray:
    """Class indices (DOWN, FLAT, UP) of moves against the flat band ±θ (``label_of`` for arrays; θ per
    move where ``theta_bps`` is an array)."""
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
    before = np.concatenate([np.full((1, 4), np.nan) if previous is None else previous[None, :], frame_l1[:-1]])
    return np.any(frame_l1 != before, axis=1)
