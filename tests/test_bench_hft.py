"""The hftbacktest side-by-side benchmark, briefly: on the head of a real USD-M recording both sides reach
the same book, and every figure is there (no timing is asserted)."""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path

import pytest
from hft_reference import feed_offset as reference_offset

from bench.hft_books import NotComparable, bench_hft_books, feed_offset, hft_convert

pytest.importorskip("hftbacktest", reason="hftbacktest (a dev dependency) is not installed")

HEAD_LINES = 3_000  # about 11 s: the snapshot is line 55, the samples start 5 s in


@pytest.fixture(scope="module")
def usdm_head(shared_data, tmp_path_factory) -> Path:
    head = tmp_path_factory.mktemp("hft") / "usdm_btcusdt_20240808_head.gz"
    with gzip.open(shared_data / "binance" / "usdm_btcusdt_20240808.gz", "rb") as whole:
        head.write_bytes(gzip.compress(b"".join(islice(whole, HEAD_LINES))))
    return head


def test_both_sides_reach_the_same_book_and_every_figure_is_given(usdm_head):
    result = bench_hft_books(usdm_head, rounds=2, samples=5, levels=10)
    figures = json.loads(json.dumps(result.to_dict()))
    assert result.feed == "binance_usdm"
    assert result.messages == HEAD_LINES
    assert result.agreement.samples == 6  # the samples and the end
    assert result.agreement.all_agree, result.agreement.first_difference
    assert result.ends_agree == 2
    assert figures["all_agree"]
    assert result.hft_rows > result.messages  # a row per depth level
    assert len(result.quantumflow_s) == len(result.hft_convert_s) == len(result.hft_replay_s) == 2
    for name in ("quantumflow_messages_per_s", "hft_messages_per_s", "hft_replay_rows_per_s", "ratio"):
        assert figures[name] > 0
    assert len(result.load_start) == len(result.load_end) == 3
    assert set(result.describe) == {"quantumflow", "hftbacktest"}


def test_the_feed_offset_is_the_converters_own(usdm_head):
    # the shift of hftbacktest's clock, read off its rows, is what its converter computes from the messages
    assert feed_offset(usdm_head, hft_convert(usdm_head)) == reference_offset(usdm_head) > 0


def test_a_spot_recording_is_refused_with_the_reason(shared_data):
    with pytest.raises(NotComparable, match="transaction time T that Binance spot messages lack"):
        bench_hft_books(shared_data / "binance" / "spot_btcusdt_20240808.gz", rounds=1)


def test_another_venues_recording_is_refused_without_binance_spots_reason(simulated_recording):
    with pytest.raises(NotComparable, match=r"converts only Binance futures recordings \(USD-M, COIN-M\)$"):
        bench_hft_books(next(simulated_recording.glob("coinbase*")), rounds=1)


def test_a_cut_recording_is_refused_with_the_reason(usdm_head, tmp_path):
    cut = tmp_path / "cut.gz"
    cut.write_bytes(usdm_head.read_bytes()[:20_000])
    with pytest.raises(NotComparable, match=r"hftbacktest's converter cannot read .*cut\.gz"):
        bench_hft_books(cut, rounds=1)
