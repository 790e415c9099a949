"""The ensemble: per horizon, a mixture of the models' probabilities weighted by how well each
has predicted the labels that matured lately.

Each model's weight is proportional to exp(-η L), where L is its rolling log-loss on matured
labels: an exponentially weighted mean with a forgetting factor of 0.999 (a label's say halves
after about 700 newer ones). This is dynamic model averaging (Raftery, Kárný & Ettler 2010) with
the evidence tempered: labels of neighbouring events share most of their future and are far from
independent, so summing their log-losses as Bayes would makes the weights jump from one model to
another on noise. With η = 10, a model 0.1 nats worse per label than another gets e^-1 of its
weight. A model that starts doing badly after a regime change loses weight within a few thousand
events.
"""

from __future__ import annotations

import numpy as np

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
        w = np.exp(-self.sharpness * (self.losses - self.losses.min(axis=1, keepdims=True)))
        return w / w.sum(axis=1, keepdims=True)

    def combine(self, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """probs (models, horizons, 3) -> (horizons, 3)."""
        return np.einsum("hm,mhc->hc", weights, probs)

    def learn(self, horizon: int, probs: np.ndarray, label: int) -> None:
        """A label matured: ``probs`` (models, 3) is what each model said at the event."""
        loss = -np.log(np.maximum(probs[:, label], _EPS))
        self.losses[horizon] = self.forgetting * self.losses[horizon] + (1 - self.forgetting) * loss
