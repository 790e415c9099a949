"""What the models cost per event, on a recording: the networks (batched per message batch) and
the rest of the predictor (online learner, ensemble, labels), then the whole flow with predictions.

With no checkpoints in the models folder, small ones are trained on the recording first (as the
main job does), so the figure exists on a fresh clone."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dataflows.batches import derive_offline
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from models.bundle import Bundle, CheckpointError
from models.online import InstrumentPredictor
from operators.instrument import Derived


@dataclass
class ModelBench:
    models: str
    predicted_events: int
    horizons: int
    nets_us_per_event: float
    online_us_per_event: float  # online learner, ensemble, labels: the predictor less the networks
    total_us_per_event: float
    flow_events_per_s: float  # the whole flow with predictions, one worker, into SQLite
    flow_latency_p50_ms: float
    flow_latency_p99_ms: float
    prediction_rows: int

    def to_dict(self) -> dict:
        return asdict(self)


def bench_models(path: str | Path, models: str | Path | None = None, feed: str | None = None) -> ModelBench:
    with tempfile.TemporaryDirectory(prefix="qf-bench-models-") as scratch:
        bundle, folder = _bundle(path, models, Path(scratch), feed)
        derived = [item for item in derive_offline([path], feed) if type(item) is Derived]
        predictors: dict[str, InstrumentPredictor] = {}
        nets_s = total_s = 0.0
        events = 0
        net_probs = bundle.net_probs

        def timed_net_probs(windows):
            nonlocal nets_s
            started = time.perf_counter()
            out = net_probs(windows)
            nets_s += time.perf_counter() - started
            return out

        bundle.net_probs = timed_net_probs
        for item in derived:
            predictor = predictors.setdefault(item.instrument, InstrumentPredictor(bundle))
            started = time.perf_counter()
            made, _ = predictor.on_batch(item.frame, item.features)
            total_s += time.perf_counter() - started
            events += len(made)
        settings = RunSettings(
            (path,),
            store=f"sqlite:///{scratch}/bench.db",
            feed=feed,
            models=folder,
            online_state_dir=f"{scratch}/state",
        )
        flow = run_flow(settings)
    per_event = 1e6 / max(events, 1)
    return ModelBench(
        str(models or folder),
        events,
        len(bundle.horizons),
        nets_s * per_event,
        (total_s - nets_s) * per_event,
        total_s * per_event,
        flow.events_per_s,
        flow.latency_p50_ms,
        flow.latency_p99_ms,
        flow.rows.get("predictions", 0),
    )


def _bundle(path, models, scratch: Path, feed) -> tuple[Bundle, Path]:
    from dataflows.training import run_experiment
    from models.train import small_settings
    from quantumflow.settings import models_dir

    folder = Path(models) if models is not None else models_dir()
    try:
        return Bundle.load(folder), folder
    except CheckpointError:
        if models is not None:
            raise
    folder = scratch / "models"
    run_experiment([path], small_settings(), scratch / "report", feed=feed, save_models=folder, say=lambda _: None)
    return Bundle.load(folder), folder
