"""Labels: hand-computed moves, exact zeros, when each label becomes known, and a brute-force
reference for random streams."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.labels import DOWN, FLAT, UP, LabelMaker, bbo_changes, classify, fit_theta
from quantumflow.horizons import Horizon, parse_horizons

S = 1_000_000_000


def run(horizons: list[Horizon], ts: list[int], mids: list[float]) -> dict[tuple[int, int], tuple[float, int]]:
    """(horizon, event) -> (move in bps, index of the event that made it known)."""
    maker = LabelMaker(horizons)
    out = {}
    for j, (t, mid) in enumerate(zip(ts, mids, strict=True)):
        for h, i, move in maker.push(t, mid):
            assert (h, i) not in out, "a label matured twice"
            out[h, i] = (move, j)
    return out


def test_event_horizon_by_hand():
    # k = 2: event 0 -> mean(101, 102) = 101.5 against 100: +150 bps, known at event 2;
    # event 1 -> mean(102, 100) = 101 against 101: 0; event 2 -> mean(100, 100) = 100 vs 102.
    labels = run([Horizon.parse("2")], [0, 1, 2, 3, 4], [100.0, 101.0, 102.0, 100.0, 100.0])
    assert labels[0, 0] == (pytest.approx(150.0), 2)
    assert labels[0, 1] == (0.0, 3)
    assert labels[0, 2] == (pytest.approx(1e4 * (100 / 102 - 1)), 4)
    assert (0, 3) not in labels  # the recording ends before its horizon does


def test_time_horizon_by_hand():
    # 1 s: event 0 at 0 s sees 100 on [0, 0.5) and 102 on [0.5, 1]: mean 101, +100 bps, known at
    # event 2 (1.2 s, the first later than 1 s). Event 1 at 0.5 s sees 102 on [0.5, 1.2) and 104 on
    # [1.2, 1.5]: (0.7 * 102 + 0.3 * 104) / 1 = 102.6, 1e4 * (102.6 / 102 - 1) bps, known at 2.5 s.
    ts = [0, S // 2, 12 * S // 10, 25 * S // 10]
    labels = run([Horizon.parse("1s")], ts, [100.0, 102.0, 104.0, 90.0])
    assert labels[0, 0] == (pytest.approx(100.0), 2)
    assert labels[0, 1] == (pytest.approx(1e4 * (102.6 / 102 - 1)), 3)
    assert labels[0, 2] == (0.0, 3)  # 104 all through (1.2, 2.2]; the 90 at 2.5 s is outside
    assert (0, 3) not in labels


def test_an_unchanged_mid_is_exactly_flat():
    mids = [61685.995] * 300
    labels = run(parse_horizons("10,100,1s"), [i * S // 10 for i in range(300)], mids)
    assert labels and all(move == 0.0 for move, _ in labels.values())


def test_horizons_parse_and_reject():
    assert parse_horizons("10, 50,1s,500ms") == [
        Horizon("10", events=10),
        Horizon("50", events=50),
        Horizon("1s", ns=S),
        Horizon("500ms", ns=S // 2),
    ]
    for bad in ("", "0", "-5", "1h", "10,10", "abc"):
        with pytest.raises(ValueError, match="horizon"):
            parse_horizons(bad)


def test_classes_and_the_fitted_flat_band():
    assert classify(np.array([-0.2, -0.1, 0.0, 0.1, 0.2]), 0.1).tolist() == [DOWN, FLAT, FLAT, FLAT, UP]
    moves = np.random.default_rng(1).normal(size=30_000)
    shares = np.bincount(classify(moves, fit_theta(moves))) / len(moves)
    assert shares == pytest.approx([1 / 3] * 3, abs=0.01)
    with pytest.raises(ValueError, match="too short"):
        fit_theta(np.array([np.nan]))


def test_best_bid_offer_changes():
    l1 = np.array([[10.0, 1, 11, 1], [10, 1, 11, 1], [10, 2, 11, 1], [10, 2, 11.5, 1]])
    assert bbo_changes(l1, None).tolist() == [True, False, True, True]
    assert bbo_changes(l1[:2], l1[1]).tolist() == [False, False]


def _reference(horizon: Horizon, ts: list[int], mids: list[float]) -> dict[int, tuple[float, int]]:
    """Brute force, straight from the definition."""
    out = {}
    n = len(ts)
    for i in range(n):
        if horizon.events:
            if i + horizon.events < n:
                mean = np.mean(mids[i + 1 : i + horizon.events + 1])
                out[i] = (1e4 * (mean / mids[i] - 1), i + horizon.events)
            continue
        end = ts[i] + horizon.ns
        later = [j for j in range(i + 1, n) if ts[j] > end]
        if not later:
            continue
        area = 0.0
        for m in range(i, later[0]):
            area += mids[m] * (min(ts[m + 1], end) - ts[m]) if m + 1 < later[0] else mids[m] * (end - ts[m])
        out[i] = (1e4 * (area / horizon.ns / mids[i] - 1), later[0])
    return out


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3 * S // 2), st.integers(-3, 3)),
        min_size=1,
        max_size=120,
    ),
    horizon=st.sampled_from(["1", "3", "7", "1s", "2s", "300ms"]),
)
def test_labels_match_the_definition_and_come_no_earlier(steps, horizon):
    h = Horizon.parse(horizon)
    ts, mids, t, tick = [], [], 0, 10_000
    for gap, move in steps:
        t += gap
        tick = max(1, tick + move)
        ts.append(t)
        mids.append(tick * 0.005)
    got = {i: value for (_, i), value in run([h], ts, mids).items()}
    expected = _reference(h, ts, mids)
    assert got.keys() == expected.keys()
    for i, (move, known_at) in got.items():
        assert move == pytest.approx(expected[i][0], abs=1e-9)
        assert known_at == expected[i][1]  # known at the first event that can know it, never before


def test_pushing_a_batch_gives_what_pushing_event_by_event_does():
    """``push_many`` (the flow's, per batch) against ``push`` (one event at a time), on 10,000 events,
    past the point where the maker forgets old ones, the stream cut at random."""
    rng = np.random.default_rng(3)
    ts = np.cumsum(rng.integers(0, 2 * S // 10, 10_000)).tolist()
    mids = (50_000 + 0.01 * np.cumsum(rng.integers(-2, 3, 10_000))).tolist()
    horizons = parse_horizons("3,100,1s,50ms")
    one, batched = LabelMaker(horizons), LabelMaker(horizons)
    expected = [(j, *label) for j, (t, mid) in enumerate(zip(ts, mids, strict=True)) for label in one.push(t, mid)]
    got = []
    cuts = [0, *sorted(rng.choice(np.arange(1, 10_000), 40, replace=False).tolist()), 10_000]
    for start, end in itertools.pairwise(cuts):
        at, horizon, event, moves = batched.push_many(ts[start:end], mids[start:end])
        got += [(start + j, h, i, move) for j, h, i, move in zip(at, horizon, event, moves, strict=True)]
    assert got == expected and len(got) > 30_000
