"""The mixture: per horizon, the models' probabilities weighted by how well each has predicted the
labels that matured lately.

Each model's weight is proportional to exp(-η L), where L is its rolling log-loss on matured
labels: an exponentially weighted mean with a forgetting factor of 0.999 (a label's say halves
after about 700 newer ones). This is dynamic model averaging (Raftery, Kárný & Ettler 2010) with
the evidence tempered: labels of neighbouring events share most of their future and are far from
independent, so summing their log-losses as Bayes would makes the weights jump from one model to
another on noise. With η = 10, a model 0.1 nats worse per label than another gets e^-1 of its
weight. A model that starts doing badly after a regime change loses weight within a few thousand
events.

The forgetting makes L depend on the order of the labels, so a batch of labels is learned in the
order they matured, as the first-order recursion L ← λ L + (1 - λ) loss run by ``scipy.signal.lfilter``
(the same two products and sum per label as the loop, in C).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

FORGETTING = 0.999  # the defaults; a checkpoint may carry tuned values (``quantumflow tune``)
SHARPNESS = 10.0  # η
_EPS = 1e-12


class Ensemble:
    __slots__ = ("forgetting", "losses", "models", "sharpness")

    def __init__(
        self, models: list[str], horizons: int, forgetting: float = FORGETTING, sharpness: float = SHARPNESS
    ) -> None:
        self.models = models
        self.forgetting, self.sharpness = forgetting, sharpness
        self.losses = np.zeros((horizons, len(models)))  # rolling log-loss per horizon and model

    def weights(self) -> np.ndarray:
        """(horizons, models), each row summing to 1."""
        return _weights(self.losses, self.sharpness)

    def combine(self, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """probs (models, horizons, 3) -> (horizons, 3)."""
        return np.einsum("hm,mhc->hc", weights, probs)

    def learn(self, horizon: int, probs: np.ndarray, label: int) -> None:
        """A label matured: ``probs`` (models, 3) is what each model said at the event."""
        self.learn_many(np.array([0]), np.array([horizon]), np.asarray(probs)[None], np.array([label]), 1)

    def learn_many(
        self, at: np.ndarray, horizon: np.ndarray, probs: np.ndarray, label: np.ndarray, events: int
    ) -> np.ndarray:
        """Learn labels in the order they matured (``at``: the event of the batch each matured at,
        non-decreasing; ``probs`` (labels, models, 3): what each model said at the labelled event) and
        return the (events, horizons, models) weights each event of the batch is mixed with: those
        after the labels that matured at or before it."""
        loss = -np.log(np.maximum(probs[np.arange(len(label)), :, label], _EPS))  # (labels, models)
        horizons, labels = len(self.losses), len(label)
        # each horizon's labels in a column of their own, in the order they matured, padded at the end:
        # one filter runs every horizon's recursion, and each horizon is read at its own labels
        seen = np.zeros((labels + 1, horizons), dtype=np.int64)
        seen[np.arange(1, labels + 1), horizon] = 1
        seen = np.cumsum(seen, axis=0)  # [k, h]: horizon h's labels among the first k
        rolled = self.losses[None]  # row r: after a horizon's first r labels
        if labels:
            columns = np.zeros((int(seen[-1].max()), horizons, loss.shape[1]))
            columns[seen[1:][np.arange(labels), horizon] - 1, horizon] = loss
            recursion = (np.array([1 - self.forgetting, 0.0]), np.array([1.0, -self.forgetting]))
            start = (self.forgetting * self.losses).reshape(1, -1)
            filtered, _ = lfilter(*recursion, columns.reshape(len(columns), -1), axis=0, zi=start)
            rolled = np.concatenate([rolled, filtered.reshape(columns.shape)])
        counts = seen[np.searchsorted(at, np.arange(events), side="right")]  # (events, horizons): labels seen
        losses = rolled[counts, np.arange(horizons)]  # (events, horizons, models)
        self.losses = rolled[seen[-1], np.arange(horizons)]
        return _weights(losses, self.sharpness)


def _weights(losses: np.ndarray, sharpness: float) -> np.ndarray:
    w = np.exp(-sharpness * (losses - losses.min(axis=-1, keepdims=True)))
    return w / w.sum(axis=-1, keepdims=True)
