"""``quantumflow tune``: an Optuna search over the networks' and the ensemble's settings, on a
walk-forward split of the training recordings that never reads the part ``train`` tests on.

The recordings are replayed once and kept in memory. The last ``test_fraction`` of their events
(the part ``quantumflow train`` holds out as its test) is dropped before anything is read from
it. Of what remains, the last 15% of the events is the tuning validation: each trial fits on the
time before it (with its own early-stopping validation, as ``train`` does), deploys the models at
its start and runs them online over it exactly as the flow does (predict, learn as labels mature;
no label maturing after the held-out part's start is used). The objective is the ensemble's
log-loss on the tuning validation, averaged over the horizons (lower is better): a proper score,
so it rewards calibrated probabilities and not only the most likely class, and it is what the
ensemble's weights themselves follow. Its macro-F1 is kept beside it.

Trials train briefly (few epochs, a cap on the windows per epoch) so that many fit in the time;
the online learner does not depend on the searched settings and is fitted once. The study lives
in ``study.db`` (SQLite) in the output folder: tuning again with the same folder continues it.
The best settings so far are written to ``best_settings.json`` there after every trial, which
``quantumflow train`` and ``evaluate`` read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from dataflows.dataset import dataset_of
from dataflows.training import run_online
from models.bayes import OnlineBayes
from models.metrics import report
from models.stream import EventData
from models.train import TUNABLE, Events, Settings, fit, split
from operators.instrument import Derived
from quantumflow.errors import UnfitInput

STUDY_FILE = "study.db"
BEST_FILE = "best_settings.json"
STUDY_NAME = "quantumflow"
VALIDATION_FRACTION = 0.15  # the tuning validation: the last share of the events before the held-out part
OBJECTIVE = "the ensemble's log-loss on the tuning validation, mean over the horizons (lower is better)"
WINDOWS = (8, 16, 32, 48, 64)
WIDTHS = (16, 32, 64)
DEPTHS = (None, 1, 2, 3)  # None: each network's own
FORGETTINGS = (0.99, 0.995, 0.999, 0.9995, 0.9999)


class StudyMismatch(ValueError):
    """The study in the folder was made on other recordings or horizons."""


@dataclass
class TuningData:
    stream: list[Derived]  # the replay, cut before the held-out part
    data: list[EventData]
    held_out_start: dict[str, int]  # ns per instrument: the part train tests on starts here; nothing after is read
    validation_start: dict[str, int]  # ns per instrument: the tuning validation runs from here to held_out_start
    online: tuple[OnlineBayes, np.ndarray] | None = None  # fitted by the first trial, shared by the later ones


@dataclass
class TuneResult:
    trials: int  # complete trials in the study, this run's and earlier ones'
    new_trials: int
    best: dict  # what best_settings.json holds
    files: dict[str, str]

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def prepare(
    recordings: Sequence[str | Path],
    settings: Settings,
    feed: str | None,
    test_fraction: float,
    on_progress: Callable[[int], None] | None = None,
) -> TuningData:
    stream = [d for d in derive_offline(recordings, feed, on_progress=on_progress) if type(d) is Derived]
    everything = dataset_of(stream, settings.horizons)
    if not everything:
        raise UnfitInput("the recordings gave no book events: nothing to tune on")
    held_out_start = split(Events(everything, settings.window), None, test_fraction).test_start  # as train cuts
    stream = [cut for d in stream if (cut := _before(d, held_out_start[d.instrument])) is not None]
    data = dataset_of(stream, settings.horizons)
    validation_start = split(Events(data, settings.window), None, VALIDATION_FRACTION).test_start
    return TuningData(stream, data, held_out_start, validation_start)


def _before(derived: Derived, end: int) -> Derived | None:
    """The batch's rows received before ``end`` (None if none)."""
    keep = int(np.searchsorted(derived.frame.ts, end))
    if keep == len(derived.frame.ts):
        return derived
    if not keep:
        return None
    frame = derived.frame.rows(slice(0, keep))
    return derived._replace(
        frame=frame, features=derived.features[:keep], book_rows=derived.book_rows[derived.book_rows < keep]
    )


def suggest(trial, base: Settings) -> Settings:
    """The trial's settings: the searched values over ``base`` (drawn in this order, which the seeded
    sampler's draws depend on)."""
    forgetting = trial.suggest_categorical("ensemble_forgetting", FORGETTINGS)
    return replace(
        base,
        window=trial.suggest_categorical("window", WINDOWS),
        width=trial.suggest_categorical("width", WIDTHS),
        depth=trial.suggest_categorical("depth", DEPTHS),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        learning_rate=trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        ensemble_forgetting=forgetting,
        ensemble_sharpness=trial.suggest_float("ensemble_sharpness", 1.0, 100.0, log=True),
    )


