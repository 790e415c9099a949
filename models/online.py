"""The models in the flow, for one instrument: predict on every best bid/offer change, learn when
a label matures (prequential), and keep the ensemble (the mixture, the stacking layer and the top layer
over them and the logistic baseline, ``models/hedge.py``).

Per batch, everything runs once on all its events: the Torch networks on their windows, the
logistic baseline on their inputs, and the online learner, the mixture, the stacking layer and the top
layer learn
the batch's matured labels in the order they matured, each event being predicted with what had
matured at or before it (the labels an event makes known are learned from before its own
prediction is made). Nothing about an event is predicted with a label that matured after it, and
the predictions do not depend on how the stream was cut into batches (up to the rounding of sums
taken in another order, below 1e-12).

A batch's predictions and matured labels come out as arrays (``Predictions``, ``MaturedLabels``: the
predictions table's rows are taken from them at once), each read alone as a ``Prediction`` or a
``Matured``; the predictions waiting for labels are kept per batch, as the batch's arrays.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from models.bundle import Bundle
from models.ensemble import Ensemble
from models.hedge import Hedge
from models.inputs import ONLINE_INPUT_INDEX
from models.stacking import Stacking, stacking_inputs
from models.stream import BboStream
from operators.features.frame import BookFrame
from operators.labels import LabelMaker, classify
from quantumflow.settings import ensemble_method


class Prediction(NamedTuple):
    ts: int
    seq: int
    exchange_ts: int  # NO_ID when the venue gives none
    probs: np.ndarray  # (horizons, 3): the ensemble's (the top layer, the mixture or the stacking: QF_ENSEMBLE)
    decision: np.ndarray  # (horizons,): the predicted class (the top layer's rule for it, else the argmax of probs)
    model_probs: np.ndarray  # (models, horizons, 3)
    weights: np.ndarray  # (horizons, models): the mixture's weights when it was made
    mixture: np.ndarray  # (horizons, 3)
    stacking: np.ndarray  # (horizons, 3)
    hedge: np.ndarray  # (horizons, 3): the top layer's
    hedge_decision: np.ndarray  # (horizons,)


class Matured(NamedTuple):
    prediction: Prediction
    horizon: int
    label: int  # class index
    return_bps: float
    matured_ts: int


_IDS = ("ts", "seq", "exchange_ts")


class Predictions(Sequence[Prediction]):
    """A batch's predictions as one array per field of ``Prediction`` (int64 for the ids), row j the
    batch's j-th event: the rows of the predictions table are taken from the arrays at once; each one
    read alone is a ``Prediction``."""

    __slots__ = (*Prediction._fields, "row_json")

    def __init__(self, *columns: np.ndarray) -> None:
        for name, column in zip(Prediction._fields, columns, strict=True):
            setattr(self, name, column)
        # what the predictions rows wrote of each (event, horizon), row j * horizons + h, kept for the
        # row a matured label writes again (``dataflows.rows``); None until they are written
        self.row_json: tuple[list[str], ...] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, j: int) -> Prediction:  # type: ignore[override]
        ids = (int(getattr(self, name)[j]) for name in _IDS)
        return Prediction(*ids, *(getattr(self, name)[j] for name in Prediction._fields[3:]))

    def __iter__(self) -> Iterator[Prediction]:
        columns = [getattr(self, name).tolist() for name in _IDS] + [getattr(self, n) for n in Prediction._fields[3:]]
        return map(Prediction._make, zip(*columns, strict=True))


@dataclass(slots=True)
class _Block:
    """The predictions of a batch (or of a resumed snapshot) that wait for labels."""

    events: np.ndarray  # int64, increasing: their numbers in the instrument's stream
    predictions: Predictions
    x_online: np.ndarray
    experts: np.ndarray  # (events, experts, horizons, 3): what the top layer averaged
    left: np.ndarray  # int64: horizons still to mature


# per part of a set of labels: the block holding their events, the events' rows in it, the labels' positions
_Parts = list[tuple[_Block, np.ndarray, np.ndarray]]


class MaturedLabels(Sequence[Matured]):
    """A batch's matured labels, in the order they matured, as arrays and lists; the predictions they
    label stay in their blocks, from which ``at_horizon`` takes a field for all of them at once. Each
    one read alone is a ``Matured``."""

    __slots__ = ("_parts", "horizon", "label", "matured_ts", "return_bps")

    def __init__(
        self, horizon: np.ndarray, label: np.ndarray, return_bps: list[float], matured_ts: list[int], parts: _Parts
    ) -> None:
        self.horizon, self.label, self.return_bps, self.matured_ts = horizon, label, return_bps, matured_ts
        self._parts = parts

    def __len__(self) -> int:
        return len(self.horizon)

    def at_horizon(self, name: str) -> np.ndarray:
        """Per label, the field ``name`` of the prediction it labels at the label's horizon (an id whole)."""
        out = None
        for block, rows, positions in self._parts:
            column = getattr(block.predictions, name)
            if name in _IDS:
                piece = column[rows]
            elif name == "model_probs":
                piece = column[rows, :, self.horizon[positions]]
            else:
                piece = column[rows, self.horizon[positions]]
            if out is None:
                out = np.empty((len(self), *piece.shape[1:]), dtype=piece.dtype)
            out[positions] = piece
        assert out is not None
        return out

    def labelled_in(self, predictions: Predictions) -> np.ndarray:
        """Where ``predictions`` (a batch's, laid out event by event, horizon by horizon) has a prediction
        these labels label: its flat index ``event * horizons + horizon``, one per such label."""
        found = [
            rows * predictions.probs.shape[1] + self.horizon[positions]
            for block, rows, positions in self._parts
            if block.predictions is predictions
        ]
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def kept_json(self) -> list[list[str]] | None:
        """Per ``row_json`` column, the strings of the predictions labelled at the labels' horizons, in
        the labels' order; None if a prediction has none."""
        columns: list[np.ndarray] = []
        for block, rows, positions in self._parts:
            kept = block.predictions.row_json
            if kept is None:
                return None
            columns = columns or [np.empty(len(self), dtype=object) for _ in kept]
            at = (rows * block.predictions.probs.shape[1] + self.horizon[positions]).tolist()
            for column, values in zip(columns, kept, strict=True):
                column[positions] = [values[i] for i in at]
        return [column.tolist() for column in columns]

    def __getitem__(self, k: int) -> Matured:  # type: ignore[override]
        for block, rows, positions in self._parts:
            found = np.flatnonzero(positions == k)
            if len(found):
                prediction = block.predictions[int(rows[found[0]])]
                horizon, label = int(self.horizon[k]), int(self.label[k])
                return Matured(prediction, horizon, label, self.return_bps[k], self.matured_ts[k])
        raise IndexError(k)

    def __iter__(self) -> Iterator[Matured]:
        predictions: list[Prediction | None] = [None] * len(self)
        for block, rows, positions in self._parts:
            made: dict[int, Prediction] = {}  # an event's labels share its Prediction
            for row, k in zip(rows.tolist(), positions.tolist(), strict=True):
                if row not in made:
                    made[row] = block.predictions[row]
                predictions[k] = made[row]
        columns = (predictions, self.horizon.tolist(), self.label.tolist(), self.return_bps, self.matured_ts)
        return map(Matured._make, zip(*columns, strict=True))


