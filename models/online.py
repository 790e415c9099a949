"""The models in the flow, for one instrument: predict on every best bid/offer change, learn when
a label matures (prequential), and keep the ensemble's weights.

Per batch, the Torch networks run once on the windows of all its events; then, event by event,
the labels the event makes known are learned from (by the online learner and the ensemble) before
the event's own prediction is made. Nothing about an event is predicted with a label that
matured after it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from models.bundle import Bundle
from models.ensemble import Ensemble
from models.inputs import ONLINE_INPUT_INDEX
from models.stream import BboStream
from operators.features.frame import BookFrame
from operators.labels import LabelMaker, label_of


class Prediction(NamedTuple):
    ts: int
    seq: int
    exchange_ts: int  # NO_ID when the venue gives none
    probs: np.ndarray  # (horizons, 3): the ensemble's
    model_probs: np.ndarray  # (models, horizons, 3)
    weights: np.ndarray  # (horizons, models): the ensemble's weights when it was made


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
    left: int  # horizons still to mature


class InstrumentPredictor:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.thetas = bundle.thetas.tolist()
        self.stream = BboStream()
        self.labels = LabelMaker(bundle.horizons)
        self.bayes = copy.deepcopy(bundle.bayes)
        self.ensemble = Ensemble(bundle.model_names, len(bundle.horizons), **bundle.ensemble_settings())
        self.context = np.zeros((bundle.window - 1, len(bundle.normalizer.mean)), dtype=np.float32)
        self.pending: dict[int, _Pending] = {}
        self.events = 0

    def online_state(self) -> dict:
        """What a restart restores: the online learner and the ensemble's losses."""
        return {"bayes": self.bayes.learners, "ensemble_losses": self.ensemble.losses, "models": self.ensemble.models}

    def restore(self, state: dict) -> None:
        if state["models"] != self.ensemble.models or state["ensemble_losses"].shape != self.ensemble.losses.shape:
            raise ValueError("saved online state belongs to other models")
        self.bayes.set_learners(state["bayes"])
        self.ensemble.losses = state["ensemble_losses"]

    def snapshot(self) -> dict:
        """Everything the predictor holds but the bundle, which is the run's models, not its state
        (so that a recovery snapshot stays small); ``resume`` puts them back together."""
        return {name: value for name, value in vars(self).items() if name != "bundle"}

    @classmethod
    def resume(cls, bundle: Bundle, snapshot: dict) -> InstrumentPredictor:
        predictor = cls.__new__(cls)
        vars(predictor).update(snapshot, bundle=bundle)
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
        net_probs = bundle.net_probs(windows)
        made: list[Prediction] = []
        matured: list[Matured] = []
        ts_list, exchange_list, seq_list = events.ts.tolist(), events.exchange_ts.tolist(), events.seq.tolist()
        for j, mid in enumerate(events.mid.tolist()):
            ts = ts_list[j]
            for h, i, move in self.labels.push(ts, mid):
                matured.append(self._learn(h, i, move, ts))
            x_online = z[j, ONLINE_INPUT_INDEX]
            model_probs = np.concatenate([net_probs[:, j], self.bayes.predict(x_online)[None]])
            weights = self.ensemble.weights()
            prediction = Prediction(
                ts, seq_list[j], exchange_list[j], self.ensemble.combine(model_probs, weights), model_probs, weights
            )
            self.pending[self.events] = _Pending(prediction, x_online, len(bundle.horizons))
            self.events += 1
            made.append(prediction)
        return made, matured

    def _learn(self, h: int, i: int, move: float, now: int) -> Matured:
        pending = self.pending[i]
        label = label_of(move, self.thetas[h])
        self.bayes.learn(h, pending.x_online, label)
        self.ensemble.learn(h, pending.prediction.model_probs[:, h], label)
        pending.left -= 1
        if not pending.left:
            del self.pending[i]
        return Matured(pending.prediction, h, label, move, now)
