"""What the flow derives, as rows of the store's tables (column order of ``store.schema``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from operators.features.frame import NO_ID
from operators.instrument import Derived
from quantumflow.events import DeadLetter
from store.schema import digest


class TableRows(NamedTuple):
    read_ns: int  # when the source read the messages these rows come from (perf_counter_ns)
    events: int  # market events and dead letters these rows account for
    tables: dict[str, list[tuple]]


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


def dead_letter_rows(letters: list[DeadLetter]) -> list[tuple]:
    return [(d.feed, d.instrument, d.receive_ts, digest(d.raw), d.reason, d.raw) for d in letters]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
