"""The top layer: its weights and decisions by hand on a tiny sequence, a batch of labels learned as
label by label, its state restored, and its log-loss near the best expert's where one is best."""

import math

import numpy as np
import pytest

from models.hedge import BASELINE_PRIOR, OFFSETS, Hedge, macro_f1


def test_weights_by_hand():
    hedge = Hedge(3, horizons=1, baseline=2)
    prior = np.array([0.1, 0.1, 0.8])
    assert BASELINE_PRIOR == 0.8
    # two labels (class 1 then class 0) matured at events 1 and 2 of a 4-event batch, 2 and 4 events late
    probs = np.array(
        [[[0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3]], [[0.6, 0.2, 0.2], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3]]]
    )
    weights = hedge.learn_weights(np.array([1, 2]), np.zeros(2, int), np.array([2, 4]), probs, np.array([1, 0]), 4)
    np.testing.assert_allclose(weights[0, 0], prior)  # event 0: nothing matured yet
    after_one = prior * np.array([0.5, 0.8, 0.4]) ** (1 / 2)  # η = 1/2: one label, 2 events late
    np.testing.assert_allclose(weights[1, 0], after_one / after_one.sum())
    after_two = prior * np.array([0.5 * 0.6, 0.8 * 0.1, 0.4 * 0.3]) ** (2 / 6)  # η = 2 labels / 6 events
    np.testing.assert_allclose(weights[2, 0], after_two / after_two.sum())
    np.testing.assert_allclose(weights[3, 0], weights[2, 0])
    np.testing.assert_allclose(hedge.losses[0], -np.log([0.3, 0.08, 0.12]))
    assert (hedge.delays[0], hedge.labels[0]) == (6, 2)


def test_decisions_by_hand():
    hedge = Hedge(3, horizons=1, baseline=2)
    # served: mostly "flat", with a little lean; the labels say the lean was right
    served = np.array([[0.35, 0.45, 0.2], [0.2, 0.45, 0.35], [0.2, 0.6, 0.2]])
    label = np.array([0, 2, 1])
    offsets = hedge.learn_decisions(np.array([0, 1, 2]), np.zeros(3, int), served, label, 3)
    # after the first label: argmax says flat (F1 0 everywhere); β ≥ 0.4 says down, right: 1/3 for each
    # β from 0.4 on, the first of them is 0.4
    assert offsets[0, 0] == 0.4
    # after the second: β ≥ 0.4 has both right (down and up: 2/3); β = 0.4 is the first
    assert offsets[1, 0] == 0.4
    # the third is flat at 0.6 against 0.2: every β up to 0.8 (ln 3 = 1.1) keeps it flat, all three right
    assert offsets[2, 0] == 0.4
    assert macro_f1(hedge.confusion[0])[list(OFFSETS).index(0.4)] == 1.0
    assert macro_f1(hedge.confusion[0])[0] == pytest.approx((0 + 0 + 2 / 4) / 3)  # β = 0: all flat
    np.testing.assert_array_equal(Hedge.decide(served, np.array([0.0, 0.0, 0.4])), [1, 1, 1])
    np.testing.assert_array_equal(Hedge.decide(served, np.full(3, 0.4)), [0, 2, 1])


def test_a_batch_is_learned_as_label_by_label_and_its_state_restores():
    rng = np.random.default_rng(4)
    horizons, experts, events = 2, 3, 40
    batched, one_by_one = Hedge(experts, horizons, 2), Hedge(experts, horizons, 2)
    for _ in range(3):
        at = np.sort(rng.integers(0, events, 120))
        horizon, label = rng.integers(0, horizons, 120), rng.integers(0, 3, 120)
        delay, probs = rng.integers(1, 30, 120), rng.dirichlet(np.ones(3), size=(120, experts))
        served = rng.dirichlet(np.ones(3), size=120)
        weights = batched.learn_weights(at, horizon, delay, probs, label, events)
        offsets = batched.learn_decisions(at, horizon, served, label, events)
        learned = 0
        for j in range(events):
            row = slice(learned, learned + int((at == j).sum()))
            w = one_by_one.learn_weights(at[row] - j, horizon[row], delay[row], probs[row], label[row], 1)
            o = one_by_one.learn_decisions(at[row] - j, horizon[row], served[row], label[row], 1)
            learned = row.stop
            np.testing.assert_array_equal(weights[j], w[0])
            np.testing.assert_array_equal(offsets[j], o[0])
    restored = Hedge.from_state(batched.state())
    for name in Hedge.__slots__:
        np.testing.assert_array_equal(getattr(restored, name), getattr(one_by_one, name))


def test_a_batch_longer_than_its_counting_steps_decides_as_smaller_batches_do():
    """The decision counts are run over a few thousand events at a time: a long batch's offsets and final
    counts are those of the same labels learned in batches cut anywhere else."""
    rng = np.random.default_rng(8)
    horizons, events, labels = 5, 5_000, 20_000
    at = np.sort(rng.integers(0, events, labels))
    horizon, label = rng.integers(0, horizons, labels), rng.integers(0, 3, labels)
    served = rng.dirichlet(np.ones(3), size=labels)
    whole, pieces = Hedge(3, horizons, 2), Hedge(3, horizons, 2)
    offsets = whole.learn_decisions(at, horizon, served, label, events)
    for start, stop in ((0, 1_500), (1_500, 3_700), (3_700, events)):
        rows = slice(*np.searchsorted(at, [start, stop]))
        part = pieces.learn_decisions(at[rows] - start, horizon[rows], served[rows], label[rows], stop - start)
        np.testing.assert_array_equal(offsets[start:stop], part)
    np.testing.assert_array_equal(whole.confusion, pieces.confusion)
    assert whole.confusion.sum() == labels * len(OFFSETS)


def test_its_log_loss_is_near_the_best_experts():
    """One expert knows (right 70% of the time), the baseline is uniform, one is noise; labels mature 5
    events late. The top layer's log-loss is within the bound D ln(1/π)/n of the best expert's."""
    rng = np.random.default_rng(1)
    n, lag = 6000, 5
    labels = rng.integers(0, 3, n)
    knows = np.full((n, 3), 0.2)
    guess = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 3, n))
    knows[np.arange(n), guess] = 0.6
    probs = np.stack([knows, rng.dirichlet(np.full(3, 0.5), size=n), np.full((n, 3), 1 / 3)], axis=1)
    hedge = Hedge(3, horizons=1, baseline=2)
    at = np.arange(n - lag) + lag
    weights = hedge.learn_weights(at, np.zeros(n - lag, int), np.full(n - lag, lag), probs[: n - lag], labels[:-lag], n)
    mixed = np.einsum("ne,nec->nc", weights[:, 0], probs)

    def loss(p):
        return -np.log(p[np.arange(n), labels]).sum()

    assert loss(mixed) <= loss(probs[:, 0]) + lag * math.log(10) + lag  # the bound, and the delay's slack
    assert loss(mixed) < loss(probs[:, 2]) - 0.1 * n  # far below the uniform baseline


def test_macro_f1_is_the_definition_bit_for_bit():
    """Counts summed out class by class give what numpy's sums do (they are whole numbers)."""
    confusion = np.random.default_rng(5).integers(0, 2_000, (500, 9, 3, 3)).astype(float)
    confusion[0] = 0  # no count at all: 0
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    both = confusion.sum(axis=-2) + confusion.sum(axis=-1)
    expected = np.divide(2 * hits, both, out=np.zeros_like(both), where=both > 0).mean(axis=-1)
    assert macro_f1(confusion).tobytes() == expected.tobytes()
