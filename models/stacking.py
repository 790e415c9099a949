"""The stacking layer: per horizon, a multinomial logistic regression over the models' log-probabilities,
learned online as labels mature.

A mixture can never do better than its best model; a regression over the models' log-probabilities can
(it can add what two models know, discount a model that is overconfident, or read one model's "flat"
as evidence against another's "up"). Per horizon the logits are W f, where f holds each model's
log-probabilities (floored at 1e-6) and a constant 1.

It starts at ``start``: averaging the log-probabilities (a normalized geometric mean of the models) or,
from ``quantumflow train``, W fitted on the validation part (cross-entropy with a pull towards that
average, so that it stays there where the validation part says little). Then it learns from matured
labels by AdaGrad, one step per block of ``BLOCK`` labels of a horizon, on the block's mean gradient.
The weights change only at a block's last label, and a block is a count of labels in the order they
matured, so the predictions do not depend on how the stream was cut into flow batches; within a
batch, every event is predicted with the weights after the blocks completed at or before it.
"""

from __future__ import annotations

import numpy as np
import torch

from models.calibration import softmax

BLOCK = 32  # labels per update
LEARNING_RATE = 0.01
_FLOOR = 1e-6
_ACCUMULATED = 1.0  # AdaGrad's starting sum of squared gradients: damps the first steps


def stacking_inputs(probs: np.ndarray) -> np.ndarray:
    """(..., models, 3) probabilities -> (..., 3 models + 1) inputs of the regression."""
    logs = np.log(np.maximum(probs, _FLOOR)).reshape(*probs.shape[:-2], probs.shape[-2] * probs.shape[-1])
    return np.concatenate([logs, np.ones((*logs.shape[:-1], 1))], axis=-1)


def averaging(models: int, horizons: int) -> np.ndarray:
    """(horizons, 3, 3 models + 1) weights whose logits are the models' mean log-probabilities."""
    w = np.zeros((horizons, 3, 3 * models + 1))
    for m in range(models):
        w[:, np.arange(3), 3 * m + np.arange(3)] = 1 / models
    return w


def fit_start(x: np.ndarray, y: np.ndarray, prior: np.ndarray, pull: float = 1e-2) -> np.ndarray:
    """(3, inputs) weights fitted on features ``x`` and labels ``y`` by L-BFGS, with an L2 pull of
    strength ``pull`` towards ``prior``."""
    if not len(y):
        return prior.copy()
    inputs, target = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.long)
    start = torch.as_tensor(prior, dtype=torch.float64)
    w = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(inputs @ w.T, target) + pull * (w - start).pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return w.detach().numpy()


class Stacking:
    __slots__ = ("accumulated", "block_labels", "block_x", "weights")

    def __init__(self, start: np.ndarray) -> None:
        self.weights = np.array(start, dtype=float)  # (horizons, 3, inputs)
        horizons, _, inputs = self.weights.shape
        self.accumulated = np.full_like(self.weights, _ACCUMULATED)
        self.block_x = [np.zeros((0, inputs)) for _ in range(horizons)]  # per horizon: the block so far
        self.block_labels = [np.zeros(0, dtype=np.int64) for _ in range(horizons)]

    def state(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_state(cls, state: dict) -> Stacking:
        stacking = cls.__new__(cls)
        for name in cls.__slots__:
            setattr(stacking, name, state[name])
        return stacking

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(horizons, inputs) -> (horizons, 3) probabilities."""
        return softmax(np.einsum("hci,hi->hc", self.weights, x))

    def learn_many(self, at: np.ndarray, horizon: np.ndarray, x: np.ndarray, label: np.ndarray, events: np.ndarray):
        """Learn labels in the order they matured (``at``: the event of the batch each matured at,
        non-decreasing; ``x`` the labelled events' inputs) and return the (n, horizons, 3) probabilities of
        the batch's events (inputs ``events`` (n, horizons, inputs)), each with the weights after the
        blocks that completed at or before it."""
        seen = None  # (n, horizons, 3, inputs): the weights each event sees, once a block completes
        for h in np.unique(horizon).tolist():
            rows = np.flatnonzero(horizon == h)
            xs = np.concatenate([self.block_x[h], x[rows]])
            ys = np.concatenate([self.block_labels[h], label[rows]])
            held = len(self.block_labels[h])
            done = len(ys) // BLOCK * BLOCK
            if done:
                if seen is None:
                    seen = np.broadcast_to(self.weights, (len(events), *self.weights.shape)).copy()
                versions, changes = [self.weights[h].copy()], []
                for end in range(BLOCK, done + 1, BLOCK):
                    self._step(h, xs[end - BLOCK : end], ys[end - BLOCK : end])
                    versions.append(self.weights[h].copy())
                    changes.append(at[rows[end - held - 1]])  # the event whose label completed the block
                version = np.searchsorted(np.asarray(changes, dtype=np.int64), np.arange(len(events)), side="right")
                seen[:, h] = np.stack(versions)[version]
            self.block_x[h], self.block_labels[h] = xs[done:], ys[done:]
        weights = self.weights[None] if seen is None else seen
        # a sum per event over its inputs: an event's result does not depend on the batch's size
        return softmax((weights * events[:, :, None, :]).sum(axis=-1))

    def _step(self, h: int, x: np.ndarray, y: np.ndarray) -> None:
        p = softmax(x @ self.weights[h].T)
        p[np.arange(len(y)), y] -= 1.0
        gradient = p.T @ x / len(y)
        self.accumulated[h] += gradient**2
        self.weights[h] -= LEARNING_RATE * gradient / np.sqrt(self.accumulated[h])
