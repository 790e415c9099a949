"""Features on a Binance recording (the real day where it is, else the simulated minute): no look-ahead,
and independence from how the stream is cut."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dataflows.batches import derive_offline
from operators.instrument import Derived


def _features(paths, batch_messages=1_000) -> tuple[np.ndarray, np.ndarray]:
    seqs, rows = [], []
    for item in derive_offline(paths, batch_messages=batch_messages):
        if type(item) is Derived and len(item.frame):
            seqs.append(item.frame.seq)
            rows.append(item.features)
    return np.concatenate(seqs), np.vstack(rows)


@pytest.fixture(scope="module")
def spot(binance_spot):
    return binance_spot


@pytest.fixture(scope="module")
def spot_features(spot):
    return _features([spot])


def test_no_feature_at_t_reads_anything_after_t(spot, spot_features, tmp_path_factory):
    """Cut the recording after message k: every row up to k is unchanged."""
    seq, full = spot_features
    with gzip.open(spot, "rb") as recording:
        lines = recording.readlines()
    for keep in (len(lines) // 16, len(lines) // 4 + 1, 2 * len(lines) // 3):
        cut = tmp_path_factory.mktemp("cut") / "spot_btcusdt_cut.gz"
        with gzip.open(cut, "wb") as out:
            out.writelines(lines[:keep])
        cut_seq, cut_rows = _features([cut])
        assert len(cut_seq) > 0
        np.testing.assert_array_equal(cut_seq, seq[: len(cut_seq)])
        np.testing.assert_array_equal(cut_rows, full[: len(cut_seq)])


@pytest.mark.parametrize("batch_messages", [1, 97, 50_000])
def test_rows_do_not_depend_on_batch_size(spot, spot_features, batch_messages):
    seq, rows = _features([spot], batch_messages)
    np.testing.assert_array_equal(seq, spot_features[0])
    np.testing.assert_array_equal(rows, spot_features[1])


def test_features_are_finite_where_defined(spot_features):
    from operators.features import FEATURE_INDEX

    _, rows = spot_features
    warm = rows[200:]  # past the longest event window
    assert np.isfinite(warm).all(), [name for name, i in FEATURE_INDEX.items() if not np.isfinite(warm[:, i]).all()]
    assert (warm[:, FEATURE_INDEX["spread"]] > 0).all()