def score(tuning: TuningData, settings: Settings) -> dict[str, float]:
    """Fit with ``settings`` before the tuning validation, run online over it; the ensemble's mean
    log-loss and macro-F1 over the horizons."""
    events = Events(tuning.data, settings.window)
    parts = split(events, tuning.validation_start)
    trained, _ = fit(events, parts, settings, say=lambda _: None, online=tuning.online)
    tuning.online = trained.online
    online = run_online(tuning.stream, trained.bundle, tuning.validation_start)
    losses, f1s = [], []
    for h in range(len(settings.horizons)):
        keys = list(online.labels[h])
        if not keys:
            raise UnfitInput(f"horizon {settings.horizons[h].name}: no label matures in the tuning validation")
        labels, probs = np.array([online.labels[h][k] for k in keys]), np.array([online.probs[h][k][-1] for k in keys])
        result = report(labels, probs, predicted=np.array([online.decisions[h][k][-1] for k in keys]))
        losses.append(result["log_loss"])
        f1s.append(result["macro_f1"])
    return {"log_loss": float(np.mean(losses)), "macro_f1": float(np.mean(f1s))}


def tune(
    recordings: Sequence[str | Path],
    base: Settings,
    out: str | Path,
    minutes: float,
    trials: int | None = None,
    feed: str | None = None,
    test_fraction: float = 0.15,
    on_replay: Callable[[int], None] | None = None,
    on_trial: Callable[[int, float, float], None] | None = None,
) -> TuneResult:
    """Run trials until ``minutes`` have passed since the start (replay included; no trial starts when
    the time left is under the median trial's, a trial running when time is up finishes, and at least
    one runs) or ``trials`` are done; ``on_trial(number, value, best)`` after each. ``base`` gives the
    horizons and the trials' training budget."""
    import optuna

    started = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{out / STUDY_FILE}"
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="minimize", load_if_exists=True)
    # seeded, and by the trials already made: a resumed study draws new values, not the first run's again
    study.sampler = optuna.samplers.TPESampler(seed=base.seed + len(study.trials))
    made_on = {
        "recordings": [Path(p).name for p in recordings],
        "horizons": [h.name for h in base.horizons],
        "test_fraction": test_fraction,
    }
    if not study.user_attrs:
        for key, value in made_on.items():
            study.set_user_attr(key, value)
    elif {key: study.user_attrs.get(key) for key in made_on} != made_on:
        raise StudyMismatch(
            f"the study in {out} was made on {', '.join(study.user_attrs['recordings'])} for horizons "
            f"{','.join(study.user_attrs['horizons'])} (test fraction {study.user_attrs['test_fraction']}): "
            "tune other recordings or horizons in another --out folder"
        )
    before = _complete(study)
    if not study.trials:
        study.enqueue_trial(Settings(base.horizons).tunable())  # the defaults first: the best is never worse
    tuning = prepare(recordings, base, feed, test_fraction, on_replay)

    def objective(trial) -> float:
        figures = score(tuning, suggest(trial, base))
        trial.set_user_attr("macro_f1", figures["macro_f1"])
        return figures["log_loss"]

    durations: list[float] = []

    def after(study, trial) -> None:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            write_best(study, out, tuning, base)
            if on_trial is not None:
                on_trial(trial.number, trial.value, study.best_value)
        if trial.duration is not None:
            durations.append(trial.duration.total_seconds())
        if durations and minutes * 60 - (time.monotonic() - started) < float(np.median(durations)):
            study.stop()  # a typical trial would not finish in the time left

    left = minutes * 60 - (time.monotonic() - started)
    study.optimize(objective, n_trials=trials if left > 0 else 1, timeout=max(left, 1e-3), callbacks=[after])
    best = json.loads((out / BEST_FILE).read_text())
    files = {"study": str(out / STUDY_FILE), "best_settings": str(out / BEST_FILE)}
    return TuneResult(_complete(study), _complete(study) - before, best, files)


def _complete(study) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def write_best(study, out: Path, tuning: TuningData, base: Settings) -> Path:
    best = study.best_trial
    built_in = Settings(base.horizons).tunable()
    baseline = next((t for t in study.trials if t.value is not None and t.params == built_in), None)
    document = {
        "settings": {name: best.params[name] for name in TUNABLE},
        "objective": OBJECTIVE,
        "log_loss": best.value,
        "macro_f1": best.user_attrs.get("macro_f1"),
        "built_in": None if baseline is None else {"log_loss": baseline.value, **baseline.user_attrs},
        "trial": best.number,
        "trials": _complete(study),
        "tuned_on": {
            **study.user_attrs,
            "tuning_validation_ns": [tuning.validation_start, tuning.held_out_start],
            "trial_training": {"epochs": base.epochs, "max_train_windows": base.max_train_windows},
        },
    }
    path = out / BEST_FILE
    path.write_text(json.dumps(document, indent=1))
    return path


def tuned_settings(path: str | Path) -> dict:
    """The settings in a ``best_settings.json`` (name -> value)."""
    try:
        values = json.loads(Path(path).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a best_settings.json written by quantumflow tune ({error})") from None
    unknown = set(values) - set(TUNABLE)
    if unknown:
        raise ValueError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return values
