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

from models.calibration import softmax
from models.inputs import ONLINE_INPUT_NAMES

CLASSES = (0, 1, 2)


class OnlineBayes:
    name = "bayes"

    def __init__(self, horizons: int, temperature: np.ndarray | None = None) -> None:
        self.learners = [naive_bayes.GaussianNB() for _ in range(horizons)]
        self.temperature = np.ones(horizons) if temperature is None else np.asarray(temperature, dtype=float)

    def log_likelihoods(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) joint log-likelihoods of the classes (0 for a class not seen yet)."""
        x = dict(zip(ONLINE_INPUT_NAMES, x_online.tolist(), strict=True))
        out = np.zeros((len(self.learners), 3))
        for h, learner in enumerate(self.learners):
            joint = learner.joint_log_likelihood(x) if learner.class_counts else {}
            out[h] = [joint.get(c, 0.0) for c in CLASSES]
            if joint and len(joint) < 3:  # classes never seen get the least likely seen class's value
                low = min(joint.values())
                out[h] = [joint.get(c, low) for c in CLASSES]
        return out

    def predict(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) probabilities: tempered posteriors."""
        return softmax(self.log_likelihoods(x_online) / self.temperature[:, None])

    def learn(self, horizon: int, x_online: np.ndarray, label: int) -> None:
        self.learners[horizon].learn_one(dict(zip(ONLINE_INPUT_NAMES, x_online.tolist(), strict=True)), label)
