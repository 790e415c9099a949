"""Training: the networks, the online learner's starting state and the baselines, from the events
of recordings, split in time.

The split is chronological: train, then validation (early stopping, temperatures), then test.
An event's label is used in a part only if it became known before the part ends (purging), so no
label reaches across a boundary. θ and the standardization are fitted on the training part only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from models.baselines import Logistic, LogisticMember, Majority
from models.bayes import OnlineBayes
from models.bundle import Bundle
from models.calibration import fit_temperature, softmax
from models.ensemble import FORGETTING, SHARPNESS
from models.inputs import ONLINE_INPUT_INDEX, Normalizer
from models.nets import DROPOUT, NETS, WIDTH
from models.stacking import averaging, fit_start, stacking_inputs
from models.stream import EventData
from operators.labels import DEFAULT_HORIZONS, classify, fit_theta
from quantumflow.errors import UnfitInput
from quantumflow.horizons import Horizon, parse_horizons

MISSING = -1  # no label: not matured within the part


@dataclass
class Settings:
    horizons: list[Horizon]
    # events each network reads: 8 had the best validation log-loss of 8, 16 and 32 on the reference
    # recording, tested within 0.01 of 32 on the next day and on a market never seen, and costs a quarter
    # as much per prediction (docs/models.md, "The window")
    window: int = 8
    epochs: int = 20
    patience: int = 3
    batch: int = 256
    learning_rate: float = 5e-4
    seed: int = 7
    nets: tuple[str, ...] = tuple(NETS)
    max_train_windows: int | None = None  # a cap per epoch (random sample), for quick runs
    width: int = WIDTH  # the networks' sequence part
    depth: int | None = None  # its layers; None: each network's own (the LSTMs 1, the Transformer 2)
    dropout: float = DROPOUT  # on the networks' inputs
    ensemble_forgetting: float = FORGETTING
    ensemble_sharpness: float = SHARPNESS
    source: str = "built-in defaults"  # where the tunable values came from (printed, kept in the checkpoints)

    def tunable(self) -> dict:
        """The values ``quantumflow tune`` searches, by name."""
        return {name: asdict(self)[name] for name in TUNABLE}

    def architecture(self) -> dict:
        return {"width": self.width, "depth": self.depth, "dropout": self.dropout}


TUNABLE = ("window", "width", "depth", "dropout", "learning_rate", "ensemble_forgetting", "ensemble_sharpness")


def small_settings() -> Settings:
    """The small models the main job and the benchmark train when they find none (about a minute)."""
    return Settings(parse_horizons(DEFAULT_HORIZONS), epochs=3, max_train_windows=20_000)


@dataclass
class Parts:
    """Event masks over the concatenated events of all instruments, and each instrument's
    boundaries: its validation part starts at ``val_start[instrument]`` and its test part at
    ``test_start[instrument]`` (absent: it has none, all its events train or validate)."""

    val_start: dict[str, int]
    test_start: dict[str, int]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_end: np.ndarray  # per event: its instrument's validation start (labels known before it train)
    val_end: np.ndarray  # per event: its instrument's test start (labels known before it validate)


@dataclass
class Trained:
    bundle: Bundle
    baselines: dict[str, dict[int, Majority | Logistic]]  # name -> horizon -> model
    histories: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    online: tuple[OnlineBayes, np.ndarray] | None = None  # the online learner, its validation probabilities


class Events:
    """All instruments' events concatenated, with windows that never cross instruments."""

    def __init__(self, data: list[EventData], window: int) -> None:
        self.data = data
        self.ts = np.concatenate([d.events.ts for d in data])
        self.returns = np.vstack([d.returns_bps for d in data])
        self.matured = np.vstack([d.matured_ts for d in data])
        self.raw = np.vstack([d.events.inputs for d in data])
        pad = window - 1
        sizes = [len(d) for d in data]
        offsets = np.cumsum([0, *[pad + n for n in sizes]])[:-1] + pad
        self.ends = np.concatenate([offset + np.arange(n) for offset, n in zip(offsets, sizes, strict=True)])
        self.window = window

    def __len__(self) -> int:
        return len(self.ts)

    def instrument_rows(self) -> dict[str, slice]:
        """Each instrument's rows (its events are contiguous, in time order)."""
        ends = np.cumsum([len(d) for d in self.data])
        return {d.instrument: slice(end - len(d), end) for d, end in zip(self.data, ends, strict=True)}

    def standardize(self, normalizer: Normalizer) -> None:
        self.z = normalizer(self.raw)
        padded = np.zeros((self.ends[-1] + 1, self.z.shape[1]), dtype=np.float32)
        padded[self.ends] = self.z
        self._windows = np.lib.stride_tricks.sliding_window_view(padded, self.window, axis=0).transpose(0, 2, 1)

    def windows(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._windows[self.ends[rows] - self.window + 1])

    def known(self, part: np.ndarray, end: int | np.ndarray) -> np.ndarray:
        """(n, horizons): the events in ``part`` whose label was known before ``end`` (a time, or one per event)."""
        end = np.asarray(end).reshape(-1, 1) if np.ndim(end) else end
        return part[:, None] & np.isfinite(self.returns) & (self.matured >= 0) & (self.matured < end)

    def labels(self, part: np.ndarray, end: int | np.ndarray, thetas: np.ndarray) -> np.ndarray:
        known = self.known(part, end)
        classes = np.stack([classify(self.returns[:, h], thetas[h]) for h in range(len(thetas))], axis=1)
        return np.where(known, classes, MISSING)


