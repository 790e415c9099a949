"""The online Bayesian learner: a Gaussian naive Bayes classifier per horizon, learning in the flow.

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

The statistics are River's ``GaussianNB``'s (per class and input, Welford's running mean and sum of
squares), kept as arrays and updated with the same floating-point operations in the same order, so
the learner gives River's numbers bit for bit (tests/test_bayes.py checks it against River). A batch
of labels is learned at once: the labels of different (horizon, class) cells are independent, so
the k-th label of every cell is applied in one vectorised step, and the statistics after each label
are kept so that every event of a flow batch is predicted with exactly what had matured before it.
"""

from __future__ import annotations

import math

import numpy as np

from models.calibration import softmax
from models.inputs import ONLINE_INPUT_NAMES

CLASSES = (0, 1, 2)
_PDF_EPS = 10e-10  # River's floor under a likelihood (river.naive_bayes.gaussian._PDF_EPS)
_N = len(CLASSES)
_SQRT_TAU = math.sqrt(2.0 * math.pi)


class Stats:
    """Per (horizon, class): the labels seen n (River's class count, and every input's ``mean.n``);
    per (horizon, class, input): the running mean and the sum of squared deviations S (River's
    ``stats.Var``: ``mean._mean`` and ``_S``)."""

    __slots__ = ("mean", "n", "s")

    def __init__(self, n: np.ndarray, mean: np.ndarray, s: np.ndarray) -> None:
        self.n, self.mean, self.s = n, mean, s

    @classmethod
    def empty(cls, horizons: int) -> Stats:
        shape = (horizons, _N, len(ONLINE_INPUT_NAMES))
        return cls(np.zeros(shape[:2]), np.zeros(shape), np.zeros(shape))

    def __getstate__(self) -> tuple:
        return self.n, self.mean, self.s

    def __setstate__(self, state: tuple) -> None:
        self.n, self.mean, self.s = state


