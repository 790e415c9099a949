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
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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
from operators.labels import LabelMaker, label_of
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


@dataclass(slots=True)
class _Pending:
    prediction: Prediction
    x_online: np.ndarray
    experts: np.ndarray  # (experts, horizons, 3): what the top layer averaged
    left: int  # horizons still to mature


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
        self.pending: dict[int, _Pending] = {}
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
        return {**state, "pending": _pending_columns(self.pending)}

    @classmethod
    def resume(cls, bundle: Bundle, snapshot: dict) -> InstrumentPredictor:
        predictor = cls.__new__(cls)
        vars(predictor).update(snapshot, bundle=bundle, pending=_pending_from_columns(snapshot["pending"]))
        return predictor

    def observe(self, frame: BookFrame, features: np.ndarray) -> None:
        """Take in events as context only (the windows' history), predicting nothing."""
        events = self.stream(frame, features)
        if len(events):
            self.context = np.vstack([self.context, self.bundle.normalizer(events.inputs)])[-len(self.context) :]

    def on_batch(self, frame: BookFrame, features: np.ndarray) -> tuple[list[Prediction], list[Matured]]:
        events = self.stream(frame, features)
        n = len(events)
        if not n:
            return [], []
        bundle = self.bundle
        z = bundle.normalizer(events.inputs)
        padded = np.vstack([self.context, z])
        self.context = padded[len(padded) - len(self.context) :]
        windows = np.lib.stride_tricks.sliding_window_view(padded, bundle.window, axis=0).transpose(0, 2, 1)
        net_probs = bundle.net_probs(windows)  # (nets, n, horizons, 3)
        x_online = z[:, ONLINE_INPUT_INDEX]
        ts_list = events.ts.tolist()
        at, horizon, event, moves = self._matured(ts_list, events.mid.tolist())
        label = np.array([label_of(move, self.thetas[h]) for h, move in zip(horizon, moves, strict=True)], dtype=int)
        first, pending = self.events, self.pending
        labels = np.arange(len(event))
        gather = _Gather(event, first, pending)
        x_labelled = gather(x_online, lambda w: w.x_online).astype(float)
        bayes = self.bayes.predict_many(self.bayes.learn_and_score(at, horizon, label, x_labelled, x_online))
        model_probs = np.concatenate([net_probs, bayes[None], bundle.logistic.predict(z)[None]]).transpose(1, 0, 2, 3)
        labelled = gather(model_probs, lambda w: w.prediction.model_probs)[labels, :, horizon]  # (labels, models, 3)
        weights = self.ensemble.learn_many(at, horizon, labelled, label, n)  # (n, horizons, models)
        # a sum over the models axis, model by model: an event's result does not depend on the batch's size
        mixture = (weights.transpose(0, 2, 1)[..., None] * model_probs).sum(axis=1)
        stacking = self.stacking.learn_many(
            at, horizon, stacking_inputs(labelled), label, stacking_inputs(model_probs.swapaxes(1, 2))
        )
        experts = np.stack([mixture, stacking, model_probs[:, self.logistic]], axis=1)  # (n, experts, horizons, 3)
        labelled_experts = gather(experts, lambda w: w.experts)[labels, :, horizon]
        delay = at + first - np.asarray(event, dtype=np.int64)
        hedge_weights = self.hedge.learn_weights(at, horizon, delay, labelled_experts, label, n)
        hedge = (hedge_weights.transpose(0, 2, 1)[..., None] * experts).sum(axis=1)  # model by model, as the mixture
        served = gather(hedge, lambda w: w.prediction.hedge)[labels, horizon]  # what the top layer said then
        hedge_decision = Hedge.decide(hedge, self.hedge.learn_decisions(at, horizon, served, label, n))
        chosen = {"stacking": stacking, "mixture": mixture}.get(self.method, hedge)
        decision = hedge_decision if self.method == "hedge" else chosen.argmax(axis=-1)
        exchange_list, seq_list = events.exchange_ts.tolist(), events.seq.tolist()
        made = [
            Prediction(
                ts_list[j],
                seq_list[j],
                exchange_list[j],
                chosen[j],
                decision[j],
                model_probs[j],
                weights[j],
                mixture[j],
                stacking[j],
                hedge[j],
                hedge_decision[j],
            )
            for j in range(n)
        ]
        left = len(bundle.horizons)
        for j, prediction in enumerate(made):
            pending[first + j] = _Pending(prediction, x_online[j], experts[j], left)
        self.events += n
        matured = []
        for j, h, i, move, y in zip(at.tolist(), horizon.tolist(), event, moves, label.tolist(), strict=True):
            waiting = pending[i]
            waiting.left -= 1
            if not waiting.left:
                del pending[i]
            matured.append(Matured(waiting.prediction, h, y, move, ts_list[j]))
        return made, matured

    def _matured(self, ts_list: list[int], mids: list[float]) -> tuple[np.ndarray, np.ndarray, list[int], list[float]]:
        """The labels the batch's events make known, in order: the event of the batch each matured at,
        its horizon, the event it labels, and the move."""
        at, horizon, event, moves = [], [], [], []
        push = self.labels.push
        for j, (ts, mid) in enumerate(zip(ts_list, mids, strict=True)):
            for h, i, move in push(ts, mid):
                at.append(j)
                horizon.append(h)
                event.append(i)
                moves.append(move)
        return np.array(at, dtype=np.int64), np.array(horizon, dtype=np.int64), event, moves


class _Gather:
    """Per matured label, what was known at the event it labels: a row of the batch's arrays for an event
    of this batch, else the pending prediction's (each earlier event's array taken once)."""

    def __init__(self, event: list[int], first: int, pending: dict[int, _Pending]) -> None:
        events = np.asarray(event, dtype=np.int64)
        earlier = sorted({i for i in event if i < first})
        self.waiting = [pending[i] for i in earlier]
        self.rows = np.where(events >= first, events - first + len(earlier), np.searchsorted(earlier, events))

    def __call__(self, batch: np.ndarray, kept_in: Callable[[_Pending], np.ndarray]) -> np.ndarray:
        """``batch`` (events of the batch, ...) -> (labels, ...); ``kept_in`` finds it in a pending prediction."""
        kept = [kept_in(w) for w in self.waiting]
        earlier = np.array(kept, dtype=batch.dtype).reshape(len(kept), *batch.shape[1:])
        return np.concatenate([earlier, batch])[self.rows]


def _pending_columns(pending: dict[int, _Pending]) -> dict:
    if not pending:
        return {"events": []}
    waiting = list(pending.values())
    predictions = [w.prediction for w in waiting]
    return {
        "events": list(pending),
        "left": [w.left for w in waiting],
        "x_online": np.stack([w.x_online for w in waiting]),
        "experts": np.stack([w.experts for w in waiting]),
        "prediction": [np.stack([getattr(p, name) for p in predictions]) for name in Prediction._fields],
    }


def _pending_from_columns(columns: dict) -> dict[int, _Pending]:
    if not columns["events"]:
        return {}
    fields = [values.tolist() if values.ndim == 1 else list(values) for values in columns["prediction"]]
    predictions = map(Prediction._make, zip(*fields, strict=True))
    waiting = zip(columns["events"], predictions, columns["x_online"], columns["experts"], columns["left"], strict=True)
    return {event: _Pending(prediction, x, experts, left) for event, prediction, x, experts, left in waiting}
