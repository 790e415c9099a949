"""What the models cost per event, on a recording: the predictor by part (the networks, batched per
message batch; the logistic baseline; the online learner; the mixture; the stacking layer; the top
layer; the labels; the rest of the predictor), the rows of the predictions table built, and written
into a fresh SQLite store a batch per commit as the flow's sink writes them, then the whole flow with
predictions, and the feature flow without them. From the last and the parts, ``ceiling_events_per_s``:
what the flow with predictions would reach if the networks and the prediction rows' writes were all it
added to the feature flow (the online learner, the ensemble, the labels and the rows' building free).

With no checkpoints in the models folder, small ones are trained on the recording first (as the
main job does), so the figure exists on a fresh clone."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.books import written_s
from dataflows.batches import derive_offline
from dataflows.rows import prediction_rows
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from models.baselines import LogisticMember
from models.bayes import OnlineBayes
from models.bundle import Bundle
from models.checkpoints import CheckpointError
from models.ensemble import Ensemble
from models.hedge import Hedge
from models.online import InstrumentPredictor
from models.stacking import Stacking
from operators.instrument import Derived


@dataclass
class ModelBench:
    models: str
    predicted_events: int
    horizons: int
    nets_us_per_event: float
    online_us_per_event: float  # online learner, ensemble, labels: the predictor less the networks
    total_us_per_event: float  # the predictor
    parts_us_per_event: dict[str, float]  # the predictor's parts (they sum to total), the rows built and written
    flow_events_per_s: float  # the whole flow with predictions, one worker, into SQLite
    flow_latency_p50_ms: float
    flow_latency_p99_ms: float
    prediction_rows: int
    flow_events: int  # events the flows took in (predicted or not)
    feature_flow_events_per_s: float  # the same flow without predictions
    ceiling_events_per_s: float  # the feature flow plus the networks and the prediction rows' writes, nothing else

    def to_dict(self) -> dict:
        return asdict(self)


def bench_models(path: str | Path, models: str | Path | None = None, feed: str | None = None) -> ModelBench:
    with tempfile.TemporaryDirectory(prefix="qf-bench-models-") as scratch:
        bundle, folder = models_for(path, models, Path(scratch), feed)
        derived = [item for item in derive_offline([path], feed) if type(item) is Derived]
        predictors: dict[str, InstrumentPredictor] = {}
        seconds = dict.fromkeys(
            ("networks", "logistic", "online learner", "mixture", "stacking", "top layer", "labels"), 0.0
        )
        total_s = rows_s = 0.0
        events = 0
        batches_rows: list[list] = []
        horizons = [h.name for h in bundle.horizons]
        with _timed(seconds):
            for item in derived:
                predictor = predictors.setdefault(item.instrument, InstrumentPredictor(bundle))
                started = time.perf_counter()
                made, matured = predictor.on_batch(item.frame, item.features)
                total_s += time.perf_counter() - started
                started = time.perf_counter()
                batches_rows.append(prediction_rows(item.instrument, made, matured, bundle.model_names, horizons))
                rows_s += time.perf_counter() - started
                events += len(made)
        seconds["rest of the predictor"] = total_s - sum(seconds.values())
        seconds["rows"] = rows_s
        seconds["rows written"] = written_s([{"predictions": rows} for rows in batches_rows])
        nets_s = seconds["networks"]
        settings = RunSettings(
            (path,),
            store=f"sqlite:///{scratch}/bench.db",
            feed=feed,
            models=folder,
            online_state_dir=f"{scratch}/state",
        )
        flow = run_flow(settings)
        features_only = replace(settings, store=f"sqlite:///{scratch}/features.db", predictions=False)
        feature_flow = run_flow(features_only)
    per_event = 1e6 / max(events, 1)
    # per event of the flow: the feature flow's time, and the networks' and the rows' writes' for its share of
    # predicted events
    added_s = (nets_s + seconds["rows written"]) / max(flow.events_in, 1)
    ceiling = 1 / (1 / feature_flow.events_per_s + added_s)
    return ModelBench(
        str(models or folder),
        events,
        len(bundle.horizons),
        nets_s * per_event,
        (total_s - nets_s) * per_event,
        total_s * per_event,
        {part: value * per_event for part, value in seconds.items()},
        flow.events_per_s,
        flow.latency_p50_ms,
        flow.latency_p99_ms,
        flow.rows.get("predictions", 0),
        flow.events_in,
        feature_flow.events_per_s,
        ceiling,
    )


_PARTS = (
    (Bundle, "net_probs", "networks"),
    (LogisticMember, "predict", "logistic"),
    (OnlineBayes, "learn_and_score", "online learner"),
    (Ensemble, "learn_many", "mixture"),
    (Stacking, "learn_many", "stacking"),
    (Hedge, "learn_weights", "top layer"),
    (Hedge, "learn_decisions", "top layer"),
    (InstrumentPredictor, "_matured", "labels"),
)


@contextmanager
def _timed(seconds: dict[str, float]) -> Iterator[None]:
    """While in it, the time each of ``_PARTS``' methods takes is counted into ``seconds``."""
    saved = [(cls, method, getattr(cls, method)) for cls, method, _ in _PARTS]
    for (cls, method, inner), (_, _, part) in zip(saved, _PARTS, strict=True):
        setattr(cls, method, _timer(inner, seconds, part))
    try:
        yield
    finally:
        for cls, method, inner in saved:
            setattr(cls, method, inner)


def _timer(inner: Callable, seconds: dict[str, float], part: str) -> Callable:
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[part] += time.perf_counter() - started

    return timed


def models_for(path, models, scratch: Path, feed=None) -> tuple[Bundle, Path]:
    """The models in ``models`` (default: $QF_MODELS_DIR), or small ones trained on ``path`` into ``scratch``."""
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
