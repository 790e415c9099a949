"""Direction-prediction metrics on hand-computed cases and their properties; the evaluation PNGs."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.metrics import CLASS_NAMES, reliability, report
from models.plots import calibration_png, confusion_png, training_curves_png, weights_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Six samples; the last row ties down and up, so the first index (down) is predicted.
#   row  true  probs              pred  conf  correct  p(true)
#   0    0     [0.70 0.20 0.10]   0     0.70  yes      0.70
#   1    0     [0.20 0.45 0.35]   1     0.45  no       0.20
#   2    1     [0.05 0.90 0.05]   1     0.90  yes      0.90
#   3    1     [0.10 0.60 0.30]   1     0.60  yes      0.60
#   4    2     [0.10 0.10 0.80]   2     0.80  yes      0.80
#   5    2     [0.40 0.20 0.40]   0     0.40  no       0.40
Y6 = np.array([0, 0, 1, 1, 2, 2])
P6 = np.array(
    [
        [0.70, 0.20, 0.10],
        [0.20, 0.45, 0.35],
        [0.05, 0.90, 0.05],
        [0.10, 0.60, 0.30],
        [0.10, 0.10, 0.80],
        [0.40, 0.20, 0.40],
    ]
)


def test_hand_computed_six_samples():
    r = report(Y6, P6, bins=4)
    # Rows true, columns predicted: down -> {down, flat}, flat -> {flat, flat}, up -> {up, down (tie)}.
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["n"] == 6
    assert r["accuracy"] == pytest.approx(4 / 6)  # trace 1 + 2 + 1
    # Precision = diagonal / column sums (2, 3, 1); recall = diagonal / row sums (2, 2, 2).
    assert r["precision_down"] == pytest.approx(1 / 2)
    assert r["precision_flat"] == pytest.approx(2 / 3)
    assert r["precision_up"] == pytest.approx(1 / 1)
    assert r["recall_down"] == pytest.approx(1 / 2)
    assert r["recall_flat"] == pytest.approx(2 / 2)
    assert r["recall_up"] == pytest.approx(1 / 2)
    # F1 = 2PR / (P + R): down 0.5, flat (4/3) / (5/3) = 0.8, up 1 / 1.5 = 2/3; macro = (1/2 + 4/5 + 2/3) / 3 = 59/90.
    assert r["macro_f1"] == pytest.approx(59 / 90)
    # Mean of -ln p(true).
    assert r["log_loss"] == pytest.approx(-math.log(0.7 * 0.2 * 0.9 * 0.6 * 0.8 * 0.4) / 6)
    # Four bins (0, .25], (.25, .5], (.5, .75], (.75, 1], two samples each in the upper three:
    #   (.25, .5]: rows 1, 5: accuracy 0, confidence (.45 + .40) / 2 = .425 -> gap .425
    #   (.5, .75]: rows 0, 3: accuracy 1, confidence (.70 + .60) / 2 = .650 -> gap .350
    #   (.75, 1]:  rows 2, 4: accuracy 1, confidence (.90 + .80) / 2 = .850 -> gap .150
    # ECE = (2/6)(.425 + .350 + .150) = .925 / 3.
    assert r["ece"] == pytest.approx(0.925 / 3)


def test_one_bin_ece_is_accuracy_minus_mean_confidence():
    # Mean confidence (.70 + .45 + .90 + .60 + .80 + .40) / 6 = 3.85 / 6; accuracy 4 / 6.
    assert report(Y6, P6, bins=1)["ece"] == pytest.approx(abs(4 / 6 - 3.85 / 6))


def test_report_is_json_serializable_python_types():
    r = report(Y6, P6)
    assert json.loads(json.dumps(r)) == r
    assert type(r["n"]) is int
    assert all(type(v) is float for k, v in r.items() if k not in ("n", "confusion"))
    assert all(type(v) is int for row in r["confusion"] for v in row)
    assert set(r) == {
        "n",
        "accuracy",
        "macro_f1",
        *(f"{m}_{c}" for m in ("precision", "recall") for c in CLASS_NAMES),
        "log_loss",
        "ece",
        "confusion",
    }


def test_perfect_one_hot_predictions():
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    r = report(y, np.eye(3)[y])
    assert r["accuracy"] == 1.0
    assert r["macro_f1"] == 1.0
    assert r["ece"] == 0.0
    # Zeros clip to 1e-12 and rows renormalise: -ln(1 / (1 + 2e-12)) ~ 2e-12.
    assert r["log_loss"] == pytest.approx(0.0, abs=1e-10)
    assert r["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 3]]


def test_confidently_wrong_is_clipped_not_infinite():
    # p(true) = 1e-12 / (1 + 2e-12) after clipping and renormalising.
    r = report(np.array([0]), np.array([[0.0, 0.0, 1.0]]))
    assert r["log_loss"] == pytest.approx(-math.log(1e-12), rel=1e-9)
    assert r["ece"] == 1.0


def test_uniform_probabilities():
    y = np.array([0, 1, 2, 1])
    r = report(y, np.full((4, 3), 1 / 3))
    assert r["log_loss"] == pytest.approx(math.log(3))
    # Every row ties, so all are predicted down: accuracy 1/4, confidence 1/3 -> ECE |1/4 - 1/3|.
    assert r["confusion"] == [[1, 0, 0], [2, 0, 0], [1, 0, 0]]
    assert r["ece"] == pytest.approx(1 / 3 - 1 / 4)


def test_absent_and_never_predicted_classes_count_as_zero():
    # True [down, down, flat], all predicted down: up is never present and never predicted.
    r = report(np.array([0, 0, 1]), np.array([[0.8, 0.1, 0.1]] * 3))
    assert r["confusion"] == [[2, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert (r["precision_down"], r["precision_flat"], r["precision_up"]) == (pytest.approx(2 / 3), 0.0, 0.0)
    assert (r["recall_down"], r["recall_flat"], r["recall_up"]) == (1.0, 0.0, 0.0)
    # F1 down = 2 (2/3)(1) / (5/3) = 0.8; flat and up 0, and up still counts in the average.
    assert r["macro_f1"] == pytest.approx(0.8 / 3)


def test_accepts_lists_and_integral_float_labels():
    assert report([0, 1, 2], np.eye(3).tolist())["accuracy"] == 1.0
    assert report(np.array([0.0, 1.0, 2.0]), np.eye(3))["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("y", "p", "bins", "message"),
    [
        (np.array([], dtype=int), np.zeros((0, 3)), 15, "empty"),
        (np.array([[0, 1]]), np.full((2, 3), 1 / 3), 15, "1-D"),
        (np.array([0, 1]), np.full((3, 3), 1 / 3), 15, "shape"),
        (np.array([0, 1]), np.full((2, 2), 1 / 2), 15, "shape"),
        (np.array([0, 1]), np.full((2, 3, 1), 1 / 3), 15, "shape"),
        (np.array([0, 3]), np.full((2, 3), 1 / 3), 15, "labels"),
        (np.array([0, -1]), np.full((2, 3), 1 / 3), 15, "labels"),
        (np.array([0.0, 0.5]), np.full((2, 3), 1 / 3), 15, "labels"),
        (np.array([0, 1]), np.array([[0.5, 0.5, 0.0], [np.nan, 0.5, 0.5]]), 15, "NaN"),
        (np.array([0, 1]), np.array([[0.5, 0.5, 0.0], [np.inf, 0.5, 0.5]]), 15, "NaN or infinite"),
        (np.array([0, 1]), np.array([[0.5, 0.5, 0.0], [-0.1, 0.6, 0.5]]), 15, "negative"),
        (np.array([0, 1]), np.full((2, 3), 1 / 3), 0, "bins"),
    ],
)
def test_invalid_input_raises(y, p, bins, message):
    with pytest.raises(ValueError, match=message):
        report(y, p, bins=bins)


@st.composite
def predictions(draw):
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    # Exact zeros and ones make ties and one-hot rows likely, not just generic floats.
    value = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))
    raw = np.array(draw(st.lists(st.tuples(value, value, value), min_size=n, max_size=n)))
    sums = raw.sum(axis=1, keepdims=True)
    probs = np.where(sums > 0, raw / np.where(sums > 0, sums, 1.0), 1 / 3)
    return y, probs, draw(st.integers(1, 20))


@settings(max_examples=200, deadline=None)
@given(predictions())
def test_metric_ranges_and_confusion_identities(case):
    y, probs, bins = case
    r = report(y, probs, bins=bins)
    confusion = np.array(r["confusion"])
    assert r["n"] == len(y) == confusion.sum()
    assert (confusion >= 0).all()
    assert np.array_equal(confusion.sum(axis=1), np.bincount(y, minlength=3))
    assert np.array_equal(confusion.sum(axis=0), np.bincount(probs.argmax(axis=1), minlength=3))
    assert r["accuracy"] == pytest.approx(np.trace(confusion) / len(y))
    for key in ("accuracy", "macro_f1", "ece", *(f"{m}_{c}" for m in ("precision", "recall") for c in CLASS_NAMES)):
        assert 0.0 <= r[key] <= 1.0 + 1e-12, key
    assert 0.0 <= r["log_loss"] <= -math.log(1e-12) + 1e-6
    assert math.isfinite(r["log_loss"])


@settings(max_examples=100, deadline=None)
@given(predictions(), st.randoms(use_true_random=False))
def test_permuting_samples_changes_nothing(case, rnd):
    y, probs, bins = case
    order = np.array(rnd.sample(range(len(y)), len(y)))
    a, b = report(y, probs, bins=bins), report(y[order], probs[order], bins=bins)
    assert a["confusion"] == b["confusion"]
    assert a.keys() == b.keys()
    for key in a.keys() - {"confusion"}:
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key


MODELS = ("river", "lstm")
HORIZONS = ("1s", "5s", "30s")


def _assert_png(path, min_width: int, min_height: int):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = plt.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, image.shape
    assert image.std() > 0  # something was drawn


@pytest.fixture
def no_leaked_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


def test_confusion_png(tmp_path, no_leaked_figures):
    rng = np.random.default_rng(0)
    confusions = {(m, h): rng.integers(0, 50, (3, 3)).tolist() for m in MODELS for h in HORIZONS}
    confusions["lstm", "1s"] = [[0, 0, 0], [1, 2, 3], [4, 5, 6]]  # a class never present: an empty row
    out = confusion_png(tmp_path / "sub" / "confusion.png", confusions)
    assert out == tmp_path / "sub" / "confusion.png"
    _assert_png(out, min_width=3 * 250, min_height=2 * 250)  # 3 horizon columns, 2 model rows


def test_training_curves_png(tmp_path, no_leaked_figures):
    histories = {
        m: [
            {"epoch": e, "train_loss": 1.1 - 0.05 * e, "val_loss": 1.0 - 0.03 * e + 0.01 * max(0, e - 6) ** 2}
            | ({"best": True} if e == 6 else {})
            for e in range(1, 12)
        ]
        for m in MODELS
    }
    out = training_curves_png(tmp_path / "curves.png", histories)
    _assert_png(out, min_width=2 * 300, min_height=250)


def test_weights_png(tmp_path, no_leaked_figures):
    t = np.linspace(0.0, 600.0, 200)
    river = 0.5 + 0.3 * np.sin(t / 60.0)
    weights = {h: {"river": river, "lstm": 1.0 - river} for h in HORIZONS}
    out = weights_png(tmp_path / "weights.png", t, weights)
    _assert_png(out, min_width=600, min_height=3 * 200)


def test_the_calibration_curve_is_the_one_behind_the_ece(tmp_path, no_leaked_figures):
    curve = reliability(Y6, P6, bins=15)
    # confidences 0.40, 0.45, 0.60, 0.70, 0.80, 0.90 fall in six different bins of 1/15
    assert curve["count"] == [1, 1, 1, 1, 1, 1]
    assert curve["confidence"] == pytest.approx([0.40, 0.45, 0.60, 0.70, 0.80, 0.90])
    assert curve["accuracy"] == [0, 0, 1, 1, 1, 1]
    gaps = np.abs(np.subtract(curve["accuracy"], curve["confidence"])) * curve["count"]
    assert gaps.sum() / len(Y6) == pytest.approx(report(Y6, P6)["ece"])
    out = calibration_png(tmp_path / "calibration.png", {m: {h: curve for h in HORIZONS} for m in MODELS})
    _assert_png(out, min_width=3 * 300, min_height=300)


def test_plots_reject_bad_input_without_leaking_figures(tmp_path, no_leaked_figures):
    with pytest.raises(ValueError, match="3x3"):
        confusion_png(tmp_path / "c.png", {("river", "1s"): [[1, 2], [3, 4]]})
    with pytest.raises(ValueError, match="shape"):
        weights_png(tmp_path / "w.png", np.arange(5.0), {"1s": {"river": np.ones(4)}})
    for fn, arg in ((confusion_png, {}), (training_curves_png, {}), (calibration_png, {})):
        with pytest.raises(ValueError, match="no "):
            fn(tmp_path / "x.png", arg)
    with pytest.raises(ValueError, match="no "):
        weights_png(tmp_path / "x.png", np.arange(3.0), {})
    assert not list(tmp_path.iterdir())


def test_a_decision_rule_scores_its_classes_and_leaves_log_loss_and_ece_to_the_probabilities():
    y = np.array([0, 1, 1, 2])
    p = np.array([[0.4, 0.6, 0.0], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4]])
    argmax, decided = report(y, p), report(y, p, predicted=np.array([0, 1, 1, 2]))
    assert argmax["macro_f1"] == pytest.approx((0 + 2 * 2 / (4 + 2) + 0) / 3) and decided["macro_f1"] == 1.0
    assert decided["confusion"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert (decided["log_loss"], decided["ece"]) == (argmax["log_loss"], argmax["ece"])
    with pytest.raises(ValueError, match="predicted"):
        report(y, p, predicted=np.array([0, 1, 3, 2]))
