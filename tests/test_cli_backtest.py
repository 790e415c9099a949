"""``quantumflow backtest`` as a user runs it, on the simulator's recording with small models: the metrics by
plain names in --json, the report, the stored row; the execution strategy beside TWAP and immediate
execution; predictions read back from a store a run filled; and one clear line for every mistake."""

from __future__ import annotations

import json

import pytest
from test_cli_errors import one_line, quantumflow

from simulator import simulate
from store import open_store

METRICS = ("net_pnl", "gross_pnl", "fees", "trades", "sharpe", "sortino", "win_rate", "max_drawdown", "profit_factor")


@pytest.fixture(scope="module")
def recording(simulated_models):
    return simulated_models.recording


@pytest.fixture(scope="module")
def models(simulated_models):
    return simulated_models.folder


def test_a_backtest_prints_its_metrics_writes_its_report_and_is_stored(recording, models, tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    out = tmp_path / "report"
    ran = quantumflow(
        "backtest", str(recording), "--models", str(models), "--set", "horizon=1s", "--set", "threshold=0.4",
        "--store", store, "--out", str(out), "--json", data=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert set(METRICS) <= set(result["metrics"])
    assert result["metrics"]["trades"] > 0
    assert result["strategy"] == "follow" and result["instrument"] == "binance:BTCUSDT"
    assert result["settings"]["costs"]["fixed_fee"] == 10.0
    assert {p.name for p in out.iterdir()} >= {"report.html", "equity.png", "result.json"}
    stored = open_store(store).reader().backtest(result["id"])
    assert stored["metrics"]["net_pnl"] == pytest.approx(result["metrics"]["net_pnl"])


def test_the_execution_algorithm_is_measured_against_twap_and_immediate_execution(recording, models, tmp_path):
    ran = quantumflow(
        "backtest", str(recording), "--strategy", "execution", "--models", str(models), "--set", "horizon=1s",
        "--fixed-fee", "0", "--store", f"sqlite:///{tmp_path / 'store.db'}", "--json", data=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert set(result["benchmarks"]) == {"twap", "immediate"}
    for summary in (result["metrics"], *result["benchmarks"].values()):
        assert summary["parents_completed"] > 0
        assert summary["shortfall_mean_bps"] is not None


def test_predictions_are_read_back_from_a_store_that_a_run_filled(recording, models, tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    ran = quantumflow("run", str(recording), "--store", store, "--models", str(models), "--fresh", data=tmp_path)
    assert ran.returncode == 0, ran.stderr
    ran = quantumflow(
        "backtest", str(recording), "--from-store", "--set", "horizon=1s", "--store", store, "--json", data=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["settings"]["signals_from"] == "store"
    assert result["metrics"]["trades"] > 0


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--strategy", "momentum"], ["unknown strategy 'momentum'", "follow"]),
        (["--set", "size=3"], ["unknown setting 'size'", "qty"]),
        (["--set", "qty=lots"], ["qty", "number"]),
        (["--set", "qty"], ["--set takes NAME=VALUE"]),
        (["--latency", "-3"], ["--latency"]),
        (["--latency", "soon"], ["--latency", "'feed'"]),
        (["--queue", "fifo"], ["unknown queue model 'fifo'"]),
        (["--risk-overlay", "--set", "risk.size=1"], ["unknown risk overlay setting 'size'"]),
        (["--set", "risk.cut=0"], ["add --risk-overlay"]),
        (["--risk-overlay", "--set", "risk.cut=half"], ["risk overlay setting 'cut'", "number"]),
        (["--slippage-bps", "inf"], ["--slippage-bps", "finite"]),
        (["--instrument", "kraken:XBTUSD"], ["hold no kraken:XBTUSD", "binance:BTCUSDT"]),
        (["--set", "horizon=5m"], ["horizon", "5m"]),
        (["--from-store", "--models", "m"], ["--from-store"]),
    ],
)
def test_a_mistake_is_one_line(recording, models, tmp_path, arguments, words):
    args = ["backtest", str(recording), "--models", str(models), *arguments]
    if "--from-store" in arguments:
        args = ["backtest", str(recording), *arguments]
    one_line(quantumflow(*args, data=tmp_path), 2, *words)


def test_a_report_folder_that_cannot_be_written_is_said_before_the_run(recording, models, tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("")
    ran = quantumflow("backtest", str(recording), "--models", str(models), "--out", str(taken), data=tmp_path)
    assert ran.returncode != 0 and "a-file" in ran.stderr and len(ran.stderr.splitlines()) == 1
    assert "predict" not in ran.stderr


def test_an_unusable_store_or_a_missing_recording_is_said_before_anything_is_made(recording, models, tmp_path):
    unreachable = quantumflow(
        "backtest", str(recording), "--models", str(models), "--store", "questdb://127.0.0.1:1", data=tmp_path
    )
    one_line(unreachable, 1, "questdb://127.0.0.1:1 cannot be used")
    missing = quantumflow("backtest", str(tmp_path / "nope.gz"), "--models", str(models), data=tmp_path)
    one_line(missing, 2, "no such recording file or folder", "nope.gz")
    assert not (tmp_path / "backtests").exists()  # no report folder left behind by either


def test_recordings_that_hold_several_instruments_need_one_chosen(recording, models, tmp_path):
    one_line(
        quantumflow("backtest", str(recording.parent), "--models", str(models), data=tmp_path),
        2,
        "several instruments",
        "--instrument",
    )


def test_a_test_period_before_the_training_one_is_refused(tmp_path):
    earlier, later = (
        simulate(tmp_path / day, seed=3, minutes=0.2, start=f"{day}T00:00:00Z").files[0]
        for day in ("2024-08-08", "2024-08-09")
    )
    one_line(
        quantumflow("backtest", str(earlier), "--train", str(later), data=tmp_path), 2, "before the training ones end"
    )


def test_a_store_without_predictions_is_said_so(recording, tmp_path):
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    one_line(
        quantumflow("backtest", str(recording), "--from-store", "--store", store, data=tmp_path), 2, "no predictions"
    )
