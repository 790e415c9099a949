"""The ingest benchmark, briefly: the head of a Binance recording (the real day where it is, else the
simulated minute) through the local Binance, figures that add up."""

from __future__ import annotations

import gzip
from itertools import islice

from bench.ingest import bench_ingest


def test_a_short_run_ingests_every_frame_and_orders_its_latencies(binance_spot, tmp_path):
    head = tmp_path / "spot_btcusdt_head"
    with gzip.open(binance_spot, "rb") as whole:
        lines = list(islice(whole, 2_000))
    head.write_bytes(b"".join(lines))
    result = bench_ingest(head, seconds=1.0)
    snapshots = sum(b"lastUpdateId" in line for line in lines)
    assert snapshots >= 1 and result.messages == len(lines) - snapshots  # every line but the snapshots: REST answers
    assert min(result.venue_messages_per_s, result.folder_messages_per_s, result.kafka_messages_per_s) > 0
    assert {result.folder_limited_by, result.kafka_limited_by} <= {"venue", "ingester"}
    assert result.paced_messages > 5  # Binance sends diffs every 100 ms, tickers and trades between
    # a record is handed to the producer after its frame arrived, and acknowledged after that
    assert 0 <= result.to_producer_ms[0] <= result.to_producer_ms[1] <= result.to_producer_ms[2]
    assert all(handed <= acked for handed, acked in zip(result.to_producer_ms, result.acknowledged_ms, strict=True))
    assert len(result.load_start) == len(result.load_end) == 3
