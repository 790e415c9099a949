"""The predict flow: raw log -> parse -> key by instrument -> sync + book + features
(+ predictions) -> store; at the end of the stream, each instrument's online state -> its file.

Run it with ``quantumflow run RECORDING...`` or with Bytewax's own runner::

    python -m bytewax.run "dataflows.predict:predict_flow(['recording.gz'])" -w 2

Each instrument's state lives on one worker (keyed by ``exchange:symbol``), every worker
writes the rows its instruments derive, and the rows do not depend on the number of workers
or on how the stream was cut into batches, so any ``-w`` gives the same store contents.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulLogic

from dataflows.batches import InstrumentBatch, new_state, split_by_instrument
from dataflows.kafka_predictions import PredictionsSink
from dataflows.kafka_source import KafkaRawSource
from dataflows.live_source import LiveSource
from dataflows.metrics import FlowMetrics
from dataflows.micro_price import load_tables
from dataflows.online_state import LastEvent, OnlineState, OnlineStateSink, online_state, restore
from dataflows.provenance import ProvenanceCheck, simulated_instruments
from dataflows.rows import TableRows, derived_rows, prediction_rows, vol_forecast_rows
from dataflows.run_settings import RunSettings
from dataflows.sink import StoreSink, stop_source_when_asked
from dataflows.sources import ReplaySource
from models.checkpoints import CheckpointError, has_checkpoints
from models.volatility import VolForecaster
from operators.features.micro_price import MicroPriceTable
from operators.instrument import InstrumentState
from quantumflow import settings as environment

if TYPE_CHECKING:  # the models (Torch, SciPy) are imported where a run loads them, not by one without them
    from models.bundle import Bundle
    from models.online import InstrumentPredictor


@dataclass(frozen=True)
class InstrumentStep:
    """What the keyed step does with an instrument's state, the same for every instrument of a run."""

    micro_prices: dict[str, MicroPriceTable]
    models: Bundle | None  # None: no predictions
    restore_from: Path | None  # the folder of saved online states; None starts every learner afresh
    check: Callable[[str], None] | None = None  # told each new instrument (what the models were trained on)
    source: dict | None = None  # what the run reads, recorded with the online state it saves
    warn: Callable[[str], None] | None = None  # told why a saved online state is not restored
    volatility: bool = False  # forecast realized volatility (with or without models)
    recovery: bool = False  # snapshots are kept: without recovery, Bytewax still asks for one every epoch

    def start(self, batch: InstrumentBatch) -> tuple[InstrumentState, InstrumentPredictor | None]:
        """The state of the instrument ``batch`` is the first of, and its predictor."""
        state = new_state(batch, self.micro_prices)
        if self.models is None:
            return state, None
        from models.online import InstrumentPredictor

        predictor = InstrumentPredictor(self.models)
        if self.restore_from is not None:
            restore(self.restore_from, batch.instrument, predictor, self.last_event(batch, 0), self.warn)
        if self.check is not None:
            self.check(batch.instrument)
        return state, predictor

    def start_volatility(self, batch: InstrumentBatch) -> VolForecaster | None:
        """The instrument's volatility forecaster (None: not forecasting), carrying on from its saved state."""
        if not self.volatility:
            return None
        forecaster = VolForecaster()
        if self.restore_from is not None:
            restore(self.restore_from, batch.instrument, forecaster, self.last_event(batch, 0), self.warn)
        return forecaster

    def resumed(self, state: InstrumentState, predictor: dict | None) -> InstrumentPredictor | None:
        """A predictor from its snapshot (a run resumed from recovery), with this run's models."""
        if predictor is None or self.models is None:
            return None
        if self.check is not None:
            self.check(state.sync.instrument)
        from models.online import InstrumentPredictor

        return InstrumentPredictor.resume(self.models, predictor)

    def last_event(self, batch: InstrumentBatch, index: int = -1) -> LastEvent:
        """Where the ``index``-th event of ``batch`` is in the log."""
        event, raw = batch.events[index]
        return LastEvent(self.source or {}, raw.receive_ts, getattr(event, "sequence", None))

    def derive(
        self,
        state: InstrumentState,
        predictor: InstrumentPredictor | None,
        batch: InstrumentBatch,
        volatility: VolForecaster | None = None,
    ) -> TableRows:
        """The rows a batch derives: books, features, trades... predictions and volatility forecasts."""
        derived = state.on_batch(batch.events)
        rows = derived_rows(derived, batch.read_ns, len(batch.events))
        if volatility is not None:
            made, matured = volatility.on_batch(derived.frame, derived.features)
            rows.tables["vol_forecasts"] = vol_forecast_rows(batch.instrument, made, matured)
        if predictor is not None:
            made, matured = predictor.on_batch(derived.frame, derived.features)
            models = predictor.bundle
            horizons = [h.name for h in models.horizons]
            rows.tables["predictions"] = prediction_rows(batch.instrument, made, matured, models.model_names, horizons)
        return rows

    @staticmethod
    def at_end(
        state: InstrumentState,
        predictor: InstrumentPredictor | None,
        last: LastEvent | None,
        volatility: VolForecaster | None = None,
    ) -> list[OnlineState]:
        """What is left when the stream ends: the online states of the predictor and the volatility
        forecaster, to be saved."""
        if last is None:
            return []
        learners = [learner for learner in (predictor, volatility) if learner is not None]
        return [online_state(state.sync.instrument, learner, last) for learner in learners]