def split(
    events: Events,
    test_start: int | dict[str, int] | None,
    test_fraction: float = 0.15,
    val_fraction: float = 0.15,
) -> Parts:
    """Chronological parts per instrument, so that every instrument trains, validates and tests
    on its own last parts, whatever the others' times: with no ``test_start``, the last
    ``test_fraction`` of each instrument's time is its test part; an int cuts every instrument
    there; a dict cuts only the instruments it names (at a time before an instrument's first
    event, the whole instrument is test: a held-out market), the others have no test part. The
    last ``val_fraction`` of what precedes an instrument's test part is its validation part."""
    never = np.iinfo(np.int64).max
    val_starts: dict[str, int] = {}
    test_starts: dict[str, int] = {}
    train_end, val_end = np.empty(len(events), np.int64), np.empty(len(events), np.int64)
    for name, rows in events.instrument_rows().items():
        ts = events.ts[rows]
        if test_start is None:
            cut = int(np.quantile(ts, 1 - test_fraction))
        elif isinstance(test_start, dict):
            cut = test_start.get(name, never)
        else:
            cut = test_start
        before = ts[ts < cut]
        val_from = int(np.quantile(before, 1 - val_fraction)) if len(before) else cut
        if cut != never:
            test_starts[name] = cut
        if len(before):
            val_starts[name] = val_from
        train_end[rows], val_end[rows] = val_from, cut
    ts = events.ts
    train, test = ts < train_end, ts >= val_end
    if train.sum() < 100:
        raise UnfitInput(f"only {int(train.sum())} events before the validation parts: too few to train on")
    return Parts(val_starts, test_starts, train, ~train & ~test, test, train_end, val_end)


