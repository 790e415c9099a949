"""The top layer: per horizon, the mixture, the stacking layer and the logistic baseline averaged by
Bayes' rule on their log-loss over the matured labels, and a decision rule that is not pulled to the
most frequent class.

**Weights.** Expert e's weight is proportional to π_e exp(-η L_e), L_e its cumulative log-loss on the
horizon's matured labels: Bayesian model averaging, whose cumulative log-loss is at most expert e's
plus ln(1/π_e)/η, for any sequence of labels. With η = 1 that is the classic guarantee, but it holds
for labels known before the next prediction; here a label matures D events after it was predicted
(D = k for k events, hundreds to thousands of events for a time) and neighbouring labels share most of
their future. So the evidence is counted once per D labels: η = 1/D, D the mean number of events
between a labelled event and its label's maturity, so far. The bound becomes L_e + D ln(1/π_e) nats
over n labels, D ln(1/π_e)/n per label. The prior puts ``BASELINE_PRIOR`` on the logistic baseline, the
rest shared: the ensemble is meant to at least match it, and its bound against it is then the
tightest (ln(1/0.8) = 0.22 against ln 3 = 1.1 for equal priors).

**Decision.** The probabilities are calibrated, so their argmax follows the frequent "flat" class and
the macro-F1 suffers. The predicted class is argmax(ln q + β (1, 0, 1)), β one of ``OFFSETS``: the one
whose decisions on the matured labels so far had the best macro-F1 (counted per β, ties to the smallest
|β|, β = 0 being the argmax). The probabilities served are q itself.

Everything is sums over matured labels in the order they matured, so a batch of labels learned at
once gives what learning them one at a time does, and each event of a batch uses the state after the
labels that matured at or before it.
"""

from __future__ import annotations

import numpy as np

BASELINE_PRIOR = 0.8
OFFSETS = np.array([0.0, 0.2, -0.2, 0.4, -0.4, 0.6, -0.6, 0.8, -0.8])  # ties go to the first
_SHIFTS = OFFSETS[:, None] * np.array([1.0, 0.0, 1.0])  # (offsets, 3) added to the log-probabilities
_EPS = 1e-12
_EVENTS_AT_ONCE = 2048  # per event, the decision counts of every horizon and offset: 3 kB


class Hedge:
    __slots__ = ("confusion", "delays", "labels", "log_prior", "losses")

    def __init__(self, experts: int, horizons: int, baseline: int) -> None:
        prior = np.full(experts, (1 - BASELINE_PRIOR) / (experts - 1))
        prior[baseline] = BASELINE_PRIOR
        self.log_prior = np.log(prior)
        self.losses = np.zeros((horizons, experts))  # cumulative log-loss
        self.delays = np.zeros(horizons)  # sum of the matured labels' delays, in events
        self.labels = np.zeros(horizons)
        self.confusion = np.zeros((horizons, len(OFFSETS), 3, 3))  # per offset: true class x decision

    def state(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_state(cls, state: dict) -> Hedge:
        hedge = cls.__new__(cls)
        for name in cls.__slots__:
            setattr(hedge, name, state[name])
        return hedge

    def learn_weights(
        self, at: np.ndarray, horizon: np.ndarray, delay: np.ndarray, probs: np.ndarray, label: np.ndarray, events: int
    ) -> np.ndarray:
        """Learn labels in the order they matured (``at``: the event of the batch each matured at,
        non-decreasing; ``delay``: events from the labelled event to it; ``probs`` (labels, experts, 3):
        what each expert said at the labelled event) and return the (events, horizons, experts) weights
        each of the batch's events is averaged with."""
        loss = -np.log(np.maximum(probs[np.arange(len(label)), :, label], _EPS))  # (labels, experts)
        sums = np.concatenate([self.losses, self.delays[:, None], self.labels[:, None]], axis=-1)
        seen, total = _running(sums, at, horizon, np.column_stack([loss, delay, np.ones(len(label))]), events)
        self.losses, self.delays, self.labels = total[:, :-2], total[:, -2], total[:, -1]
        losses, delays, labels = seen[..., :-2], seen[..., -2], seen[..., -1]
        eta = np.divide(labels, delays, out=np.zeros_like(labels), where=delays > 0)  # 1 / mean delay
        score = self.log_prior - eta[..., None] * (losses - losses.min(axis=-1, keepdims=True))
        weights = np.exp(score - score.max(axis=-1, keepdims=True))
        return weights / weights.sum(axis=-1, keepdims=True)

    def learn_decisions(
        self, at: np.ndarray, horizon: np.ndarray, served: np.ndarray, label: np.ndarray, events: int
    ) -> np.ndarray:
        """The same labels, with ``served`` (labels, 3): what this layer said at the labelled event; returns
        the (events, horizons) offsets β each of the batch's events is decided with."""
        shifted = np.log(np.maximum(served, _EPS))[:, None, :] + _SHIFTS  # (labels, offsets, 3)
        horizons, offsets = self.confusion.shape[:2]
        cell = ((horizon[:, None] * offsets + np.arange(offsets)) * 3 + label[:, None]) * 3 + shifted.argmax(axis=-1)
        best = np.empty((events, horizons), dtype=np.int64)
        for start in range(0, events, _EVENTS_AT_ONCE):  # the counts of every event are held for a few at once
            stop = min(start + _EVENTS_AT_ONCE, events)
            first, last = np.searchsorted(at, [start, stop])
            # counts are whole numbers, so adding them in any order gives the same states: per event, the
            # labels that matured at it, per horizon, offset, true class and decision, then a running sum
            flat = cell[first:last] + ((at[first:last] - start) * self.confusion.size)[:, None]
            matured = np.bincount(flat.ravel(), minlength=(stop - start) * self.confusion.size)
            states = self.confusion + np.cumsum(matured.reshape(stop - start, *self.confusion.shape), axis=0)
            self.confusion = states[-1]
            # an event's offset is the best one after the labels that matured at or before it
            best[start:stop] = macro_f1(states).argmax(axis=-1)
        return OFFSETS[best]

    @staticmethod
    def decide(probs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(..., 3) probabilities and (...) offsets β -> (...) classes: argmax(ln p + β (1, 0, 1))."""
        shifted = np.log(np.maximum(probs, _EPS))
        shifted[..., [0, 2]] += offsets[..., None]
        return shifted.argmax(axis=-1)


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """(..., 3, 3) counts (true class x decision) -> (...) macro-F1, a class with no count scoring 0."""
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    # the sums over an axis of three added out (counts are whole numbers, so any order gives the same)
    decided, true = confusion.swapaxes(-1, -2), confusion  # [..., k] its column, its row
    both = decided[..., 0] + decided[..., 1] + decided[..., 2] + true[..., 0] + true[..., 1] + true[..., 2]
    return np.divide(2 * hits, both, out=np.zeros_like(both), where=both > 0).mean(axis=-1)


def _running(total: np.ndarray, at: np.ndarray, horizon: np.ndarray, values: np.ndarray, events: int):
    """Add ``values`` (labels, k), one per label in the order they matured, to the per-horizon sums
    ``total`` (horizons, k), one label at a time as cumsum adds them (so a batch gives what label by
    label does: a horizon's sum gains exact zeros for the other horizons' labels). Returns the sums each
    of the batch's ``events`` sees, after the labels that matured at or before it, and the new totals."""
    added = np.zeros((len(values) + 1, *total.shape))
    added[0] = total
    added[np.arange(1, len(values) + 1), horizon] = values
    running = np.cumsum(added, axis=0)
    seen = running[np.searchsorted(at, np.arange(events), side="right")]  # per event: the labels seen
    return seen, running[-1]
