"""bench.live on a simulated recording: a paced run without and with models per speed, each with the
latency of its own rows (no timing is asserted: figures belong to make bench)."""

from __future__ import annotations

import math

from bench.live import bench_live


def test_bench_live_measures_each_speed_without_and_with_models(simulated_recording, simulated_models):
    binance = simulated_recording / "binance_btcusdt.gz"
    result = bench_live(binance, wall_s=1.0, models=simulated_models.folder, speeds=(10.0,))
    assert [(run.speed, run.models) for run in result.runs] == [(10.0, False), (10.0, True)]
    for run in result.runs:
        assert run.events > 0 and run.recording_s == 10.0
        assert 0 < run.p50_ms <= run.p99_ms and math.isfinite(run.p99_ms)
    assert result.models == str(simulated_models.folder)
