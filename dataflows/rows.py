"""What the flow derives, as rows of the store's tables (column order of ``store.schema``)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import orjson

from models.online import Matured, Prediction
from models.volatility import VOL_HORIZON_NAMES, VOL_MODELS, VolForecast, VolMatured
from operators.features.frame import NO_ID
from operators.instrument import Derived
from operators.labels import CLASS_SIGNS
from quantumflow.events import DeadLetter
from store.schema import digest

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class TableRows(NamedTuple):
    read_ns: int  # when the source read the messages these rows come from (perf_counter_ns)
    events: int  # market events and dead letters these rows account for
    tables: dict[str, list[tuple]]
    decoder_errors: int = 0  # dead letters among them that are a decoder's bug, not bad input


def derived_rows(derived: Derived, read_ns: int, events: int) -> TableRows:
    frame, instrument = derived.frame, derived.instrument
    ids = [
        (instrument, ts, seq, None if exchange_ts == NO_ID else exchange_ts, None if update_id == NO_ID else update_id)
        for ts, seq, exchange_ts, update_id in zip(
            frame.ts.tolist(), frame.seq.tolist(), frame.exchange_ts.tolist(), frame.update_id.tolist(), strict=True
        )
    ]
    features = [(*key, *values) for key, values in zip(ids, derived.features.tolist(), strict=True)]
    levels = np.hstack([frame.bid_prices, frame.bid_sizes, frame.ask_prices, frame.ask_sizes])
    book = [(*ids[i], *levels[i].tolist()) for i in derived.book_rows.tolist()]
    trades = [
        (
            instrument,
            t.receive_ts,
            seq,
            t.exchange_ts,
            None if t.trade_id is None else str(t.trade_id),
            t.price,
            t.size,
            t.side,
        )
        for seq, t in derived.trades
    ]
    resyncs = [(instrument, r.receive_ts, seq, r.exchange_ts, r.sequence, r.reason) for seq, r in derived.resyncs]
    tables = {"features": features, "book": book, "trades": trades, "resyncs": resyncs}
    tables["dead_letters"] = dead_letter_rows(derived.dead_letters)
    return TableRows(read_ns, events, tables)


def prediction_rows(
    instrument: str, made: list[Prediction], matured: list[Matured], models: list[str], horizons: list[str]
) -> list[tuple]:
    """Rows of the predictions table: each new prediction per horizon (no label yet), then each
    matured one again, whole, with its label (an upsert replaces the first). The numbers of all the
    rows are rounded and turned into Python values at once."""
    count = len(horizons)
    made_rows = [(p, h) for p in made for h in range(count)]
    rows = _prediction_rows(instrument, made_rows, [None] * len(made_rows), models, horizons)
    return rows + _prediction_rows(instrument, [(m.prediction, m.horizon) for m in matured], matured, models, horizons)


def _prediction_rows(
    instrument: str, which: list[tuple[Prediction, int]], matured: list, models: list[str], horizons: list[str]
) -> list[tuple]:
    if not which:
        return []
    probs = np.stack([p.probs[h] for p, h in which])
    best = [int(p.decision[h]) for p, h in which]
    # kept as arrays, which orjson writes as it writes lists: nested lists would be many small containers,
    # and the garbage collector's passes over them cost more than the rest of the rows together
    model_probs = np.stack([p.model_probs[:, h] for p, h in which]).round(6)
    weights = np.stack([p.weights[h] for p, h in which]).round(6)
    rows = []
    for (p, h), ps, b, mp, w, m in zip(which, probs.tolist(), best, model_probs, weights, matured, strict=True):
        outcome = (None, None, None) if m is None else (CLASS_SIGNS[m.label], m.return_bps, m.matured_ts)
        rows.append(
            (
                instrument,
                p.ts,
                p.seq,
                horizons[h],
                None if p.exchange_ts == NO_ID else p.exchange_ts,
                *ps,
                CLASS_SIGNS[b],
                ps[b],
                orjson.dumps(dict(zip(models, mp, strict=True)), option=_NUMPY).decode(),
                orjson.dumps(dict(zip(models, w.tolist(), strict=True))).decode(),
                *outcome,
            )
        )
    return rows


def vol_forecast_rows(instrument: str, made: list[VolForecast], matured: list[VolMatured]) -> list[tuple]:
    """Rows of the vol_forecasts table, volatilities in bps over the horizon: each new forecast per
    horizon and model (nothing realized yet), then each matured one again with what was realized."""
    rows = [
        (instrument, f.ts, f.seq, horizon, model, math.sqrt(f.variance[h, m]), None, None)
        for f in made
        for h, horizon in enumerate(VOL_HORIZON_NAMES)
        for m, model in enumerate(VOL_MODELS)
    ]
    for matured_one in matured:
        f, h, realized = matured_one.forecast, matured_one.horizon, math.sqrt(matured_one.realized)
        rows += [
            (instrument, f.ts, f.seq, VOL_HORIZON_NAMES[h], model, math.sqrt(f.variance[h, m]), realized,
             matured_one.matured_ts)
            for m, model in enumerate(VOL_MODELS)
        ]  # fmt: skip
    return rows


def dead_letter_rows(letters: list[DeadLetter]) -> list[tuple]:
    return [(d.feed, d.instrument, d.receive_ts, digest(d.raw), d.reason, d.raw) for d in letters]