class InstrumentLogic(StatefulLogic[InstrumentBatch, TableRows | OnlineState, bytes]):
    """An instrument's keyed state (its book, features and predictor, made on its first batch, and
    the last event it has seen): held here, snapshotted here, and handed to the step, which does the work."""

    def __init__(self, step: InstrumentStep, resumed: bytes | None) -> None:
        self.step = step
        self.state: InstrumentState | None = None
        self.predictor: InstrumentPredictor | None = None
        self.last: LastEvent | None = None
        self.volatility: VolForecaster | None = None
        if resumed:
            self.state, predictor, self.last, self.volatility = pickle.loads(resumed)
            self.predictor = step.resumed(self.state, predictor)

    def on_item(self, value: InstrumentBatch) -> tuple[list[TableRows], bool]:
        if self.state is None:
            self.state, self.predictor = self.step.start(value)
            self.volatility = self.step.start_volatility(value)
        self.last = self.step.last_event(value)
        return [self.step.derive(self.state, self.predictor, value, self.volatility)], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[OnlineState], bool]:
        if self.state is None:
            return [], StatefulLogic.RETAIN
        return self.step.at_end(self.state, self.predictor, self.last, self.volatility), StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        if not self.step.recovery:  # nobody keeps it; pickling a predictor's state stalls the flow for ms
            return b""
        # pickled rather than deep-copied: as immutable, and several times cheaper; without the models
        predictor = None if self.predictor is None else self.predictor.snapshot()
        return pickle.dumps((self.state, predictor, self.last, self.volatility))


def load_models(models: str | Path | None) -> Bundle | None:
    """The checkpoints in ``models`` (default ``QF_MODELS_DIR``); None where the default folder
    has none (the flow then writes no predictions). A folder named explicitly must hold them."""
    if models is None and not has_checkpoints(environment.models_dir()):
        return None
    from models.bundle import Bundle
    from models.online import InstrumentPredictor  # noqa: F401  (imported before the flow starts, not in its first batch)

    try:
        bundle = Bundle.load(models)
    except CheckpointError:
        if models is not None:
            raise
        return None
    bundle.ready_to_serve()  # the nets traced now, not in the flow's first batch (a second's stall)
    return bundle


