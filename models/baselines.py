"""The baselines every model is judged against: the training set's majority class, and a
multinomial logistic regression on L1 order flow imbalance (last 10 events), L1 depth imbalance
and the spread."""

from __future__ import annotations

import numpy as np
import torch

from models.inputs import INPUT_NAMES

LOGISTIC_INPUTS = ("ofi_1_10e_per_depth", "depth_imbalance_1", "spread_bps")
_COLUMNS = [INPUT_NAMES.index(name) for name in LOGISTIC_INPUTS]


class Majority:
    name = "majority"

    def __init__(self, y: np.ndarray) -> None:
        counts = np.bincount(y, minlength=3)
        self.probs = np.eye(3)[np.argmax(counts)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.tile(self.probs, (len(x), 1))


class Logistic:
    """Fitted by L-BFGS on the standardized inputs (a light L2 penalty keeps it finite when the
    classes separate)."""

    name = "logistic"

    def __init__(self, x: np.ndarray, y: np.ndarray, l2: float = 1e-4) -> None:
        inputs = torch.as_tensor(x[:, _COLUMNS], dtype=torch.float64)
        target = torch.as_tensor(y, dtype=torch.long)
        self.linear = torch.nn.Linear(len(_COLUMNS), 3, dtype=torch.float64)
        optimizer = torch.optim.LBFGS(self.linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            value = torch.nn.functional.cross_entropy(self.linear(inputs), target)
            value = value + l2 * self.linear.weight.pow(2).sum()
            value.backward()
            return value

        optimizer.step(loss)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.linear(torch.as_tensor(x[:, _COLUMNS], dtype=torch.float64))
            return torch.softmax(logits, dim=1).numpy()


class LogisticMember:
    """The logistic baselines of all horizons as one model of the ensemble, in numpy: what the flow runs
    and saves with the checkpoints."""

    name = "logistic"

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias  # (horizons, 3, inputs), (horizons, 3)

    @classmethod
    def of(cls, fitted: list[Logistic]) -> LogisticMember:
        weight = np.stack([f.linear.weight.detach().numpy() for f in fitted])
        return cls(weight, np.stack([f.linear.bias.detach().numpy() for f in fitted]))

    def predict(self, z: np.ndarray) -> np.ndarray:
        """(n, inputs) standardized inputs -> (n, horizons, 3) probabilities."""
        x = np.asarray(z[:, _COLUMNS], dtype=float)
        logits = (self.weight[None] * x[:, None, None, :]).sum(axis=-1) + self.bias  # per event: batch-size free
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
