"""Running the predict flow from Python (what ``quantumflow run`` and the benchmark call)."""

from __future__ import annotations

import hashlib
import logging
import math
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from dataflows.collector import fewer_collections
from dataflows.live_source import NothingReceived
from dataflows.metrics import FlowMetrics
from dataflows.predict import predict_flow
from dataflows.recovery import finished, mark_finished, recovery_config
from dataflows.run_settings import RunSettings
from models.checkpoints import MANIFEST, has_checkpoints
from quantumflow import settings as environment
from store import open_store

# Bytewax holds items exchanged between workers until their epoch closes, so with several workers
# an event's latency is about one epoch; shorter epochs cost throughput.
EPOCH_INTERVAL = timedelta(milliseconds=250)

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    workers: int
    seconds: float
    events_in: int
    events_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    rows: dict[str, int]  # rows written by this run, per table
    decoder_errors: int = 0  # dead letters that are a decoder's bug, not bad input
    warnings: list[str] = field(default_factory=list)  # what the run warned of, once each
    kafka_errors: int = 0  # errors talking to Kafka, retried (a broker gone away), or messages undelivered
    last_kafka_error: str | None = None
    stopped: str | None = None  # why the run stopped before its end (Ctrl-C, SIGTERM), if it did
    reconnects: int = 0  # a live run's venue reconnects
    venue_resyncs: int = 0  # a live run's new snapshots asked of the venues after a gap
    lost_messages: int = 0  # Kafka offsets that had left the log (retention) before this run read them

    def to_dict(self) -> dict:
        """As JSON can hold it: a latency with no rows to measure is None, not NaN."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in asdict(self).items()
        }


def run_flow(
    settings: RunSettings,
    on_progress: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> RunSummary:
    """Replay the recordings of ``settings`` through the predict flow into its store, with its
    number of Bytewax workers; ``on_progress`` gets the bytes read so far, ``on_warning`` what the run
    warns of as it happens (else the log; the summary lists them too). A store that cannot be
    used raises StoreUnavailable before the flow starts; one that fails for good while it runs stops
    it and raises StoreStopped. With ``settings.recovery``, the run resumes from the folder's last
    snapshot, if it has one (RecoveryMismatch if the folder belongs to another run)."""
    metrics = FlowMetrics()
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        (log.warning if on_warning is None else on_warning)(message)

    if settings.recovery is not None and settings.replays_files and finished(settings.recovery):
        warn(
            f"the run of recovery folder {settings.recovery} had finished: nothing was left to do "
            "(give a new folder to run again)"
        )
    run_id = uuid.uuid4().hex[:12]
    flow = predict_flow(settings, run_id, metrics, on_progress, on_warning=warn)
    recovery, epoch_interval = _recovery(settings)  # once the flow could be built: a failed start leaves no folder
    started = time.perf_counter()
    with _stop_on_signals(metrics), fewer_collections():
        cli_main(flow, workers_per_process=settings.workers, epoch_interval=epoch_interval, recovery_config=recovery)
    if metrics.store_failure is not None:
        raise metrics.store_failure
    if metrics.source_failure is not None:
        raise metrics.source_failure
    if settings.live and not metrics.events_in and metrics.venue_error:
        raise NothingReceived(
            f"nothing received from the venues in {time.perf_counter() - started:.0f} s: {metrics.venue_error}"
        )
    if recovery is not None and settings.replays_files and metrics.stop_requested is None:
        mark_finished(settings.recovery)  # a replay's end (a topic grows: its offsets say where to go on)
    seconds = time.perf_counter() - started
    return RunSummary(
        run_id,
        settings.workers,
        seconds,
        metrics.events_in,
        metrics.events_in / seconds,
        metrics.latency_ms(0.5),
        metrics.latency_ms(0.99),
        dict(metrics.rows_by_table),
        metrics.decoder_errors,
        warnings,
        metrics.kafka_errors,
        metrics.last_kafka_error,
        metrics.stop_requested,
        metrics.reconnects,
        metrics.venue_resyncs,
        metrics.lost_messages,
    )


@contextmanager
def _stop_on_signals(metrics: FlowMetrics) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the sources to stop (the flow then ends as at the end of its input, its rows
    committed) instead of interrupting Bytewax, which would abort mid-epoch; a second Ctrl-C interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(signum: int, _frame: object) -> None:
        if metrics.stop_requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        metrics.stop_requested = signal.Signals(signum).name

    previous = {signum: signal.signal(signum, ask) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _recovery(settings: RunSettings) -> tuple[RecoveryConfig | None, timedelta]:
    """The run's recovery config (None without ``settings.recovery``) and its epoch interval."""
    if settings.recovery is None:
        return None, EPOCH_INTERVAL
    models = None
    folder = Path(settings.models or environment.models_dir())
    if settings.predictions and has_checkpoints(folder):  # the checkpoints, as trained: a folder retrained differs
        models = {"folder": str(folder.resolve()), "manifest_sha256": _sha256(folder / MANIFEST)}
    belongs_to = {
        "source": settings.source_identity(),
        "store": open_store(settings.store).url,
        "models": models,
    }
    return recovery_config(settings.recovery, settings.workers, belongs_to, settings.snapshot_interval_s)


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
