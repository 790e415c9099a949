"""The predict flow: raw log -> parse -> key by instrument -> sync + book + features -> store.

Run it with ``quantumflow run RECORDING...`` or with Bytewax's own runner::

    python -m bytewax.run "dataflows.predict:predict_flow(['recording.gz'])" -w 2

Each instrument's state lives on one worker (keyed by ``exchange:symbol``), every worker
writes the rows its instruments derive, and the rows do not depend on the number of workers
or on how the stream was cut into batches, so any ``-w`` gives the same store contents.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulLogic

from dataflows import online_state
from dataflows.batches import InstrumentBatch, new_state, split_by_instrument
from dataflows.metrics import FlowMetrics
from dataflows.micro_price import load_tables
from dataflows.rows import TableRows, derived_rows, prediction_rows
from dataflows.sink import StoreSink
from dataflows.sources import BATCH_MESSAGES, ReplaySource
from models.bundle import Bundle, CheckpointError
from models.online import InstrumentPredictor
from operators.features.micro_price import MicroPriceTable
from operators.instrument import InstrumentState
from quantumflow import settings

SAVE_INTERVAL_S = 10.0  # how often (wall clock) an instrument's online state is saved, and at the end


class InstrumentLogic(StatefulLogic[InstrumentBatch, TableRows, tuple]):
    """The keyed step: an instrument's state (created on its first batch) and, when models are
    loaded, its predictor, whose online state is restored at the start and saved as it runs."""

    def __init__(
        self, micro_prices: dict[str, MicroPriceTable], models: Bundle | None, state_dir: Path, restore: bool
    ) -> None:
        self.micro_prices, self.models, self.state_dir, self.restore = micro_prices, models, state_dir, restore
        self.state: InstrumentState | None = None
        self.predictor: InstrumentPredictor | None = None
        self.saved_at = time.monotonic()

    def on_item(self, value: InstrumentBatch) -> tuple[list[TableRows], bool]:
        if self.state is None:
            self.state = new_state(value, self.micro_prices)
            if self.models is not None:
                self.predictor = InstrumentPredictor(self.models)
                if self.restore:
                    online_state.restore(self.state_dir, value.instrument, self.predictor)
        derived = self.state.on_batch(value.events)
        rows = derived_rows(derived, value.read_ns, len(value.events))
        if self.predictor is not None:
            made, matured = self.predictor.on_batch(derived.frame, derived.features)
            bundle = self.predictor.bundle
            horizons = [h.name for h in bundle.horizons]
            rows.tables["predictions"] = prediction_rows(value.instrument, made, matured, bundle.model_names, horizons)
            if time.monotonic() - self.saved_at >= SAVE_INTERVAL_S:
                self._save()
        return [rows], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[TableRows], bool]:
        self._save()
        return [], StatefulLogic.RETAIN

    def snapshot(self) -> tuple:
        return copy.deepcopy((self.state, self.predictor))  # only taken when Bytewax recovery is on

    def _save(self) -> None:
        if self.predictor is not None and self.state is not None:
            online_state.save(self.state_dir, self.state.sync.instrument, self.predictor)
        self.saved_at = time.monotonic()


def load_models(models: str | Path | None) -> Bundle | None:
    """The checkpoints in ``models`` (default ``QF_MODELS_DIR``); None where the default folder
    has none (the flow then writes no predictions). A folder named explicitly must hold them."""
    try:
        return Bundle.load(models)
    except CheckpointError:
        if models is not None:
            raise
        return None


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
    models: str | Path | None = None,
    online_state_dir: str | Path | None = None,
    fresh: bool = False,
    predictions: bool = True,
) -> Dataflow:
    """The predict flow over recordings (files or folders), into ``store`` (a store URL, default
    ``QF_STORE`` or the SQLite file under data/). ``speed`` paces the replay at that many times
    real time (None: as fast as possible); ``micro_price`` is a table file from
    ``quantumflow micro-price`` (default ``QF_MICRO_PRICE``, else data/micro_price.json if present).
    ``models`` is a folder of checkpoints from ``quantumflow train`` (default ``QF_MODELS_DIR``,
    else data/models; with none there, no predictions); the online learner and ensemble of each
    instrument are restored from ``online_state_dir`` (default ``QF_ONLINE_STATE``) unless
    ``fresh``, and saved there as the flow runs. ``predictions=False`` stops at the features."""
    source = ReplaySource(recordings, feed, speed, batch_messages, on_progress)
    tables = load_tables(micro_price)
    bundle = load_models(models) if predictions else None
    state_dir = Path(online_state_dir) if online_state_dir is not None else settings.online_state_dir()
    flow = Dataflow("predict")
    raw = op.input("raw", flow, source)
    parsed = op.flat_map("parse", raw, lambda batch: split_by_instrument(batch.messages, batch.read_ns))
    split = op.branch("unparsed", parsed, lambda item: type(item) is TableRows)
    keyed = op.key_on("by_instrument", split.falses, lambda batch: batch.instrument)
    logic = op.stateful("derive", keyed, lambda resumed: _logic(resumed, tables, bundle, state_dir, fresh))
    derived = op.map("rows", logic, lambda item: item[1])
    rows = op.merge("all_rows", derived, split.trues)
    op.output("store", rows, StoreSink(store, run_id or uuid.uuid4().hex[:12], metrics))
    return flow


def _logic(resumed: tuple | None, tables, bundle: Bundle | None, state_dir: Path, fresh: bool) -> InstrumentLogic:
    logic = InstrumentLogic(tables, bundle, state_dir, restore=not fresh)
    if resumed is not None:
        logic.state, logic.predictor = resumed
    return logic