def fit(
    events: Events,
    parts: Parts,
    settings: Settings,
    say: Callable[[str], None] = print,
    online: tuple[OnlineBayes, np.ndarray] | None = None,
) -> tuple[Trained, np.ndarray]:
    """Fit everything on the train and validation parts; returns the models and the test labels.
    ``online``: the online learner and its validation probabilities (``Trained.online``) fitted on these
    same parts before (they depend on none of the settings), to use instead of fitting them again."""
    normalizer = Normalizer.fit(events.raw[parts.train])
    events.standardize(normalizer)
    horizons = settings.horizons
    known = events.known(parts.train, parts.train_end)
    thetas = np.array([fit_theta(events.returns[known[:, h], h]) for h in range(len(horizons))])
    y_train = events.labels(parts.train, parts.train_end, thetas)
    y_val = events.labels(parts.val, parts.val_end, thetas)
    y_test = events.labels(parts.test, np.iinfo(np.int64).max, thetas)
    say(f"θ (bps) per horizon: {dict(zip([h.name for h in horizons], np.round(thetas, 6).tolist(), strict=True))}")
    trained = Trained(
        Bundle(horizons, thetas, normalizer, settings.window, {}, {}, OnlineBayes(len(horizons)), _meta(settings)),
        _fit_baselines(events.z, y_train),
    )
    for name in settings.nets:
        started = time.perf_counter()
        net, temperature, history = _train_net(name, events, y_train, y_val, settings)
        trained.bundle.nets[name], trained.bundle.temperatures[name] = net, temperature
        trained.histories[name], trained.seconds[name] = history, time.perf_counter() - started
        say(f"{name}: {len(history)} epochs, best validation log-loss {min(h['val_loss'] for h in history):.4f}")
    bundle = trained.bundle
    bundle.logistic = LogisticMember.of([trained.baselines["logistic"][h] for h in range(len(horizons))])
    started = time.perf_counter()
    bundle.bayes, bayes_val = trained.online = online or _fit_bayes(events, parts, thetas, y_val)
    trained.seconds[OnlineBayes.name] = time.perf_counter() - started
    started = time.perf_counter()
    bundle.stacking = _fit_stacking(events, parts, bundle, bayes_val, y_val)
    trained.seconds["stacking"] = time.perf_counter() - started
    return trained, y_test


def _meta(settings: Settings) -> dict:
    return {
        "architecture": settings.architecture(),
        "ensemble": {"forgetting": settings.ensemble_forgetting, "sharpness": settings.ensemble_sharpness},
        "settings": settings.tunable(),
        "settings_from": settings.source,
    }


def _fit_baselines(z: np.ndarray, y: np.ndarray) -> dict[str, dict[int, Majority | Logistic]]:
    out: dict[str, dict[int, Majority | Logistic]] = {"majority": {}, "logistic": {}}
    for h in range(y.shape[1]):
        rows = y[:, h] >= 0
        out["majority"][h] = Majority(y[rows, h])
        out["logistic"][h] = Logistic(z[rows], y[rows, h])
    return out


def _train_net(
    name: str, events: Events, y_train: np.ndarray, y_val: np.ndarray, settings: Settings
) -> tuple[torch.nn.Module, np.ndarray, list[dict]]:
    torch.manual_seed(settings.seed)
    torch.set_num_threads(_training_threads())
    rng = np.random.default_rng(settings.seed)
    net = NETS[name](events.z.shape[1], y_train.shape[1], settings.window, **settings.architecture())
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    train_rows = np.flatnonzero((y_train >= 0).any(axis=1))
    val_rows = np.flatnonzero((y_val >= 0).any(axis=1))
    if not len(train_rows) or not len(val_rows):
        raise UnfitInput("no labelled events in the training or validation part: the recording is too short")
    history: list[dict] = []
    best, best_state, stale = np.inf, None, 0
    for epoch in range(1, settings.epochs + 1):
        net.train()
        rows = rng.permutation(train_rows)[: settings.max_train_windows]
        total = 0.0
        batches = range(0, len(rows), settings.batch)
        for start in tqdm(batches, desc=f"{name} epoch {epoch}", unit="batch", disable=None, leave=False):
            batch = rows[start : start + settings.batch]
            loss = _loss(net(torch.from_numpy(events.windows(batch))), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(batch)
        val_loss = _loss(torch.from_numpy(_logits(net, events, val_rows)), y_val[val_rows]).item()
        history.append({"epoch": epoch, "train_loss": total / len(rows), "val_loss": val_loss})
        if val_loss < best - 1e-4:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    net.load_state_dict(best_state)
    for entry in history:
        entry["best"] = entry["val_loss"] == best
    logits = _logits(net.eval(), events, val_rows)
    labels = y_val[val_rows]
    temperature = np.array(
        [fit_temperature(logits[labels[:, h] >= 0, h], labels[labels[:, h] >= 0, h]) for h in range(labels.shape[1])]
    )
    return net, temperature, history


def _loss(logits: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    target = torch.from_numpy(labels.astype(np.int64)).reshape(-1)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, 3), target, ignore_index=MISSING)


