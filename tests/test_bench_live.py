"""bench.live on a simulated recording: a paced run without and with models per speed, each with the
latency of its own rows (no timing is asserted: figures belong to make bench)."""

from __future__ import annotations

import gzip
import math

from bench.kafka import slice_of
from bench.live import bench_live
from dataflows.recordings import open_recording
from quantumflow.events import RawMessage


def test_bench_live_measures_each_speed_without_and_with_models(simulated_recording, simulated_models):
    binance = simulated_recording / "binance_btcusdt.gz"
    result = bench_live(binance, wall_s=1.0, models=simulated_models.folder, speeds=(10.0,))
    assert [(run.speed, run.models) for run in result.runs] == [(10.0, False), (10.0, True)]
    for run in result.runs:
        assert run.events > 0 and 9.0 < run.recording_s <= 10.0
        assert 0 < run.p50_ms <= run.p99_ms and math.isfinite(run.p99_ms)
    assert result.models == str(simulated_models.folder)


def test_bench_live_names_the_models_it_found_where_none_were_named(simulated_recording, simulated_models, monkeypatch):
    """Without ``--models`` it runs the checkpoints of $QF_MODELS_DIR when there are some, and names them:
    they are not small ones trained on the recording."""
    monkeypatch.setenv("QF_MODELS_DIR", str(simulated_models.folder))
    result = bench_live(simulated_recording / "binance_btcusdt.gz", wall_s=0.5, speeds=(10.0,))
    assert result.models == str(simulated_models.folder) and result.runs[1].events > 0


def test_a_slice_is_the_recording_as_the_flow_reads_it(simulated_recording, tmp_path, caplog):
    """A cut file is sliced up to its last whole line (with the reader's warning) and a bad line is left
    out: the paced runs replay what the flow would, instead of ending in a traceback."""
    whole = (simulated_recording / "binance_btcusdt.gz").read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    sliced, messages, seconds = slice_of(cut, 3_600.0, tmp_path)
    readable = [raw for raw in open_recording(cut) if type(raw) is RawMessage]
    assert messages == len(readable) > 0 and "breaks off" in caplog.text
    assert seconds == (readable[-1].receive_ts - readable[0].receive_ts) / 1e9 < 3_600  # what it spans
    assert [raw.payload for raw in open_recording(sliced)] == [raw.payload for raw in readable]
    lines = gzip.decompress(whole).splitlines(keepends=True)
    bad = tmp_path / "bad"
    bad.write_bytes(b"".join([*lines[:5], b"garbage line here\n", *lines[5:50]]))
    sliced, messages, _ = slice_of(bad, 3_600.0, tmp_path)
    assert messages == 50 and sliced.read_bytes() == b"".join(lines[:50])
