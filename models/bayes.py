"""The online Bayesian learner: one River ``GaussianNB`` per horizon, learning in the flow.

Why this model: with exact mids, "no move" is a frequent exact outcome at short horizons (the
flat band fitted on BTCUSDT is θ = 0 at 10 and 50 events, where over a third of windows see no
mid change), and a regression of the move with a Gaussian predictive distribution (River's
``BayesianLinearRegression``) puts no mass on it. A Gaussian naive Bayes classifier is Bayesian
on the classes themselves: class priors and per-class Gaussian likelihoods of each input, updated
with every matured label; its output is the posterior over down / flat / up under that model.
Naive Bayes counts correlated inputs as independent evidence, which makes it overconfident, so
its log-posterior is divided by a temperature fitted on the validation data (saved with it).
It reads the compact input set ``ONLINE_INPUT_NAMES`` (its cost grows with their number).
Its statistics are cumulative: it keeps learning but does not forget; fast regime changes are
the ensemble's to follow, by moving weight between models.
"""

from __future__ import annotations

import numpy as np
from river import naive_bayes
from river.naive_bayes.gaussian import _PDF_EPS

from models.calibration import softmax
from models.inputs import ONLINE_INPUT_NAMES

CLASSES = (0, 1, 2)


class OnlineBayes:
    """River learners, one per horizon; predictions read their statistics as arrays (the same
    joint log-likelihood as ``GaussianNB.joint_log_likelihood``, without a Python call per class
    and input), refreshed for the one class each label updates."""

    name = "bayes"

    def __init__(self, horizons: int, temperature: np.ndarray | None = None) -> None:
        self.temperature = np.ones(horizons) if temperature is None else np.asarray(temperature, dtype=float)
        self.set_learners([naive_bayes.GaussianNB() for _ in range(horizons)])

    def set_learners(self, learners: list[naive_bayes.GaussianNB]) -> None:
        self.learners = learners
        shape = (len(learners), len(CLASSES), len(ONLINE_INPUT_NAMES))
        self._dof, self._mean, self._sum_squares = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self._classes = np.zeros((len(learners), len(CLASSES)))
        for h in range(len(learners)):
            for c in CLASSES:
                self._refresh(h, c)

    def __getstate__(self) -> dict:
        return {"learners": self.learners, "temperature": self.temperature}

    def __setstate__(self, state: dict) -> None:
        self.temperature = state["temperature"]
        self.set_learners(state["learners"])

    def log_likelihoods(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) joint log-likelihoods of the classes; a class not seen yet gets the least
        likely seen class's value, and with none seen all are 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = self._sum_squares / self._dof
            usable = (self._dof > 0) & (variance > 0)
            pdf = np.exp(-((x_online - self._mean) ** 2) / (2 * variance)) / np.sqrt(2 * np.pi * variance)
            log_pdf = np.log(_PDF_EPS + np.where(usable, pdf, 0.0))
            prior = np.log(self._classes / self._classes.sum(axis=1, keepdims=True))
        joint = prior + log_pdf.sum(axis=2)
        seen = self._classes > 0
        low = np.where(seen, joint, np.inf).min(axis=1, keepdims=True)
        return np.where(seen, joint, np.where(np.isfinite(low), low, 0.0))

    def predict(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) probabilities: tempered posteriors."""
        return softmax(self.log_likelihoods(x_online) / self.temperature[:, None])

    def learn(self, horizon: int, x_online: np.ndarray, label: int) -> None:
        self.learners[horizon].learn_one(dict(zip(ONLINE_INPUT_NAMES, x_online.tolist(), strict=True)), label)
        self._refresh(horizon, label)

    def _refresh(self, h: int, c: int) -> None:
        learner = self.learners[h]
        self._classes[h, c] = learner.class_counts.get(c, 0)
        gaussians = learner.gaussians.get(c, {})
        for f, name in enumerate(ONLINE_INPUT_NAMES):
            gaussian = gaussians.get(name)
            if gaussian is not None:
                var = gaussian._var
                self._dof[h, c, f] = var.mean.n - var.ddof
                self._mean[h, c, f], self._sum_squares[h, c, f] = var.mean._mean, var._S