def _logits(net: torch.nn.Module, events: Events, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        parts = [net(torch.from_numpy(events.windows(rows[s : s + chunk]))).numpy() for s in range(0, len(rows), chunk)]
    return np.concatenate(parts)


def _fit_bayes(
    events: Events, parts: Parts, thetas: np.ndarray, y_val: np.ndarray, chunk: int = 2048
) -> tuple[OnlineBayes, np.ndarray]:
    """The online learner run prequentially over the train and validation parts in time order, as
    the flow would (each label learned once it is known); its temperatures are fitted on what it
    said at the validation events before learning their labels. Also returns its tempered
    probabilities at the validation events (NaN elsewhere)."""
    horizons = len(thetas)
    bayes = OnlineBayes(horizons)
    order = np.flatnonzero(~parts.test)
    order = order[np.argsort(events.ts[order], kind="stable")]
    x = events.z[:, ONLINE_INPUT_INDEX]
    known = (events.matured >= 0) & (events.matured < parts.val_end[:, None]) & np.isfinite(events.returns)
    rows, cols = np.nonzero(known)
    queue = np.argsort(events.matured[rows, cols], kind="stable")
    rows, cols = rows[queue], cols[queue]
    due = events.matured[rows, cols]
    classes = np.stack([classify(events.returns[:, h], thetas[h]) for h in range(horizons)], axis=1)
    scores = np.full((len(events), horizons, 3), np.nan)
    learned = 0
    for start in tqdm(range(0, len(order), chunk), desc="bayes", unit="chunk", disable=None, leave=False):
        batch = order[start : start + chunk]
        ts = events.ts[batch]
        stop = int(np.searchsorted(due, ts[-1], side="right"))  # a label is learned before the events at or after it
        take = slice(learned, stop)
        at = np.searchsorted(ts, due[take], side="left")
        scores[batch] = bayes.learn_and_score(at, cols[take], classes[rows[take], cols[take]], x[rows[take]], x[batch])
        learned = stop
    scored = np.flatnonzero(parts.val)
    labels = y_val[scored]
    bayes.temperature = np.array(
        [fit_temperature(scores[scored][labels[:, h] >= 0, h], labels[labels[:, h] >= 0, h]) for h in range(horizons)]
    )
    probs = np.full_like(scores, np.nan)
    probs[scored] = bayes.predict_many(scores[scored])
    return bayes, probs


def _fit_stacking(events: Events, parts: Parts, bundle: Bundle, bayes_val: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    """The stacking layer's starting weights: per horizon, fitted on the models' probabilities at the
    validation events (the networks and the logistic baseline fitted on the training part, the online
    learner as it ran there), pulled towards averaging the models' log-probabilities."""
    rows = np.flatnonzero(parts.val)
    nets = [
        softmax(_logits(net, events, rows) / bundle.temperatures[name][None, :, None])
        for name, net in bundle.nets.items()
    ]
    probs = np.stack([*nets, bayes_val[rows], bundle.logistic.predict(events.z[rows])], axis=1)  # (n, models, h, 3)
    x = stacking_inputs(probs.swapaxes(1, 2))  # (n, horizons, inputs)
    start = averaging(len(bundle.model_names), len(bundle.horizons))
    labels = y_val[rows]
    return np.stack(
        [fit_start(x[labels[:, h] >= 0, h], labels[labels[:, h] >= 0, h], start[h]) for h in range(len(start))]
    )


def _training_threads() -> int:
    """Half the cores, at most 4: Torch's threads spin while they wait, and when they outnumber the
    free cores (another process busy, as in a test run) training slows down by an order of magnitude."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))
