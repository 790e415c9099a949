"""The predict flow: raw log -> parse -> key by instrument -> sync + book + features -> store.

Run it with ``quantumflow run RECORDING...`` or with Bytewax's own runner::

    python -m bytewax.run "dataflows.predict:predict_flow(['recording.gz'])" -w 2

Each instrument's state lives on one worker (keyed by ``exchange:symbol``), every worker
writes the rows its instruments derive, and the rows do not depend on the number of workers
or on how the stream was cut into batches, so any ``-w`` gives the same store contents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from dataflows.batches import InstrumentBatch, new_state, split_by_instrument
from dataflows.metrics import FlowMetrics
from dataflows.micro_price import load_tables
from dataflows.rows import TableRows, derived_rows
from dataflows.sink import StoreSink
from dataflows.sources import BATCH_MESSAGES, ReplaySource
from operators.features.micro_price import MicroPriceTable
from operators.instrument import InstrumentState


def deriver(micro_prices: dict[str, MicroPriceTable]):
    """The keyed step: an instrument's state, created on its first batch."""

    def derive(state: InstrumentState | None, batch: InstrumentBatch) -> tuple[InstrumentState, TableRows]:
        if state is None:
            state = new_state(batch, micro_prices)
        derived = state.on_batch(batch.events)
        return state, derived_rows(derived, batch.read_ns, len(batch.events))

    return derive


def predict_flow(
    recordings: Sequence[str | Path],
    store: str | None = None,
    feed: str | None = None,
    speed: float | None = None,
    micro_price: str | None = None,
    batch_messages: int = BATCH_MESSAGES,
    run_id: str | None = None,
    metrics: FlowMetrics | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Dataflow:
    """The predict flow over recordings (files or folders), into ``store`` (a store URL, default
    ``QF_STORE`` or the SQLite file under data/). ``speed`` paces the replay at that many times
    real time (None: as fast as possible); ``micro_price`` is a table file from
    ``quantumflow micro-price`` (default ``QF_MICRO_PRICE``, else data/micro_price.json if present)."""
    source = ReplaySource(recordings, feed, speed, batch_messages, on_progress)
    tables = load_tables(micro_price)
    flow = Dataflow("predict")
    raw = op.input("raw", flow, source)
    parsed = op.flat_map("parse", raw, lambda batch: split_by_instrument(batch.messages, batch.read_ns))
    split = op.branch("unparsed", parsed, lambda item: type(item) is TableRows)
    keyed = op.key_on("by_instrument", split.falses, lambda batch: batch.instrument)
    derived = op.map("rows", op.stateful_map("derive", keyed, deriver(tables)), lambda item: item[1])
    rows = op.merge("all_rows", derived, split.trues)
    op.output("store", rows, StoreSink(store, run_id or uuid.uuid4().hex[:12], metrics))
    return flow
