"""What learns in the flow, learned a batch of labels at a time: the online learner gives River's
GaussianNB's numbers, the mixture those of learning label by label, and the stacking layer learns
from matured labels only and gains on a mixture where one model knows and another is noise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import naive_bayes

from models.bayes import OnlineBayes
from models.calibration import softmax
from models.ensemble import FORGETTING, Ensemble
from models.inputs import ONLINE_INPUT_NAMES
from models.stacking import BLOCK, Stacking, averaging, fit_start, stacking_inputs

FEATURES = len(ONLINE_INPUT_NAMES)


def _batch(rng, labels, events, horizons):
    """Labels in the order they matured: the event of the batch each matured at, horizon, class, inputs."""
    at = np.sort(rng.integers(0, events, labels))
    return at, rng.integers(0, horizons, labels), rng.integers(0, 3, labels), rng.normal(size=(labels, FEATURES))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batches=st.lists(st.integers(0, 60), min_size=1, max_size=4))
def test_the_online_learner_gives_rivers_numbers(seed, batches):
    rng = np.random.default_rng(seed)
    horizons, events = 2, 12
    bayes, river = OnlineBayes(horizons), [naive_bayes.GaussianNB() for _ in range(horizons)]
    for labels in batches:
        at, horizon, label, x = _batch(rng, labels, events, horizons)
        x[:, 3] = 0.25  # an input that never changes: River's variance is exactly 0, and so must ours be
        x_events = rng.normal(size=(events, FEATURES)).astype(np.float32)
        scores = bayes.learn_and_score(at, horizon, label, x, x_events)
        learned = 0
        for j in range(events):
            while learned < labels and at[learned] <= j:
                river[horizon[learned]].learn_one(
                    dict(zip(ONLINE_INPUT_NAMES, x[learned], strict=True)), label[learned]
                )
                learned += 1
            for h in range(horizons):
                expected = river[h].joint_log_likelihood(
                    dict(zip(ONLINE_INPUT_NAMES, x_events[j].tolist(), strict=True))
                )
                for c, value in expected.items():  # River leaves out the classes it has not seen
                    assert scores[j, h, c] == pytest.approx(value, rel=1e-12)
    for h in range(horizons):  # the statistics themselves are River's, bit for bit
        for c, n in river[h].class_counts.items():
            assert bayes.stats.n[h, c] == n
            for f, name in enumerate(ONLINE_INPUT_NAMES):
                var = river[h].gaussians[c][name]._var
                assert (bayes.stats.mean[h, c, f], bayes.stats.s[h, c, f]) == (var.mean._mean, var._S)


def test_the_mixture_learns_a_batch_as_label_by_label():
    rng = np.random.default_rng(5)
    horizons, models, events = 3, 4, 50
    batched, one_by_one = Ensemble(list("abcd"), horizons), Ensemble(list("abcd"), horizons)
    for _ in range(3):
        at, horizon, label, _ = _batch(rng, 200, events, horizons)
        probs = rng.dirichlet(np.ones(3), size=(len(at), models))
        weights = batched.learn_many(at, horizon, probs, label, events)
        learned = 0
        for j in range(events):
            while learned < len(at) and at[learned] <= j:
                one_by_one.learn(horizon[learned], probs[learned], label[learned])
                learned += 1
            np.testing.assert_array_equal(weights[j], one_by_one.weights())  # the forgetting is order-dependent
    np.testing.assert_array_equal(batched.losses, one_by_one.losses)
    assert FORGETTING < 1


def _stream(rng, n):
    """An informative model (right 70% of the time, says 0.6), a model of noise, and labels."""
    labels = rng.integers(0, 3, n)
    informative = np.full((n, 3), 0.2)
    guess = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 3, n))
    informative[np.arange(n), guess] = 0.6
    noise = rng.dirichlet(np.full(3, 0.5), size=n)
    return np.stack([informative, noise], axis=1), labels  # (n, models, 3)


def _run(probs, labels, batch, start=None):
    """Stacking (from ``start``, else averaging) and mixture run prequentially, each label maturing 5 events
    after its event."""
    horizons, lag = 1, 5
    start = averaging(probs.shape[1], horizons) if start is None else start
    stacking, mixture = Stacking(start), Ensemble(["a", "b"], horizons)
    out_stacking, out_mixture = [], []
    for start in range(0, len(labels), batch):
        events = np.arange(start, min(start + batch, len(labels)))
        labelled = events[events >= lag] - lag
        at = labelled + lag - start
        horizon = np.zeros(len(labelled), dtype=int)
        x_events = stacking_inputs(probs[events][:, None])  # (n, horizons, inputs)
        out_stacking.append(
            stacking.learn_many(
                at, horizon, stacking_inputs(probs[labelled][:, None])[:, 0], labels[labelled], x_events
            )
        )
        weights = mixture.learn_many(at, horizon, probs[labelled], labels[labelled], len(events))
        out_mixture.append(np.einsum("nhm,nmc->nhc", weights, probs[events]))
    return np.concatenate(out_stacking)[:, 0], np.concatenate(out_mixture)[:, 0]


def _log_loss(probs, labels):
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))


def test_stacking_beats_the_mixture_where_one_model_knows_and_another_is_noise():
    """As in training: its start fitted on an earlier part (here the first 1,500 events), then online."""
    probs, labels = _stream(np.random.default_rng(1), 7500)
    fitted = fit_start(stacking_inputs(probs[:1500, None])[:, 0], labels[:1500], averaging(2, 1)[0])[None]
    probs, labels = probs[1500:], labels[1500:]
    stacking, mixture = _run(probs, labels, batch=500, start=fitted)
    later = slice(1000, None)
    assert _log_loss(stacking[later], labels[later]) < _log_loss(mixture[later], labels[later]) - 0.02
    assert _log_loss(stacking[later], labels[later]) < _log_loss(probs[later, 0], labels[later])
    # and it is calibrated: the mean predicted probability of each class matches its frequency
    assert (
        np.abs(stacking[later].mean(axis=0) - np.bincount(labels[later], minlength=3) / len(labels[later])).max() < 0.03
    )


def test_stacking_and_mixture_do_not_depend_on_the_batch_size():
    probs, labels = _stream(np.random.default_rng(2), 3 * BLOCK + 17)
    one = _run(probs, labels, batch=1)
    for batch in (7, 1000):
        for got, expected in zip(_run(probs, labels, batch), one, strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_stacking_learns_nothing_before_a_block_of_labels_matures():
    """Until BLOCK labels have matured its weights are its starting ones; a label maturing at an event is
    learned before that event is predicted, never before."""
    probs, labels = _stream(np.random.default_rng(3), BLOCK + 10)
    start = averaging(2, 1)
    stacking = Stacking(start)
    x = stacking_inputs(probs[:, None])
    at = np.arange(BLOCK) + 5  # label i matures at event i + 5
    out = stacking.learn_many(at, np.zeros(BLOCK, dtype=int), x[:BLOCK, 0], labels[:BLOCK], x)
    still = softmax(np.einsum("ci,ni->nc", start[0], x[:, 0]))
    completed = at[-1]  # the event whose label completed the block
    np.testing.assert_array_equal(out[:completed, 0], still[:completed])
    assert not np.allclose(out[completed:, 0], still[completed:])
    restored = Stacking.from_state(stacking.state())
    np.testing.assert_array_equal(restored.predict(x[0]), stacking.predict(x[0]))
