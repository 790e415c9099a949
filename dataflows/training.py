"""Train and evaluate on recordings: the events are derived by the flow's own operators, the
models fitted on the earlier parts, then deployed at the start of the test part and run online
over it exactly as in the flow (predict, then learn as labels mature), beside the baselines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from dataflows.dataset import build_dataset
from dataflows.provenance import instrument_sources
from dataflows.recordings import open_recording
from dataflows.sources import recording_paths
from models.bundle import Bundle
from models.metrics import reliability, report
from models.online import InstrumentPredictor
from models.plots import calibration_png, confusion_png, training_curves_png, weights_png
from models.train import Events, Settings, fit, split
from operators.feeds import parse
from operators.instrument import Derived
from quantumflow.errors import UnfitInput
from quantumflow.events import DeadLetter

ENSEMBLE = "ensemble"  # what the flow predicts: the top layer, the mixture or the stacking layer (QF_ENSEMBLE)
COMBINERS = ("mixture", "stacking", "hedge")
DECIDED = ("hedge", ENSEMBLE)  # scored by the classes the flow predicts, not the argmax of their probabilities
_WEIGHT_SAMPLES = 2000  # points per horizon in the weights plot


@dataclass
class Result:
    metrics: dict[str, dict[str, dict]]  # model -> horizon -> metric -> value
    thetas: dict[str, float]
    events: dict[str, int]  # per part
    seconds: dict[str, float]
    inference_us_per_event: float
    mean_weights: dict[str, dict[str, float]]  # horizon -> model -> mean weight over the test part
    files: dict[str, str] = field(default_factory=dict)
    # what the plots show, so that a report draws them again: confusions and calibration (model -> horizon
    # -> ...), histories (model -> epochs), weights ({"seconds": [...], horizon: {model: [...]}})
    plotted: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def run_experiment(
    recordings: Sequence[str | Path],
    settings: Settings,
    out: str | Path,
    test_start: int | dict[str, int] | None = None,
    feed: str | None = None,
    save_models: str | Path | None = None,
    say: Callable[[str], None] = print,
    on_progress: Callable[[int], None] | None = None,
    test_fraction: float = 0.15,
) -> Result:
    """Fit on the events before ``test_start`` (default: the last 15% of each instrument's time is
    its test part; a dict tests only the instruments it names, from their time there, see
    ``split``), evaluate on the rest; write the plots and ``results.json`` to ``out`` and the
    models to ``save_models`` if given."""
    started = time.perf_counter()
    data = build_dataset(recordings, settings.horizons, feed, on_progress)
    if not data:
        raise UnfitInput("the recordings gave no book events: nothing to train on")
    events = Events(data, settings.window)
    parts = split(events, test_start, test_fraction)
    if not parts.test.any():
        raise UnfitInput("no events in the test part: does the test recording hold book events?")
    for h, horizon in enumerate(settings.horizons):
        for part, mask in (("training", parts.train), ("test", parts.test)):
            if not (events.matured[mask, h] >= 0).any():
                raise UnfitInput(
                    f"horizon {horizon.name}: no label matures in the {part} part (the recordings are too short "
                    "for it); leave it out with --horizons, or train on longer recordings"
                )
    say(
        f"events: {int(parts.train.sum()):,} train, {int(parts.val.sum()):,} validation, {int(parts.test.sum()):,} test"
    )
    seconds = {"dataset": time.perf_counter() - started}
    trained, y_test = fit(events, parts, settings, say)
    seconds.update(trained.seconds)
    bundle = trained.bundle
    horizon_names = [h.name for h in settings.horizons]

    started = time.perf_counter()
    online = run_online(derive_offline(recordings, feed), bundle, parts.test_start)
    seconds["online test pass"] = time.perf_counter() - started

    instrument_of = np.concatenate([[d.instrument] * len(d) for d in data])
    seq_of = np.concatenate([d.events.seq for d in data])
    metrics: dict[str, dict[str, dict]] = {}
    confusions = {}
    calibration: dict[str, dict[str, dict]] = {}
    for h, name in enumerate(horizon_names):
        rows = np.flatnonzero(y_test[:, h] >= 0)
        keys = list(zip(instrument_of[rows].tolist(), seq_of[rows].tolist(), strict=True))
        got = online.labels[h]
        if set(keys) != set(got):
            raise RuntimeError(f"horizon {name}: the online pass matured other labels than the dataset (a bug)")
        y = y_test[rows, h]
        if not np.array_equal(y, [got[key] for key in keys]):
            raise RuntimeError(f"horizon {name}: the online pass labelled events differently than the dataset (a bug)")
        candidates = {m: np.array([online.probs[h][key][i] for key in keys]) for i, m in enumerate(bundle.model_names)}
        for i, combiner in enumerate((*COMBINERS, ENSEMBLE), len(bundle.model_names)):
            candidates[combiner] = np.array([online.probs[h][key][i] for key in keys])
        for baseline, by_horizon in trained.baselines.items():
            if baseline not in candidates:  # the logistic baseline is one of the models: already there
                candidates[baseline] = by_horizon[h].predict(events.z[rows])
        decided = {m: np.array([online.decisions[h][key][i] for key in keys]) for i, m in enumerate(DECIDED)}
        for model, probs in candidates.items():
            result = report(y, probs, predicted=decided.get(model))
            confusions[(model, name)] = result.pop("confusion")
            calibration.setdefault(model, {})[name] = reliability(y, probs)
            metrics.setdefault(model, {})[name] = result

    out = Path(out)
    weights_series = _weights_series(online, bundle, horizon_names)
    files = {
        "confusion": str(confusion_png(out / "confusion.png", confusions)),
        "training_curves": str(training_curves_png(out / "training_curves.png", trained.histories)),
        "ensemble_weights": str(
            weights_png(out / "ensemble_weights.png", weights_series["seconds"], weights_series["weights"])
        ),
        "calibration": str(calibration_png(out / "calibration.png", calibration)),
    }
    plotted = {
        "confusions": {m: {h: matrix for (m2, h), matrix in confusions.items() if m2 == m} for m in metrics},
        "histories": trained.histories,
        "calibration": calibration,
        "weights": {
            "seconds": weights_series["seconds"].tolist(),
            "by_horizon": {h: {m: w.tolist() for m, w in by.items()} for h, by in weights_series["weights"].items()},
        },
    }
    if save_models is not None:
        extra = {"test_metrics": {m: {h: v["macro_f1"] for h, v in by.items()} for m, by in metrics.items()}}
        bundle.meta["trained_on"] = {
            "recordings": [str(p) for p in recordings],
            "instruments": instrument_sources(sorted({d.instrument for d in data}), recordings),
            "events": {"train": int(parts.train.sum()), "validation": int(parts.val.sum())},
            "validation_start_ns": parts.val_start,
            "test_start_ns": parts.test_start,
            "seed": settings.seed,
        }
        files["models"] = str(bundle.save(save_models, extra))
    weights = online.weights_matrix()
    result = Result(
        metrics,
        dict(zip(horizon_names, bundle.thetas.tolist(), strict=True)),
        {"train": int(parts.train.sum()), "validation": int(parts.val.sum()), "test": int(parts.test.sum())},
        seconds,
        online.seconds / max(online.events, 1) * 1e6,
        {
            name: dict(zip(bundle.model_names, weights[:, h].mean(axis=0).tolist(), strict=True))
            for h, name in enumerate(horizon_names)
        },
        files,
        plotted,
    )
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


@dataclass
class Online:
    labels: list[dict] = field(default_factory=list)  # per horizon: (instrument, seq) -> class
    probs: list[dict] = field(default_factory=list)  # per horizon: key -> (models, *COMBINERS, ensemble; 3)
    decisions: list[dict] = field(default_factory=list)  # per horizon: key -> (the top layer's, the ensemble's)
    times: list[int] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)  # per prediction: (horizons, models)
    events: int = 0
    seconds: float = 0.0

    def weights_matrix(self) -> np.ndarray:
        return np.array(self.weights) if self.weights else np.zeros((0, 0, 0))


def run_online(stream: Iterable, bundle: Bundle, test_start: int | dict[str, int]) -> Online:
    """The bundle deployed at ``test_start`` (one time for every instrument, or each tested instrument's
    own) over the flow's keyed steps' output (``derive_offline``): an instrument's stream before it is
    context (books, windows), then every event is predicted and learned from as in the flow."""
    online = Online(*([{} for _ in bundle.horizons] for _ in range(3)))
    predictors: dict[str, InstrumentPredictor] = {}
    for derived in stream:
        if type(derived) is not Derived:
            continue
        start = test_start if isinstance(test_start, int) else test_start.get(derived.instrument)
        if start is None:
            continue
        predictor = predictors.get(derived.instrument)
        if predictor is None:
            predictor = predictors[derived.instrument] = InstrumentPredictor(bundle)
        frame, features = derived.frame, derived.features
        cut = int(np.searchsorted(frame.ts, start))
        if cut:
            predictor.observe(frame.rows(slice(0, cut)), features[:cut])
        if cut == len(frame):
            continue
        started = time.perf_counter()
        made, matured = predictor.on_batch(frame.rows(slice(cut, None)), features[cut:])
        online.seconds += time.perf_counter() - started
        online.events += len(made)
        for prediction in made:
            online.times.append(prediction.ts)
            online.weights.append(prediction.weights)
        for m in matured:
            key = (derived.instrument, m.prediction.seq)
            online.labels[m.horizon][key] = m.label
            p, h = m.prediction, m.horizon
            online.probs[h][key] = np.vstack([p.model_probs[:, h], p.mixture[h], p.stacking[h], p.hedge[h], p.probs[h]])
            online.decisions[h][key] = (int(p.hedge_decision[h]), int(p.decision[h]))
    return online


def test_starts(
    train: Sequence[str | Path],
    test: Sequence[str | Path],
    feed: str | None = None,
    tested: dict[str, tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Where each instrument of the ``test`` recordings starts its test part: an instrument the
    ``train`` recordings also hold is tested from its first event in ``test``, which must come
    after its last one in ``train`` (ValueError otherwise); another instrument is a market never
    seen in training, tested whole. ``tested``: the test recordings' ``instrument_spans``, if known."""
    trained = instrument_spans(train, feed)
    tested = instrument_spans(test, feed) if tested is None else tested
    if not tested:
        raise UnfitInput("the test recordings hold no market data")
    for name, (first, _) in tested.items():
        if name in trained and trained[name][1] >= first:
            raise UnfitInput(
                f"{name}: the test recordings start at {_utc(first)}, before the training ones end at "
                f"{_utc(trained[name][1])}: test on a later recording of it, or on another market"
            )
    return {name: first for name, (first, _) in tested.items()}


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def instrument_spans(paths: Sequence[str | Path], feed: str | None = None) -> dict[str, tuple[int, int]]:
    """Each instrument of the recordings, with the receive times of its first and last message."""
    spans: dict[str, tuple[int, int]] = {}
    for path in recording_paths(paths):
        for raw in open_recording(path, feed):
            if type(raw) is DeadLetter:
                continue
            for event in parse(raw):
                if type(event) is not DeadLetter:
                    first, last = spans.get(event.instrument, (raw.receive_ts, raw.receive_ts))
                    spans[event.instrument] = (min(first, raw.receive_ts), max(last, raw.receive_ts))
    return spans


def _weights_series(online: Online, bundle: Bundle, horizons: list[str]) -> dict:
    """Each model's ensemble weight per horizon at up to _WEIGHT_SAMPLES test events, and their times
    in seconds since the first."""
    weights = online.weights_matrix()
    if not len(weights):
        raise UnfitInput("no predictions in the test part")
    pick = np.linspace(0, len(weights) - 1, min(_WEIGHT_SAMPLES, len(weights))).astype(int)
    times = np.asarray(online.times)[pick]
    seconds = (times - times[0]) / 1e9
    by_horizon = {
        name: {model: weights[pick, h, m] for m, model in enumerate(bundle.model_names)}
        for h, name in enumerate(horizons)
    }
    return {"seconds": seconds, "weights": by_horizon}