class InstrumentPredictor:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.thetas = bundle.thetas.tolist()
        self.stream = BboStream()
        self.labels = LabelMaker(bundle.horizons)
        self.bayes = copy.deepcopy(bundle.bayes)
        self.ensemble = Ensemble(bundle.model_names, len(bundle.horizons), **bundle.ensemble_settings())
        self.stacking = Stacking(bundle.stacking)
        self.hedge = Hedge(3, len(bundle.horizons), baseline=2)  # over the mixture, the stacking layer, the logistic
        self.logistic = bundle.model_names.index("logistic")
        self.method = ensemble_method()
        self.context = np.zeros((bundle.window - 1, len(bundle.normalizer.mean)), dtype=np.float32)
        self.pending = _Waiting([])
        self.events = 0

    def online_state(self) -> dict:
        """What a restart restores: the online learner, the mixture's losses, the stacking layer and the top layer."""
        return {
            "bayes": self.bayes.stats,
            "ensemble_losses": self.ensemble.losses,
            "stacking": self.stacking.state(),
            "hedge": self.hedge.state(),
            "models": self.ensemble.models,
        }

    def restore(self, state: dict) -> None:
        if "hedge" not in state:
            raise ValueError("it was saved by an older version (no top layer)")
        if state["models"] != self.ensemble.models or state["ensemble_losses"].shape != self.ensemble.losses.shape:
            raise ValueError("saved online state belongs to other models")
        self.bayes.stats = state["bayes"]
        self.ensemble.losses = state["ensemble_losses"]
        self.stacking = Stacking.from_state(state["stacking"])
        self.hedge = Hedge.from_state(state["hedge"])

    def snapshot(self) -> dict:
        """Everything the predictor holds but the bundle, which is the run's models, not its state
        (so that a recovery snapshot stays small); ``resume`` puts them back together. The predictions
        waiting for labels are kept as one array per field, not thousands of small ones: the flow
        snapshots at every epoch, and pickling an array costs the same whatever its size."""
        state = {name: value for name, value in vars(self).items() if name not in ("bundle", "pending")}
        return {**state, "pending": _pending_columns(self.pending.blocks)}

    @classmethod
    def resume(cls, bundle: Bundle, snapshot: dict) -> InstrumentPredictor:
        predictor = cls.__new__(cls)
        vars(predictor).update(snapshot, bundle=bundle, pending=_Waiting(_pending_from_columns(snapshot["pending"])))
        return predictor

    def observe(self, frame: BookFrame, features: np.ndarray) -> None:
        """Take in events as context only (the windows' history), predicting nothing."""
        events = self.stream(frame, features)
        if len(events):
            self.context = np.concatenate([self.context, self.bundle.normalizer(events.inputs)])[-len(self.context) :]

    def on_batch(self, frame: BookFrame, features: np.ndarray) -> tuple[Predictions | list, MaturedLabels | list]:
        events = self.stream(frame, features)
        n = len(events)
        if not n:
            return [], []
        bundle = self.bundle
        z = bundle.normalizer(events.inputs)
        padded = np.concatenate([self.context, z])
        self.context = padded[len(padded) - len(self.context) :]
        windows = _windows(padded, bundle.window)
        net_probs = bundle.net_probs(windows)  # (nets, n, horizons, 3)
        x_online = z[:, ONLINE_INPUT_INDEX]
        ts_list = events.ts.tolist()
        at, horizon, event, moves = self._matured(ts_list, events.mid.tolist())
        label = classify(moves, np.asarray(self.thetas)[horizon])  # each label against its horizon's band
        first = self.events
        labels = np.arange(len(event))
        gather = _Gather(event, first, self.pending)
        x_labelled = gather(x_online, lambda b: b.x_online).astype(float)
        bayes = self.bayes.predict_many(self.bayes.learn_and_score(at, horizon, label, x_labelled, x_online))
        model_probs = np.concatenate([net_probs, bayes[None], bundle.logistic.predict(z)[None]]).transpose(1, 0, 2, 3)
        labelled = gather(model_probs, lambda b: b.predictions.model_probs, horizon)  # (labels, models, 3)
        weights = self.ensemble.learn_many(at, horizon, labelled, label, n)  # (n, horizons, models)
        # a sum over the models axis, model by model: an event's result does not depend on the batch's size
        mixture = (weights.transpose(0, 2, 1)[..., None] * model_probs).sum(axis=1)
        stacking = self.stacking.learn_many(
            at, horizon, stacking_inputs(labelled), label, stacking_inputs(model_probs.swapaxes(1, 2))
        )
        experts = np.stack([mixture, stacking, model_probs[:, self.logistic]], axis=1)  # (n, experts, horizons, 3)
        labelled_experts = gather(experts, lambda b: b.experts, horizon)
        delay = at + first - event
        hedge_weights = self.hedge.learn_weights(at, horizon, delay, labelled_experts, label, n)
        hedge = (hedge_weights.transpose(0, 2, 1)[..., None] * experts).sum(axis=1)  # model by model, as the mixture
        served = gather(hedge, lambda b: b.predictions.hedge, horizon)  # what the top layer said then
        hedge_decision = Hedge.decide(hedge, self.hedge.learn_decisions(at, horizon, served, label, n))
        chosen = {"stacking": stacking, "mixture": mixture}.get(self.method, hedge)
        decision = hedge_decision if self.method == "hedge" else chosen.argmax(axis=-1)
        ids = (events.ts, events.seq, events.exchange_ts)
        made = Predictions(*ids, chosen, decision, model_probs, weights, mixture, stacking, hedge, hedge_decision)
        left = np.full(n, len(bundle.horizons), dtype=np.int64)
        self.pending.append(_Block(np.arange(first, first + n, dtype=np.int64), made, x_online, experts, left))
        self.events += n
        parts = self.pending.locate(event, labels)
        for block, rows, _ in parts:
            np.subtract.at(block.left, rows, 1)
        self.pending.drop([block for block, _, _ in parts if not block.left.any()])
        matured = MaturedLabels(horizon, label, moves, [ts_list[j] for j in at.tolist()], parts)
        return made, matured

    def _matured(self, ts_list: list[int], mids: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
        """The labels the batch's events make known, in order: the event of the batch each matured at,
        its horizon, the event it labels, and the move."""
        at, horizon, event, moves = self.labels.push_many(ts_list, mids)
        return np.array(at, dtype=np.int64), np.array(horizon, dtype=np.int64), np.array(event, dtype=np.int64), moves


def _windows(rows: np.ndarray, window: int) -> np.ndarray:
    """(n + window - 1, inputs) contiguous rows -> (n, window, inputs): each run of ``window`` rows, as a
    view: what ``sliding_window_view`` gives, without its checks and Python steps."""
    step, column = rows.strides
    shape = (len(rows) - window + 1, window, rows.shape[1])
    return np.lib.stride_tricks.as_strided(rows, shape, (step, step, column), writeable=False)


class _Gather:
    """Per matured label, what was known at the event it labels: a row of the batch's arrays for an event
    of this batch, else the row of the block that holds it."""

    def __init__(self, event: np.ndarray, first: int, pending: _Waiting) -> None:
        self.count = len(event)
        self.in_batch = np.flatnonzero(event >= first)
        self.batch_rows = event[self.in_batch] - first
        self.parts = pending.locate(event, np.flatnonzero(event < first))

    def __call__(
        self, batch: np.ndarray, kept_in: Callable[[_Block], np.ndarray], horizon: np.ndarray | None = None
    ) -> np.ndarray:
        """``batch`` (events of the batch, ...) -> (labels, ...); ``kept_in`` is the same array of a block.
        Given the labels' ``horizon``, only that horizon is taken of the horizons axis (the last but one)."""
        if horizon is None:
            pick, shape = _rows, batch.shape[1:]
        else:  # without the horizons axis
            pick, shape = _at_horizon, (*batch.shape[1:-2], batch.shape[-1])
        out = np.empty((self.count, *shape), dtype=batch.dtype)
        if len(self.in_batch):
            out[self.in_batch] = pick(batch, self.batch_rows, horizon, self.in_batch)
        for block, rows, positions in self.parts:
            out[positions] = pick(kept_in(block), rows, horizon, positions)
        return out


def _rows(array: np.ndarray, rows: np.ndarray, horizon: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
    return array[rows]


def _at_horizon(array: np.ndarray, rows: np.ndarray, horizon: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``array[rows]`` at the horizons ``horizon[positions]`` of its last axis but one."""
    if array.ndim == 3:
        return array[rows, horizon[positions]]
    return array[rows, :, horizon[positions]]


class _Waiting:
    """The blocks of predictions waiting for labels, in the order of their events, with each block's first
    event in one array. A live feed brings batches of one or a few events, so hundreds of blocks wait for
    the longest horizon: a batch touches only the blocks its labels are in, never each of them."""

    __slots__ = ("blocks", "starts")

    def __init__(self, blocks: list[_Block]) -> None:
        self.blocks = blocks
        self.starts = np.array([block.events[0] for block in blocks], dtype=np.int64)

    def append(self, block: _Block) -> None:
        self.blocks.append(block)
        self.starts = np.append(self.starts, block.events[0])

    def drop(self, done: list[_Block]) -> None:
        """Let go of ``done``, blocks of this with no label left to wait for."""
        if not done:
            return
        at = np.searchsorted(self.starts, [block.events[0] for block in done])
        for index in sorted(at.tolist(), reverse=True):
            del self.blocks[index]
        self.starts = np.delete(self.starts, at)

    def locate(self, event: np.ndarray, positions: np.ndarray) -> _Parts:
        """Where the events ``event[positions]`` are held: per block, their rows in it and their positions."""
        if not len(positions):
            return []
        owner = np.searchsorted(self.starts, event[positions], side="right") - 1
        parts = []
        for b in np.unique(owner).tolist():
            mine = positions[owner == b]
            block = self.blocks[b]
            parts.append((block, np.searchsorted(block.events, event[mine]), mine))
        return parts


def _pending_columns(pending: list[_Block]) -> dict:
    """The predictions still waiting, as the snapshot keeps them: one array per field, in event order."""
    waiting = [(block, block.left > 0) for block in pending]
    waiting = [(block, keep) for block, keep in waiting if keep.any()]
    if not waiting:
        return {"events": []}

    def column(of: Callable[[_Block], np.ndarray]) -> np.ndarray:
        return np.concatenate([of(block)[keep] for block, keep in waiting])

    return {
        "events": column(lambda b: b.events).tolist(),
        "left": column(lambda b: b.left).tolist(),
        "x_online": column(lambda b: b.x_online),
        "experts": column(lambda b: b.experts),
        "prediction": [column(lambda b, name=name: getattr(b.predictions, name)) for name in Prediction._fields],
    }


def _pending_from_columns(columns: dict) -> list[_Block]:
    if not columns["events"]:
        return []
    events, left = (np.asarray(columns[name], dtype=np.int64) for name in ("events", "left"))
    predictions = Predictions(*(np.asarray(values) for values in columns["prediction"]))
    return [_Block(events, predictions, np.asarray(columns["x_online"]), np.asarray(columns["experts"]), left)]