def predict_flow(
    settings: RunSettings | Sequence[str | Path],
    run_id: str | None = None,
    metrics: FlowMetrics | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    **options: object,
) -> Dataflow:
    """The predict flow of a run (``RunSettings`` says what each setting does), or of just its
    recordings and ``options`` (RunSettings' other fields, as keywords), as Bytewax's runner can give
    them: ``predict_flow([], kafka='HOST:PORT', stop_at_end=True)`` reads the raw log. The source
    calls ``on_progress`` with the bytes read; ``on_warning`` gets what the run warns of (it is
    logged too): models trained on another instrument or source than one the run meets, and a
    saved online state not restored (``dataflows.online_state`` says when)."""
    if not isinstance(settings, RunSettings):
        settings = RunSettings(settings, **options)
    metrics = metrics or FlowMetrics()
    on_progress = stop_source_when_asked(metrics, on_progress)  # the sink never raises: it stops the source
    source = _source(settings, on_progress, metrics, on_warning)
    bundle = load_models(settings.models) if settings.predictions else None
    state_dir = Path(settings.online_state_dir or environment.online_state_dir())
    step = InstrumentStep(
        load_tables(settings.micro_price),
        bundle,
        None if settings.fresh else state_dir,
        _provenance_check(settings, bundle, on_warning),
        source=settings.source_identity() if settings.predictions else None,
        warn=on_warning,
        volatility=settings.predictions,
        recovery=settings.recovery is not None,
    )
    flow = Dataflow("predict")
    raw = op.input("raw", flow, source)
    parsed = op.flat_map("parse", raw, lambda batch: split_by_instrument(batch.messages, batch.read_ns, batch.places))
    split = op.branch("unparsed", parsed, lambda item: type(item) is TableRows)
    keyed = op.key_on("by_instrument", split.falses, lambda batch: batch.instrument)
    derived = op.stateful("derive", keyed, lambda resumed: InstrumentLogic(step, resumed))
    out = op.branch("online_state", op.map("rows", derived, lambda item: item[1]), _is_online_state)
    rows = op.merge("all_rows", out.falses, split.trues)
    op.output("store", rows, StoreSink(settings.store, run_id or uuid.uuid4().hex[:12], metrics))
    op.output("save_online_state", out.trues, OnlineStateSink(state_dir))
    if settings.predictions_topic is not None:
        op.output("predictions_to_kafka", rows, PredictionsSink(settings.kafka, settings.predictions_topic, metrics))
    return flow


def _source(
    settings: RunSettings,
    on_progress: Callable[[int], None],
    metrics: FlowMetrics,
    on_warning: Callable[[str], None] | None = None,
) -> ReplaySource | KafkaRawSource | LiveSource:
    """The venues' live streams of ``settings.live``, else the raw log: the Kafka topics of ``settings.kafka``,
    else its recordings."""
    if settings.live:
        return LiveSource(
            settings.live,
            settings.record_to,
            settings.duration_s,
            settings.batch_messages,
            on_progress,
            metrics,
            on_warning,
        )
    if settings.kafka is not None:
        return KafkaRawSource(
            settings.kafka, settings.topics, settings.stop_at_end, settings.batch_messages, on_progress, metrics
        )
    return ReplaySource(settings.recordings, settings.feed, settings.speed, settings.batch_messages, on_progress)


def _is_online_state(item: TableRows | OnlineState) -> bool:
    return type(item) is OnlineState


def _provenance_check(
    settings: RunSettings, bundle: Bundle | None, on_warning: Callable[[str], None] | None
) -> ProvenanceCheck | None:
    trained_on = None if bundle is None else bundle.trained_on()
    if trained_on is None:
        return None  # no models, or models that do not say what they were trained on
    folder = Path(settings.models) if settings.models is not None else environment.models_dir()
    simulated = simulated_instruments(settings.recordings) if settings.recordings else set()  # Kafka: not known
    return ProvenanceCheck(trained_on, folder, simulated, on_warning, live=bool(settings.live))
