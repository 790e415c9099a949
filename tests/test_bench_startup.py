"""bench.startup (a line of make bench) on a simulated recording: the import and the run are timed in
fresh processes (no timing is asserted: figures belong to make bench)."""

from __future__ import annotations

import pytest

from bench.startup import bench_startup


def test_the_startup_bench_times_a_fresh_run_without_models(simulated_recording):
    result = bench_startup(simulated_recording / "binance_btcusdt.gz", head_lines=300, repeats=1)
    assert result.head_messages == 300 and result.repeats == 1
    assert result.import_s > 0 and 0 < result.flow_s < result.whole_run_s
    assert result.before_flow_s == pytest.approx(result.whole_run_s - result.flow_s)
