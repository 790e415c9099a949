"""What the flow derives, as rows of the store's tables (column order of ``store.schema``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import orjson

from models.volatility import VOL_HORIZON_NAMES, VOL_MODELS, VolForecast, VolMatured
from operators.features.frame import NO_ID
from operators.instrument import Derived
from operators.labels import CLASS_SIGNS
from quantumflow.events import DeadLetter
from store.schema import digest

if TYPE_CHECKING:  # the models' types only: a run without models imports no Torch
    from models.online import Matured, Prediction

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_SIGNS = np.array(CLASS_SIGNS)


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
    matured one again, whole, with its label (an upsert replaces the first)."""
    count = len(horizons)
    rows = _prediction_rows(
        instrument, made, np.repeat(np.arange(len(made)), count), np.tile(np.arange(count), len(made)), models, horizons
    )
    if matured:
        which = np.arange(len(matured))
        horizon = np.fromiter((m.horizon for m in matured), dtype=np.int64, count=len(matured))
        predictions = [m.prediction for m in matured]
        rows += _prediction_rows(instrument, predictions, which, horizon, models, horizons, matured)
    return rows


def _prediction_rows(
    instrument: str,
    predictions: list[Prediction],
    which: np.ndarray,
    horizon: np.ndarray,
    models: list[str],
    horizons: list[str],
    matured: list[Matured] | None = None,
) -> list[tuple]:
    """One row per (``predictions[which[r]]``, ``horizon[r]``), built column by column: the numbers of all
    the rows are rounded and turned into Python values at once, and the JSON of every row's model
    probabilities and weights is written by one ``orjson.dumps`` of all of them, then cut per row (a
    row's JSON is what ``orjson.dumps`` of its own dict writes)."""
    if not len(which):
        return []
    probs = np.array([p.probs for p in predictions])[which, horizon]  # (rows, 3)
    decision = np.array([p.decision for p in predictions])[which, horizon]
    model_probs = np.array([p.model_probs for p in predictions])[which, :, horizon].round(6)  # (rows, models, 3)
    weights = np.array([p.weights for p in predictions])[which, horizon].round(6)  # (rows, models)
    ids = np.array([(p.ts, p.seq, p.exchange_ts) for p in predictions], dtype=np.int64)[which]
    exchange_ts = ids[:, 2].astype(object)
    exchange_ts[ids[:, 2] == NO_ID] = None
    columns = [
        [instrument] * len(which),
        ids[:, 0].tolist(),
        ids[:, 1].tolist(),
        [horizons[h] for h in horizon.tolist()],
        exchange_ts.tolist(),
        *probs.T.tolist(),
        _SIGNS[decision].tolist(),
        probs[np.arange(len(which)), decision].tolist(),
        _json_objects(models, model_probs),
        _json_objects(models, weights),
    ]
    if matured is None:
        columns += [[None] * len(which)] * 3
    else:
        columns += [[CLASS_SIGNS[m.label] for m in matured], [m.return_bps for m in matured]]
        columns.append([m.matured_ts for m in matured])
    return list(zip(*columns, strict=True))


def _json_objects(keys: list[str], values: np.ndarray) -> list[str]:
    """(rows, keys[, k]) numbers -> per row the JSON object {key: value} (a list of k numbers per key if
    the array has three axes), as ``orjson.dumps`` writes it. The array is written at once, cut at the
    brackets between its rows and keys (numbers hold none) and put into one template per row, all rows
    in one formatting."""
    if not len(values):
        return []
    text = orjson.dumps(values, option=_NUMPY).decode()
    template = "{" + ",".join(f"{orjson.dumps(key).decode()}:%s" for key in keys) + "}"
    if values.ndim == 3:
        template = template.replace("%s", "[%s]")
        parts = text[3:-3].replace("]],[[", "],[").split("],[")
    else:
        parts = text[2:-2].replace("],[", ",").split(",")
    return ("\n".join([template] * len(values)) % tuple(parts)).split("\n")


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
