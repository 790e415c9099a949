"""What the flow derives, as rows of the store's tables (column order of ``store.schema``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    from models.online import MaturedLabels, Predictions

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_SIGNS = np.array(CLASS_SIGNS)


class TableRows(NamedTuple):
    read_ns: int  # when the source read the messages these rows come from (perf_counter_ns)
    events: int  # market events and dead letters these rows account for
    tables: dict[str, list[Sequence]]  # rows: tuples, or lists where that saves building a row twice
    decoder_errors: int = 0  # dead letters among them that are a decoder's bug, not bad input


def derived_rows(derived: Derived, read_ns: int, events: int) -> TableRows:
    frame, instrument = derived.frame, derived.instrument
    ids = [
        (instrument, ts, seq, None if exchange_ts == NO_ID else exchange_ts, None if update_id == NO_ID else update_id)
        for ts, seq, exchange_ts, update_id in zip(
            frame.ts.tolist(), frame.seq.tolist(), frame.exchange_ts.tolist(), frame.update_id.tolist(), strict=True
        )
    ]
    features = derived.features.tolist()  # rows as lists, each key put in front: no second row built
    for row, key in zip(features, ids, strict=True):
        row[:0] = key
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
    instrument: str,
    made: Predictions | list,
    matured: MaturedLabels | list,
    models: list[str],
    horizons: list[str],
) -> list[tuple]:
    """Rows of the predictions table: each new prediction per horizon (no label yet), then each
    matured one again, whole, with its label (an upsert replaces the first). A prediction whose label
    matures in its own batch is written once, labelled: the same commit would replace its unlabelled row,
    so no reader could ever see that row, and replays (large batches, short horizons) write about half
    as many rows."""
    if not len(made):
        return []
    count, n = len(horizons), len(made)
    made.row_json = (
        _json_objects(models, made.model_probs.swapaxes(1, 2).reshape(n * count, len(models), 3).round(6)),
        _json_objects(models, made.weights.reshape(n * count, len(models)).round(6)),
    )
    unlabelled = np.ones(n * count, dtype=bool)
    unlabelled[matured.labelled_in(made) if len(matured) else []] = False
    (kept,) = np.nonzero(unlabelled)
    rows = _prediction_rows(
        instrument,
        np.repeat(made.ts, count)[kept],
        np.repeat(made.seq, count)[kept],
        np.repeat(made.exchange_ts, count)[kept],
        np.tile(np.arange(count), n)[kept],
        made.probs.reshape(n * count, 3)[kept],
        made.decision.reshape(n * count)[kept],
        [[column[i] for i in kept.tolist()] for column in made.row_json],
        horizons,
    )
    if len(matured):
        kept = matured.kept_json()  # a prediction's JSON is written once, when it is made
        if kept is None:  # made before a restart
            model_probs, weights = (matured.at_horizon(name).round(6) for name in ("model_probs", "weights"))
            kept = [_json_objects(models, model_probs), _json_objects(models, weights)]
        rows += _prediction_rows(
            instrument,
            *(matured.at_horizon(name) for name in ("ts", "seq", "exchange_ts")),
            matured.horizon,
            *(matured.at_horizon(name) for name in ("probs", "decision")),
            kept,
            horizons,
            matured,
        )
    return rows


def _prediction_rows(
    instrument: str,
    ts: np.ndarray,
    seq: np.ndarray,
    exchange_ts: np.ndarray,
    horizon: np.ndarray,
    probs: np.ndarray,
    decision: np.ndarray,
    json: Sequence[list[str]],
    horizons: list[str],
    matured: MaturedLabels | None = None,
) -> list[tuple]:
    """One row per prediction and horizon (``probs`` (rows, 3) at the row's horizon; ``json``: the JSON
    of its model probabilities and of its weights, from ``_json_objects``), built column by column: the
    numbers of all the rows are turned into Python values at once."""
    rows = len(horizon)
    venue_ts = exchange_ts.astype(object)
    venue_ts[exchange_ts == NO_ID] = None
    columns = [
        [instrument] * rows,
        ts.tolist(),
        seq.tolist(),
        [horizons[h] for h in horizon.tolist()],
        venue_ts.tolist(),
        *probs.T.tolist(),
        _SIGNS[decision].tolist(),
        probs[np.arange(rows), decision].tolist(),
        *json,
    ]
    if matured is None:
        columns += [[None] * rows] * 3
    else:
        columns += [_SIGNS[matured.label].tolist(), matured.return_bps, matured.matured_ts]
    return list(zip(*columns, strict=True))


def _json_objects(keys: list[str], values: np.ndarray) -> list[str]:
    """(rows, keys[, k]) numbers -> per row the JSON object {key: value} (a list of k numbers per key if
    the array has three axes), as ``orjson.dumps`` writes it (a row's JSON is what ``orjson.dumps`` of
    its own dict writes). The numbers are written at once, as a flat list (or a list of the lists of
    k), cut at the commas (brackets) between them (numbers hold neither) and put into one template
    per row, all rows in one formatting."""
    if not len(values):
        return []
    template = "{" + ",".join(f"{orjson.dumps(key).decode()}:%s" for key in keys) + "}"
    if values.ndim == 3:
        template = template.replace("%s", "[%s]")
        parts = orjson.dumps(values.reshape(-1, values.shape[-1]), option=_NUMPY).decode()[2:-2].split("],[")
    else:
        parts = orjson.dumps(values.reshape(-1), option=_NUMPY).decode()[1:-1].split(",")
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