class OnlineBayes:
    name = "bayes"

    def __init__(self, horizons: int, temperature: np.ndarray | None = None) -> None:
        self.temperature = np.ones(horizons) if temperature is None else np.asarray(temperature, dtype=float)
        self.stats = Stats.empty(horizons)

    def __getstate__(self) -> dict:
        return {"stats": self.stats, "temperature": self.temperature}

    def __setstate__(self, state: dict) -> None:
        self.temperature, self.stats = state["temperature"], state["stats"]

    def log_likelihoods(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) joint log-likelihoods of the classes for one event's inputs."""
        s = self.stats
        return _joint(s.n, s.mean, s.s, np.asarray(x_online, dtype=float))

    def predict(self, x_online: np.ndarray) -> np.ndarray:
        """(horizons, 3) probabilities: tempered posteriors."""
        return softmax(self.log_likelihoods(x_online) / self.temperature[:, None])

    def learn(self, horizon: int, x_online: np.ndarray, label: int) -> None:
        self.learn_and_score(np.array([0]), np.array([horizon]), np.array([label]), np.asarray(x_online)[None])

    def learn_and_score(
        self, at: np.ndarray, horizon: np.ndarray, label: np.ndarray, x: np.ndarray, x_events: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Learn labels in the order they matured (``at``: the index of the event each matured at,
        non-decreasing; ``x``: the inputs of the events they label) and return the (events, horizons, 3)
        joint log-likelihoods of ``x_events`` (the inputs of the events 0, 1, ... of the batch), each
        scored with the statistics after the labels that matured at or before it (None without them)."""
        stats = self.stats
        horizons, features = stats.n.shape[0], stats.mean.shape[-1]
        cells = horizons * _N
        cell = np.asarray(horizon, dtype=np.int64) * _N + np.asarray(label, dtype=np.int64)
        counts = np.bincount(cell, minlength=cells)
        order = np.argsort(cell, kind="stable")  # per cell, its labels in the order they matured
        rank = np.empty(len(cell), dtype=np.int64)
        rank[order] = np.arange(len(cell)) - np.repeat(np.cumsum(counts) - counts, counts)
        rounds = int(counts.max(initial=0))
        # the statistics after each round, the cells laid out by falling count: the cells with an r-th
        # label are a leading slice of the layout, so a round works on views, not on gathered rows
        layout = np.argsort(-counts, kind="stable")
        slot = np.empty(cells, dtype=np.int64)
        slot[layout] = np.arange(cells)
        active = (counts[layout][None, :] > np.arange(rounds)[:, None]).sum(axis=1)  # per round: cells with a label
        # a cell's count after r rounds is its count before plus r (whole numbers: exact as River's n + 1)
        n_hist = stats.n.ravel()[layout] + np.arange(rounds + 1, dtype=float)[:, None]
        step = 1.0 / n_hist[1:]
        mean_hist = np.empty((rounds + 1, cells, features))
        s_hist = np.empty((rounds + 1, cells, features))
        mean_hist[0], s_hist[0] = stats.mean.reshape(cells, -1)[layout], stats.s.reshape(cells, -1)[layout]
        x_by_round = np.empty((rounds, cells, features))
        x_by_round[rank, slot[cell]] = np.asarray(x, dtype=float)
        for r, k in enumerate(active.tolist()):  # River's Var.update, for the r-th label of every cell at once
            xr, mean_old = x_by_round[r, :k], mean_hist[r, :k]
            change = xr - mean_old
            mean_new = np.add(mean_old, step[r, :k, None] * change, out=mean_hist[r + 1, :k])
            np.add(s_hist[r, :k], change * (xr - mean_new), out=s_hist[r + 1, :k])
        scores = None
        if x_events is not None:
            events = len(x_events)
            seen = np.zeros((events + 1, cells), dtype=np.int64)
            np.add.at(seen, (np.asarray(at, dtype=np.int64) + 1, cell), 1)
            seen = np.cumsum(seen, axis=0)[1:]  # (events, cells): each cell's labels learned before each event
            scores = _joint(
                n_hist[seen, slot].reshape(events, horizons, _N),
                mean_hist[seen, slot].reshape(events, horizons, _N, features),
                s_hist[seen, slot].reshape(events, horizons, _N, features),
                np.asarray(x_events, dtype=float)[:, None, None, :],
            )
        stats.n = n_hist[counts, slot].reshape(horizons, _N)
        stats.mean = mean_hist[counts, slot].reshape(stats.mean.shape)
        stats.s = s_hist[counts, slot].reshape(stats.s.shape)
        return scores

    def predict_many(self, scores: np.ndarray) -> np.ndarray:
        """Tempered posteriors from ``learn_and_score``'s joint log-likelihoods."""
        return softmax(scores / self.temperature[:, None])


def _joint(n: np.ndarray, mean: np.ndarray, s: np.ndarray, x: np.ndarray) -> np.ndarray:
    """River's ``GaussianNB.joint_log_likelihood`` on arrays: (..., 3) from counts (..., 3) and
    statistics (..., 3, inputs); a class not seen yet gets the least likely seen class's value, and
    with none seen all are 0."""
    dof = n[..., None]  # River's GaussianNB keeps its variances with ddof 0
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = s / dof
        usable = (dof > 0) & (variance > 0)
        sigma = np.sqrt(variance)
        z = (x - mean) / sigma
        pdf = np.exp(-0.5 * z * z) / _SQRT_TAU / sigma  # River's norm_pdf(z) / sigma
        log_pdf = np.log(_PDF_EPS + np.where(usable, pdf, 0.0))
        prior = np.log(n / n.sum(axis=-1, keepdims=True))
    joint = prior + log_pdf.sum(axis=-1)
    seen = n > 0
    low = np.where(seen, joint, np.inf).min(axis=-1, keepdims=True)
    return np.where(seen, joint, np.where(np.isfinite(low), low, 0.0))
