"""What a strategy may act on, made before the simulation: the ensemble's predictions and the 10 s
volatility forecast of one instrument, by the flow's own code (``derive_offline``: parse, sync, book,
features; then each instrument's ``InstrumentPredictor`` and ``VolForecaster`` as the flow runs them,
starting afresh from the models given) or read back from a store that holds a run over the recordings.

A prediction is made on an event with the data up to that event only (the flow's contract), so the
simulation may show it from that event's receive time on: no look-ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backtest.orders import Signal
from dataflows.batches import derive_offline
from models.bundle import Bundle
from models.online import InstrumentPredictor
from models.volatility import VOL_MODELS, VolForecaster
from operators.instrument import Derived
from quantumflow.errors import UnfitInput

PAGE = 10_000  # rows read from a store at a time
VOL_MODEL = VOL_MODELS.index("har")  # the volatility forecast strategies see: HAR, over 10 s (the first horizon)


@dataclass
class Signals:
    """One instrument's predictions (time order) and volatility forecasts, with a cursor that gives the
    newest of each made at or before a time."""

    horizons: tuple[str, ...]
    ts: np.ndarray  # (n,) receive time of the event each prediction was made on
    seq: np.ndarray  # (n,)
    probs: np.ndarray  # (n, horizons, 3)
    vol_ts: np.ndarray  # (m,)
    vol_bps: np.ndarray  # (m,) forecast realized volatility over the next 10 s, bps

    def __post_init__(self) -> None:
        self.rewind()

    def __len__(self) -> int:
        return len(self.ts)

    def rewind(self) -> None:
        self._next = self._next_vol = 0
        self._signal: Signal | None = None  # the newest one, built once

    def newest(self, ts: int) -> tuple[Signal | None, float | None]:
        """The newest prediction and volatility forecast made at or before ``ts``; times must not go back
        between calls (``rewind`` to start again)."""
        moved = _advance(self.ts, self._next, ts)
        if moved != self._next:
            self._next = i = moved
            self._signal = Signal(int(self.ts[i - 1]), int(self.seq[i - 1]), self.horizons, self.probs[i - 1])
        self._next_vol = j = _advance(self.vol_ts, self._next_vol, ts)
        return self._signal, None if j == 0 else float(self.vol_bps[j - 1])


def _advance(times: np.ndarray, start: int, ts: int) -> int:
    end = start
    while end < len(times) and times[end] <= ts:
        end += 1
    return end


def flow_signals(
    paths: Sequence[str | Path],
    instrument: str,
    bundle: Bundle | None,
    feed: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    start_ns: int = 0,
) -> Signals:
    """The predictions (none without models) and volatility forecasts the flow makes for ``instrument``
    over the recordings, its learners starting afresh at ``start_ns``: the events before are context only
    (books, feature windows), as a run deployed then would have them."""
    predictor = None if bundle is None else InstrumentPredictor(bundle)
    forecaster = VolForecaster()
    horizons = () if bundle is None else tuple(h.name for h in bundle.horizons)
    ts, seq, probs, vol_ts, vol = [], [], [], [], []
    seen = False
    for derived in derive_offline(paths, feed, on_progress=on_progress):
        if type(derived) is not Derived or derived.instrument != instrument:
            continue
        seen = True
        frame, features = derived.frame, derived.features
        cut = int(np.searchsorted(frame.ts, start_ns))
        if predictor is not None and cut:
            predictor.observe(frame.rows(slice(0, cut)), features[:cut])
        if predictor is not None and cut < len(frame):
            made, _ = predictor.on_batch(frame.rows(slice(cut, None)), features[cut:])
            for prediction in made:
                ts.append(prediction.ts)
                seq.append(prediction.seq)
                probs.append(prediction.probs)
        forecasts, _ = forecaster.on_batch(derived.frame, derived.features)
        for forecast in forecasts:
            vol_ts.append(forecast.ts)
            vol.append(float(np.sqrt(forecast.variance[0, VOL_MODEL])))
    if not seen:
        raise UnfitInput(f"the recordings hold no book of {instrument}")
    return Signals(
        horizons,
        np.asarray(ts, dtype=np.int64),
        np.asarray(seq, dtype=np.int64),
        np.asarray(probs, dtype=float).reshape(len(ts), len(horizons), 3),
        np.asarray(vol_ts, dtype=np.int64),
        np.asarray(vol, dtype=float),
    )


def store_signals(reader, instrument: str, start_ns: int, end_ns: int) -> Signals:
    """The ensemble's predictions and the HAR 10 s volatility forecasts a store holds for ``instrument``
    with start_ns <= ts <= end_ns (``reader``: a store's, ``store.open_store(url).reader()``)."""
    rows = _every_page(
        lambda offset: reader.prediction_range(instrument, start_ns, end_ns + 1, limit=PAGE, offset=offset)
    )
    if not rows:
        raise UnfitInput(f"the store holds no predictions of {instrument} over the recordings' time")
    horizons = tuple(dict.fromkeys(row["horizon"] for row in rows))
    by_event: dict[tuple[int, int], np.ndarray] = {}
    for row in rows:
        probs = by_event.setdefault((row["ts"], row["seq"]), np.full((len(horizons), 3), np.nan))
        probs[horizons.index(row["horizon"])] = (row["p_down"], row["p_flat"], row["p_up"])
    keys = sorted(k for k, p in by_event.items() if not np.isnan(p).any())  # an event predicted at every horizon
    vol_ts, vol = _store_vol(reader, instrument, start_ns, end_ns)
    return Signals(
        horizons,
        np.asarray([k[0] for k in keys], dtype=np.int64),
        np.asarray([k[1] for k in keys], dtype=np.int64),
        np.asarray([by_event[k] for k in keys], dtype=float).reshape(len(keys), len(horizons), 3),
        vol_ts,
        vol,
    )


def _store_vol(reader, instrument: str, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
    rows = _every_page(
        lambda offset: reader.vol_forecast_range(instrument, start_ns, end_ns + 1, ["10s"], limit=PAGE, offset=offset)
    )
    chosen = [row for row in rows if row["model"] == "har"]
    return (
        np.asarray([row["ts"] for row in chosen], dtype=np.int64),
        np.asarray([row["forecast"] for row in chosen], dtype=float),
    )


def _every_page(page: Callable[[int], list[dict]]) -> list[dict]:
    """The rows of every page a paged reader gives, ``page(offset)`` each."""
    rows: list[dict] = []
    while batch := page(len(rows)):
        rows.extend(batch)
    return rows
