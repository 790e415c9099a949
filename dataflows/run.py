"""Running the predict flow from Python (what ``quantumflow run`` and the benchmark call)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from bytewax.run import cli_main

from dataflows.metrics import FlowMetrics
from dataflows.predict import predict_flow
from dataflows.sink import stop_source_on_store_failure
from dataflows.sources import BATCH_MESSAGES

# Bytewax holds items exchanged between workers until their epoch closes, so with several workers
# an event's latency is about one epoch; shorter epochs cost throughput.
EPOCH_INTERVAL = timedelta(milliseconds=250)


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

    def to_dict(self) -> dict:
        return asdict(self)


def run_flow(
    recordings: Sequence[str | Path],
    store: str | None = None,
    workers: int = 1,
    feed: str | None = None,
    speed: float | None = None,
    micro_price: str | None = None,
    batch_messages: int = BATCH_MESSAGES,
    on_progress: Callable[[int], None] | None = None,
    models: str | Path | None = None,
    online_state_dir: str | Path | None = None,
    fresh: bool = False,
    predictions: bool = True,
) -> RunSummary:
    """Replay ``recordings`` through the predict flow into ``store`` with ``workers`` Bytewax workers
    (the other arguments are ``predict_flow``'s). A store that cannot be used raises StoreUnavailable
    before the flow starts; one that fails for good while it runs stops it and raises StoreStopped."""
    metrics = FlowMetrics()
    run_id = uuid.uuid4().hex[:12]
    flow = predict_flow(
        recordings,
        store,
        feed,
        speed,
        micro_price,
        batch_messages,
        run_id,
        metrics,
        on_progress=stop_source_on_store_failure(metrics, on_progress),
        models=models,
        online_state_dir=online_state_dir,
        fresh=fresh,
        predictions=predictions,
    )
    started = time.perf_counter()
    cli_main(flow, workers_per_process=workers, epoch_interval=EPOCH_INTERVAL)
    if metrics.store_failure is not None:
        raise metrics.store_failure
    seconds = time.perf_counter() - started
    return RunSummary(
        run_id,
        workers,
        seconds,
        metrics.events_in,
        metrics.events_in / seconds,
        metrics.latency_ms(0.5),
        metrics.latency_ms(0.99),
        dict(metrics.rows_by_table),
        metrics.decoder_errors,
    )
